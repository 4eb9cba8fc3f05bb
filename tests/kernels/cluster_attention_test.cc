// The CUDA cluster attention (kernels/cluster_attention.h) against the CPU
// reference (attention/cluster_attention.h): ScoreCentroids against the
// scores and order of RankClusters, AttendGatheredClusters against
// AttendRanked over the same keys and cluster summaries. GPU cases skip
// without a usable device; without CUDA or a device the calls must report
// UNAVAILABLE.
#include "kernels/cluster_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <ostream>
#include <random>
#include <vector>

#include "attention/cluster_attention.h"
#include "attention/key_clusters.h"
#include "gtest/gtest.h"
#include "kernels/exact_topk.h"

namespace mnemo {
namespace {

// Centroid scores: fp32 dot products summed in another order on each side.
// Both lie within head_dim * 2^-24 * sum_i |q_i c_i| of the exact value, so
// they differ by at most kScoreTolerance * sum_i |q_i c_i| (a bound, not a
// guess: the check cannot flake on other data).
constexpr double kScoreTolerance = 2e-5;
// Attention: fp32 with expf on the GPU, float scores and a double
// denominator on the CPU, other summation orders (expected differences
// ~1e-5). out is compared with kOutTolerance of the head's largest |out|
// (at least 1), lse and max with kLseTolerance absolute.
constexpr double kOutTolerance = 1e-4;
constexpr double kLseTolerance = 1e-4;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::vector<float> Random(size_t n, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, stddev);
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng);
  return x;
}

// Small integers: every product and sum is exact in fp32 on both sides,
// so scores are bitwise equal and ties are real.
std::vector<float> SmallIntegers(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pick(-2, 2);
  std::vector<float> x(n);
  for (float& v : x) v = static_cast<float>(pick(rng));
  return x;
}

// ---------------------------------------------------------------------------
// ScoreCentroids

struct ScoreCase {
  int head_dim;
  int n_chunks;
  int max_clusters;  // per chunk, drawn in [1, max_clusters] (some chunks are empty)
  double top_fraction;  // top_n = ceil(fraction * total); > 1 pads
  bool integers;        // small-integer data: exact scores and ties
};

void PrintTo(const ScoreCase& c, std::ostream* os) {
  *os << "d=" << c.head_dim << " chunks=" << c.n_chunks << " clusters<=" << c.max_clusters
      << " top=" << c.top_fraction << (c.integers ? " integers" : "");
}

// The chunks' clusters (centroids only: all RankClusters reads) and the
// flat layout ScoreCentroids takes.
struct ScoreData {
  std::vector<attention::KeyClusters> chunks;
  std::vector<float> query_sums;   // [n_chunks, d]
  std::vector<float> centroids;    // [total, d]
  std::vector<int32_t> offsets;    // [n_chunks + 1]
  int total() const { return offsets.back(); }
};

ScoreData MakeScoreData(const ScoreCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> count(1, c.max_clusters);
  ScoreData s;
  s.offsets.push_back(0);
  const size_t d = c.head_dim;
  // The summed query of a group of 4 heads: stddev 2.
  s.query_sums = c.integers ? SmallIntegers(c.n_chunks * d, seed + 1)
                            : Random(c.n_chunks * d, seed + 1, 2.0f);
  for (int k = 0; k < c.n_chunks; ++k) {
    attention::KeyClusters kc;
    kc.head_dim = c.head_dim;
    // The first, the middle and the last chunk are empty when there are
    // three or more.
    const bool empty =
        c.n_chunks >= 3 && (k == 0 || k == c.n_chunks / 2 || k == c.n_chunks - 1);
    kc.n_clusters = empty ? 0 : count(rng);
    kc.centroids = c.integers ? SmallIntegers(kc.n_clusters * d, seed + 100 + k)
                              : Random(kc.n_clusters * d, seed + 100 + k, 1.0f);
    if (c.integers && k % 2 == 1 && k > 1) {
      // Ties across chunks: this chunk repeats the previous one's query sum
      // and first centroid.
      std::copy_n(&s.query_sums[(k - 1) * d], d, &s.query_sums[k * d]);
      if (kc.n_clusters > 0 && !s.chunks.back().centroids.empty()) {
        std::copy_n(s.chunks.back().centroids.data(), d, kc.centroids.data());
      }
    }
    s.centroids.insert(s.centroids.end(), kc.centroids.begin(), kc.centroids.end());
    s.offsets.push_back(s.offsets.back() + kc.n_clusters);
    s.chunks.push_back(std::move(kc));
  }
  return s;
}

std::vector<attention::ClusterSource> SourcesOf(const ScoreData& s, int head_dim) {
  std::vector<attention::ClusterSource> sources(s.chunks.size());
  for (size_t k = 0; k < s.chunks.size(); ++k) {
    sources[k].clusters = &s.chunks[k];
    sources[k].query_sum = &s.query_sums[k * head_dim];
  }
  return sources;
}

class GpuCentroidScoresTest : public ::testing::TestWithParam<ScoreCase> {};

TEST_P(GpuCentroidScoresTest, MatchesRankClusters) {
  if (absl::Status s = kernels::CudaDeviceAvailable(); !s.ok()) GTEST_SKIP() << s;
  const ScoreCase c = GetParam();
  const int d = c.head_dim;
  const ScoreData data = MakeScoreData(c, 7);
  const int total = data.total();
  ASSERT_GT(total, 0);
  const int top_n = static_cast<int>(std::ceil(c.top_fraction * total));
  const auto sources = SourcesOf(data, d);

  kernels::CentroidScoresArgs a;
  a.head_dim = d;
  a.n_chunks = c.n_chunks;
  a.query_sums = data.query_sums.data();
  a.chunk_offsets = data.offsets.data();
  a.centroids = data.centroids.data();
  std::vector<float> scores(total), top_scores(top_n);
  std::vector<int32_t> top(top_n);
  a.scores = scores.data();
  a.top_n = top_n;
  a.top_clusters = top.data();
  a.top_scores = top_scores.data();
  ASSERT_TRUE(kernels::ScoreCentroids(a).ok());

  // Every score against RankClusters' (all clusters ranked).
  const std::vector<attention::ClusterRef> all = attention::RankClusters(sources, d, total);
  ASSERT_EQ(static_cast<int>(all.size()), total);
  std::vector<float> want(total);
  std::vector<double> bound(total);
  for (const attention::ClusterRef& r : all) {
    const int g = data.offsets[r.source] + r.cluster;
    want[g] = r.score;
    double abs_sum = 0;
    for (int i = 0; i < d; ++i) {
      abs_sum += std::abs(double{data.query_sums[size_t(r.source) * d + i]} *
                          data.centroids[size_t(g) * d + i]);
    }
    bound[g] = kScoreTolerance * abs_sum;
  }
  for (int g = 0; g < total; ++g) {
    if (c.integers) {
      ASSERT_EQ(scores[g], want[g]) << "cluster " << g;
    } else {
      ASSERT_LE(std::abs(double{scores[g]} - want[g]), bound[g]) << "cluster " << g;
    }
  }

  // The selection is the stable descending order of the device's own
  // scores (ties to the lower index), padded past the total.
  const int keep = std::min(top_n, total);
  std::vector<int32_t> order(total);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t x, int32_t y) { return scores[x] > scores[y]; });
  for (int i = 0; i < keep; ++i) {
    ASSERT_EQ(top[i], order[i]) << "rank " << i;
    ASSERT_EQ(top_scores[i], scores[top[i]]) << "rank " << i;
  }
  for (int i = keep; i < top_n; ++i) {
    EXPECT_EQ(top[i], -1);
    EXPECT_EQ(top_scores[i], kNegInf);
  }

  // Against RankClusters' top n: the same clusters in the same order where
  // the scores are exact; else every selected cluster's CPU score is within
  // the error bounds of the CPU's n-th score.
  const std::vector<attention::ClusterRef> ranked = attention::RankClusters(sources, d, top_n);
  ASSERT_EQ(static_cast<int>(ranked.size()), keep);
  if (c.integers) {
    for (int i = 0; i < keep; ++i) {
      ASSERT_EQ(top[i], data.offsets[ranked[i].source] + ranked[i].cluster) << "rank " << i;
    }
  } else if (keep > 0) {
    const attention::ClusterRef& last = ranked[keep - 1];
    const int last_g = data.offsets[last.source] + last.cluster;
    for (int i = 0; i < keep; ++i) {
      EXPECT_GE(double{want[top[i]]}, double{last.score} - bound[top[i]] - bound[last_g])
          << "rank " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GpuCentroidScoresTest,
    ::testing::Values(
        // A long context: 200 chunks of up to 48 clusters, the 27% a
        // default budget selects (2% exact + 25% estimated).
        ScoreCase{128, 200, 48, 0.27, false},
        // The reference decoder's head_dim; more selected than there are.
        ScoreCase{32, 20, 16, 1.5, false},
        // Exact integer scores with ties inside and across chunks: the
        // full RankClusters order, ties to the lower source and cluster.
        ScoreCase{128, 40, 24, 1.0, true}, ScoreCase{32, 9, 40, 0.5, true},
        // head_dim not a multiple of the warp; few chunks, two of them empty.
        ScoreCase{100, 4, 300, 0.1, false}));

TEST(GpuCentroidScoresTest, ScoresOnlyAndTopOnly) {
  if (absl::Status s = kernels::CudaDeviceAvailable(); !s.ok()) GTEST_SKIP() << s;
  const ScoreCase c{64, 10, 20, 0.3, true};
  const ScoreData data = MakeScoreData(c, 11);
  const int total = data.total();
  kernels::CentroidScoresArgs a;
  a.head_dim = c.head_dim;
  a.n_chunks = c.n_chunks;
  a.query_sums = data.query_sums.data();
  a.chunk_offsets = data.offsets.data();
  a.centroids = data.centroids.data();
  std::vector<float> scores(total);
  a.scores = scores.data();
  ASSERT_TRUE(kernels::ScoreCentroids(a).ok());  // top_n = 0
  const int n = 5;
  std::vector<int32_t> top(n);
  std::vector<float> top_scores(n);
  a.scores = nullptr;
  a.top_n = n;
  a.top_clusters = top.data();
  a.top_scores = top_scores.data();
  ASSERT_TRUE(kernels::ScoreCentroids(a).ok());
  const auto ranked = attention::RankClusters(SourcesOf(data, c.head_dim), c.head_dim, n);
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(top[i], data.offsets[ranked[i].source] + ranked[i].cluster);
    EXPECT_EQ(top_scores[i], scores[top[i]]);
  }
}

// ---------------------------------------------------------------------------
// AttendGatheredClusters

struct AttendCase {
  int group, head_dim;
  int n_keys;       // gathered exact keys
  int n_estimated;  // estimated clusters
  int max_size;     // estimated cluster sizes in [min_size, max_size]
  int min_size;
  float query_stddev;  // larger: peakier softmax
  float centroid_stddev;
};

void PrintTo(const AttendCase& c, std::ostream* os) {
  *os << "G=" << c.group << " d=" << c.head_dim << " N=" << c.n_keys << " E=" << c.n_estimated
      << " sizes=[" << c.min_size << ", " << c.max_size << "] q~" << c.query_stddev << " c~"
      << c.centroid_stddev;
}

// The flat inputs of AttendGatheredClusters, and one source whose clusters
// are the same keys and summaries, so that AttendRanked computes the same
// thing: exact clusters of random sizes covering the gathered keys in
// order, then the estimated clusters.
struct AttendData {
  std::vector<float> queries, keys, values, centroids, value_sums;
  std::vector<int32_t> sizes;
  attention::KeyClusters clusters;
  std::vector<attention::ClusterRef> ranked;
  int n_exact = 0;  // exact clusters
};

AttendData MakeAttendData(const AttendCase& c, uint32_t seed) {
  const size_t d = c.head_dim;
  AttendData t;
  t.queries = Random(c.group * d, seed, c.query_stddev);
  t.keys = Random(c.n_keys * d, seed + 1, 1.0f);
  t.values = Random(c.n_keys * d, seed + 2, 1.0f);
  t.centroids = Random(c.n_estimated * d, seed + 3, c.centroid_stddev);
  std::mt19937 rng(seed + 4);
  std::uniform_int_distribution<int> size(c.min_size, c.max_size);
  t.sizes.resize(c.n_estimated);
  t.value_sums.assign(c.n_estimated * d, 0.0f);
  for (int e = 0; e < c.n_estimated; ++e) {
    t.sizes[e] = size(rng);
    // A sum of sizes[e] unit values; 0 for an empty cluster.
    if (t.sizes[e] == 0) continue;
    const auto v = Random(d, seed + 1000 + e, std::sqrt(static_cast<float>(t.sizes[e])));
    std::copy(v.begin(), v.end(), &t.value_sums[e * d]);
  }

  attention::KeyClusters& kc = t.clusters;
  kc.head_dim = c.head_dim;
  kc.n_keys = c.n_keys;
  kc.offsets.push_back(0);
  std::uniform_int_distribution<int> exact_size(1, 40);
  for (int at = 0; at < c.n_keys;) {
    const int n = std::min(exact_size(rng), c.n_keys - at);
    for (int i = 0; i < n; ++i) kc.members.push_back(at + i);
    at += n;
    kc.offsets.push_back(at);
    ++t.n_exact;
  }
  // Exact clusters' summaries are not read; the estimated ones' members
  // are not read.
  kc.centroids.assign(t.n_exact * d, 0.0f);
  kc.value_sums.assign(t.n_exact * d, 0.0f);
  kc.centroids.insert(kc.centroids.end(), t.centroids.begin(), t.centroids.end());
  kc.value_sums.insert(kc.value_sums.end(), t.value_sums.begin(), t.value_sums.end());
  for (int e = 0; e < c.n_estimated; ++e) {
    kc.offsets.push_back(kc.offsets.back() + t.sizes[e]);
    kc.members.resize(kc.offsets.back(), 0);
  }
  kc.n_clusters = t.n_exact + c.n_estimated;
  for (int k = 0; k < kc.n_clusters; ++k) t.ranked.push_back({0, k, 0.0f});
  return t;
}

kernels::GatheredClusterAttentionArgs ArgsOf(const AttendCase& c, const AttendData& t, float scale,
                                             float* out, float* lse, float* max) {
  kernels::GatheredClusterAttentionArgs a;
  a.group = c.group;
  a.head_dim = c.head_dim;
  a.scale = scale;
  a.queries = t.queries.data();
  a.n_keys = c.n_keys;
  a.keys = t.keys.data();
  a.values = t.values.data();
  a.n_estimated = c.n_estimated;
  a.centroids = t.centroids.data();
  a.value_sums = t.value_sums.data();
  a.sizes = t.sizes.data();
  a.out = out;
  a.lse = lse;
  a.max = max;
  return a;
}

// got vs want for one partial of `group` heads, with the tolerances above.
void ExpectPartialNear(int group, int d, const std::vector<float>& out,
                       const std::vector<float>& lse, const std::vector<float>& max,
                       const std::vector<float>& want_out, const std::vector<float>& want_lse,
                       const std::vector<float>& want_max) {
  for (int g = 0; g < group; ++g) {
    if (std::isinf(want_lse[g])) {
      EXPECT_EQ(lse[g], want_lse[g]) << "head " << g;
      EXPECT_EQ(max[g], want_max[g]) << "head " << g;
    } else {
      EXPECT_NEAR(lse[g], want_lse[g], kLseTolerance) << "head " << g;
      EXPECT_NEAR(max[g], want_max[g], kLseTolerance) << "head " << g;
    }
    float scale = 1.0f;
    for (int j = 0; j < d; ++j) scale = std::max(scale, std::abs(want_out[size_t(g) * d + j]));
    double worst = 0;
    for (size_t j = size_t(g) * d; j < size_t(g + 1) * d; ++j) {
      worst = std::max(worst, double{std::abs(out[j] - want_out[j])});
    }
    EXPECT_LE(worst, kOutTolerance * scale) << "head " << g;
  }
}

class GpuGatheredClustersTest : public ::testing::TestWithParam<AttendCase> {};

TEST_P(GpuGatheredClustersTest, MatchesAttendRanked) {
  if (absl::Status s = kernels::CudaDeviceAvailable(); !s.ok()) GTEST_SKIP() << s;
  const AttendCase c = GetParam();
  const int d = c.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const AttendData t = MakeAttendData(c, 3);

  attention::ClusterSource src;
  src.clusters = &t.clusters;
  src.keys = t.keys.data();
  src.values = t.values.data();
  src.queries = t.queries.data();
  std::vector<float> want_out(size_t(c.group) * d), want_lse(c.group), want_max(c.group);
  attention::ClusterAttentionStats stats;
  attention::AttendRanked({&src, 1}, t.ranked, t.n_exact, c.group, d, scale, want_out.data(),
                          want_lse.data(), want_max.data(), &stats);
  ASSERT_EQ(stats.exact_keys, c.n_keys);
  ASSERT_EQ(stats.estimated_clusters, c.n_estimated);

  std::vector<float> out(want_out.size(), 7.0f), lse(c.group, 7.0f), max(c.group, 7.0f);
  ASSERT_TRUE(
      kernels::AttendGatheredClusters(ArgsOf(c, t, scale, out.data(), lse.data(), max.data()))
          .ok());
  ExpectPartialNear(c.group, d, out, lse, max, want_out, want_lse, want_max);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GpuGatheredClustersTest,
    ::testing::Values(
        // Llama-style GQA head: a few thousand exact keys, a few hundred
        // estimated clusters of ~16 keys.
        AttendCase{4, 128, 3000, 300, 24, 8, 1.0f, 0.5f},
        // Peaky softmax: queries 3x larger.
        AttendCase{4, 128, 2500, 400, 24, 8, 3.0f, 0.5f},
        // The estimates dominate (large clusters, centroids as strong as keys).
        AttendCase{4, 128, 200, 300, 2000, 500, 1.0f, 1.0f},
        // The reference decoder's head_dim.
        AttendCase{4, 32, 1500, 120, 24, 8, 1.0f, 0.5f},
        // Splits of several chunks of 128 terms (online rescaling inside a
        // split): a long context, and a wide group (fewer splits).
        AttendCase{4, 128, 20000, 1000, 24, 8, 2.0f, 0.5f},
        AttendCase{16, 64, 5000, 200, 24, 8, 2.0f, 0.5f},
        // Exact keys only; one split and a ragged chunk.
        AttendCase{8, 64, 130, 0, 1, 1, 1.0f, 1.0f},
        // Estimates only, some clusters empty (they count only towards max).
        AttendCase{2, 128, 0, 257, 10, 0, 1.0f, 1.0f},
        // Widest head, one query head; head_dim not a multiple of 4.
        AttendCase{1, 256, 1000, 50, 16, 1, 1.0f, 0.5f},
        AttendCase{3, 100, 777, 33, 16, 1, 1.0f, 0.5f},
        // Nothing selected: out 0, lse and max -inf.
        AttendCase{4, 128, 0, 0, 1, 1, 1.0f, 1.0f},
        // Only empty clusters: no weight, so out 0 and lse, max -inf.
        AttendCase{4, 32, 0, 5, 0, 0, 1.0f, 1.0f}));

// An empty cluster adds no weight but its centroid score counts towards
// max, as in AttendRanked.
TEST(GpuGatheredClustersTest, EmptyClusterCountsOnlyTowardsMax) {
  if (absl::Status s = kernels::CudaDeviceAvailable(); !s.ok()) GTEST_SKIP() << s;
  const AttendCase c{2, 32, 300, 3, 5, 5, 1.0f, 0.5f};
  AttendData t = MakeAttendData(c, 5);
  // Estimated cluster 1 becomes empty, its centroid 3x the first query.
  t.sizes[1] = 0;
  const int d = c.head_dim;
  for (int i = 0; i < d; ++i) {
    t.centroids[d + i] = 3.0f * t.queries[i];
    t.value_sums[d + i] = 0.0f;
  }
  attention::KeyClusters& kc = t.clusters;
  std::copy_n(&t.centroids[d], d, &kc.centroids[size_t(t.n_exact + 1) * d]);
  std::fill_n(&kc.value_sums[size_t(t.n_exact + 1) * d], d, 0.0f);
  for (int k = t.n_exact + 1; k < kc.n_clusters; ++k) kc.offsets[k + 1] -= 5;  // size 0
  kc.members.resize(kc.offsets.back());
  ASSERT_EQ(kc.size(t.n_exact + 1), 0);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  attention::ClusterSource src;
  src.clusters = &kc;
  src.keys = t.keys.data();
  src.values = t.values.data();
  src.queries = t.queries.data();
  std::vector<float> want_out(size_t(c.group) * d), want_lse(c.group), want_max(c.group);
  attention::AttendRanked({&src, 1}, t.ranked, t.n_exact, c.group, d, scale, want_out.data(),
                          want_lse.data(), want_max.data(), nullptr);
  // The empty cluster holds head 0's max.
  float dot = 0;
  for (int i = 0; i < d; ++i) dot += t.queries[i] * t.centroids[d + i];
  ASSERT_NEAR(want_max[0], scale * dot, 1e-4);
  std::vector<float> out(want_out.size()), lse(c.group), max(c.group);
  ASSERT_TRUE(
      kernels::AttendGatheredClusters(ArgsOf(c, t, scale, out.data(), lse.data(), max.data()))
          .ok());
  ExpectPartialNear(c.group, d, out, lse, max, want_out, want_lse, want_max);
}

// The pipeline a decoder runs, with the chunks already in one frame: real
// clusters of several chunks (BuildKeyClusters), ranked by the device,
// the host gathers the exact clusters' keys and the estimated clusters'
// summaries, the device attends. Reference: AttendClusters (RankClusters
// then AttendRanked) with the same budget.
TEST(GpuGatheredClustersTest, PipelineMatchesAttendClusters) {
  if (absl::Status s = kernels::CudaDeviceAvailable(); !s.ok()) GTEST_SKIP() << s;
  const int d = 128, group = 4, n_chunks = 8, tokens = 2048;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const attention::ClusterBudget budget{0.05, 0.25};
  std::vector<std::vector<float>> keys, values;
  std::vector<attention::KeyClusters> clusters;
  for (int k = 0; k < n_chunks; ++k) {
    keys.push_back(Random(size_t(tokens) * d, 50 + k, 1.0f));
    values.push_back(Random(size_t(tokens) * d, 60 + k, 1.0f));
    auto kc = attention::BuildKeyClusters(keys[k].data(), values[k].data(), tokens, d, {});
    ASSERT_TRUE(kc.ok()) << kc.status();
    clusters.push_back(*std::move(kc));
  }
  const std::vector<float> queries = Random(size_t(group) * d, 70, 2.0f);
  std::vector<float> query_sum(d, 0.0f);
  for (int g = 0; g < group; ++g) {
    for (int i = 0; i < d; ++i) query_sum[i] += queries[size_t(g) * d + i];
  }
  std::vector<attention::ClusterSource> sources(n_chunks);
  for (int k = 0; k < n_chunks; ++k) {
    sources[k] = {&clusters[k], keys[k].data(), values[k].data(), query_sum.data(),
                  queries.data()};
  }
  std::vector<float> want_out(size_t(group) * d), want_lse(group), want_max(group);
  attention::ClusterAttentionStats want_stats;
  ASSERT_TRUE(attention::AttendClusters(sources, group, d, scale, budget, want_out.data(),
                                        want_lse.data(), want_max.data(), &want_stats)
                  .ok());

  // Device ranking.
  std::vector<int32_t> offsets{0};
  std::vector<float> query_sums, centroids;
  for (int k = 0; k < n_chunks; ++k) {
    offsets.push_back(offsets.back() + clusters[k].n_clusters);
    query_sums.insert(query_sums.end(), query_sum.begin(), query_sum.end());
    centroids.insert(centroids.end(), clusters[k].centroids.begin(), clusters[k].centroids.end());
  }
  const int total = offsets.back();
  const int n_exact = attention::ClustersFor(budget.exact_fraction, total);
  const int n_est =
      std::min(attention::ClustersFor(budget.estimated_fraction, total), total - n_exact);
  ASSERT_EQ(want_stats.exact_clusters, n_exact);
  ASSERT_EQ(want_stats.estimated_clusters, n_est);
  std::vector<int32_t> top(n_exact + n_est);
  std::vector<float> top_scores(top.size());
  kernels::CentroidScoresArgs sa;
  sa.head_dim = d;
  sa.n_chunks = n_chunks;
  sa.query_sums = query_sums.data();
  sa.chunk_offsets = offsets.data();
  sa.centroids = centroids.data();
  sa.top_n = static_cast<int>(top.size());
  sa.top_clusters = top.data();
  sa.top_scores = top_scores.data();
  ASSERT_TRUE(kernels::ScoreCentroids(sa).ok());
  // Random data: the tiers' boundaries are far apart compared with fp32
  // error, so the device puts the CPU's clusters in each tier (checked, not
  // assumed; the order inside a tier does not matter).
  const auto ranked = attention::RankClusters(sources, d, static_cast<int>(top.size()));
  auto tier = [&](const auto& ids, int from, int to) {
    std::vector<int32_t> t(ids.begin() + from, ids.begin() + to);
    std::sort(t.begin(), t.end());
    return t;
  };
  std::vector<int32_t> want_top;
  for (const attention::ClusterRef& r : ranked) want_top.push_back(offsets[r.source] + r.cluster);
  ASSERT_EQ(tier(top, 0, n_exact), tier(want_top, 0, n_exact));
  ASSERT_EQ(tier(top, n_exact, n_exact + n_est), tier(want_top, n_exact, n_exact + n_est));

  // Host gather.
  kernels::GatheredClusterAttentionArgs a;
  std::vector<float> gk, gv, gc, gvs;
  std::vector<int32_t> sizes;
  for (size_t i = 0; i < top.size(); ++i) {
    const int k = static_cast<int>(std::upper_bound(offsets.begin(), offsets.end(), top[i]) -
                                   offsets.begin()) - 1;
    const int cl = top[i] - offsets[k];
    const attention::KeyClusters& kc = clusters[k];
    if (static_cast<int>(i) < n_exact) {
      for (int32_t m = kc.offsets[cl]; m < kc.offsets[cl + 1]; ++m) {
        const int key = kc.members[m];
        gk.insert(gk.end(), &keys[k][size_t(key) * d], &keys[k][size_t(key + 1) * d]);
        gv.insert(gv.end(), &values[k][size_t(key) * d], &values[k][size_t(key + 1) * d]);
      }
    } else {
      gc.insert(gc.end(), &kc.centroids[size_t(cl) * d], &kc.centroids[size_t(cl + 1) * d]);
      gvs.insert(gvs.end(), &kc.value_sums[size_t(cl) * d], &kc.value_sums[size_t(cl + 1) * d]);
      sizes.push_back(kc.size(cl));
    }
  }
  std::vector<float> out(want_out.size()), lse(group), max(group);
  a.group = group;
  a.head_dim = d;
  a.scale = scale;
  a.queries = queries.data();
  a.n_keys = static_cast<int>(gk.size() / d);
  a.keys = gk.data();
  a.values = gv.data();
  a.n_estimated = static_cast<int>(sizes.size());
  a.centroids = gc.data();
  a.value_sums = gvs.data();
  a.sizes = sizes.data();
  a.out = out.data();
  a.lse = lse.data();
  a.max = max.data();
  ASSERT_EQ(a.n_keys, want_stats.exact_keys);
  ASSERT_TRUE(kernels::AttendGatheredClusters(a).ok());
  ExpectPartialNear(group, d, out, lse, max, want_out, want_lse, want_max);
}

// ---------------------------------------------------------------------------
// Without a device (or CUDA): UNAVAILABLE; with one, bad arguments are
// INVALID_ARGUMENT.

TEST(GpuClusterAttentionArgsTest, UnavailableOrRejectsBadArgs) {
  const bool device = kernels::CudaDeviceAvailable().ok();
  auto expect_invalid = [&](const absl::Status& s) {
    if (device) {
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    } else {
      EXPECT_TRUE(s.code() == absl::StatusCode::kUnavailable ||
                  s.code() == absl::StatusCode::kInvalidArgument)
          << s;
    }
  };
  expect_invalid(kernels::ScoreCentroids({}));  // no offsets
  const std::vector<float> q(8, 1.0f), cent(3 * 8, 1.0f);
  std::vector<float> scores(3);
  const std::vector<int32_t> decreasing{0, 2, 1, 3};
  kernels::CentroidScoresArgs sa;
  sa.head_dim = 8;
  sa.n_chunks = 3;
  sa.query_sums = q.data();
  sa.chunk_offsets = decreasing.data();
  sa.centroids = cent.data();
  sa.scores = scores.data();
  expect_invalid(kernels::ScoreCentroids(sa));

  expect_invalid(kernels::AttendGatheredClusters({}));  // group 0
  std::vector<float> out(8), lse(1), max(1);
  const std::vector<int32_t> negative{-1};
  kernels::GatheredClusterAttentionArgs ga;
  ga.group = 1;
  ga.head_dim = 8;
  ga.scale = 1.0f;
  ga.queries = q.data();
  ga.n_estimated = 1;
  ga.centroids = cent.data();
  ga.value_sums = cent.data();
  ga.sizes = negative.data();
  ga.out = out.data();
  ga.lse = lse.data();
  ga.max = max.data();
  expect_invalid(kernels::AttendGatheredClusters(ga));
  ga.sizes = nullptr;
  expect_invalid(kernels::AttendGatheredClusters(ga));
  ga.head_dim = kernels::kMaxClusterHeadDim + 1;
  expect_invalid(kernels::AttendGatheredClusters(ga));
}

// Valid arguments: OK with a device, UNAVAILABLE without one or without
// CUDA (the caller's cue to fall back to attention/).
TEST(GpuClusterAttentionArgsTest, ValidCallsAreUnavailableWithoutADevice) {
  const bool device = kernels::CudaDeviceAvailable().ok();
  const int d = 16;
  const std::vector<float> q = Random(2 * d, 1, 1.0f), cent = Random(5 * d, 2, 1.0f);
  const std::vector<int32_t> offsets{0, 2, 5};
  std::vector<float> scores(5);
  kernels::CentroidScoresArgs sa;
  sa.head_dim = d;
  sa.n_chunks = 2;
  sa.query_sums = q.data();
  sa.chunk_offsets = offsets.data();
  sa.centroids = cent.data();
  sa.scores = scores.data();
  const absl::Status s1 = kernels::ScoreCentroids(sa);

  const std::vector<int32_t> sizes{3, 4, 1, 2, 6};
  std::vector<float> out(2 * d), lse(2), max(2);
  kernels::GatheredClusterAttentionArgs ga;
  ga.group = 2;
  ga.head_dim = d;
  ga.scale = 0.25f;
  ga.queries = q.data();
  ga.n_keys = 5;
  ga.keys = cent.data();
  ga.values = cent.data();
  ga.n_estimated = 5;
  ga.centroids = cent.data();
  ga.value_sums = cent.data();
  ga.sizes = sizes.data();
  ga.out = out.data();
  ga.lse = lse.data();
  ga.max = max.data();
  const absl::Status s2 = kernels::AttendGatheredClusters(ga);
  for (const absl::Status& s : {s1, s2}) {
    if (device) {
      EXPECT_TRUE(s.ok()) << s;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    }
  }
}

}  // namespace
}  // namespace mnemo
