// Clusters of one chunk's attention keys, the position-free key index of
// retrieval attention (issue 12).
//
// RoPE is a rotation R(p), so for a chunk placed at start s a query at
// position p scores key i as
//   <R(p) q, R(s + i) k_i> = <R(p - s) q, R(i) k_i>.
// Clusters built once over the chunk-local post-RoPE keys R(i) k_i (the keys
// as if the chunk sat at position 0) therefore serve the chunk at any start:
// the query is rotated to p - s per chunk (RotateQueryForChunk) instead of
// re-indexing the chunk for every placement.
//
// Per (chunk, layer, KV head) the clusters keep, as RetroInfer does, each
// cluster's centroid (the mean of its keys), the sum of its values and its
// size, plus the key order grouped by cluster, so that attention can read a
// cluster's keys exactly or estimate the cluster from its summary
// (attention/cluster_attention.h).
#ifndef MNEMO_ATTENTION_KEY_CLUSTERS_H_
#define MNEMO_ATTENTION_KEY_CLUSTERS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mnemo::attention {

struct KeyClusterOptions {
  // Mean keys per cluster; clusters = ceil(n_keys / keys_per_cluster).
  int keys_per_cluster = 16;
  // k-means rounds (assignment + update); stops early when fewer than 1%
  // of the keys change cluster.
  int iterations = 6;
  uint64_t seed = 1;
};

// The clusters of one KV head's keys of one chunk.
struct KeyClusters {
  int head_dim = 0;
  int n_keys = 0;
  int n_clusters = 0;
  std::vector<float> centroids;   // [n_clusters, head_dim], mean of the member keys
  std::vector<float> value_sums;  // [n_clusters, head_dim], sum of the member values
  std::vector<int32_t> offsets;   // [n_clusters + 1]: cluster c is members[offsets[c]..offsets[c+1])
  std::vector<int32_t> members;   // [n_keys]: key indexes grouped by cluster, ascending within one

  int32_t size(int c) const { return offsets[c + 1] - offsets[c]; }
};

// Clusters `keys` [n_keys, head_dim] (chunk-local post-RoPE) with their
// `values` [n_keys, head_dim] by spherical k-means: a key joins the
// centroid whose direction has the largest inner product with it (query
// scores are inner products), centroids are member means; an emptied
// cluster is reseeded with the key least similar to its own centroid.
// Deterministic for a given seed. INVALID_ARGUMENT for null data with
// n_keys > 0, n_keys < 0, head_dim <= 0, non-finite values or
// keys_per_cluster / iterations < 1.
absl::StatusOr<KeyClusters> BuildKeyClusters(const float* keys, const float* values, int n_keys,
                                             int head_dim, const KeyClusterOptions& options);

// Rotates pre-RoPE query heads [n_heads, head_dim] sitting at absolute
// position `position` into the frame of a chunk that starts at
// `chunk_start`: RoPE at position - chunk_start, the decoder's own float32
// computation (attention/rope.h). INVALID_ARGUMENT when position <
// chunk_start (a query never attends to a chunk placed after it) or RoPE
// refuses the arguments.
absl::Status RotateQueryForChunk(float* queries, int n_heads, int head_dim, double theta,
                                 int64_t position, int64_t chunk_start);

}  // namespace mnemo::attention

#endif  // MNEMO_ATTENTION_KEY_CLUSTERS_H_
