// Linked instead of store_backend.cc when the engine library (mnemo_db) is
// not part of the build.
#include "bench/bench_backend.h"

namespace mnemo::bench {

absl::StatusOr<std::unique_ptr<Backend>> MakeStoreBackend(const Dataset& dataset,
                                                          const BackendConfig& config,
                                                          const std::string& data_dir,
                                                          IngestStats* stats) {
  return absl::UnimplementedError("mnemo_db was not built");
}

}  // namespace mnemo::bench
