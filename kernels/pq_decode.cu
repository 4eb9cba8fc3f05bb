// PQ decoding kernel (layout of kernels/pq_decode.h). One thread per output
// value of [n, dim] (coalesced stores): it finds its row, sub-vector j and
// offset in the sub-vector, reads index j of the row's code (nbits,
// LSB-first; at most three bytes, none past the code) and copies the
// centroid value, converted to fp16 with __float2half_rn when asked.
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "kernels/pq_decode_launch.h"

namespace mnemo::kernels::internal {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 4096;

__global__ void __launch_bounds__(kThreads) PqDecodeKernel(PqDecodeParams p) {
  const uint32_t total = p.n * p.dim;
  const uint32_t ksub = 1u << p.nbits;
  const uint32_t mask = ksub - 1;
  for (uint32_t e = blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += gridDim.x * blockDim.x) {
    const uint32_t row = e / p.dim;
    const uint32_t c = e % p.dim;
    const uint32_t j = c / p.dsub;
    const uint32_t k = c % p.dsub;
    const uint8_t* code = p.codes + static_cast<size_t>(row) * p.code_size;
    uint32_t index;
    if (p.nbits == 8) {
      index = code[j];
    } else {
      const uint32_t bit = j * static_cast<uint32_t>(p.nbits);
      const uint32_t first = bit >> 3;
      const uint32_t last = (bit + p.nbits - 1) >> 3;  // < code_size
      uint32_t word = 0;
      for (uint32_t b = first; b <= last; ++b) word |= static_cast<uint32_t>(code[b]) << (8 * (b - first));
      index = (word >> (bit & 7)) & mask;
    }
    const float v = p.centroids[(static_cast<size_t>(j) * ksub + index) * p.dsub + k];
    const size_t out = static_cast<size_t>(row) * p.row_stride + c;
    if (p.out_f32 != nullptr) {
      p.out_f32[out] = v;
    } else {
      p.out_f16[out] = __half_as_ushort(__float2half_rn(v));
    }
  }
}

}  // namespace

cudaError_t LaunchPqDecode(const PqDecodeParams& p, cudaStream_t stream) {
  const uint32_t total = p.n * p.dim;
  if (total == 0) return cudaSuccess;
  const int blocks = static_cast<int>(
      std::min<uint32_t>((total + kThreads - 1) / kThreads, static_cast<uint32_t>(kMaxBlocks)));
  PqDecodeKernel<<<blocks, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace mnemo::kernels::internal
