// Internal: device-side parameters and launchers of the cluster attention
// kernels. Only cluster_attention.cu and cluster_attention_cuda.cc include
// this; callers use kernels/cluster_attention.h.
#ifndef MNEMO_KERNELS_CLUSTER_ATTENTION_LAUNCH_H_
#define MNEMO_KERNELS_CLUSTER_ATTENTION_LAUNCH_H_

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace mnemo::kernels::internal {

// Device pointers; layouts of kernels/cluster_attention.h.
struct CentroidScoresParams {
  int head_dim = 0;
  int n_chunks = 0;
  int total = 0;  // chunk_offsets[n_chunks]
  const float* query_sums = nullptr;
  const int32_t* chunk_offsets = nullptr;
  const float* centroids = nullptr;
  float* scores = nullptr;  // [total]
};

// One warp per cluster: finds its chunk by binary search in chunk_offsets
// and writes the dot product.
cudaError_t LaunchCentroidScores(const CentroidScoresParams& p, cudaStream_t stream);

// Sorts `scores` [n] descending with their indexes (stable: ties keep the
// lower index first) into sorted_scores / sorted_ids. With temp == null
// only sets *temp_bytes (cub::DeviceRadixSort's two-call protocol).
// ids_in [n] must hold 0..n-1 (LaunchIota).
cudaError_t SortScoresDescending(void* temp, size_t* temp_bytes, const float* scores,
                                 float* sorted_scores, const int32_t* ids_in, int32_t* sorted_ids,
                                 int n, cudaStream_t stream);

// ids[i] = i for i < n.
cudaError_t LaunchIota(int32_t* ids, int n, cudaStream_t stream);

struct GatheredClusterParams {
  int group = 0;
  int head_dim = 0;
  float scale = 0.0f;
  const float* queries = nullptr;  // [group, head_dim]
  int n_keys = 0;
  const float* keys = nullptr;
  const float* values = nullptr;
  int n_estimated = 0;
  const float* centroids = nullptr;
  const float* value_sums = nullptr;
  const int32_t* sizes = nullptr;
  // The n_keys + n_estimated terms (exact keys first) are cut into
  // n_splits ranges of split_len terms (a multiple of the block size); one
  // block attends one (split, query head).
  int n_splits = 0;
  int split_len = 0;
  // Per (query head, split) partial state: [group, n_splits] and
  // [group, n_splits, head_dim].
  float* part_m = nullptr;    // stabiliser: largest log weight (s, or s + log n)
  float* part_top = nullptr;  // largest score
  float* part_l = nullptr;    // sum of exp(log weight - part_m)
  float* part_acc = nullptr;  // sum of exp(s - part_m) * value
  // Outputs.
  float* out = nullptr;  // [group, head_dim]
  float* lse = nullptr;  // [group]
  float* max = nullptr;  // [group]
};

// Terms per block chunk (threads per block); split_len is a multiple.
inline constexpr int kGatheredBlockTerms = 128;

// The split kernel over grid (n_splits, group), then one merge block per
// query head. head_dim <= 256.
cudaError_t LaunchGatheredClusterAttention(const GatheredClusterParams& p, cudaStream_t stream);

}  // namespace mnemo::kernels::internal

#endif  // MNEMO_KERNELS_CLUSTER_ATTENTION_LAUNCH_H_
