// Built without CUDA: the GPU PQ decoding is unavailable.
#include "kernels/pq_decode.h"

#include <utility>

namespace mnemo::kernels {

struct PqDecoderGpu::Impl {};

PqDecoderGpu::PqDecoderGpu(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PqDecoderGpu::~PqDecoderGpu() = default;
int PqDecoderGpu::dim() const { return 0; }
size_t PqDecoderGpu::code_size() const { return 0; }

absl::StatusOr<std::unique_ptr<PqDecoderGpu>> PqDecoderGpu::Create(int, int, int, const float*) {
  return absl::UnavailableError("mnemo was built without CUDA (MNEMO_CUDA=OFF)");
}

absl::Status PqDecoderGpu::Decode(const uint8_t*, size_t, void*, size_t, PqOutput, void*) const {
  return absl::UnavailableError("mnemo was built without CUDA (MNEMO_CUDA=OFF)");
}

absl::Status PqDecodeGpu(const PqDecodeArgs&) {
  return absl::UnavailableError("mnemo was built without CUDA (MNEMO_CUDA=OFF)");
}

}  // namespace mnemo::kernels
