#include "decoder/sampling.h"

#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace mnemo::decoder {
namespace {

std::vector<float> Logits() { return {0.1f, 2.0f, -1.0f, 1.9f, 0.5f, 1.0f, -3.0f, 1.5f}; }

std::vector<int> Draw(const SamplingOptions& o, int n) {
  Sampler s(o);
  const std::vector<float> l = Logits();
  std::vector<int> out;
  for (int i = 0; i < n; ++i) out.push_back(s.Sample(l));
  return out;
}

TEST(SamplingTest, ZeroTemperatureIsArgMax) {
  SamplingOptions o;
  for (int t : Draw(o, 10)) EXPECT_EQ(t, 1);
  EXPECT_EQ(ArgMax(std::vector<float>{1, 3, 3, 2}), 1);  // first of ties
}

TEST(SamplingTest, SameSeedSameTokensOtherSeedOtherTokens) {
  SamplingOptions o{1.0f, 0, 1.0f, 1234};
  EXPECT_EQ(Draw(o, 200), Draw(o, 200));
  SamplingOptions other = o;
  other.seed = 99;
  EXPECT_NE(Draw(o, 200), Draw(other, 200));
}

TEST(SamplingTest, TopKAndTopPRestrictTheChoices) {
  SamplingOptions k2{5.0f, 2, 1.0f, 7};  // hot: without top-k all would show
  std::set<int> seen;
  for (int t : Draw(k2, 500)) seen.insert(t);
  EXPECT_EQ(seen, (std::set<int>{1, 3}));
  SamplingOptions all{5.0f, 0, 1.0f, 7};
  seen.clear();
  for (int t : Draw(all, 2000)) seen.insert(t);
  EXPECT_EQ(seen.size(), 8u);
  // At temperature 1, p(1) ~ 0.30 and p(3) ~ 0.27: top-p 0.25 keeps only
  // 1, top-p 0.5 keeps 1 and 3.
  SamplingOptions p03{1.0f, 0, 0.25f, 7};
  for (int t : Draw(p03, 200)) EXPECT_EQ(t, 1);
  SamplingOptions p05{1.0f, 0, 0.5f, 7};
  seen.clear();
  for (int t : Draw(p05, 500)) seen.insert(t);
  EXPECT_EQ(seen, (std::set<int>{1, 3}));
}

TEST(SamplingTest, ValidationNamesTheField) {
  EXPECT_FALSE(ValidateSamplingOptions({-1.0f, 0, 1.0f, 0}).ok());
  EXPECT_FALSE(ValidateSamplingOptions({1.0f, -2, 1.0f, 0}).ok());
  EXPECT_FALSE(ValidateSamplingOptions({1.0f, 0, 0.0f, 0}).ok());
  EXPECT_FALSE(ValidateSamplingOptions({1.0f, 0, 1.5f, 0}).ok());
  EXPECT_TRUE(ValidateSamplingOptions({0.7f, 40, 0.9f, 0}).ok());
}

}  // namespace
}  // namespace mnemo::decoder
