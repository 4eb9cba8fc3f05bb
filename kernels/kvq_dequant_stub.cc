// Built without CUDA: the GPU kvq dequantization is unavailable.
#include "kernels/kvq_dequant.h"

namespace mnemo::kernels {

absl::Status DequantizeKvqGpu(const KvqDequantArgs&) {
  return absl::UnavailableError("mnemo was built without CUDA (MNEMO_CUDA=OFF)");
}

}  // namespace mnemo::kernels
