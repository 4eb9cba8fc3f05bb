// Built without CUDA: the GPU attention and decoder are unavailable.
#include "kernels/attention.h"
#include "kernels/llama_gpu.h"

namespace mnemo::kernels {
namespace {

absl::Status NoCuda() {
  return absl::UnavailableError("mnemo was built without CUDA (MNEMO_CUDA=OFF)");
}

}  // namespace

absl::Status PartialAttention(const PartialAttentionArgs&) { return NoCuda(); }

absl::Status MergePartialAttention(int, int, float*, float*, float*, const float*, const float*,
                                   const float*) {
  return NoCuda();
}

absl::StatusOr<std::unique_ptr<LlamaGpu>> LlamaGpu::Create(const LlamaGpuConfig&,
                                                           const LlamaGpuWeights&) {
  return NoCuda();
}

}  // namespace mnemo::kernels
