// KV dequantization kernel (layout of kernels/kv_dequant.h).
//
// One thread decodes one 32-bit word of codes: 4 int8 or 8 int4 elements,
// consecutive in flat [heads, tokens, head_dim] order. It finds the
// (head, token, channel) of the word's first element once and steps the
// channel (carrying into token and head) for the rest; each element reads
// its group's scale and min (neighbouring threads share groups, so these
// loads hit L1). Outputs are written with 16- or 32-byte vector stores when
// the whole word lies inside the tensor.
//
// Element = __fadd_rn(__fmul_rn(code, scale), min): no FMA contraction, the
// same two roundings as attention::DequantizeKv.
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/kv_dequant_launch.h"

namespace mnemo::kernels::internal {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 4096;  // grid-stride beyond this

__device__ __forceinline__ float LoadParam(const float* p, uint32_t g) { return p[g]; }
__device__ __forceinline__ float LoadParam(const uint16_t* p, uint32_t g) {
  return __half2float(__ushort_as_half(p[g]));
}

template <int kBits, bool kPerChannel, typename ParamT>
__global__ void __launch_bounds__(kThreads) KvDequantKernel(KvDequantParams p) {
  constexpr int kPerWord = 32 / kBits;
  constexpr uint32_t kMask = (1u << kBits) - 1;
  const auto* scales = static_cast<const ParamT*>(p.scales);
  const auto* mins = static_cast<const ParamT*>(p.mins);
  const uint32_t words = (p.elements + kPerWord - 1) / kPerWord;
  for (uint32_t w = blockIdx.x * blockDim.x + threadIdx.x; w < words; w += gridDim.x * blockDim.x) {
    const uint32_t packed = p.codes[w];
    const uint32_t e0 = w * kPerWord;
    uint32_t c = e0 % p.head_dim;
    uint32_t row = e0 / p.head_dim;  // h * tokens + t
    uint32_t t = row % p.tokens;
    uint32_t h = row / p.tokens;
    float v[kPerWord];
#pragma unroll
    for (int i = 0; i < kPerWord; ++i) {
      v[i] = 0.0f;
      if (e0 + i < p.elements) {
        const uint32_t code = (packed >> (i * kBits)) & kMask;
        const uint32_t g = kPerChannel ? (h * p.head_dim + c) * p.groups_per_line + t / p.group_size
                                       : row * p.groups_per_line + c / p.group_size;
        v[i] =
            __fadd_rn(__fmul_rn(__uint2float_rn(code), LoadParam(scales, g)), LoadParam(mins, g));
      }
      if (++c == p.head_dim) {
        c = 0;
        ++row;
        if (++t == p.tokens) {
          t = 0;
          ++h;
        }
      }
    }
    const bool whole = e0 + kPerWord <= p.elements;
    if (p.out != nullptr) {
      if (whole) {
        auto* dst = reinterpret_cast<float4*>(p.out + e0);
#pragma unroll
        for (int q = 0; q < kPerWord / 4; ++q) {
          dst[q] = make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
        }
      } else {
        for (int i = 0; i < kPerWord && e0 + i < p.elements; ++i) p.out[e0 + i] = v[i];
      }
    }
    if (p.out_fp16 != nullptr) {
      uint16_t hv[kPerWord];
#pragma unroll
      for (int i = 0; i < kPerWord; ++i) hv[i] = __half_as_ushort(__float2half_rn(v[i]));
      if (whole) {
        // 8 bytes (int8 word) or 16 bytes (int4 word) of halves.
        if constexpr (kPerWord == 4) {
          *reinterpret_cast<uint2*>(p.out_fp16 + e0) =
              make_uint2(hv[0] | (uint32_t{hv[1]} << 16), hv[2] | (uint32_t{hv[3]} << 16));
        } else {
          *reinterpret_cast<uint4*>(p.out_fp16 + e0) =
              make_uint4(hv[0] | (uint32_t{hv[1]} << 16), hv[2] | (uint32_t{hv[3]} << 16),
                         hv[4] | (uint32_t{hv[5]} << 16), hv[6] | (uint32_t{hv[7]} << 16));
        }
      } else {
        for (int i = 0; i < kPerWord && e0 + i < p.elements; ++i) p.out_fp16[e0 + i] = hv[i];
      }
    }
  }
}

// Runtime sizes to template constants (FlashInfer's DISPATCH switches).
#define MNEMO_DISPATCH_BITS(bits, kBits, ...) \
  [&]() -> cudaError_t {                      \
    if ((bits) == 8) {                        \
      constexpr int kBits = 8;                \
      return __VA_ARGS__();                   \
    }                                         \
    if ((bits) == 4) {                        \
      constexpr int kBits = 4;                \
      return __VA_ARGS__();                   \
    }                                         \
    return cudaErrorInvalidValue;             \
  }()

#define MNEMO_DISPATCH_BOOL(cond, kName, ...) \
  [&]() -> cudaError_t {                      \
    if (cond) {                               \
      constexpr bool kName = true;            \
      return __VA_ARGS__();                   \
    }                                         \
    constexpr bool kName = false;             \
    return __VA_ARGS__();                     \
  }()

}  // namespace

cudaError_t LaunchKvDequant(const KvDequantParams& p, cudaStream_t stream) {
  if (p.elements == 0) return cudaSuccess;
  if (p.head_dim == 0 || p.tokens == 0 || p.group_size == 0 || p.codes == nullptr ||
      p.scales == nullptr || p.mins == nullptr) {
    return cudaErrorInvalidValue;
  }
  const uint32_t per_word = 32 / (p.bits == 4 ? 4 : 8);
  const uint32_t words = (p.elements + per_word - 1) / per_word;
  const int blocks = static_cast<int>(
      std::min<uint32_t>((words + kThreads - 1) / kThreads, static_cast<uint32_t>(kMaxBlocks)));
  return MNEMO_DISPATCH_BITS(p.bits, kBits, [&] {
    return MNEMO_DISPATCH_BOOL(p.per_channel, kPerChannel, [&] {
      return MNEMO_DISPATCH_BOOL(p.fp32_params, kFp32, [&] {
        using ParamT = std::conditional_t<kFp32, float, uint16_t>;
        KvDequantKernel<kBits, kPerChannel, ParamT><<<blocks, kThreads, 0, stream>>>(p);
        return cudaGetLastError();
      });
    });
  });
}

}  // namespace mnemo::kernels::internal
