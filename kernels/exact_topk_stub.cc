// Built instead of the CUDA sources when MNEMO_HAVE_CUDA is OFF: every entry
// point reports UNAVAILABLE so callers fall back to the CPU path.
#include "absl/status/status.h"
#include "kernels/exact_topk.h"

namespace mnemo::kernels {

absl::Status CudaDeviceAvailable() {
  return absl::UnavailableError("mnemo was built without CUDA kernels");
}

absl::Status ExactTopK(const ExactTopKArgs&) { return CudaDeviceAvailable(); }

}  // namespace mnemo::kernels
