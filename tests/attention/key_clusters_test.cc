// Key clusters and cluster attention (issue 12, first step): the RoPE
// rotation identity that makes a chunk-local index serve any placement, the
// clusters' summaries, and attention through clusters against full
// attention (attention/partial.h) where the two must agree.
#include <algorithm>
#include <iostream>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "attention/cluster_attention.h"
#include "attention/key_clusters.h"
#include "attention/partial.h"
#include "attention/rope.h"
#include "gtest/gtest.h"

namespace mnemo::attention {
namespace {

constexpr double kTheta = 10000.0;

std::vector<float> Random(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng);
  return x;
}

// Keys around a few directions, like real attention keys (clustered).
std::vector<float> ClusteredKeys(int n, int d, unsigned seed) {
  const std::vector<float> centres = Random(8 * size_t(d), seed, 2.0f);
  std::mt19937 rng(seed + 1);
  std::normal_distribution<float> gauss(0.0f, 0.3f);
  std::vector<float> keys(size_t(n) * d);
  for (int i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng() % 8);
    for (int j = 0; j < d; ++j) keys[size_t(i) * d + j] = centres[size_t(c) * d + j] + gauss(rng);
  }
  return keys;
}

float Dot(const float* a, const float* b, int d) {
  float s = 0;
  for (int i = 0; i < d; ++i) s += a[i] * b[i];
  return s;
}

// <R(p) q, R(s + i) k_i> == <R(p - s) q, R(i) k_i>: keys rotated for
// position 0 serve the chunk at start s once the query is rotated to p - s.
TEST(KeyClustersTest, ChunkLocalKeysServeAnyStartPosition) {
  const int heads = 2, n = 40, d = 32;
  const std::vector<float> pre_keys = Random(size_t(heads) * n * d, 1);
  const std::vector<float> pre_query = Random(size_t(heads) * d, 2);
  for (int64_t start : {0, 7, 1000, 70000}) {
    const int64_t position = start + n + 25;
    std::vector<float> absolute = pre_keys, local = pre_keys;
    ASSERT_TRUE(RotateKeys(absolute.data(), heads, n, d, kTheta, start).ok());
    ASSERT_TRUE(RotateKeys(local.data(), heads, n, d, kTheta, 0).ok());
    std::vector<float> q_abs = pre_query, q_local = pre_query;
    ASSERT_TRUE(RotateKeys(q_abs.data(), heads, 1, d, kTheta, position).ok());
    ASSERT_TRUE(RotateQueryForChunk(q_local.data(), heads, d, kTheta, position, start).ok());
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < n; ++i) {
        const float* ka = &absolute[(size_t(h) * n + i) * d];
        const float* kl = &local[(size_t(h) * n + i) * d];
        const float want = Dot(&q_abs[size_t(h) * d], ka, d);
        const float got = Dot(&q_local[size_t(h) * d], kl, d);
        const float norm = std::sqrt(Dot(&pre_query[size_t(h) * d], &pre_query[size_t(h) * d], d) *
                                     Dot(kl, kl, d));
        EXPECT_NEAR(got, want, 1e-4f * norm) << "start " << start << " head " << h << " key " << i;
      }
    }
  }
  std::vector<float> q = pre_query;
  EXPECT_EQ(RotateQueryForChunk(q.data(), heads, d, kTheta, 5, 6).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KeyClustersTest, SummariesDescribeTheMembers) {
  const int n = 1000, d = 32;
  const std::vector<float> keys = ClusteredKeys(n, d, 3);
  const std::vector<float> values = Random(size_t(n) * d, 4);
  auto built = BuildKeyClusters(keys.data(), values.data(), n, d, KeyClusterOptions{});
  ASSERT_TRUE(built.ok()) << built.status();
  const KeyClusters& c = *built;
  EXPECT_EQ(c.n_clusters, (n + 15) / 16);
  EXPECT_EQ(c.offsets.front(), 0);
  EXPECT_EQ(c.offsets.back(), n);
  std::vector<int32_t> sorted = c.members;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i);  // a permutation
  for (int k = 0; k < c.n_clusters; ++k) {
    ASSERT_GT(c.size(k), 0) << "empty cluster " << k;
    for (int j = 0; j < d; ++j) {
      double mean = 0, vsum = 0;
      for (int32_t m = c.offsets[k]; m < c.offsets[k + 1]; ++m) {
        mean += keys[size_t(c.members[m]) * d + j];
        vsum += values[size_t(c.members[m]) * d + j];
      }
      mean /= c.size(k);
      EXPECT_NEAR(c.centroids[size_t(k) * d + j], mean, 1e-4);
      EXPECT_NEAR(c.value_sums[size_t(k) * d + j], vsum, 1e-3);
    }
  }
  // Same seed, same clusters.
  auto again = BuildKeyClusters(keys.data(), values.data(), n, d, KeyClusterOptions{});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->members, c.members);
  EXPECT_EQ(again->offsets, c.offsets);
}

TEST(KeyClustersTest, BadInputIsRefused) {
  std::vector<float> keys = Random(64, 5), values = Random(64, 6);
  EXPECT_FALSE(BuildKeyClusters(keys.data(), values.data(), 4, 0, {}).ok());
  EXPECT_FALSE(BuildKeyClusters(nullptr, values.data(), 4, 16, {}).ok());
  KeyClusterOptions zero;
  zero.keys_per_cluster = 0;
  EXPECT_FALSE(BuildKeyClusters(keys.data(), values.data(), 4, 16, zero).ok());
  keys[3] = std::nanf("");
  EXPECT_EQ(BuildKeyClusters(keys.data(), values.data(), 4, 16, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto empty = BuildKeyClusters(nullptr, nullptr, 0, 16, {});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->n_clusters, 0);
}

class ClusterAttentionTest : public ::testing::Test {
 protected:
  static constexpr int kGroup = 4, kN = 600, kD = 32;
  void SetUp() override {
    keys_ = ClusteredKeys(kN, kD, 7);
    values_ = Random(size_t(kN) * kD, 8);
    queries_ = Random(size_t(kGroup) * kD, 9, 0.5f);
    // Full attention of the group over every key (one KV head).
    AttentionShape shape{kGroup, 1, kD, 1.0f / std::sqrt(float(kD))};
    KeyValueBlock kv{keys_.data(), values_.data(), kN, kN};
    ASSERT_TRUE(AttendPartial(shape, QueryBlock{queries_.data(), 1, 0}, kv, false, &full_).ok());
  }

  // The group's queries as the one source's (ranking sum and own queries).
  ClusterSource Source(const KeyClusters& clusters) {
    sum_.assign(kD, 0.0f);
    for (int g = 0; g < kGroup; ++g)
      for (int j = 0; j < kD; ++j) sum_[j] += queries_[size_t(g) * kD + j];
    return ClusterSource{&clusters, keys_.data(), values_.data(), sum_.data(), queries_.data()};
  }

  PartialResult Through(const KeyClusters& clusters, ClusterBudget budget,
                        ClusterAttentionStats* stats) {
    PartialResult r = PartialResult::Empty(1, kGroup, kD);
    const ClusterSource source = Source(clusters);
    EXPECT_TRUE(AttendClusters({&source, 1}, kGroup, kD, 1.0f / std::sqrt(float(kD)), budget,
                               r.out.data(), r.lse.data(), r.max.data(), stats)
                    .ok());
    return r;
  }

  void ExpectEqualsFull(const PartialResult& r, float tolerance) {
    for (size_t i = 0; i < full_.out.size(); ++i) EXPECT_NEAR(r.out[i], full_.out[i], tolerance);
    for (size_t g = 0; g < full_.lse.size(); ++g) EXPECT_NEAR(r.lse[g], full_.lse[g], tolerance);
  }

  std::vector<float> keys_, values_, queries_, sum_;
  PartialResult full_;
};

TEST_F(ClusterAttentionTest, WholeBudgetExactEqualsFullAttention) {
  auto clusters = BuildKeyClusters(keys_.data(), values_.data(), kN, kD, {});
  ASSERT_TRUE(clusters.ok());
  ClusterAttentionStats stats;
  const PartialResult r = Through(*clusters, {1.0, 0.0}, &stats);
  EXPECT_EQ(stats.exact_keys, kN);
  ExpectEqualsFull(r, 1e-5f);
}

// One key per cluster: the estimate (n exp(q.c), exp(q.c) V) is exact.
TEST_F(ClusterAttentionTest, EstimatingSingletonClustersIsExact) {
  KeyClusterOptions one;
  one.keys_per_cluster = 1;
  auto clusters = BuildKeyClusters(keys_.data(), values_.data(), kN, kD, one);
  ASSERT_TRUE(clusters.ok());
  ClusterAttentionStats stats;
  const PartialResult r = Through(*clusters, {0.0, 1.0}, &stats);
  EXPECT_EQ(stats.exact_keys, 0);
  EXPECT_EQ(stats.estimated_clusters, kN);
  ExpectEqualsFull(r, 1e-4f);
}

// A partial budget reads the share of keys it names and stays close to
// full attention on clustered keys (the fidelity goals are the bench's).
TEST_F(ClusterAttentionTest, PartialBudgetReadsItsShareAndStaysClose) {
  auto clusters = BuildKeyClusters(keys_.data(), values_.data(), kN, kD, {});
  ASSERT_TRUE(clusters.ok());
  ClusterAttentionStats stats;
  const PartialResult r = Through(*clusters, {0.1, 0.5}, &stats);
  // The exact tier stops at 10% of the keys (one cluster at least).
  EXPECT_GE(stats.exact_clusters, 1);
  EXPECT_LE(stats.exact_keys, kN / 10);
  EXPECT_GT(stats.exact_keys, kN / 10 - 40);
  double err = 0, norm = 0;
  for (size_t i = 0; i < full_.out.size(); ++i) {
    err += (r.out[i] - full_.out[i]) * (r.out[i] - full_.out[i]);
    norm += full_.out[i] * full_.out[i];
  }
  const double relative = std::sqrt(err / norm);
  std::cout << "exact keys " << stats.exact_keys << " of " << kN << ", relative error "
            << relative << "\n";
  EXPECT_LT(relative, 0.5) << "relative error of the partial-budget output";
}

TEST_F(ClusterAttentionTest, BadBudgetIsRefused) {
  auto clusters = BuildKeyClusters(keys_.data(), values_.data(), kN, kD, {});
  ASSERT_TRUE(clusters.ok());
  PartialResult r = PartialResult::Empty(1, kGroup, kD);
  const ClusterSource source = Source(*clusters);
  for (ClusterBudget bad : {ClusterBudget{0.8, 0.5}, ClusterBudget{-0.1, 0.2},
                            ClusterBudget{0.1, 1.5}}) {
    EXPECT_EQ(AttendClusters({&source, 1}, kGroup, kD, 0.1f, bad, r.out.data(), r.lse.data(),
                             r.max.data(), nullptr)
                  .code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(AttendClusters({&source, 1}, 0, kD, 0.1f, {}, r.out.data(), r.lse.data(),
                              r.max.data(), nullptr)
                   .ok());
  EXPECT_FALSE(AttendClusters({&source, 1}, kGroup, kD + 2, 0.1f, {}, r.out.data(), r.lse.data(),
                              r.max.data(), nullptr)
                   .ok());
}

}  // namespace
}  // namespace mnemo::attention
