// Internal: device-side parameters and the launcher of the exact top-k
// kernels. Only exact_topk.cu and exact_topk_cuda.cc include this; callers
// use kernels/exact_topk.h.
#ifndef MNEMO_KERNELS_EXACT_TOPK_LAUNCH_H_
#define MNEMO_KERNELS_EXACT_TOPK_LAUNCH_H_

#include <cstdint>

#include <cuda_runtime_api.h>

namespace mnemo::kernels::internal {

// Kernel parameters (FlashInfer style: one plain struct). Device pointers.
struct ExactTopKParams {
  const float* base = nullptr;     // [nb, dim]
  const float* queries = nullptr;  // [nq, dim]
  int64_t nb = 0;
  int64_t nq = 0;
  int dim = 0;
  bool l2 = false;  // false: inner product
  int k = 0;
  // Base rows are cut into num_splits contiguous ranges of split_len rows;
  // one block selects a partial top-k of one (query, range).
  int num_splits = 1;
  int64_t split_len = 0;
  // Scratch for the partial results: [nq, num_splits, padded_k].
  float* part_keys = nullptr;
  int64_t* part_ids = nullptr;
  // Outputs [nq, k].
  int64_t* out_ids = nullptr;
  float* out_scores = nullptr;
};

// k rounded up to the kernel's compile-time list capacity (power of two,
// at least 32). 0 when k is out of range.
int PaddedK(int k);

// Enqueues the partial top-k kernel and the merge kernel on `stream`.
cudaError_t LaunchExactTopK(const ExactTopKParams& params, cudaStream_t stream);

}  // namespace mnemo::kernels::internal

#endif  // MNEMO_KERNELS_EXACT_TOPK_LAUNCH_H_
