// Host side of the CUDA kvq dequantization: checks, buffers, copies.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "kernels/cuda_util.h"
#include "kernels/exact_topk.h"
#include "kernels/kvq_dequant.h"
#include "kernels/kvq_dequant_launch.h"

namespace mnemo::kernels {

absl::Status DequantizeKvqGpu(const KvqDequantArgs& a) {
  if (a.bits < 1 || a.bits > 8) {
    return absl::InvalidArgumentError(absl::StrCat("bits must be in [1, 8], got ", a.bits));
  }
  if (a.heads == 0 || a.tokens == 0 || a.head_dim == 0 || a.sink_tokens > a.tokens) {
    return absl::InvalidArgumentError("dimensions must be >= 1 and sink_tokens <= tokens");
  }
  const uint64_t rows = uint64_t{a.heads} * a.tokens;
  if (rows > (uint64_t{1} << 28) || rows * a.head_dim > (uint64_t{1} << 28)) {
    return absl::InvalidArgumentError("tensor exceeds 2^28 elements");
  }
  const uint64_t elements = rows * a.head_dim;
  const uint64_t dense_tokens = a.tokens - a.sink_tokens;
  const uint64_t dense = uint64_t{a.heads} * dense_tokens * a.head_dim;
  const uint64_t lines = a.keys ? uint64_t{a.heads} * a.head_dim : uint64_t{a.heads} * dense_tokens;
  const uint64_t n_sinks = uint64_t{a.heads} * a.sink_tokens * a.head_dim;
  const uint64_t n_levels = uint64_t{1} << a.bits;
  if (a.packed_bytes < (dense * a.bits + 7) / 8 + 1) {
    return absl::InvalidArgumentError(absl::StrCat("packed codes have ", a.packed_bytes,
                                                   " bytes, ", dense, " codes need more"));
  }
  if (a.out == nullptr || a.packed_codes == nullptr || a.levels == nullptr ||
      (lines > 0 && a.scales == nullptr) || (a.keys && lines > 0 && a.offsets == nullptr) ||
      (n_sinks > 0 && a.sinks == nullptr) ||
      (a.outliers > 0 && (a.outlier_index == nullptr || a.outlier_value == nullptr))) {
    return absl::InvalidArgumentError("a null buffer");
  }
  if (a.outliers > dense) return absl::InvalidArgumentError("more outliers than elements");
  for (size_t i = 0; i < a.outliers; ++i) {
    if (a.outlier_index[i] >= elements) {
      return absl::InvalidArgumentError(absl::StrCat("outlier index ", a.outlier_index[i],
                                                     " beyond ", elements, " elements"));
    }
  }
  if (absl::Status s = CudaDeviceAvailable(); !s.ok()) return s;
  MNEMO_CUDA_OK(cudaSetDevice(0));
  internal::CudaStream stream;
  MNEMO_CUDA_OK(stream.Create());
  internal::DeviceArray<uint8_t> codes;
  internal::DeviceArray<uint16_t> levels, scales, offsets, sinks, values;
  internal::DeviceArray<uint32_t> index;
  internal::DeviceArray<float> out;
  MNEMO_CUDA_OK(codes.Allocate(a.packed_bytes));
  MNEMO_CUDA_OK(codes.CopyFrom(a.packed_codes, a.packed_bytes, stream.get()));
  MNEMO_CUDA_OK(levels.Allocate(n_levels));
  MNEMO_CUDA_OK(levels.CopyFrom(a.levels, n_levels, stream.get()));
  if (lines > 0) {
    MNEMO_CUDA_OK(scales.Allocate(lines));
    MNEMO_CUDA_OK(scales.CopyFrom(a.scales, lines, stream.get()));
    if (a.keys) {
      MNEMO_CUDA_OK(offsets.Allocate(lines));
      MNEMO_CUDA_OK(offsets.CopyFrom(a.offsets, lines, stream.get()));
    }
  }
  if (n_sinks > 0) {
    MNEMO_CUDA_OK(sinks.Allocate(n_sinks));
    MNEMO_CUDA_OK(sinks.CopyFrom(a.sinks, n_sinks, stream.get()));
  }
  if (a.outliers > 0) {
    MNEMO_CUDA_OK(index.Allocate(a.outliers));
    MNEMO_CUDA_OK(index.CopyFrom(a.outlier_index, a.outliers, stream.get()));
    MNEMO_CUDA_OK(values.Allocate(a.outliers));
    MNEMO_CUDA_OK(values.CopyFrom(a.outlier_value, a.outliers, stream.get()));
  }
  MNEMO_CUDA_OK(out.Allocate(elements));

  internal::KvqDequantParams p;
  p.heads = a.heads;
  p.tokens = a.tokens;
  p.head_dim = a.head_dim;
  p.sink_tokens = a.sink_tokens;
  p.keys = a.keys;
  p.bits = a.bits;
  p.elements = static_cast<uint32_t>(elements);
  p.codes = codes.get();
  p.levels = levels.get();
  p.scales = scales.get();
  p.offsets = a.keys ? offsets.get() : nullptr;
  p.sinks = sinks.get();
  p.outlier_index = index.get();
  p.outlier_value = values.get();
  p.outliers = static_cast<uint32_t>(a.outliers);
  p.out = out.get();
  MNEMO_CUDA_OK(internal::LaunchKvqDequant(p, stream.get()));
  MNEMO_CUDA_OK(out.CopyTo(a.out, elements, stream.get()));
  MNEMO_CUDA_OK(cudaStreamSynchronize(stream.get()));
  return absl::OkStatus();
}

}  // namespace mnemo::kernels
