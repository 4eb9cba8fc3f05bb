// Retrieval attention over placed chunks (attention/context_attention.h):
// clusters built over chunk-local keys serve chunks placed anywhere, the
// whole budget equals full attention over the keys at their absolute
// positions, a top-k fetch returns the keys rotated where they sit, a small
// budget finds a dominant key only through the right per-chunk rotation,
// and bad layouts and queries are refused.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "attention/context_attention.h"
#include "attention/key_clusters.h"
#include "attention/partial.h"
#include "attention/rope.h"
#include "gtest/gtest.h"

namespace mnemo::attention {
namespace {

constexpr double kTheta = 10000.0;
constexpr int kHeads = 8, kKvHeads = 2, kGroup = 4, kD = 32;

std::vector<float> Random(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng);
  return x;
}

struct Chunk {
  int64_t start = 0;
  int n = 0;
  std::vector<float> pre_keys, values;  // [kKvHeads, n, kD]
  std::vector<float> local_keys;        // RoPE at 0..n-1
  std::vector<KeyClusters> clusters;    // per KV head
};

class ContextAttentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::vector<std::pair<int64_t, int>> placements = {{1, 50}, {300, 70}, {120, 40}};
    unsigned seed = 10;
    for (auto [start, n] : placements) {
      Chunk c;
      c.start = start;
      c.n = n;
      c.pre_keys = Random(size_t(kKvHeads) * n * kD, seed++);
      c.values = Random(size_t(kKvHeads) * n * kD, seed++);
      chunks_.push_back(std::move(c));
    }
    queries_ = Random(size_t(2) * kHeads * kD, 99, 0.4f);
  }

  // Chunk-local keys and clusters of every chunk (after any edit of
  // pre_keys), the layout and the views.
  void Build() {
    std::vector<int64_t> starts;
    std::vector<int> counts;
    views_.clear();
    for (Chunk& c : chunks_) {
      c.local_keys = c.pre_keys;
      ASSERT_TRUE(RotateKeys(c.local_keys.data(), kKvHeads, c.n, kD, kTheta, 0).ok());
      c.clusters.clear();
      for (int h = 0; h < kKvHeads; ++h) {
        KeyClusterOptions options;
        options.keys_per_cluster = 8;
        auto k = BuildKeyClusters(&c.local_keys[size_t(h) * c.n * kD],
                                  &c.values[size_t(h) * c.n * kD], c.n, kD, options);
        ASSERT_TRUE(k.ok()) << k.status();
        c.clusters.push_back(std::move(*k));
      }
      starts.push_back(c.start);
      counts.push_back(c.n);
    }
    for (const Chunk& c : chunks_) {
      views_.push_back({c.local_keys.data(), c.values.data(), c.clusters.data()});
    }
    auto layout = ContextLayout::Create(kD, kTheta, starts, counts);
    ASSERT_TRUE(layout.ok()) << layout.status();
    layout_ = std::move(*layout);
  }

  // Full attention over every chunk's keys rotated at their absolute
  // positions, queries rotated at theirs.
  PartialResult Full(int64_t position, int n_queries) {
    int total = 0;
    for (const Chunk& c : chunks_) total += c.n;
    std::vector<float> keys(size_t(kKvHeads) * total * kD), values(keys.size());
    std::vector<int32_t> positions;
    int at = 0;
    for (const Chunk& c : chunks_) {
      std::vector<float> abs = c.pre_keys;
      EXPECT_TRUE(RotateKeys(abs.data(), kKvHeads, c.n, kD, kTheta, c.start).ok());
      for (int h = 0; h < kKvHeads; ++h) {
        std::copy_n(&abs[size_t(h) * c.n * kD], size_t(c.n) * kD,
                    &keys[(size_t(h) * total + at) * kD]);
        std::copy_n(&c.values[size_t(h) * c.n * kD], size_t(c.n) * kD,
                    &values[(size_t(h) * total + at) * kD]);
      }
      for (int i = 0; i < c.n; ++i) positions.push_back(static_cast<int32_t>(c.start + i));
      at += c.n;
    }
    std::vector<float> q = PostRope(position, n_queries);
    KeyValueBlock kv{keys.data(), values.data(), total, total, positions.data(), 0};
    PartialResult r;
    EXPECT_TRUE(AttendPartial(shape_, QueryBlock{q.data(), n_queries, 0}, kv, false, &r).ok());
    return r;
  }

  std::vector<float> PostRope(int64_t position, int n_queries) {
    std::vector<float> q(queries_.begin(), queries_.begin() + size_t(n_queries) * kHeads * kD);
    std::vector<double> cos, sin;
    RopeTables(kD, kTheta, position, n_queries, &cos, &sin);
    ApplyRope(q.data(), n_queries, kHeads, kD, cos, sin);
    return q;
  }

  static void ExpectClose(const PartialResult& got, const PartialResult& want, float tol) {
    ASSERT_EQ(got.out.size(), want.out.size());
    for (size_t i = 0; i < want.out.size(); ++i) EXPECT_NEAR(got.out[i], want.out[i], tol) << i;
    for (size_t i = 0; i < want.lse.size(); ++i) EXPECT_NEAR(got.lse[i], want.lse[i], tol) << i;
  }

  const AttentionShape shape_{kHeads, kKvHeads, kD, 1.0f / std::sqrt(float(kD))};
  std::vector<Chunk> chunks_;
  std::vector<float> queries_;  // pre-RoPE [2, kHeads, kD]
  std::vector<ChunkLayerView> views_;
  ContextLayout layout_;
};

TEST_F(ContextAttentionTest, WholeBudgetEqualsFullAttentionAtAbsolutePositions) {
  Build();
  const int64_t position = 400;
  PartialResult r;
  ContextAttentionStats stats;
  ASSERT_TRUE(AttendContext(shape_, layout_, views_, QueryBlock{queries_.data(), 2, position},
                            {1.0, 0.0}, &r, &stats)
                  .ok());
  EXPECT_EQ(stats.keys, 2u * kKvHeads * 160);
  EXPECT_EQ(stats.exact_keys, stats.keys);
  ExpectClose(r, Full(position, 2), 2e-5f);
}

TEST_F(ContextAttentionTest, PackedCentroidsGiveTheSameResult) {
  Build();
  const PackedCentroids packed = PackCentroids(views_, kKvHeads, kD);
  for (ClusterBudget budget : {ClusterBudget{0.1, 0.3}, ClusterBudget{0.3, 0.0}}) {
    PartialResult a, b;
    ContextAttentionStats sa, sb;
    ASSERT_TRUE(AttendContext(shape_, layout_, views_, QueryBlock{queries_.data(), 2, 500},
                              budget, &a, &sa)
                    .ok());
    ASSERT_TRUE(AttendContext(shape_, layout_, views_, QueryBlock{queries_.data(), 2, 500},
                              budget, &b, &sb, &packed)
                    .ok());
    EXPECT_EQ(sa.exact_keys, sb.exact_keys);
    EXPECT_EQ(sa.estimated_clusters, sb.estimated_clusters);
    for (size_t i = 0; i < a.out.size(); ++i) EXPECT_NEAR(a.out[i], b.out[i], 1e-6f);
  }
  PackedCentroids wrong = packed;
  wrong.offsets[0].pop_back();
  PartialResult r;
  EXPECT_EQ(AttendContext(shape_, layout_, views_, QueryBlock{queries_.data(), 1, 500}, {}, &r,
                          nullptr, &wrong)
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ContextAttentionTest, TopKFetchReturnsKeysAtTheirPositions) {
  Build();
  const int64_t position = 1000;
  SelectedKeys selected;
  ContextAttentionStats stats;
  ASSERT_TRUE(SelectContextKeys(shape_, layout_, views_, QueryBlock{queries_.data(), 2, position},
                                1.0, &selected, &stats)
                  .ok());
  ASSERT_EQ(selected.positions.size(), size_t(kKvHeads));
  for (int h = 0; h < kKvHeads; ++h) {
    ASSERT_EQ(selected.positions[h].size(), 160u);
    EXPECT_TRUE(std::is_sorted(selected.positions[h].begin(), selected.positions[h].end()));
    // Position -> chunk and token; the key equals RoPE at that position.
    for (size_t j = 0; j < selected.positions[h].size(); ++j) {
      const int32_t p = selected.positions[h][j];
      for (const Chunk& c : chunks_) {
        if (p < c.start || p >= c.start + c.n) continue;
        std::vector<float> abs(c.pre_keys.begin() + (size_t(h) * c.n + (p - c.start)) * kD,
                               c.pre_keys.begin() + (size_t(h) * c.n + (p - c.start) + 1) * kD);
        ASSERT_TRUE(RotateKeys(abs.data(), 1, 1, kD, kTheta, p).ok());
        for (int i = 0; i < kD; ++i) {
          EXPECT_NEAR(selected.keys[h][j * kD + i], abs[i], 1e-4f) << "position " << p;
          EXPECT_EQ(selected.values[h][j * kD + i],
                    c.values[(size_t(h) * c.n + (p - c.start)) * kD + i]);
        }
      }
    }
  }
  PartialResult r;
  ASSERT_TRUE(AttendSelectedKeys(shape_, PostRope(position, 2).data(), 2, selected, &r).ok());
  ExpectClose(r, Full(position, 2), 2e-5f);
}

// One key of the chunk placed at 300 is aligned with the query group of KV
// head 0 at its absolute position. A 5% exact budget finds it only when
// each chunk's clusters are scored in that chunk's frame: the same search
// with the chunk claimed at another start misses it.
TEST_F(ContextAttentionTest, SmallBudgetFindsTheDominantKeyThroughTheRotation) {
  const int64_t position = 20000;
  const int needle = 17;
  const int64_t needle_position = chunks_[1].start + needle;
  // Every query head of KV head 0's group looks the same way.
  std::vector<float> dir = Random(kD, 5);
  for (int i = 0; i < 2; ++i)
    for (int g = 0; g < kGroup; ++g)
      std::copy(dir.begin(), dir.end(), queries_.begin() + (size_t(i) * kHeads + g) * kD);
  // The needle after RoPE at its position is along the query after RoPE at
  // the query's position; store it before RoPE.
  std::vector<float> key = dir;
  ASSERT_TRUE(RotateKeys(key.data(), 1, 1, kD, kTheta, position).ok());
  for (float& x : key) x *= 8.0f;
  ASSERT_TRUE(UnrotateKeys(key.data(), 1, 1, kD, kTheta, needle_position).ok());
  std::copy(key.begin(), key.end(), chunks_[1].pre_keys.begin() + size_t(needle) * kD);
  Build();

  const PartialResult full = Full(position, 1);
  PartialResult r;
  ContextAttentionStats stats;
  ASSERT_TRUE(AttendContext(shape_, layout_, views_, QueryBlock{queries_.data(), 1, position},
                            {0.05, 0.0}, &r, &stats)
                  .ok());
  EXPECT_LT(stats.exact_key_fraction(), 0.15);
  const float* needle_value = &chunks_[1].values[size_t(needle) * kD];
  // Query head 0 (KV head 0): the needle dominates the output.
  for (int i = 0; i < kD; ++i) {
    EXPECT_NEAR(full.out[i], needle_value[i], 0.05f);
    EXPECT_NEAR(r.out[i], full.out[i], 0.05f);
  }

  // The same chunks, the middle one claimed at another start (its query
  // rotation is then wrong): the needle is not among the selected keys.
  std::vector<int64_t> starts = {chunks_[0].start, chunks_[1].start + 9000, chunks_[2].start};
  auto wrong = ContextLayout::Create(kD, kTheta, starts, {50, 70, 40});
  ASSERT_TRUE(wrong.ok());
  SelectedKeys selected;
  ASSERT_TRUE(SelectContextKeys(shape_, *wrong, views_, QueryBlock{queries_.data(), 1, position},
                                0.05, &selected, nullptr)
                  .ok());
  EXPECT_EQ(std::count(selected.positions[0].begin(), selected.positions[0].end(),
                       static_cast<int32_t>(starts[1] + needle)),
            0);
  ASSERT_TRUE(SelectContextKeys(shape_, layout_, views_, QueryBlock{queries_.data(), 1, position},
                                0.05, &selected, nullptr)
                  .ok());
  EXPECT_EQ(std::count(selected.positions[0].begin(), selected.positions[0].end(),
                       static_cast<int32_t>(needle_position)),
            1);
}

TEST_F(ContextAttentionTest, BadLayoutsAndQueriesAreRefused) {
  Build();
  // Overlapping chunks.
  auto overlap = ContextLayout::Create(kD, kTheta, {0, 40}, {50, 10});
  ASSERT_FALSE(overlap.ok());
  EXPECT_EQ(overlap.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(overlap.status().message().find("overlap"), std::string::npos);
  EXPECT_FALSE(ContextLayout::Create(kD, kTheta, {0}, {0}).ok());
  EXPECT_FALSE(ContextLayout::Create(kD, kTheta, {-3}, {4}).ok());
  EXPECT_FALSE(ContextLayout::Create(kD, kTheta, {}, {}).ok());
  EXPECT_FALSE(ContextLayout::Create(kD, kTheta, {0, 5}, {4}).ok());

  PartialResult r;
  // A query inside the context.
  EXPECT_EQ(AttendContext(shape_, layout_, views_, QueryBlock{queries_.data(), 1, 350}, {}, &r,
                          nullptr)
                .code(),
            absl::StatusCode::kInvalidArgument);
  // A bad budget.
  EXPECT_EQ(AttendContext(shape_, layout_, views_, QueryBlock{queries_.data(), 1, 400},
                          {0.9, 0.9}, &r, nullptr)
                .code(),
            absl::StatusCode::kInvalidArgument);
  // A NaN query.
  std::vector<float> nan_q = queries_;
  nan_q[5] = std::nanf("");
  EXPECT_EQ(AttendContext(shape_, layout_, views_, QueryBlock{nan_q.data(), 1, 400}, {}, &r,
                          nullptr)
                .code(),
            absl::StatusCode::kInvalidArgument);
  // Views that do not match the layout.
  std::vector<ChunkLayerView> short_views(views_.begin(), views_.end() - 1);
  EXPECT_FALSE(
      AttendContext(shape_, layout_, short_views, QueryBlock{queries_.data(), 1, 400}, {}, &r,
                    nullptr)
          .ok());
  const AttentionShape other{kHeads, kKvHeads, 16, 0.25f};
  EXPECT_FALSE(
      AttendContext(other, layout_, views_, QueryBlock{queries_.data(), 1, 400}, {}, &r, nullptr)
          .ok());
}

}  // namespace
}  // namespace mnemo::attention
