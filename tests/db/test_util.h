// Helpers shared by the db tests and the crash writer.
#ifndef MNEMO_TESTS_DB_TEST_UTIL_H_
#define MNEMO_TESTS_DB_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace mnemo::db::test {

// Deterministic pseudo-random vector of `dim` floats in [-1, 1) derived from
// `id`: distinct ids give distinct vectors with overwhelming probability.
std::vector<float> VectorFor(absl::string_view id, int dim);

// Creates a fresh directory under testing::TempDir() (or $TMPDIR / /tmp).
std::string MakeTempDir(absl::string_view tag);

}  // namespace mnemo::db::test

#endif  // MNEMO_TESTS_DB_TEST_UTIL_H_
