#include "attention/cluster_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
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
  for (size_t i = 0; i < sources.size(); ++i) {
    const KeyClusters& c = *sources[i].clusters;
    for (int k = 0; k < c.n_clusters; ++k) {
      all.push_back({static_cast<int>(i), k,
                     Dot(sources[i].query_sum, &c.centroids[size_t(k) * head_dim], head_dim)});
    }
  }
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
  const int d = head_dim;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  n_exact = std::min<int>(n_exact, static_cast<int>(ranked.size()));
  const int n_est = static_cast<int>(ranked.size()) - n_exact;
  ClusterAttentionStats local;
  local.exact_clusters = n_exact;
  local.estimated_clusters = n_est;
  for (int r = 0; r < n_exact; ++r) {
    local.exact_keys += sources[ranked[r].source].clusters->size(ranked[r].cluster);
  }
  std::vector<float> exact_scores(local.exact_keys);
  std::vector<float> est_scores(n_est);
  for (int g = 0; g < group; ++g) {
    float* o = out + size_t(g) * d;
    std::fill(o, o + d, 0.0f);
    // Scores, and the stabiliser m over every term's log weight.
    float m = neg_inf;
    float top = neg_inf;
    size_t at = 0;
    for (int r = 0; r < n_exact; ++r) {
      const ClusterSource& src = sources[ranked[r].source];
      const KeyClusters& c = *src.clusters;
      const float* q = src.queries + size_t(g) * d;
      for (int32_t i = c.offsets[ranked[r].cluster]; i < c.offsets[ranked[r].cluster + 1]; ++i) {
        const float s = scale * Dot(q, src.keys + size_t(c.members[i]) * d, d);
        exact_scores[at++] = s;
        m = std::max(m, s);
      }
    }
    top = m;
    for (int r = 0; r < n_est; ++r) {
      const ClusterSource& src = sources[ranked[n_exact + r].source];
      const KeyClusters& c = *src.clusters;
      const int k = ranked[n_exact + r].cluster;
      const float s = scale * Dot(src.queries + size_t(g) * d, &c.centroids[size_t(k) * d], d);
      est_scores[r] = s;
      if (c.size(k) > 0) m = std::max(m, s + std::log(static_cast<float>(c.size(k))));
      top = std::max(top, s);
    }
    if (m == neg_inf) {
      lse[g] = neg_inf;
      max[g] = neg_inf;
      continue;
    }
    double z = 0;
    at = 0;
    for (int r = 0; r < n_exact; ++r) {
      const ClusterSource& src = sources[ranked[r].source];
      const KeyClusters& c = *src.clusters;
      for (int32_t i = c.offsets[ranked[r].cluster]; i < c.offsets[ranked[r].cluster + 1]; ++i) {
        const float w = std::exp(exact_scores[at++] - m);
        z += w;
        Axpy(w, src.values + size_t(c.members[i]) * d, o, d);
      }
    }
    for (int r = 0; r < n_est; ++r) {
      const ClusterSource& src = sources[ranked[n_exact + r].source];
      const KeyClusters& c = *src.clusters;
      const int k = ranked[n_exact + r].cluster;
      const float w = std::exp(est_scores[r] - m);
      z += static_cast<double>(w) * c.size(k);
      Axpy(w, &c.value_sums[size_t(k) * d], o, d);
    }
    const float inv = static_cast<float>(1.0 / z);
    for (int j = 0; j < d; ++j) o[j] *= inv;
    lse[g] = m + static_cast<float>(std::log(z));
    max[g] = top;
  }
  if (stats != nullptr) *stats = local;
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
  const int n_exact = ClustersFor(budget.exact_fraction, total);
  const int n_est = std::min(ClustersFor(budget.estimated_fraction, total), total - n_exact);
  const std::vector<ClusterRef> ranked = RankClusters(sources, head_dim, n_exact + n_est);
  AttendRanked(sources, ranked, n_exact, group, head_dim, scale, out, lse, max, stats);
  return absl::OkStatus();
}

}  // namespace mnemo::attention
