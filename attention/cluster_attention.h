// Attention of query heads over one chunk's keys of one KV head through the
// chunk's key clusters (attention/key_clusters.h), RetroInfer's tiers
// without the steady zone (the decoder keeps its sink and recent tokens and
// merges): the clusters whose centroids score highest for the query group
// are attended exactly, the next ones are estimated from their summaries,
// the rest are left out.
//
// An estimated cluster of n keys with centroid c and value sum V adds
// n * exp(s) to the softmax denominator and exp(s) * V to its numerator,
// s = scale * <q, c>: exact when the cluster's keys all score alike.
#ifndef MNEMO_ATTENTION_CLUSTER_ATTENTION_H_
#define MNEMO_ATTENTION_CLUSTER_ATTENTION_H_

#include "absl/status/status.h"
#include "attention/key_clusters.h"

namespace mnemo::attention {

// Fractions of a chunk's clusters, in [0, 1], their sum at most 1. A
// non-zero fraction selects at least one cluster.
struct ClusterBudget {
  double exact_fraction = 0.02;
  double estimated_fraction = 0.25;
};

struct ClusterAttentionStats {
  int exact_clusters = 0;
  int estimated_clusters = 0;
  int exact_keys = 0;  // keys whose score was computed exactly
};

// `queries` [group, head_dim]: the query heads that read this KV head,
// already rotated for the chunk (RotateQueryForChunk); `keys` and `values`
// [n_keys, head_dim] as given to BuildKeyClusters. Clusters are ranked by
// the sum over the group of <q, centroid>. Writes per query head g a
// partial over the chunk, mergeable with MergePartial (attention/partial.h):
// out[g * head_dim ...], lse[g] (over the exact keys and the estimated
// mass), max[g] (the largest exact score or estimated centroid score); with
// nothing selected out is 0 and lse, max are -inf. INVALID_ARGUMENT for a
// bad budget, group < 1, a non-finite or non-positive scale, or null
// pointers.
absl::Status AttendClusters(const float* queries, int group, const float* keys,
                            const float* values, const KeyClusters& clusters, float scale,
                            const ClusterBudget& budget, float* out, float* lse, float* max,
                            ClusterAttentionStats* stats);

}  // namespace mnemo::attention

#endif  // MNEMO_ATTENTION_CLUSTER_ATTENTION_H_
