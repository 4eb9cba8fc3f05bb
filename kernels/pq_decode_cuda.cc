// Host side of the CUDA PQ decoding: checks, resident codebooks, copies.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda_util.h"
#include "kernels/exact_topk.h"
#include "kernels/pq_decode.h"
#include "kernels/pq_decode_launch.h"

namespace mnemo::kernels {
namespace {

absl::Status CheckShape(int dim, int m, int nbits) {
  if (dim < 1 || m < 1 || dim % m != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PQ dim ", dim, " and m ", m, ": both >= 1 and m must divide dim"));
  }
  if (nbits < 1 || nbits > 16) {
    return absl::InvalidArgumentError(absl::StrCat("PQ nbits must be in [1, 16], got ", nbits));
  }
  return absl::OkStatus();
}

}  // namespace

struct PqDecoderGpu::Impl {
  int dim = 0, m = 0, nbits = 0;
  size_t code_size = 0;
  internal::DeviceArray<float> centroids;
};

PqDecoderGpu::PqDecoderGpu(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PqDecoderGpu::~PqDecoderGpu() = default;

int PqDecoderGpu::dim() const { return impl_->dim; }
size_t PqDecoderGpu::code_size() const { return impl_->code_size; }

absl::StatusOr<std::unique_ptr<PqDecoderGpu>> PqDecoderGpu::Create(int dim, int m, int nbits,
                                                                   const float* centroids) {
  if (absl::Status s = CheckShape(dim, m, nbits); !s.ok()) return s;
  if (centroids == nullptr) return absl::InvalidArgumentError("null PQ centroid table");
  if (absl::Status s = CudaDeviceAvailable(); !s.ok()) return s;
  MNEMO_CUDA_OK(cudaSetDevice(0));
  auto impl = std::make_unique<Impl>();
  impl->dim = dim;
  impl->m = m;
  impl->nbits = nbits;
  impl->code_size = (static_cast<size_t>(m) * nbits + 7) / 8;
  const size_t floats = static_cast<size_t>(dim) << nbits;
  internal::CudaStream stream;
  MNEMO_CUDA_OK(stream.Create());
  MNEMO_CUDA_OK(impl->centroids.Allocate(floats));
  MNEMO_CUDA_OK(impl->centroids.CopyFrom(centroids, floats, stream.get()));
  MNEMO_CUDA_OK(cudaStreamSynchronize(stream.get()));
  return std::unique_ptr<PqDecoderGpu>(new PqDecoderGpu(std::move(impl)));
}

absl::Status PqDecoderGpu::Decode(const uint8_t* codes, size_t n, void* device_out,
                                  size_t row_stride, PqOutput type, void* stream) const {
  const Impl& d = *impl_;
  if (n == 0) return absl::OkStatus();
  if (codes == nullptr || device_out == nullptr) {
    return absl::InvalidArgumentError("null PQ codes or output buffer");
  }
  if (row_stride < static_cast<size_t>(d.dim)) {
    return absl::InvalidArgumentError(
        absl::StrCat("row stride ", row_stride, " is below the dimension ", d.dim));
  }
  if (n >= (size_t{1} << 31) / row_stride) {
    return absl::InvalidArgumentError(absl::StrCat(n, " rows of ", row_stride,
                                                   " values exceed 2^31 output values"));
  }
  MNEMO_CUDA_OK(cudaSetDevice(0));
  internal::CudaStream own;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (s == nullptr) {
    MNEMO_CUDA_OK(own.Create());
    s = own.get();
  }
  const size_t bytes = n * d.code_size;
  internal::DeviceArray<uint8_t> device_codes;
  MNEMO_CUDA_OK(device_codes.Allocate(bytes));
  MNEMO_CUDA_OK(device_codes.CopyFrom(codes, bytes, s));
  internal::PqDecodeParams p;
  p.n = static_cast<uint32_t>(n);
  p.dim = static_cast<uint32_t>(d.dim);
  p.dsub = static_cast<uint32_t>(d.dim / d.m);
  p.code_size = static_cast<uint32_t>(d.code_size);
  p.row_stride = static_cast<uint32_t>(row_stride);
  p.nbits = d.nbits;
  p.centroids = d.centroids.get();
  p.codes = device_codes.get();
  if (type == PqOutput::kF32) {
    p.out_f32 = static_cast<float*>(device_out);
  } else {
    p.out_f16 = static_cast<uint16_t*>(device_out);
  }
  MNEMO_CUDA_OK(internal::LaunchPqDecode(p, s));
  // The staged codes are freed on return: wait for the kernel.
  MNEMO_CUDA_OK(cudaStreamSynchronize(s));
  return absl::OkStatus();
}

absl::Status PqDecodeGpu(const PqDecodeArgs& a) {
  if (absl::Status s = CheckShape(a.dim, a.m, a.nbits); !s.ok()) return s;
  if ((a.out_f32 == nullptr) == (a.out_f16 == nullptr)) {
    return absl::InvalidArgumentError("exactly one of out_f32 and out_f16 must be set");
  }
  const size_t stride = a.row_stride == 0 ? static_cast<size_t>(a.dim) : a.row_stride;
  if (stride < static_cast<size_t>(a.dim)) {
    return absl::InvalidArgumentError(
        absl::StrCat("row stride ", stride, " is below the dimension ", a.dim));
  }
  if (a.n == 0) return absl::OkStatus();
  if (a.codes == nullptr || a.centroids == nullptr) {
    return absl::InvalidArgumentError("null PQ codes or centroid table");
  }
  absl::StatusOr<std::unique_ptr<PqDecoderGpu>> decoder =
      PqDecoderGpu::Create(a.dim, a.m, a.nbits, a.centroids);
  if (!decoder.ok()) return decoder.status();
  // The output's last row ends at dim, not at a full stride.
  const size_t values = (a.n - 1) * stride + a.dim;
  const bool f32 = a.out_f32 != nullptr;
  internal::CudaStream stream;
  MNEMO_CUDA_OK(stream.Create());
  internal::DeviceArray<float> out32;
  internal::DeviceArray<uint16_t> out16;
  // Rows are copied back whole, so the gaps between them keep the caller's
  // values: upload them first.
  if (f32) {
    MNEMO_CUDA_OK(out32.Allocate(values));
    MNEMO_CUDA_OK(out32.CopyFrom(a.out_f32, values, stream.get()));
  } else {
    MNEMO_CUDA_OK(out16.Allocate(values));
    MNEMO_CUDA_OK(out16.CopyFrom(a.out_f16, values, stream.get()));
  }
  void* device_out = f32 ? static_cast<void*>(out32.get()) : static_cast<void*>(out16.get());
  if (absl::Status s = (*decoder)->Decode(a.codes, a.n, device_out, stride,
                                          f32 ? PqOutput::kF32 : PqOutput::kF16, stream.get());
      !s.ok()) {
    return s;
  }
  if (f32) {
    MNEMO_CUDA_OK(out32.CopyTo(a.out_f32, values, stream.get()));
  } else {
    MNEMO_CUDA_OK(out16.CopyTo(a.out_f16, values, stream.get()));
  }
  MNEMO_CUDA_OK(cudaStreamSynchronize(stream.get()));
  return absl::OkStatus();
}

}  // namespace mnemo::kernels
