// What every benchmark does with an error it cannot go on after: print it
// with the program's name and the step that failed, and exit 1. A bench is
// a measurement, not a server; a failed setup step ends the run.
#ifndef MNEMO_BENCH_BENCH_MUST_H_
#define MNEMO_BENCH_BENCH_MUST_H_

#include <errno.h>  // program_invocation_short_name (GNU)

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mnemo::bench {

[[noreturn]] inline void Die(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what.c_str(),
               status.ToString().c_str());
  std::exit(1);
}

// The value of `v`, or Die(what, v.status()).
template <typename T>
T Must(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(what, v.status());
  return *std::move(v);
}

inline void Must(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Die(what, s);
}

}  // namespace mnemo::bench

#endif  // MNEMO_BENCH_BENCH_MUST_H_
