#include "index/fusion.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mnemo::index {

std::vector<ScoredId> TopKByScore(const absl::flat_hash_map<int64_t, double>& scores, int k) {
  if (k < 1) return {};
  std::vector<std::pair<int64_t, double>> ranked(scores.begin(), scores.end());
  auto better = [](const std::pair<int64_t, double>& a, const std::pair<int64_t, double>& b) {
    if (a.second != b.second) return a.second > b.second;
    return a.first < b.first;
  };
  const size_t keep = std::min(ranked.size(), static_cast<size_t>(k));
  std::partial_sort(ranked.begin(), ranked.begin() + keep, ranked.end(), better);
  std::vector<ScoredId> out;
  out.reserve(keep);
  for (size_t i = 0; i < keep; ++i) {
    out.emplace_back(ranked[i].first, static_cast<float>(ranked[i].second));
  }
  return out;
}

absl::StatusOr<std::vector<ScoredId>> ReciprocalRankFusion(
    const std::vector<std::vector<int64_t>>& ranked_lists, int k, int rrf_k) {
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat("fusion: k must be >= 1, got ", k));
  if (rrf_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("fusion: rrf_k must be >= 0, got ", rrf_k));
  }
  absl::flat_hash_map<int64_t, double> scores;
  absl::flat_hash_set<int64_t> seen;
  for (const std::vector<int64_t>& list : ranked_lists) {
    seen.clear();
    // Rank counts every position of the list as given, padding included, so
    // a caller's ranks are never shifted.
    for (size_t pos = 0; pos < list.size(); ++pos) {
      const int64_t id = list[pos];
      if (id < 0 || !seen.insert(id).second) continue;
      scores[id] += 1.0 / (static_cast<double>(rrf_k) + static_cast<double>(pos + 1));
    }
  }
  return TopKByScore(scores, k);
}

absl::StatusOr<std::vector<ScoredId>> WeightedFusion(absl::Span<const WeightedList> lists,
                                                     int k) {
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat("fusion: k must be >= 1, got ", k));
  for (size_t l = 0; l < lists.size(); ++l) {
    const double w = lists[l].weight;
    if (!std::isfinite(w) || w < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("fusion: weight of list ", l, " must be finite and >= 0, got ", w));
    }
    for (const ScoredId& hit : lists[l].hits) {
      if (!std::isfinite(hit.second)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "fusion: list ", l, " has a non-finite score for id ", hit.first));
      }
    }
  }

  absl::flat_hash_map<int64_t, double> scores;
  absl::flat_hash_map<int64_t, double> best;  // per list: id -> oriented raw score
  for (const WeightedList& list : lists) {
    // Orient so that larger is better, keeping each id's best score.
    best.clear();
    for (const auto& [id, raw] : list.hits) {
      if (id < 0) continue;
      const double s = list.higher_is_better ? raw : -static_cast<double>(raw);
      auto [it, inserted] = best.try_emplace(id, s);
      if (!inserted) it->second = std::max(it->second, s);
    }
    if (best.empty()) continue;
    double lo = std::numeric_limits<double>::infinity();
    double hi = -std::numeric_limits<double>::infinity();
    for (const auto& [id, s] : best) {
      lo = std::min(lo, s);
      hi = std::max(hi, s);
    }
    for (const auto& [id, s] : best) {
      double norm = s;
      if (list.normalization == ScoreNormalization::kMinMax) {
        norm = hi > lo ? (s - lo) / (hi - lo) : 1.0;
      }
      scores[id] += list.weight * norm;
    }
  }
  return TopKByScore(scores, k);
}

}  // namespace mnemo::index
