#include "index/fusion.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace mnemo::index {
namespace {

std::vector<int64_t> Ids(const std::vector<ScoredId>& hits) {
  std::vector<int64_t> ids;
  for (const auto& [id, score] : hits) ids.push_back(id);
  return ids;
}

TEST(ReciprocalRankFusionTest, MatchesHandComputation) {
  // List A: 1, 2, 3; list B: 3, 1, 4.
  auto fused = ReciprocalRankFusion({{1, 2, 3}, {3, 1, 4}}, 10, 60);
  ASSERT_TRUE(fused.ok()) << fused.status();
  const double s1 = 1.0 / 61 + 1.0 / 62;
  const double s3 = 1.0 / 63 + 1.0 / 61;
  const double s2 = 1.0 / 62;
  const double s4 = 1.0 / 63;
  ASSERT_EQ(Ids(*fused), (std::vector<int64_t>{1, 3, 2, 4}));
  EXPECT_NEAR((*fused)[0].second, s1, 1e-7);
  EXPECT_NEAR((*fused)[1].second, s3, 1e-7);
  EXPECT_NEAR((*fused)[2].second, s2, 1e-7);
  EXPECT_NEAR((*fused)[3].second, s4, 1e-7);
}

TEST(ReciprocalRankFusionTest, RrfKChangesScores) {
  auto fused = ReciprocalRankFusion({{5, 6}}, 10, 0);
  ASSERT_TRUE(fused.ok());
  ASSERT_EQ(fused->size(), 2u);
  EXPECT_FLOAT_EQ((*fused)[0].second, 1.0f);
  EXPECT_FLOAT_EQ((*fused)[1].second, 0.5f);
}

TEST(ReciprocalRankFusionTest, TiesBreakByAscendingId) {
  // 7 and 2 each get 1/61 + 1/62.
  auto fused = ReciprocalRankFusion({{7, 2}, {2, 7}}, 10);
  ASSERT_TRUE(fused.ok());
  EXPECT_EQ(Ids(*fused), (std::vector<int64_t>{2, 7}));
  EXPECT_EQ((*fused)[0].second, (*fused)[1].second);
}

TEST(ReciprocalRankFusionTest, IdInOneListOnlyGetsOneTerm) {
  auto fused = ReciprocalRankFusion({{1, 9}, {1}}, 10);
  ASSERT_TRUE(fused.ok());
  ASSERT_EQ(Ids(*fused), (std::vector<int64_t>{1, 9}));
  EXPECT_NEAR((*fused)[1].second, 1.0 / 62, 1e-7);
}

TEST(ReciprocalRankFusionTest, TruncatesToK) {
  auto fused = ReciprocalRankFusion({{1, 2, 3, 4}}, 2);
  ASSERT_TRUE(fused.ok());
  EXPECT_EQ(Ids(*fused), (std::vector<int64_t>{1, 2}));
}

TEST(ReciprocalRankFusionTest, EmptyListsGiveEmptyResult) {
  auto none = ReciprocalRankFusion({}, 5);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto empties = ReciprocalRankFusion({{}, {}}, 5);
  ASSERT_TRUE(empties.ok());
  EXPECT_TRUE(empties->empty());
  auto one = ReciprocalRankFusion({{}, {4}}, 5);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(Ids(*one), (std::vector<int64_t>{4}));
}

TEST(ReciprocalRankFusionTest, PaddingAndDuplicatesAreIgnored) {
  // -1 padding keeps its rank slot; the repeated 3 counts once, at rank 1.
  auto fused = ReciprocalRankFusion({{3, -1, 3, 8}}, 10);
  ASSERT_TRUE(fused.ok());
  ASSERT_EQ(Ids(*fused), (std::vector<int64_t>{3, 8}));
  EXPECT_NEAR((*fused)[0].second, 1.0 / 61, 1e-7);
  EXPECT_NEAR((*fused)[1].second, 1.0 / 64, 1e-7);
}

TEST(ReciprocalRankFusionTest, BadArgumentsAreInvalid) {
  EXPECT_EQ(ReciprocalRankFusion({{1}}, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReciprocalRankFusion({{1}}, -2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReciprocalRankFusion({{1}}, 3, -1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(WeightedFusionTest, MinMaxMatchesHandComputation) {
  // BM25 (higher better): 1 -> 10, 2 -> 6, 3 -> 2; normalised 1, 0.5, 0.
  // L2 (lower better):    2 -> 0.5, 4 -> 1.5, 1 -> 2.5; normalised 1, 0.5, 0.
  std::vector<WeightedList> lists(2);
  lists[0].hits = {{1, 10.0f}, {2, 6.0f}, {3, 2.0f}};
  lists[0].weight = 0.3;
  lists[1].hits = {{2, 0.5f}, {4, 1.5f}, {1, 2.5f}};
  lists[1].weight = 0.7;
  lists[1].higher_is_better = false;
  auto fused = WeightedFusion(lists, 10);
  ASSERT_TRUE(fused.ok()) << fused.status();
  // 2: 0.3*0.5 + 0.7*1 = 0.85; 4: 0.7*0.5 = 0.35; 1: 0.3*1 + 0 = 0.3;
  // 3: 0.3*0 + missing 0 = 0.
  ASSERT_EQ(Ids(*fused), (std::vector<int64_t>{2, 4, 1, 3}));
  EXPECT_NEAR((*fused)[0].second, 0.85, 1e-6);
  EXPECT_NEAR((*fused)[1].second, 0.35, 1e-6);
  EXPECT_NEAR((*fused)[2].second, 0.30, 1e-6);
  EXPECT_NEAR((*fused)[3].second, 0.0, 1e-6);
}

TEST(WeightedFusionTest, MissingEntryCountsZero) {
  std::vector<WeightedList> lists(2);
  lists[0].hits = {{1, 3.0f}, {2, 1.0f}};
  lists[1].hits = {{5, 0.9f}, {2, 0.1f}};
  auto fused = WeightedFusion(lists, 10);
  ASSERT_TRUE(fused.ok());
  // 1: 1 + 0; 5: 0 + 1; 2: 0 + 0.
  ASSERT_EQ(Ids(*fused), (std::vector<int64_t>{1, 5, 2}));
  EXPECT_FLOAT_EQ((*fused)[0].second, 1.0f);
  EXPECT_FLOAT_EQ((*fused)[1].second, 1.0f);
  EXPECT_FLOAT_EQ((*fused)[2].second, 0.0f);
}

TEST(WeightedFusionTest, ConstantListNormalisesToOne) {
  std::vector<WeightedList> lists(1);
  lists[0].hits = {{4, 2.0f}, {3, 2.0f}};
  lists[0].weight = 0.5;
  auto fused = WeightedFusion(lists, 10);
  ASSERT_TRUE(fused.ok());
  ASSERT_EQ(Ids(*fused), (std::vector<int64_t>{3, 4}));  // tie by id
  EXPECT_FLOAT_EQ((*fused)[0].second, 0.5f);
  EXPECT_FLOAT_EQ((*fused)[1].second, 0.5f);
}

TEST(WeightedFusionTest, NoNormalisationUsesRawScores) {
  std::vector<WeightedList> lists(2);
  lists[0].hits = {{1, 0.9f}, {2, 0.2f}};
  lists[0].normalization = ScoreNormalization::kNone;
  lists[1].hits = {{2, 0.4f}};
  lists[1].weight = 2.0;
  lists[1].higher_is_better = false;
  lists[1].normalization = ScoreNormalization::kNone;
  auto fused = WeightedFusion(lists, 10);
  ASSERT_TRUE(fused.ok());
  // 1: 0.9; 2: 0.2 + 2 * -0.4 = -0.6.
  ASSERT_EQ(Ids(*fused), (std::vector<int64_t>{1, 2}));
  EXPECT_NEAR((*fused)[0].second, 0.9, 1e-6);
  EXPECT_NEAR((*fused)[1].second, -0.6, 1e-6);
}

TEST(WeightedFusionTest, ZeroWeightKeepsCandidatesAndTruncates) {
  std::vector<WeightedList> lists(2);
  lists[0].hits = {{1, 1.0f}, {2, 0.0f}};
  lists[1].hits = {{9, 5.0f}, {8, 1.0f}};
  lists[1].weight = 0.0;
  auto fused = WeightedFusion(lists, 3);
  ASSERT_TRUE(fused.ok());
  // 1: 1; 2, 8, 9: 0 -> ties by id, cut at 3.
  EXPECT_EQ(Ids(*fused), (std::vector<int64_t>{1, 2, 8}));
}

TEST(WeightedFusionTest, DuplicatesKeepBestAndPaddingIsIgnored) {
  std::vector<WeightedList> lists(1);
  lists[0].hits = {{1, 1.0f}, {1, 3.0f}, {-1, 100.0f}, {2, 2.0f}};
  auto fused = WeightedFusion(lists, 10);
  ASSERT_TRUE(fused.ok());
  ASSERT_EQ(Ids(*fused), (std::vector<int64_t>{1, 2}));
  EXPECT_FLOAT_EQ((*fused)[0].second, 1.0f);
  EXPECT_FLOAT_EQ((*fused)[1].second, 0.0f);
}

TEST(WeightedFusionTest, EmptyListsGiveEmptyResult) {
  auto none = WeightedFusion({}, 4);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  std::vector<WeightedList> lists(2);
  lists[1].hits = {{6, 0.3f}};
  auto one = WeightedFusion(lists, 4);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(Ids(*one), (std::vector<int64_t>{6}));
  EXPECT_FLOAT_EQ((*one)[0].second, 1.0f);
}

TEST(WeightedFusionTest, BadArgumentsAreInvalid) {
  std::vector<WeightedList> lists(1);
  lists[0].hits = {{1, 1.0f}};
  EXPECT_EQ(WeightedFusion(lists, 0).status().code(), absl::StatusCode::kInvalidArgument);
  for (double w : {-0.5, std::numeric_limits<double>::infinity(),
                   std::numeric_limits<double>::quiet_NaN()}) {
    lists[0].weight = w;
    EXPECT_EQ(WeightedFusion(lists, 1).status().code(), absl::StatusCode::kInvalidArgument) << w;
  }
  lists[0].weight = 1.0;
  lists[0].hits = {{1, std::numeric_limits<float>::quiet_NaN()}};
  EXPECT_EQ(WeightedFusion(lists, 1).status().code(), absl::StatusCode::kInvalidArgument);
  lists[0].hits = {{1, -std::numeric_limits<float>::infinity()}};
  EXPECT_EQ(WeightedFusion(lists, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mnemo::index
