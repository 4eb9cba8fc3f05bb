// Exact batched top-k kernels.
//
// Pass 1 (PartialTopKKernel): grid (num_splits, nq). A block scores its
// query against one contiguous range of base rows, 256 rows per tile: the
// tile is staged through shared memory 16 dimensions at a time (coalesced
// loads; one thread then owns one row's dot product / distance). Scores
// better than the block's current k-th best go into an insertion area of a
// shared candidate list; when the area could overflow, the whole list is
// bitonic-sorted and the insertion area cleared. The block writes its
// sorted top-KP to scratch.
// Pass 2 (MergeTopKKernel): one block per query runs the same selection over
// the num_splits * KP partial candidates and writes the final k.
//
// Selection works on keys where larger is better: key = score for inner
// product and key = -distance for L2, so one code path serves both.
#include <cfloat>
#include <cstdint>

#include "kernels/exact_topk_launch.h"

namespace mnemo::kernels::internal {
namespace {

constexpr int kThreads = 256;   // rows per tile = threads per block
constexpr int kTileDim = 16;    // dimensions staged per shared-memory step

// Shared candidate list of a block. Layout of keys/idx (kCap entries):
// [0, kKeep) the best entries seen so far, sorted descending after each
// Sort(); [kKeep, kCap) the insertion area, filled through `count`.
template <int KP>
struct BlockTopK {
  static constexpr int kKeep = KP < 2 * kThreads ? 2 * kThreads : KP;
  static constexpr int kCap = 2 * kKeep;

  float keys[kCap];
  int idx[kCap];   // candidate index (block-local), -1 = empty
  int count;       // entries used in the insertion area

  __device__ void Init() {
    for (int i = threadIdx.x; i < kCap; i += blockDim.x) {
      keys[i] = -INFINITY;
      idx[i] = -1;
    }
    if (threadIdx.x == 0) count = 0;
    __syncthreads();
  }

  // Bitonic sort of all kCap entries, descending by key; then clears the
  // insertion area. Called by every thread of the block.
  __device__ void Sort() {
    for (int size = 2; size <= kCap; size <<= 1) {
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        for (int i = threadIdx.x; i < kCap; i += blockDim.x) {
          const int j = i ^ stride;
          if (j > i) {
            const bool descending = (i & size) == 0;
            const bool out_of_order =
                descending ? keys[i] < keys[j] : keys[i] > keys[j];
            if (out_of_order) {
              const float tk = keys[i];
              keys[i] = keys[j];
              keys[j] = tk;
              const int ti = idx[i];
              idx[i] = idx[j];
              idx[j] = ti;
            }
          }
        }
        __syncthreads();
      }
    }
    for (int i = kKeep + threadIdx.x; i < kCap; i += blockDim.x) {
      keys[i] = -INFINITY;
      idx[i] = -1;
    }
    if (threadIdx.x == 0) count = 0;
    __syncthreads();
  }

  // Every thread offers at most one candidate. `k` is the number of results
  // wanted: a key not better than the current k-th best cannot make it.
  __device__ void Offer(bool valid, float key, int index, int k) {
    const float threshold = keys[k - 1];
    if (valid && key > threshold) {
      const int slot = atomicAdd(&count, 1);
      keys[kKeep + slot] = key;
      idx[kKeep + slot] = index;
    }
    __syncthreads();
    // Uniform across the block: count is read after the barrier.
    if (count > kKeep - kThreads) Sort();
    // Nobody may insert again before every thread has read `count`.
    __syncthreads();
  }

  __device__ void Finish() {
    if (count > 0) Sort();
  }
};

template <int KP>
__global__ void __launch_bounds__(kThreads)
    PartialTopKKernel(ExactTopKParams p) {
  __shared__ BlockTopK<KP> top;
  __shared__ float tile[kThreads][kTileDim + 1];  // +1: no bank conflicts
  __shared__ float q_tile[kTileDim];

  const int64_t q = blockIdx.y;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * p.split_len;
  const int64_t end = min(p.nb, begin + p.split_len);
  const float* query = p.queries + q * p.dim;

  top.Init();
  for (int64_t row0 = begin; row0 < end; row0 += kThreads) {
    const int64_t left = end - row0;
    const int rows = left < kThreads ? static_cast<int>(left) : kThreads;
    float acc = 0.f;
    for (int d0 = 0; d0 < p.dim; d0 += kTileDim) {
      const int dims = min(kTileDim, p.dim - d0);
      // Cooperative load: consecutive threads read consecutive dimensions
      // of one row.
      for (int e = threadIdx.x; e < kThreads * kTileDim; e += kThreads) {
        const int r = e / kTileDim;
        const int c = e % kTileDim;
        tile[r][c] = (r < rows && c < dims)
                         ? p.base[(row0 + r) * p.dim + d0 + c]
                         : 0.f;
      }
      if (threadIdx.x < kTileDim) {
        q_tile[threadIdx.x] =
            threadIdx.x < dims ? query[d0 + threadIdx.x] : 0.f;
      }
      __syncthreads();
      if (p.l2) {
#pragma unroll
        for (int c = 0; c < kTileDim; ++c) {
          const float diff = q_tile[c] - tile[threadIdx.x][c];
          acc = fmaf(diff, diff, acc);
        }
      } else {
#pragma unroll
        for (int c = 0; c < kTileDim; ++c) {
          acc = fmaf(q_tile[c], tile[threadIdx.x][c], acc);
        }
      }
      __syncthreads();
    }
    const bool valid = threadIdx.x < rows;
    const float key = p.l2 ? -acc : acc;
    top.Offer(valid, key, static_cast<int>(row0 - begin) + threadIdx.x, p.k);
  }
  top.Finish();

  const int64_t out = (q * p.num_splits + blockIdx.x) * KP;
  for (int i = threadIdx.x; i < KP; i += blockDim.x) {
    p.part_keys[out + i] = top.keys[i];
    p.part_ids[out + i] = top.idx[i] < 0 ? -1 : begin + top.idx[i];
  }
}

template <int KP>
__global__ void __launch_bounds__(kThreads) MergeTopKKernel(ExactTopKParams p) {
  __shared__ BlockTopK<KP> top;
  const int64_t q = blockIdx.x;
  const int total = p.num_splits * KP;
  const float* keys = p.part_keys + q * total;
  const int64_t* ids = p.part_ids + q * total;

  top.Init();
  for (int c0 = 0; c0 < total; c0 += kThreads) {
    const int c = c0 + threadIdx.x;
    const bool valid = c < total && ids[c] >= 0;
    top.Offer(valid, valid ? keys[c] : -INFINITY, c, p.k);
  }
  top.Finish();

  for (int i = threadIdx.x; i < p.k; i += blockDim.x) {
    const int c = top.idx[i];
    const int64_t id = c < 0 ? -1 : ids[c];
    const int64_t o = q * p.k + i;
    p.out_ids[o] = id;
    if (id < 0) {
      p.out_scores[o] = p.l2 ? INFINITY : -INFINITY;
    } else {
      p.out_scores[o] = p.l2 ? -top.keys[i] : top.keys[i];
    }
  }
}

template <int KP>
cudaError_t LaunchWithPaddedK(const ExactTopKParams& p, cudaStream_t stream) {
  const dim3 partial_grid(p.num_splits, static_cast<unsigned>(p.nq));
  PartialTopKKernel<KP><<<partial_grid, kThreads, 0, stream>>>(p);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  MergeTopKKernel<KP><<<static_cast<unsigned>(p.nq), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

int PaddedK(int k) {
  if (k < 1 || k > 1024) return 0;
  int padded = 32;
  while (padded < k) padded <<= 1;
  return padded;
}

// Runtime k to a compile-time list capacity.
cudaError_t LaunchExactTopK(const ExactTopKParams& params,
                            cudaStream_t stream) {
  switch (PaddedK(params.k)) {
    case 32:
      return LaunchWithPaddedK<32>(params, stream);
    case 64:
      return LaunchWithPaddedK<64>(params, stream);
    case 128:
      return LaunchWithPaddedK<128>(params, stream);
    case 256:
      return LaunchWithPaddedK<256>(params, stream);
    case 512:
      return LaunchWithPaddedK<512>(params, stream);
    case 1024:
      return LaunchWithPaddedK<1024>(params, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace mnemo::kernels::internal
