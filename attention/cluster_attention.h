// Attention of one KV head's query group through key clusters
// (attention/key_clusters.h), RetroInfer's tiers without the steady zone
// (the decoder keeps its sink and recent tokens and merges): over the
// clusters of one or several chunks, the clusters whose centroids score
// highest for the group are attended exactly, the next ones are estimated
// from their summaries, the rest are left out.
//
// An estimated cluster of n keys with centroid c and value sum V adds
// n * exp(s) to the softmax denominator and exp(s) * V to its numerator,
// s = scale * <q, c>: exact when the cluster's keys all score alike.
//
// Clusters are ranked by the group's summed score sum_g <q_g, c> =
// <sum_g q_g, c>, so ranking needs one vector per chunk (the summed query
// in the chunk's frame), and only the chunks that hold a selected cluster
// need the group's own queries in their frame (attention/
// context_attention.h rotates them lazily).
#ifndef MNEMO_ATTENTION_CLUSTER_ATTENTION_H_
#define MNEMO_ATTENTION_CLUSTER_ATTENTION_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "attention/key_clusters.h"

namespace mnemo::attention {

// What a query reads, in [0, 1], their sum at most 1: the exact tier holds
// the best clusters while their keys stay within exact_fraction of the
// context's keys (at least one cluster when it is positive); the estimated
// tier the next estimated_fraction of the context's clusters (at least one
// when positive).
struct ClusterBudget {
  double exact_fraction = 0.02;
  double estimated_fraction = 0.25;
};

// INVALID_ARGUMENT naming the rule a budget breaks.
absl::Status ValidateBudget(const ClusterBudget& budget);

// Clusters a fraction selects out of n: ceil(fraction * n), at least 1 when
// the fraction is positive, at most n.
int ClustersFor(double fraction, int n);

struct ClusterAttentionStats {
  int exact_clusters = 0;
  int estimated_clusters = 0;
  int exact_keys = 0;  // keys whose score was computed exactly
};

// One chunk's part of one KV head's context.
struct ClusterSource {
  const KeyClusters* clusters = nullptr;
  const float* keys = nullptr;    // [clusters->n_keys, head_dim], chunk-local post-RoPE
  const float* values = nullptr;  // [clusters->n_keys, head_dim]
  // The group's summed query in this chunk's frame [head_dim] (ranking).
  const float* query_sum = nullptr;
  // The group's queries in this chunk's frame [group, head_dim]; needed
  // only when one of the chunk's clusters is selected.
  const float* queries = nullptr;
};

// A cluster of a source and its ranking score.
struct ClusterRef {
  int source = 0;
  int cluster = 0;
  float score = 0;
};

// The `n` best clusters over all sources by <query_sum, centroid>, best
// first (ties: lower source, then lower cluster first). `n` is clamped to
// the number of clusters.
std::vector<ClusterRef> RankClusters(absl::Span<const ClusterSource> sources, int head_dim, int n);
// The `n` best of `all` (scored clusters), best first, same order rules;
// consumes `all`.
std::vector<ClusterRef> BestClusters(std::vector<ClusterRef> all, int n);

// Attention of the `group` query heads over `ranked[0, n_exact)` exactly
// and `ranked[n_exact, ranked.size())` estimated. Writes per query head g
// a partial mergeable with MergePartial (attention/partial.h): out[g *
// head_dim ...], lse[g] (over the exact keys and the estimated mass),
// max[g] (the largest exact score or estimated centroid score); with
// nothing selected out is 0 and lse, max are -inf. Unchecked: the caller
// validated the sizes, and every source named in `ranked` has `queries`.
void AttendRanked(absl::Span<const ClusterSource> sources, absl::Span<const ClusterRef> ranked,
                  int n_exact, int group, int head_dim, float scale, float* out, float* lse,
                  float* max, ClusterAttentionStats* stats);

// The clusters `budget` selects over `sources`, best first: the first
// *n_exact are the exact tier, the rest the estimated tier. The budget must
// be valid (ValidateBudget). `scored`, when given, holds every cluster of
// every source with its ranking score already computed (any order).
std::vector<ClusterRef> SelectClusters(absl::Span<const ClusterSource> sources, int head_dim,
                                       const ClusterBudget& budget, int* n_exact,
                                       std::vector<ClusterRef>* scored = nullptr);

// SelectClusters then AttendRanked with the budget over every source; every source needs `query_sum` and `queries`.
// INVALID_ARGUMENT for a bad budget, group < 1, a non-finite or
// non-positive scale, null pointers, or sources of another head_dim.
absl::Status AttendClusters(absl::Span<const ClusterSource> sources, int group, int head_dim,
                            float scale, const ClusterBudget& budget, float* out, float* lse,
                            float* max, ClusterAttentionStats* stats);

}  // namespace mnemo::attention

#endif  // MNEMO_ATTENTION_CLUSTER_ATTENTION_H_
