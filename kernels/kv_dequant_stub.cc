// Built without CUDA: the GPU KV dequantization is unavailable.
#include "kernels/kv_dequant.h"

namespace mnemo::kernels {

absl::Status DequantizeKvGpu(const KvDequantArgs&) {
  return absl::UnavailableError("mnemo was built without CUDA (MNEMO_CUDA=OFF)");
}

}  // namespace mnemo::kernels
