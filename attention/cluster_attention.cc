#include "attention/cluster_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace mnemo::attention {
namespace {

float Dot(const float* a, const float* b, int d) {
  float s = 0;
  for (int i = 0; i < d; ++i) s += a[i] * b[i];
  return s;
}

int ClustersFor(double fraction, int n) {
  if (fraction <= 0 || n == 0) return 0;
  return std::clamp(static_cast<int>(std::ceil(fraction * n)), 1, n);
}

}  // namespace

absl::Status AttendClusters(const float* queries, int group, const float* keys,
                            const float* values, const KeyClusters& clusters, float scale,
                            const ClusterBudget& budget, float* out, float* lse, float* max,
                            ClusterAttentionStats* stats) {
  const double e = budget.exact_fraction, est = budget.estimated_fraction;
  if (!(e >= 0 && e <= 1 && est >= 0 && est <= 1 && e + est <= 1 + 1e-9)) {
    return absl::InvalidArgumentError(
        "cluster budget fractions must lie in [0, 1] and sum to at most 1");
  }
  if (group < 1 || !std::isfinite(scale) || scale <= 0) {
    return absl::InvalidArgumentError("cluster attention needs group >= 1 and a positive scale");
  }
  if (queries == nullptr || out == nullptr || lse == nullptr || max == nullptr ||
      (clusters.n_keys > 0 && (keys == nullptr || values == nullptr))) {
    return absl::InvalidArgumentError("cluster attention: null pointer");
  }
  const int d = clusters.head_dim;
  const int n_clusters = clusters.n_clusters;
  const float neg_inf = -std::numeric_limits<float>::infinity();

  // Rank clusters by the group's summed centroid score.
  std::vector<float> rank_score(n_clusters, 0.0f);
  for (int c = 0; c < n_clusters; ++c) {
    for (int g = 0; g < group; ++g) {
      rank_score[c] += Dot(queries + size_t(g) * d, &clusters.centroids[size_t(c) * d], d);
    }
  }
  std::vector<int> order(n_clusters);
  std::iota(order.begin(), order.end(), 0);
  const int n_exact = ClustersFor(e, n_clusters);
  const int n_est = std::min(ClustersFor(est, n_clusters), n_clusters - n_exact);
  const int selected = n_exact + n_est;
  std::partial_sort(order.begin(), order.begin() + selected, order.end(), [&](int a, int b) {
    return rank_score[a] > rank_score[b] || (rank_score[a] == rank_score[b] && a < b);
  });

  ClusterAttentionStats local;
  local.exact_clusters = n_exact;
  local.estimated_clusters = n_est;
  for (int r = 0; r < n_exact; ++r) local.exact_keys += clusters.size(order[r]);

  std::vector<float> exact_scores(local.exact_keys);
  std::vector<float> est_scores(n_est);
  for (int g = 0; g < group; ++g) {
    const float* q = queries + size_t(g) * d;
    float* o = out + size_t(g) * d;
    std::fill(o, o + d, 0.0f);
    // Scores, and the stabiliser m over every term's log weight.
    float m = neg_inf;
    float top = neg_inf;
    size_t at = 0;
    for (int r = 0; r < n_exact; ++r) {
      const int c = order[r];
      for (int32_t i = clusters.offsets[c]; i < clusters.offsets[c + 1]; ++i) {
        const float s = scale * Dot(q, keys + size_t(clusters.members[i]) * d, d);
        exact_scores[at++] = s;
        m = std::max(m, s);
        top = std::max(top, s);
      }
    }
    for (int r = 0; r < n_est; ++r) {
      const int c = order[n_exact + r];
      const float s = scale * Dot(q, &clusters.centroids[size_t(c) * d], d);
      est_scores[r] = s;
      if (clusters.size(c) > 0) m = std::max(m, s + std::log(static_cast<float>(clusters.size(c))));
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
      const int c = order[r];
      for (int32_t i = clusters.offsets[c]; i < clusters.offsets[c + 1]; ++i) {
        const float w = std::exp(exact_scores[at++] - m);
        z += w;
        const float* v = values + size_t(clusters.members[i]) * d;
        for (int j = 0; j < d; ++j) o[j] += w * v[j];
      }
    }
    for (int r = 0; r < n_est; ++r) {
      const int c = order[n_exact + r];
      const float w = std::exp(est_scores[r] - m);
      z += static_cast<double>(w) * clusters.size(c);
      const float* vs = &clusters.value_sums[size_t(c) * d];
      for (int j = 0; j < d; ++j) o[j] += w * vs[j];
    }
    const float inv = static_cast<float>(1.0 / z);
    for (int j = 0; j < d; ++j) o[j] *= inv;
    lse[g] = m + static_cast<float>(std::log(z));
    max[g] = top;
  }
  if (stats != nullptr) *stats = local;
  return absl::OkStatus();
}

}  // namespace mnemo::attention
