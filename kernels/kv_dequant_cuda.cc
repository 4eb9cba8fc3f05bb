// Host side of the CUDA KV dequantization: checks, buffers, copies.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "kernels/cuda_util.h"
#include "kernels/exact_topk.h"
#include "kernels/kv_dequant.h"
#include "kernels/kv_dequant_launch.h"

namespace mnemo::kernels {
namespace {

uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// The payload layout of attention/kv_quant.h, from the arguments.
struct Layout {
  uint64_t elements = 0;
  uint64_t groups_per_line = 0;
  uint64_t code_bytes = 0;   // padded to 4
  uint64_t param_bytes = 0;  // of the scales, and of the mins
};

Layout LayoutOf(const KvDequantArgs& a) {
  Layout l;
  l.elements = uint64_t{a.heads} * a.tokens * a.head_dim;
  const bool per_token = a.grouping == KvDequantGrouping::kPerToken;
  const uint64_t lines = per_token ? uint64_t{a.heads} * a.tokens : uint64_t{a.heads} * a.head_dim;
  l.groups_per_line = CeilDiv(per_token ? a.head_dim : a.tokens, a.group_size);
  l.code_bytes = CeilDiv(a.bits == 8 ? l.elements : CeilDiv(l.elements, 2), 4) * 4;
  l.param_bytes = lines * l.groups_per_line * (a.fp32_params ? 4 : 2);
  return l;
}

}  // namespace

absl::Status DequantizeKvGpu(const KvDequantArgs& a) {
  if (a.bits != 4 && a.bits != 8) {
    return absl::InvalidArgumentError(absl::StrCat("bits must be 4 or 8, got ", a.bits));
  }
  if (a.grouping != KvDequantGrouping::kPerToken && a.grouping != KvDequantGrouping::kPerChannel) {
    return absl::InvalidArgumentError("unknown grouping");
  }
  if (a.heads == 0 || a.tokens == 0 || a.head_dim == 0 || a.group_size == 0) {
    return absl::InvalidArgumentError("dimensions and group_size must be >= 1");
  }
  // Bounded factor by factor, so that the element count cannot wrap.
  const uint64_t rows = uint64_t{a.heads} * a.tokens;
  if (rows > kMaxKvDequantElements || rows * a.head_dim > kMaxKvDequantElements) {
    return absl::InvalidArgumentError(absl::StrCat("tensor [", a.heads, ", ", a.tokens, ", ",
                                                   a.head_dim, "] exceeds ", kMaxKvDequantElements,
                                                   " elements"));
  }
  const Layout l = LayoutOf(a);
  const uint64_t expected = l.code_bytes + 2 * l.param_bytes;
  if (a.payload_bytes != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload has ", a.payload_bytes, " bytes, the layout needs ", expected));
  }
  if (a.payload == nullptr || (a.out == nullptr && a.out_fp16 == nullptr)) {
    return absl::InvalidArgumentError("null payload or no output");
  }
  if (absl::Status s = CudaDeviceAvailable(); !s.ok()) return s;
  MNEMO_CUDA_OK(cudaSetDevice(0));
  internal::CudaStream stream;
  MNEMO_CUDA_OK(stream.Create());
  internal::DeviceArray<uint8_t> payload;
  internal::DeviceArray<float> out;
  internal::DeviceArray<uint16_t> out16;
  MNEMO_CUDA_OK(payload.Allocate(expected));
  MNEMO_CUDA_OK(payload.CopyFrom(a.payload, expected, stream.get()));
  if (a.out != nullptr) MNEMO_CUDA_OK(out.Allocate(l.elements));
  if (a.out_fp16 != nullptr) MNEMO_CUDA_OK(out16.Allocate(l.elements));

  internal::KvDequantParams p;
  p.bits = a.bits;
  p.per_channel = a.grouping == KvDequantGrouping::kPerChannel;
  p.fp32_params = a.fp32_params;
  p.heads = a.heads;
  p.tokens = a.tokens;
  p.head_dim = a.head_dim;
  p.group_size = a.group_size;
  p.groups_per_line = static_cast<uint32_t>(l.groups_per_line);
  p.elements = static_cast<uint32_t>(l.elements);
  // cudaMalloc returns 256-byte aligned memory and code_bytes is a multiple
  // of 4, so the word and parameter loads are aligned.
  p.codes = reinterpret_cast<const uint32_t*>(payload.get());
  p.scales = payload.get() + l.code_bytes;
  p.mins = payload.get() + l.code_bytes + l.param_bytes;
  p.out = a.out != nullptr ? out.get() : nullptr;
  p.out_fp16 = a.out_fp16 != nullptr ? out16.get() : nullptr;
  MNEMO_CUDA_OK(internal::LaunchKvDequant(p, stream.get()));
  if (a.out != nullptr) MNEMO_CUDA_OK(out.CopyTo(a.out, l.elements, stream.get()));
  if (a.out_fp16 != nullptr) MNEMO_CUDA_OK(out16.CopyTo(a.out_fp16, l.elements, stream.get()));
  MNEMO_CUDA_OK(cudaStreamSynchronize(stream.get()));
  return absl::OkStatus();
}

}  // namespace mnemo::kernels
