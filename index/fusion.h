// Fusion of several ranked result lists (e.g. BM25 and dense) into one.
//
// Both functions return at most k (id, fused score) pairs, best first; equal
// fused scores are ordered by ascending id so the output is deterministic.
// Negative ids are padding (FAISS fills short results with -1) and are
// ignored. An id that appears more than once in one list counts once, at its
// best position / score. Lists may be empty; if every list is empty the
// result is empty. Fused scores are accumulated in double and rounded to
// float for output; the order is decided on the double values.
//
// Thread safety: pure functions, safe to call concurrently.
#ifndef MNEMO_INDEX_FUSION_H_
#define MNEMO_INDEX_FUSION_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace mnemo::index {

// (id, score) as returned by the indexes and by fusion.
using ScoredId = std::pair<int64_t, float>;

// The best k of `scores` by descending score, ties by ascending id (the
// order every ranked list of mnemo uses). Empty for k < 1.
[[nodiscard]] std::vector<ScoredId> TopKByScore(
    const absl::flat_hash_map<int64_t, double>& scores, int k);

// Reciprocal rank fusion (Cormack et al. 2009):
//   fused(d) = sum over lists L containing d of 1 / (rrf_k + rank_L(d)),
// rank 1-based in the list's given order (each list best first). A larger
// rrf_k flattens the advantage of the top ranks; 60 is the paper's value.
// INVALID_ARGUMENT when k < 1 or rrf_k < 0.
[[nodiscard]] absl::StatusOr<std::vector<ScoredId>> ReciprocalRankFusion(
    const std::vector<std::vector<int64_t>>& ranked_lists, int k, int rrf_k = 60);

// How WeightedFusion maps a list's raw scores to comparable values.
enum class ScoreNormalization {
  // (s - min) / (max - min) over the list's entries, so the list's best entry
  // gets 1 and its worst 0 (reversed when lower is better). When every entry
  // has the same score (one entry included) each gets 1.
  kMinMax,
  // Raw score, negated when lower is better. For lists already on a common
  // scale. A missing entry still counts 0, which beats every present entry
  // of a negated distance list: prefer kMinMax for distances.
  kNone,
};

// One input list of WeightedFusion.
struct WeightedList {
  // (id, raw score) pairs in any order.
  std::vector<ScoredId> hits;
  // Contribution of this list; finite and >= 0. Default 1.
  double weight = 1.0;
  // true for similarities (BM25, inner product, cosine), false for distances
  // (L2), where a smaller raw score is better.
  bool higher_is_better = true;
  ScoreNormalization normalization = ScoreNormalization::kMinMax;
};

// Weighted score fusion:
//   fused(d) = sum over lists L of weight_L * norm_L(d),
// where norm_L(d) is d's normalised score in L and 0 when d is missing from L
// (so with min-max a missing entry counts as the list's worst). Every id that
// appears in any list is a candidate, even with fused score 0.
// INVALID_ARGUMENT when k < 1, a weight is negative or not finite, or a raw
// score is NaN or infinite.
[[nodiscard]] absl::StatusOr<std::vector<ScoredId>> WeightedFusion(
    absl::Span<const WeightedList> lists, int k);

}  // namespace mnemo::index

#endif  // MNEMO_INDEX_FUSION_H_
