// kvq dequantization kernels (layout of kernels/kvq_dequant.h).
//
// Dense pass: one thread per element of [heads, tokens, head_dim] (so the
// float stores are coalesced); a sink token copies its fp16 value, any
// other element finds its line and code index, reads the two bytes holding
// its code, looks the level up (the 2^bits levels are staged in shared
// memory) and computes __fadd_rn(__fmul_rn(level, scale), offset), the
// CPU reference's two roundings. Scatter pass: one thread per outlier
// writes its fp16 value.
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "kernels/kvq_dequant_launch.h"

namespace mnemo::kernels::internal {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 4096;

__device__ __forceinline__ float Half(uint16_t h) { return __half2float(__ushort_as_half(h)); }

__global__ void __launch_bounds__(kThreads) KvqDenseKernel(KvqDequantParams p) {
  __shared__ float levels[256];
  const int n_levels = 1 << p.bits;
  for (int i = threadIdx.x; i < n_levels; i += blockDim.x) levels[i] = Half(p.levels[i]);
  __syncthreads();
  const uint32_t mask = (1u << p.bits) - 1;
  const uint32_t dense_tokens = p.tokens - p.sink_tokens;
  for (uint32_t e = blockIdx.x * blockDim.x + threadIdx.x; e < p.elements;
       e += gridDim.x * blockDim.x) {
    const uint32_t c = e % p.head_dim;
    const uint32_t row = e / p.head_dim;
    const uint32_t t = row % p.tokens;
    const uint32_t h = row / p.tokens;
    if (t < p.sink_tokens) {
      p.out[e] = Half(p.sinks[(h * p.sink_tokens + t) * p.head_dim + c]);
      continue;
    }
    const uint32_t tt = t - p.sink_tokens;
    uint32_t line, index;
    if (p.keys) {
      line = h * p.head_dim + c;
      index = line * dense_tokens + tt;
    } else {
      line = h * dense_tokens + tt;
      index = line * p.head_dim + c;
    }
    const uint64_t bit = static_cast<uint64_t>(index) * p.bits;
    const uint32_t word = p.codes[bit >> 3] | (static_cast<uint32_t>(p.codes[(bit >> 3) + 1]) << 8);
    const float level = levels[(word >> (bit & 7)) & mask];
    const float offset = p.offsets != nullptr ? Half(p.offsets[line]) : 0.0f;
    p.out[e] = __fadd_rn(__fmul_rn(level, Half(p.scales[line])), offset);
  }
}

__global__ void __launch_bounds__(kThreads) KvqOutlierKernel(KvqDequantParams p) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < p.outliers;
       i += gridDim.x * blockDim.x) {
    const uint32_t e = p.outlier_index[i];
    if (e < p.elements) p.out[e] = Half(p.outlier_value[i]);
  }
}

int Blocks(uint32_t n) {
  return static_cast<int>(std::min<uint32_t>(kMaxBlocks, std::max<uint32_t>(1, (n + kThreads - 1) / kThreads)));
}

}  // namespace

cudaError_t LaunchKvqDequant(const KvqDequantParams& p, cudaStream_t stream) {
  KvqDenseKernel<<<Blocks(p.elements), kThreads, 0, stream>>>(p);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  if (p.outliers > 0) {
    KvqOutlierKernel<<<Blocks(p.outliers), kThreads, 0, stream>>>(p);
    return cudaGetLastError();
  }
  return cudaSuccess;
}

}  // namespace mnemo::kernels::internal
