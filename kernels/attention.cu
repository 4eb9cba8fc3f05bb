// Partial attention (output, log-sum-exp, max per query head) and its
// log-sum-exp merge: the CUDA versions of attention/partial.cc.
#include <cuda_runtime.h>

#include <cmath>

#include "kernels/attention_launch.h"

namespace mnemo::kernels::internal {
namespace {

constexpr int kThreads = 128;  // threads per block == keys per chunk
constexpr int kWarps = kThreads / 32;
constexpr int kMaxHeadDim = 256;
constexpr int kDimsPerThread = kMaxHeadDim / kThreads;

__device__ float WarpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ float WarpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide reductions; every thread gets the result. `scratch` holds
// kWarps floats; a __syncthreads() separates consecutive uses.
__device__ float BlockMax(float v, float* scratch) {
  v = WarpMax(v);
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  float r = scratch[0];
  for (int w = 1; w < kWarps; ++w) r = fmaxf(r, scratch[w]);
  __syncthreads();
  return r;
}

__device__ float BlockSum(float v, float* scratch) {
  v = WarpSum(v);
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  float r = 0.0f;
  for (int w = 0; w < kWarps; ++w) r += scratch[w];
  __syncthreads();
  return r;
}

// Grid (n_queries, n_heads). Online softmax over chunks of kThreads keys:
// thread j scores key c + j, then every thread accumulates its own output
// dimensions over the chunk's probabilities.
__global__ void PartialAttentionKernel(PartialAttentionParams p) {
  const int qi = blockIdx.x, h = blockIdx.y, tid = threadIdx.x;
  const int hd = p.head_dim;
  const int g = h / (p.n_heads / p.n_kv_heads);
  const float* k_head = p.keys + static_cast<int64_t>(g) * p.head_stride * hd;
  const float* v_head = p.values + static_cast<int64_t>(g) * p.head_stride * hd;
  const int32_t qpos = p.query_first_position + qi;

  __shared__ float q[kMaxHeadDim];
  __shared__ float prob[kThreads];
  __shared__ float scratch[kWarps];
  const float* qrow = p.queries + (static_cast<int64_t>(qi) * p.n_heads + h) * hd;
  for (int d = tid; d < hd; d += kThreads) q[d] = qrow[d];
  __syncthreads();

  // Running state, identical in every thread:
  float m = -INFINITY;  // running max of the scores seen
  float l = 0.0f;       // running sum of exp(score - m)
  float acc[kDimsPerThread];  // running sum of exp(score - m) * v, dims tid + i*kThreads
  for (int i = 0; i < kDimsPerThread; ++i) acc[i] = 0.0f;

  for (int c = 0; c < p.n_keys; c += kThreads) {
    const int j = c + tid;
    float s = -INFINITY;
    if (j < p.n_keys) {
      const int32_t kpos = p.key_positions != nullptr ? p.key_positions[j]
                                                       : p.key_first_position + j;
      if (!p.causal || kpos <= qpos) {
        const float* krow = k_head + static_cast<int64_t>(j) * hd;
        float dot = 0.0f;
        for (int d = 0; d < hd; ++d) dot = fmaf(q[d], krow[d], dot);
        s = dot * p.scale;
      }
    }
    const float m_new = fmaxf(m, BlockMax(s, scratch));
    if (m_new == -INFINITY) continue;  // everything so far masked (uniform branch)
    const float e = s == -INFINITY ? 0.0f : __expf(s - m_new);
    prob[tid] = e;
    const float chunk_sum = BlockSum(e, scratch);  // also orders prob[] writes
    const float rescale = m == -INFINITY ? 0.0f : __expf(m - m_new);
    l = l * rescale + chunk_sum;
    const int n = min(kThreads, p.n_keys - c);
    for (int i = 0; i < kDimsPerThread; ++i) {
      const int d = tid + i * kThreads;
      if (d >= hd) break;
      float a = acc[i] * rescale;
      for (int jj = 0; jj < n; ++jj) a = fmaf(prob[jj], v_head[static_cast<int64_t>(c + jj) * hd + d], a);
      acc[i] = a;
    }
    m = m_new;
    __syncthreads();  // prob[] is rewritten by the next chunk
  }
  const int64_t row = static_cast<int64_t>(qi) * p.n_heads + h;
  float* orow = p.out + row * hd;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (int i = 0; i < kDimsPerThread; ++i) {
    const int d = tid + i * kThreads;
    if (d < hd) orow[d] = acc[i] * inv;
  }
  if (tid == 0) {
    if (p.lse != nullptr) p.lse[row] = l > 0.0f ? m + logf(l) : -INFINITY;
    if (p.max != nullptr) p.max[row] = m;
  }
}

// One block per row; threads over head_dim.
__global__ void MergePartialKernel(int head_dim, float* a_out, float* a_lse, float* a_max,
                                   const float* b_out, const float* b_lse, const float* b_max) {
  const int64_t r = blockIdx.x;
  const float la = a_lse[r], lb = b_lse[r];
  float* oa = a_out + r * head_dim;
  const float* ob = b_out + r * head_dim;
  __syncthreads();
  if (lb != -INFINITY) {
    if (la == -INFINITY) {
      for (int d = threadIdx.x; d < head_dim; d += blockDim.x) oa[d] = ob[d];
    } else {
      const float m = fmaxf(la, lb);
      const float wa = expf(la - m), wb = expf(lb - m);
      const float inv = 1.0f / (wa + wb);
      for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        oa[d] = (wa * oa[d] + wb * ob[d]) * inv;
      }
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    if (lb != -INFINITY) {
      const float m = fmaxf(la, lb);
      a_lse[r] = la == -INFINITY ? lb : m + logf(expf(la - m) + expf(lb - m));
    }
    a_max[r] = fmaxf(a_max[r], b_max[r]);
  }
}

}  // namespace

cudaError_t LaunchPartialAttention(const PartialAttentionParams& p, cudaStream_t stream) {
  if (p.n_queries == 0) return cudaSuccess;
  if (p.head_dim > kMaxHeadDim) return cudaErrorInvalidValue;
  const dim3 grid(p.n_queries, p.n_heads);
  PartialAttentionKernel<<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t LaunchMergePartial(int rows, int head_dim, float* a_out, float* a_lse, float* a_max,
                               const float* b_out, const float* b_lse, const float* b_max,
                               cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  MergePartialKernel<<<rows, 64, 0, stream>>>(head_dim, a_out, a_lse, a_max, b_out, b_lse, b_max);
  return cudaGetLastError();
}

}  // namespace mnemo::kernels::internal
