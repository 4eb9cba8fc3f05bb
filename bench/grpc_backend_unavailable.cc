// Linked instead of grpc_backend.cc when the client SDK (mnemo_client) is
// not part of the build.
#include "bench/bench_backend.h"

namespace mnemo::bench {

absl::StatusOr<std::unique_ptr<Backend>> MakeGrpcBackend(const Dataset& dataset,
                                                         const BackendConfig& config,
                                                         const std::string& data_dir,
                                                         IngestStats* stats) {
  return absl::UnimplementedError("mnemo_client was not built");
}

}  // namespace mnemo::bench
