#include "attention/cluster_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "attention/vector_ops.h"

namespace mnemo::attention {

absl::Status ValidateBudget(const ClusterBudget& budget) {
  const double e = budget.exact_fraction, est = budget.estimated_fraction;
  if (!(e >= 0 && e <= 1 && est >= 0 && est <= 1 && e + est <= 1 + 1e-9)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cluster budget (exact ", e, ", estimated ", est,
        "): fractions must lie in [0, 1] and sum to at most 1"));
  }
  return absl::OkStatus();
}

int ClustersFor(double fraction, int n) {
  if (fraction <= 0 || n <= 0) return 0;
  return std::clamp(static_cast<int>(std::ceil(fraction * n - 1e-9)), 1, n);
}

std::vector<ClusterRef> RankClusters(absl::Span<const ClusterSource> sources, int head_dim,
                                     int n) {
  std::vector<ClusterRef> all;
  size_t total = 0;
  for (const ClusterSource& s : sources) total += static_cast<size_t>(s.clusters->n_clusters);
  all.reserve(total);
  std::vector<float> scores;
  for (size_t i = 0; i < sources.size(); ++i) {
    const KeyClusters& c = *sources[i].clusters;
    scores.resize(c.n_clusters);
    DotRows(c.centroids.data(), c.n_clusters, sources[i].query_sum, head_dim, scores.data());
    for (int k = 0; k < c.n_clusters; ++k) all.push_back({static_cast<int>(i), k, scores[k]});
  }
  return BestClusters(std::move(all), n);
}

std::vector<ClusterRef> BestClusters(std::vector<ClusterRef> all, int n) {
  const size_t keep = std::min(all.size(), static_cast<size_t>(std::max(n, 0)));
  auto better = [](const ClusterRef& a, const ClusterRef& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.source != b.source) return a.source < b.source;
    return a.cluster < b.cluster;
  };
  if (keep < all.size()) {
    std::nth_element(all.begin(), all.begin() + keep, all.end(), better);
    all.resize(keep);
  }
  std::sort(all.begin(), all.end(), better);
  return all;
}

void AttendRanked(absl::Span<const ClusterSource> sources, absl::Span<const ClusterRef> ranked,
                  int n_exact, int group, int head_dim, float scale, float* out, float* lse,
                  float* max, ClusterAttentionStats* stats) {
  const int d = head_dim, G = group;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  n_exact = std::min<int>(n_exact, static_cast<int>(ranked.size()));
  const int n_est = static_cast<int>(ranked.size()) - n_exact;
  ClusterAttentionStats local;
  local.exact_clusters = n_exact;
  local.estimated_clusters = n_est;
  for (int r = 0; r < n_exact; ++r) {
    local.exact_keys += sources[ranked[r].source].clusters->size(ranked[r].cluster);
  }
  // Scores [term, G]: every exact key, then every estimated cluster; each
  // key or centroid row is read once for the whole group.
  std::vector<float> scores(size_t(local.exact_keys + n_est) * G);
  std::vector<float> m(G, neg_inf), top(G, neg_inf);
  size_t at = 0;
  for (int r = 0; r < n_exact; ++r) {
    const ClusterSource& src = sources[ranked[r].source];
    const KeyClusters& c = *src.clusters;
    const int32_t* members = c.members.data();
    const int32_t begin = c.offsets[ranked[r].cluster], end = c.offsets[ranked[r].cluster + 1];
    for (int32_t i = begin; i < end; ++i) {
      if (i + 2 < end) __builtin_prefetch(src.keys + size_t(members[i + 2]) * d);
      float* s = &scores[at++ * G];
      GroupDot(src.queries, G, src.keys + size_t(members[i]) * d, d, scale, s);
      for (int g = 0; g < G; ++g) m[g] = std::max(m[g], s[g]);
    }
  }
  top = m;
  for (int r = 0; r < n_est; ++r) {
    const ClusterSource& src = sources[ranked[n_exact + r].source];
    const KeyClusters& c = *src.clusters;
    const int k = ranked[n_exact + r].cluster;
    float* s = &scores[at++ * G];
    GroupDot(src.queries, G, &c.centroids[size_t(k) * d], d, scale, s);
    const float log_n = c.size(k) > 0 ? std::log(static_cast<float>(c.size(k))) : neg_inf;
    for (int g = 0; g < G; ++g) {
      m[g] = std::max(m[g], s[g] + log_n);
      top[g] = std::max(top[g], s[g]);
    }
  }
  std::fill(out, out + size_t(G) * d, 0.0f);
  std::vector<double> z(G, 0.0);
  std::vector<float> w(G);
  at = 0;
  for (int r = 0; r < n_exact; ++r) {
    const ClusterSource& src = sources[ranked[r].source];
    const KeyClusters& c = *src.clusters;
    const int32_t* members = c.members.data();
    const int32_t begin = c.offsets[ranked[r].cluster], end = c.offsets[ranked[r].cluster + 1];
    for (int32_t i = begin; i < end; ++i) {
      if (i + 2 < end) __builtin_prefetch(src.values + size_t(members[i + 2]) * d);
      const float* s = &scores[at++ * G];
      for (int g = 0; g < G; ++g) {
        w[g] = m[g] == neg_inf ? 0.0f : std::exp(s[g] - m[g]);
        z[g] += w[g];
      }
      GroupAxpy(w.data(), G, src.values + size_t(members[i]) * d, d, out);
    }
  }
  for (int r = 0; r < n_est; ++r) {
    const ClusterSource& src = sources[ranked[n_exact + r].source];
    const KeyClusters& c = *src.clusters;
    const int k = ranked[n_exact + r].cluster;
    const float* s = &scores[at++ * G];
    for (int g = 0; g < G; ++g) {
      w[g] = m[g] == neg_inf ? 0.0f : std::exp(s[g] - m[g]);
      z[g] += static_cast<double>(w[g]) * c.size(k);
    }
    GroupAxpy(w.data(), G, &c.value_sums[size_t(k) * d], d, out);
  }
  for (int g = 0; g < G; ++g) {
    if (m[g] == neg_inf || z[g] == 0) {
      std::fill(out + size_t(g) * d, out + size_t(g + 1) * d, 0.0f);
      lse[g] = neg_inf;
      max[g] = neg_inf;
      continue;
    }
    const float inv = static_cast<float>(1.0 / z[g]);
    for (int j = 0; j < d; ++j) out[size_t(g) * d + j] *= inv;
    lse[g] = m[g] + static_cast<float>(std::log(z[g]));
    max[g] = top[g];
  }
  if (stats != nullptr) *stats = local;
}

std::vector<ClusterRef> SelectClusters(absl::Span<const ClusterSource> sources, int head_dim,
                                       const ClusterBudget& budget, int* n_exact,
                                       std::vector<ClusterRef>* scored) {
  int total = 0;
  int64_t keys = 0;
  for (const ClusterSource& s : sources) {
    total += s.clusters->n_clusters;
    keys += s.clusters->n_keys;
  }
  // Rank a margin beyond the exact tier's cluster count at the mean size
  // (the best clusters are often larger or smaller than the mean).
  const int guess = ClustersFor(budget.exact_fraction, total);
  const int n_est = ClustersFor(budget.estimated_fraction, total);
  const int n = std::min(total, 2 * guess + 8 + n_est);
  std::vector<ClusterRef> ranked = scored != nullptr ? BestClusters(std::move(*scored), n)
                                                     : RankClusters(sources, head_dim, n);
  const double key_budget = budget.exact_fraction * static_cast<double>(keys) + 1e-9;
  int exact = 0;
  int64_t taken = 0;
  if (budget.exact_fraction > 0) {
    while (exact < static_cast<int>(ranked.size())) {
      const int size = sources[ranked[exact].source].clusters->size(ranked[exact].cluster);
      if (exact > 0 && static_cast<double>(taken + size) > key_budget) break;
      taken += size;
      ++exact;
    }
  }
  ranked.resize(std::min<size_t>(ranked.size(), size_t(exact) + size_t(std::max(0, n_est))));
  *n_exact = exact;
  return ranked;
}

absl::Status AttendClusters(absl::Span<const ClusterSource> sources, int group, int head_dim,
                            float scale, const ClusterBudget& budget, float* out, float* lse,
                            float* max, ClusterAttentionStats* stats) {
  if (absl::Status s = ValidateBudget(budget); !s.ok()) return s;
  if (group < 1 || head_dim < 1 || !std::isfinite(scale) || scale <= 0) {
    return absl::InvalidArgumentError(
        "cluster attention needs group >= 1, head_dim >= 1 and a positive scale");
  }
  if (out == nullptr || lse == nullptr || max == nullptr) {
    return absl::InvalidArgumentError("cluster attention: null output");
  }
  int total = 0;
  for (const ClusterSource& s : sources) {
    if (s.clusters == nullptr || s.query_sum == nullptr || s.queries == nullptr ||
        (s.clusters->n_keys > 0 && (s.keys == nullptr || s.values == nullptr))) {
      return absl::InvalidArgumentError("cluster attention: null pointer in a source");
    }
    if (s.clusters->n_keys > 0 && s.clusters->head_dim != head_dim) {
      return absl::InvalidArgumentError(absl::StrCat("a source's clusters have head_dim ",
                                                     s.clusters->head_dim, ", not ", head_dim));
    }
    total += s.clusters->n_clusters;
  }
  (void)total;
  int n_exact = 0;
  const std::vector<ClusterRef> ranked = SelectClusters(sources, head_dim, budget, &n_exact);
  AttendRanked(sources, ranked, n_exact, group, head_dim, scale, out, lse, max, stats);
  return absl::OkStatus();
}

}  // namespace mnemo::attention
