// Helpers shared by the db tests and the crash writer.
#ifndef MNEMO_TESTS_DB_TEST_UTIL_H_
#define MNEMO_TESTS_DB_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "mnemo/model_fingerprint.h"

namespace mnemo::db::test {

// Deterministic pseudo-random vector of `dim` floats in [-1, 1) derived from
// `id`: distinct ids give distinct vectors with overwhelming probability.
std::vector<float> VectorFor(absl::string_view id, int dim);

// The KV model of the kill -9 test's namespace (2 layers, 1 KV head of 4)
// and the K or V (`which` 'k' / 'v') of layer `layer` of chunk `id`:
// kCrashKvTokens tokens, deterministic in (id, layer, which).
inline constexpr uint32_t kCrashKvTokens = 3;
ModelFingerprint CrashKvModel();
std::vector<float> KvFor(absl::string_view id, int layer, char which);

// A small llama-shaped KV model for store tests: 4 query heads, dim 32,
// RoPE theta 10000 ("half"), float32, tokenizer hash "00ff".
ModelFingerprint SmallKvModel(int n_layers, int n_kv_heads, int head_dim);

// Creates a fresh directory under testing::TempDir() (or $TMPDIR / /tmp).
std::string MakeTempDir(absl::string_view tag);

}  // namespace mnemo::db::test

#endif  // MNEMO_TESTS_DB_TEST_UTIL_H_
