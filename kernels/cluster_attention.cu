// Cluster attention kernels: centroid scores (with a stable descending
// sort for the top n) and attention of one query group over gathered exact
// keys and estimated clusters, split over the terms and merged by
// log-sum-exp (flash-decoding style: one group's few heads cannot fill the
// device otherwise). The CUDA versions of attention/cluster_attention.cc's
// RankClusters and AttendRanked.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include <cub/device/device_radix_sort.cuh>

#include "kernels/cluster_attention_launch.h"

namespace mnemo::kernels::internal {
namespace {

constexpr int kScoreWarps = 8;  // clusters per block of the scoring kernel

constexpr int kThreads = kGatheredBlockTerms;  // terms per chunk == threads per block
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

// Block-wide max of two values at once; every thread gets both results.
// `scratch` holds 2 * kWarps floats.
__device__ void BlockMax2(float* a, float* b, float* scratch) {
  const float wa = WarpMax(*a), wb = WarpMax(*b);
  if ((threadIdx.x & 31) == 0) {
    scratch[threadIdx.x >> 5] = wa;
    scratch[kWarps + (threadIdx.x >> 5)] = wb;
  }
  __syncthreads();
  float ra = scratch[0], rb = scratch[kWarps];
  for (int w = 1; w < kWarps; ++w) {
    ra = fmaxf(ra, scratch[w]);
    rb = fmaxf(rb, scratch[kWarps + w]);
  }
  __syncthreads();
  *a = ra;
  *b = rb;
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

// Grid ceil(total / kScoreWarps); one warp per cluster.
__global__ void __launch_bounds__(kScoreWarps * 32) CentroidScoresKernel(CentroidScoresParams p) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int c = blockIdx.x * kScoreWarps + warp;
  if (c >= p.total) return;  // the whole warp
  // The chunk k with offsets[k] <= c < offsets[k + 1]; empty chunks
  // (equal offsets) are stepped over. Invariant offsets[lo] <= c < offsets[hi].
  int lo = 0, hi = p.n_chunks;
  while (hi - lo > 1) {
    const int mid = (lo + hi) >> 1;
    if (p.chunk_offsets[mid] <= c) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  const float* q = p.query_sums + static_cast<int64_t>(lo) * p.head_dim;
  const float* x = p.centroids + static_cast<int64_t>(c) * p.head_dim;
  float acc = 0.0f;
  for (int i = lane; i < p.head_dim; i += 32) acc = fmaf(q[i], x[i], acc);
  acc = WarpSum(acc);
  if (lane == 0) p.scores[c] = acc;
}

__global__ void IotaKernel(int32_t* ids, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) ids[i] = i;
}

// Grid (n_splits, group). Online softmax over chunks of kThreads terms of
// the block's split: thread j scores term c + j (an exact key, or an
// estimated cluster's centroid), then every thread accumulates its own
// output dimensions over the chunk's weights. A term's log weight is s for
// a key and s + log n for a cluster of n > 0 keys (-inf for n = 0); its
// numerator weight is exp(s - m), its denominator weight exp(s - m) for a
// key and n * exp(s - m) for a cluster.
__global__ void __launch_bounds__(kThreads) GatheredSplitKernel(GatheredClusterParams p) {
  const int split = blockIdx.x, g = blockIdx.y, tid = threadIdx.x;
  const int hd = p.head_dim;
  const int n_terms = p.n_keys + p.n_estimated;
  const int begin = split * p.split_len;
  const int end = min(n_terms, begin + p.split_len);

  __shared__ __align__(16) float q[kMaxHeadDim];
  __shared__ float weight[kThreads];
  __shared__ float scratch[2 * kWarps];
  const float* qrow = p.queries + static_cast<int64_t>(g) * hd;
  for (int d = tid; d < hd; d += kThreads) q[d] = qrow[d];
  __syncthreads();

  // Running state, identical in every thread.
  float m = -INFINITY;    // stabiliser: largest log weight so far
  float top = -INFINITY;  // largest score so far
  float l = 0.0f;         // sum of denominator weights, relative to m
  float acc[kDimsPerThread];  // sum of numerator weight * value, dims tid + i * kThreads
  for (int i = 0; i < kDimsPerThread; ++i) acc[i] = 0.0f;

  for (int c = begin; c < end; c += kThreads) {
    const int j = c + tid;
    float s = -INFINITY, lw = -INFINITY;
    float n = 1.0f;  // keys a term stands for
    if (j < end) {
      const bool exact = j < p.n_keys;
      const float* krow = exact ? p.keys + static_cast<int64_t>(j) * hd
                                : p.centroids + static_cast<int64_t>(j - p.n_keys) * hd;
      float dot = 0.0f;
      if ((hd & 3) == 0) {  // rows are 16-byte aligned (cudaMalloc, hd % 4 == 0)
        const float4* k4 = reinterpret_cast<const float4*>(krow);
        const float4* q4 = reinterpret_cast<const float4*>(q);
        for (int i = 0; i < (hd >> 2); ++i) {
          const float4 a = k4[i], b = q4[i];
          dot = fmaf(a.x, b.x, dot);
          dot = fmaf(a.y, b.y, dot);
          dot = fmaf(a.z, b.z, dot);
          dot = fmaf(a.w, b.w, dot);
        }
      } else {
        for (int d = 0; d < hd; ++d) dot = fmaf(q[d], krow[d], dot);
      }
      s = dot * p.scale;
      if (exact) {
        lw = s;
      } else {
        const int32_t size = p.sizes[j - p.n_keys];
        n = static_cast<float>(size);
        if (size > 0) lw = s + logf(n);
      }
    }
    float chunk_top = s, chunk_m = lw;
    BlockMax2(&chunk_top, &chunk_m, scratch);
    top = fmaxf(top, chunk_top);
    const float m_new = fmaxf(m, chunk_m);
    if (m_new == -INFINITY) continue;  // no weight so far (uniform branch)
    const float w = lw == -INFINITY ? 0.0f : expf(s - m_new);
    weight[tid] = w;
    const float chunk_l = BlockSum(w * n, scratch);  // also orders weight[] writes
    const float rescale = m == -INFINITY ? 0.0f : expf(m - m_new);
    l = l * rescale + chunk_l;
    const int count = min(kThreads, end - c);
    for (int i = 0; i < kDimsPerThread; ++i) {
      const int d = tid + i * kThreads;
      if (d >= hd) break;
      float a = acc[i] * rescale;
      for (int jj = 0; jj < count; ++jj) {
        const int t = c + jj;
        const float* vrow = t < p.n_keys ? p.values + static_cast<int64_t>(t) * hd
                                         : p.value_sums + static_cast<int64_t>(t - p.n_keys) * hd;
        a = fmaf(weight[jj], vrow[d], a);
      }
      acc[i] = a;
    }
    m = m_new;
    __syncthreads();  // weight[] is rewritten by the next chunk
  }
  const int64_t row = static_cast<int64_t>(g) * p.n_splits + split;
  float* arow = p.part_acc + row * hd;
  for (int i = 0; i < kDimsPerThread; ++i) {
    const int d = tid + i * kThreads;
    if (d < hd) arow[d] = acc[i];
  }
  if (tid == 0) {
    p.part_m[row] = m;
    p.part_top[row] = top;
    p.part_l[row] = l;
  }
}

// One block per query head; threads over head_dim. Merges the head's
// n_splits partial states by rescaling them to the common stabiliser.
__global__ void GatheredMergeKernel(GatheredClusterParams p) {
  const int g = blockIdx.x;
  const int hd = p.head_dim;
  const int64_t row0 = static_cast<int64_t>(g) * p.n_splits;
  float m = -INFINITY, top = -INFINITY;
  for (int s = 0; s < p.n_splits; ++s) {
    m = fmaxf(m, p.part_m[row0 + s]);
    top = fmaxf(top, p.part_top[row0 + s]);
  }
  float* orow = p.out + static_cast<int64_t>(g) * hd;
  if (m == -INFINITY) {  // nothing with weight: out 0, lse and max -inf
    for (int d = threadIdx.x; d < hd; d += blockDim.x) orow[d] = 0.0f;
    if (threadIdx.x == 0) {
      p.lse[g] = -INFINITY;
      p.max[g] = -INFINITY;
    }
    return;
  }
  float l = 0.0f;
  for (int s = 0; s < p.n_splits; ++s) {
    const float ms = p.part_m[row0 + s];
    if (ms != -INFINITY) l += p.part_l[row0 + s] * expf(ms - m);
  }
  const float inv = 1.0f / l;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.0f;
    for (int s = 0; s < p.n_splits; ++s) {
      const float ms = p.part_m[row0 + s];
      if (ms != -INFINITY) o = fmaf(p.part_acc[(row0 + s) * hd + d], expf(ms - m), o);
    }
    orow[d] = o * inv;
  }
  if (threadIdx.x == 0) {
    p.lse[g] = m + logf(l);
    p.max[g] = top;
  }
}

}  // namespace

cudaError_t LaunchCentroidScores(const CentroidScoresParams& p, cudaStream_t stream) {
  if (p.total == 0) return cudaSuccess;
  const int blocks = (p.total + kScoreWarps - 1) / kScoreWarps;
  CentroidScoresKernel<<<blocks, kScoreWarps * 32, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t LaunchIota(int32_t* ids, int n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  IotaKernel<<<(n + 255) / 256, 256, 0, stream>>>(ids, n);
  return cudaGetLastError();
}

cudaError_t SortScoresDescending(void* temp, size_t* temp_bytes, const float* scores,
                                 float* sorted_scores, const int32_t* ids_in, int32_t* sorted_ids,
                                 int n, cudaStream_t stream) {
  return cub::DeviceRadixSort::SortPairsDescending(temp, *temp_bytes, scores, sorted_scores,
                                                   ids_in, sorted_ids, n, 0,
                                                   static_cast<int>(sizeof(float) * 8), stream);
}

cudaError_t LaunchGatheredClusterAttention(const GatheredClusterParams& p, cudaStream_t stream) {
  if (p.group == 0) return cudaSuccess;
  if (p.head_dim > kMaxHeadDim || p.n_splits < 1 || p.split_len % kThreads != 0) {
    return cudaErrorInvalidValue;
  }
  const dim3 grid(p.n_splits, p.group);
  GatheredSplitKernel<<<grid, kThreads, 0, stream>>>(p);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  GatheredMergeKernel<<<p.group, 128, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace mnemo::kernels::internal
