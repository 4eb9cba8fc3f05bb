// Linked instead of hnswlib_backend.cc when hnswlib's headers (Debian's
// libhnswlib-dev) are not installed.
#include "bench/bench_backend.h"

namespace mnemo::bench {

absl::StatusOr<std::unique_ptr<Backend>> MakeHnswlibBackend(const Dataset& dataset,
                                                            const BackendConfig& config,
                                                            IngestStats* stats) {
  return absl::UnimplementedError("hnswlib headers were not found at configure time");
}

}  // namespace mnemo::bench
