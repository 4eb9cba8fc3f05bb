#include "attention/key_clusters.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "attention/rope.h"
#include "attention/vector_ops.h"

namespace mnemo::attention {
namespace {

// Unit-length copy of `x` (a zero vector stays zero).
void Normalized(const float* x, int d, float* out) {
  const float norm = std::sqrt(Dot(x, x, d));
  const float inv = norm > 0 ? 1.0f / norm : 0.0f;
  for (int i = 0; i < d; ++i) out[i] = x[i] * inv;
}

}  // namespace

absl::StatusOr<KeyClusters> BuildKeyClusters(const float* keys, const float* values, int n_keys,
                                             int head_dim, const KeyClusterOptions& options) {
  if (n_keys < 0 || head_dim <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("key clusters need n_keys >= 0 and head_dim > 0, got ", n_keys, " and ",
                     head_dim));
  }
  if (n_keys > 0 && (keys == nullptr || values == nullptr)) {
    return absl::InvalidArgumentError("key clusters: null keys or values");
  }
  if (options.keys_per_cluster < 1 || options.iterations < 1) {
    return absl::InvalidArgumentError("keys_per_cluster and iterations must be >= 1");
  }
  const size_t total = static_cast<size_t>(n_keys) * static_cast<size_t>(head_dim);
  for (size_t i = 0; i < total; ++i) {
    if (!std::isfinite(keys[i]) || !std::isfinite(values[i])) {
      return absl::InvalidArgumentError("key clusters: keys or values contain NaN or Inf");
    }
  }
  const int d = head_dim;
  KeyClusters out;
  out.head_dim = d;
  out.n_keys = n_keys;
  out.n_clusters =
      n_keys == 0 ? 0 : (n_keys + options.keys_per_cluster - 1) / options.keys_per_cluster;
  const int k = out.n_clusters;
  if (n_keys == 0) {
    out.offsets.assign(1, 0);
    return out;
  }

  // Directions of the keys and of the centroids (spherical assignment).
  std::vector<float> unit_keys(total);
  for (int i = 0; i < n_keys; ++i) Normalized(keys + size_t(i) * d, d, &unit_keys[size_t(i) * d]);
  std::vector<float> directions(size_t(k) * d);
  {
    // Seeds: k distinct keys drawn with the seed.
    std::vector<int> order(n_keys);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(options.seed);
    std::shuffle(order.begin(), order.end(), rng);
    for (int c = 0; c < k; ++c) {
      std::copy_n(&unit_keys[size_t(order[c]) * d], d, &directions[size_t(c) * d]);
    }
  }
  std::vector<int> assign(n_keys, -1);
  std::vector<float> similarity(n_keys, 0);
  std::vector<float> sums(size_t(k) * d);
  std::vector<int> counts(k);
  std::vector<float> sims(size_t(n_keys) * k);
  for (int round = 0; round < options.iterations; ++round) {
    int moved = 0;
    // Every key against every centroid direction in one sgemm.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_keys, k, d, 1.0f, unit_keys.data(), d,
                directions.data(), d, 0.0f, sims.data(), k);
    for (int i = 0; i < n_keys; ++i) {
      const float* row = &sims[size_t(i) * k];
      const int best = static_cast<int>(std::max_element(row, row + k) - row);
      moved += assign[i] != best ? 1 : 0;
      assign[i] = best;
      similarity[i] = row[best];
    }
    std::fill(sums.begin(), sums.end(), 0.0f);
    std::fill(counts.begin(), counts.end(), 0);
    for (int i = 0; i < n_keys; ++i) {
      ++counts[assign[i]];
      float* s = &sums[size_t(assign[i]) * d];
      for (int j = 0; j < d; ++j) s[j] += unit_keys[size_t(i) * d + j];
    }
    // Reseed emptied clusters with the keys least similar to their own
    // centroid (each used once), taken from clusters that keep a member.
    for (int c = 0; c < k; ++c) {
      if (counts[c] > 0) continue;
      int worst = -1;
      for (int i = 0; i < n_keys; ++i) {
        if (counts[assign[i]] > 1 && (worst < 0 || similarity[i] < similarity[worst])) worst = i;
      }
      if (worst < 0) break;
      float* from = &sums[size_t(assign[worst]) * d];
      for (int j = 0; j < d; ++j) from[j] -= unit_keys[size_t(worst) * d + j];
      --counts[assign[worst]];
      assign[worst] = c;
      similarity[worst] = 1.0f;
      counts[c] = 1;
      std::copy_n(&unit_keys[size_t(worst) * d], d, &sums[size_t(c) * d]);
      ++moved;
    }
    for (int c = 0; c < k; ++c) Normalized(&sums[size_t(c) * d], d, &directions[size_t(c) * d]);
    // Converged: fewer than 1% of the keys changed cluster.
    if (moved * 100 < n_keys || (moved == 0)) break;
  }

  // Summaries over the raw keys and values, and the grouped key order.
  out.centroids.assign(size_t(k) * d, 0.0f);
  out.value_sums.assign(size_t(k) * d, 0.0f);
  out.offsets.assign(k + 1, 0);
  for (int i = 0; i < n_keys; ++i) ++out.offsets[assign[i] + 1];
  for (int c = 0; c < k; ++c) out.offsets[c + 1] += out.offsets[c];
  out.members.resize(n_keys);
  std::vector<int32_t> fill(out.offsets.begin(), out.offsets.end() - 1);
  for (int i = 0; i < n_keys; ++i) {
    const int c = assign[i];
    out.members[fill[c]++] = i;
    float* centroid = &out.centroids[size_t(c) * d];
    float* vsum = &out.value_sums[size_t(c) * d];
    for (int j = 0; j < d; ++j) {
      centroid[j] += keys[size_t(i) * d + j];
      vsum[j] += values[size_t(i) * d + j];
    }
  }
  for (int c = 0; c < k; ++c) {
    const int32_t n = out.size(c);
    if (n == 0) continue;
    float* centroid = &out.centroids[size_t(c) * d];
    for (int j = 0; j < d; ++j) centroid[j] /= static_cast<float>(n);
  }
  return out;
}

absl::Status RotateQueryForChunk(float* queries, int n_heads, int head_dim, double theta,
                                 int64_t position, int64_t chunk_start) {
  if (position < chunk_start) {
    return absl::InvalidArgumentError(absl::StrCat("query at position ", position,
                                                   " cannot attend to a chunk starting at ",
                                                   chunk_start));
  }
  // One token of n_heads heads: token-major and head-major coincide.
  return RotateKeys(queries, n_heads, 1, head_dim, theta, position - chunk_start);
}

}  // namespace mnemo::attention
