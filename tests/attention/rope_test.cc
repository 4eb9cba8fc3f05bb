// attention/rope.h: the head-major key rotation against the decoder's
// token-major one (bit for bit), against a float64 rotation, and the RoPE
// properties chunk re-positioning relies on: norms kept, position 0 is the
// identity, re-rotation p -> q equals rotation to q up to rounding, and
// scores depend only on the offset between query and key positions.
#include "attention/rope.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace mnemo::attention {
namespace {

constexpr double kTheta = 10000.0;
constexpr int kHeads = 2;
constexpr int kHeadDim = 32;
// Keys are N(0, 1) per component, so |x| <= ~5. A float32 rotation by
// float32 cos/sin is within a few ulps of the exact one; a rotation of a
// rotation rounds twice more.
constexpr float kRotationTolerance = 2e-6f;
constexpr float kRerotateTolerance = 1e-5f;
// Dot products of 32 components of size ~1: sums of magnitude ~30.
constexpr double kDotTolerance = 1e-4;

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss;
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng);
  return x;
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

bool BitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// One head vector rotated to `pos` in float64.
std::vector<double> ExactRotation(const float* x, int head_dim, double theta, int64_t pos) {
  const int half = head_dim / 2;
  std::vector<double> out(head_dim);
  for (int i = 0; i < half; ++i) {
    const double angle = static_cast<double>(pos) * std::pow(theta, -2.0 * i / head_dim);
    out[i] = x[i] * std::cos(angle) - x[i + half] * std::sin(angle);
    out[i + half] = x[i] * std::sin(angle) + x[i + half] * std::cos(angle);
  }
  return out;
}

std::vector<float> Rotated(std::vector<float> keys, int n_tokens, int64_t first) {
  EXPECT_TRUE(RotateKeys(keys.data(), kHeads, n_tokens, kHeadDim, kTheta, first).ok());
  return keys;
}

double Dot(const float* a, const float* b, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

TEST(RopeTest, RotateKeysMatchesApplyRopeOnTheTransposedLayoutBitForBit) {
  const int T = 57;
  for (int64_t first : {int64_t{0}, int64_t{37}, int64_t{300}, int64_t{123456}}) {
    // Token-major [T, heads, hd], as the decoder's projections.
    const std::vector<float> token_major = Random(static_cast<size_t>(T) * kHeads * kHeadDim, 1);
    std::vector<float> want = token_major;
    std::vector<double> cs, sn;
    RopeTables(kHeadDim, kTheta, first, T, &cs, &sn);
    ApplyRope(want.data(), T, kHeads, kHeadDim, cs, sn);
    // The same keys head-major [heads, T, hd], as stored.
    auto transpose = [T](const std::vector<float>& src) {
      std::vector<float> out(src.size());
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < kHeads; ++h)
          std::copy_n(src.data() + (static_cast<size_t>(t) * kHeads + h) * kHeadDim, kHeadDim,
                      out.data() + (static_cast<size_t>(h) * T + t) * kHeadDim);
      return out;
    };
    std::vector<float> got = transpose(token_major);
    ASSERT_TRUE(RotateKeys(got.data(), kHeads, T, kHeadDim, kTheta, first).ok());
    EXPECT_TRUE(BitIdentical(got, transpose(want))) << "first position " << first;
    // And it is a rotation at all: not the input back.
    if (first > 0) {
      EXPECT_FALSE(BitIdentical(got, transpose(token_major)));
    }
  }
}

TEST(RopeTest, MatchesFloat64Rotation) {
  const int T = 40;
  const std::vector<float> keys = Random(static_cast<size_t>(kHeads) * T * kHeadDim, 2);
  float worst = 0.0f;
  for (int64_t first : {int64_t{0}, int64_t{1000}, int64_t{1} << 20}) {
    const std::vector<float> got = Rotated(keys, T, first);
    for (int h = 0; h < kHeads; ++h) {
      for (int t = 0; t < T; ++t) {
        const size_t off = (static_cast<size_t>(h) * T + t) * kHeadDim;
        const std::vector<double> want =
            ExactRotation(keys.data() + off, kHeadDim, kTheta, first + t);
        for (int i = 0; i < kHeadDim; ++i) {
          worst = std::max(worst, static_cast<float>(std::abs(got[off + i] - want[i])));
        }
      }
    }
  }
  EXPECT_LE(worst, kRotationTolerance);
  std::cout << "[ rope ] float32 rotation vs float64: max abs diff " << worst << "\n";
}

TEST(RopeTest, PositionZeroIsTheIdentity) {
  const std::vector<float> keys = Random(static_cast<size_t>(kHeads) * 1 * kHeadDim, 3);
  EXPECT_TRUE(BitIdentical(Rotated(keys, 1, 0), keys));
  // In a block from 0, token 0 of every head is untouched and token 1 moves.
  const int T = 5;
  const std::vector<float> block = Random(static_cast<size_t>(kHeads) * T * kHeadDim, 4);
  const std::vector<float> got = Rotated(block, T, 0);
  for (int h = 0; h < kHeads; ++h) {
    const size_t t0 = static_cast<size_t>(h) * T * kHeadDim;
    EXPECT_EQ(std::memcmp(got.data() + t0, block.data() + t0, kHeadDim * sizeof(float)), 0);
    EXPECT_NE(std::memcmp(got.data() + t0 + kHeadDim, block.data() + t0 + kHeadDim,
                          kHeadDim * sizeof(float)),
              0);
  }
}

TEST(RopeTest, RotationPreservesNorms) {
  const int T = 64;
  const std::vector<float> keys = Random(static_cast<size_t>(kHeads) * T * kHeadDim, 5);
  double worst = 0.0;
  for (int64_t first : {int64_t{1}, int64_t{511}, int64_t{98765}}) {
    const std::vector<float> got = Rotated(keys, T, first);
    for (size_t r = 0; r < static_cast<size_t>(kHeads) * T; ++r) {
      const float* a = keys.data() + r * kHeadDim;
      const float* b = got.data() + r * kHeadDim;
      const double na = std::sqrt(Dot(a, a, kHeadDim)), nb = std::sqrt(Dot(b, b, kHeadDim));
      worst = std::max(worst, std::abs(na - nb) / na);
    }
  }
  EXPECT_LE(worst, 1e-6);
  std::cout << "[ rope ] norm kept: max relative change " << worst << "\n";
}

TEST(RopeTest, RerotationFromPToQMatchesRotationToQ) {
  const int T = 48;
  const std::vector<float> keys = Random(static_cast<size_t>(kHeads) * T * kHeadDim, 6);
  float worst = 0.0f;
  const std::pair<int64_t, int64_t> moves[] = {
      {0, 37}, {37, 300}, {300, 37}, {0, 0}, {511, 1}, {5, 100000}, {100000, 250000}};
  for (const auto& [p, q] : moves) {
    std::vector<float> moved = Rotated(keys, T, p);
    ASSERT_TRUE(RerotateKeys(moved.data(), kHeads, T, kHeadDim, kTheta, p, q).ok());
    const float d = MaxAbsDiff(moved, Rotated(keys, T, q));
    EXPECT_LE(d, kRerotateTolerance) << p << " -> " << q;
    worst = std::max(worst, d);
  }
  std::cout << "[ rope ] re-rotate p->q vs rotate to q: max abs diff " << worst
            << " (tolerance " << kRerotateTolerance << ")\n";
  // Moving by 0 changes nothing, bit for bit.
  std::vector<float> same = Rotated(keys, T, 300);
  ASSERT_TRUE(RerotateKeys(same.data(), kHeads, T, kHeadDim, kTheta, 300, 300).ok());
  EXPECT_TRUE(BitIdentical(same, Rotated(keys, T, 300)));
}

TEST(RopeTest, ScoresDependOnlyOnTheOffset) {
  // One query and one key head vector; rotate the query to p + d and the
  // key to p: the dot product must not depend on p.
  const std::vector<float> q = Random(kHeadDim, 7), k = Random(kHeadDim, 8);
  auto rotated_one = [](std::vector<float> x, int64_t pos) {
    EXPECT_TRUE(RotateKeys(x.data(), 1, 1, kHeadDim, kTheta, pos).ok());
    return x;
  };
  double worst = 0.0;
  for (int64_t d : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{100}, int64_t{-3}}) {
    const int64_t base = std::max<int64_t>(0, -d);
    const double want =
        Dot(rotated_one(q, base + d).data(), rotated_one(k, base).data(), kHeadDim);
    for (int64_t p : {int64_t{13}, int64_t{1000}, int64_t{50000}}) {
      const double got = Dot(rotated_one(q, p + d).data(), rotated_one(k, p).data(), kHeadDim);
      EXPECT_NEAR(got, want, kDotTolerance) << "offset " << d << " at " << p;
      worst = std::max(worst, std::abs(got - want));
    }
  }
  // At offset 0 the score is the unrotated one.
  EXPECT_NEAR(Dot(rotated_one(q, 4321).data(), rotated_one(k, 4321).data(), kHeadDim),
              Dot(q.data(), k.data(), kHeadDim), kDotTolerance);
  // And the offset matters (RoPE is not a no-op on scores).
  EXPECT_GT(std::abs(Dot(rotated_one(q, 10).data(), rotated_one(k, 0).data(), kHeadDim) -
                     Dot(q.data(), k.data(), kHeadDim)),
            100 * kDotTolerance);
  std::cout << "[ rope ] score at (p + d, p) vs at (d, 0): max abs diff " << worst << "\n";
}

TEST(RopeTest, BadArgumentsAreRefusedAndKeysUntouched) {
  const int T = 3;
  const std::vector<float> keys = Random(static_cast<size_t>(kHeads) * T * kHeadDim, 9);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    const char* what;
    int heads, tokens, head_dim;
    double theta;
    int64_t first;
  };
  const Case cases[] = {
      {"odd head_dim", kHeads, T, 31, kTheta, 0},
      {"zero head_dim", kHeads, T, 0, kTheta, 0},
      {"negative position", kHeads, T, kHeadDim, kTheta, -1},
      {"position past 2^53", kHeads, T, kHeadDim, kTheta, kMaxRopePosition - 2},
      {"NaN theta", kHeads, T, kHeadDim, nan, 0},
      {"infinite theta", kHeads, T, kHeadDim, inf, 0},
      {"zero theta", kHeads, T, kHeadDim, 0.0, 0},
      {"no heads", 0, T, kHeadDim, kTheta, 0},
      {"negative tokens", kHeads, -1, kHeadDim, kTheta, 0},
  };
  for (const Case& c : cases) {
    std::vector<float> x = keys;
    EXPECT_EQ(RotateKeys(x.data(), c.heads, c.tokens, c.head_dim, c.theta, c.first).code(),
              absl::StatusCode::kInvalidArgument)
        << c.what;
    EXPECT_EQ(RerotateKeys(x.data(), c.heads, c.tokens, c.head_dim, c.theta, c.first, 5).code(),
              absl::StatusCode::kInvalidArgument)
        << c.what;
    EXPECT_EQ(RerotateKeys(x.data(), c.heads, c.tokens, c.head_dim, c.theta, 5, c.first).code(),
              absl::StatusCode::kInvalidArgument)
        << c.what;
    EXPECT_TRUE(BitIdentical(x, keys)) << c.what;
  }
  EXPECT_EQ(RotateKeys(nullptr, kHeads, T, kHeadDim, kTheta, 0).code(),
            absl::StatusCode::kInvalidArgument);
  // No tokens: nothing to do, whatever the pointer.
  EXPECT_TRUE(RotateKeys(nullptr, kHeads, 0, kHeadDim, kTheta, 0).ok());
  EXPECT_TRUE(ValidateRope(kHeadDim, kTheta, kMaxRopePosition - T, T).ok());
}

TEST(RopeTest, UnrotateUndoesRotateAtAnyPosition) {
  constexpr int kTokens = 17;
  const std::vector<float> pre = Random(static_cast<size_t>(kHeads) * kTokens * kHeadDim, 11);
  for (int64_t p : {int64_t{0}, int64_t{1}, int64_t{300}, int64_t{100000}}) {
    std::vector<float> k = pre;
    ASSERT_TRUE(RotateKeys(k.data(), kHeads, kTokens, kHeadDim, kTheta, p).ok());
    if (p > 0) EXPECT_GT(MaxAbsDiff(k, pre), 0.01f) << "rotation did nothing at " << p;
    ASSERT_TRUE(UnrotateKeys(k.data(), kHeads, kTokens, kHeadDim, kTheta, p).ok());
    EXPECT_LE(MaxAbsDiff(k, pre), kRotationTolerance) << "position " << p;
  }
  std::vector<float> k = pre;
  EXPECT_FALSE(UnrotateKeys(k.data(), kHeads, kTokens, kHeadDim, kTheta, -1).ok());
  EXPECT_FALSE(UnrotateKeys(k.data(), kHeads, kTokens, 7, kTheta, 0).ok());
  EXPECT_TRUE(BitIdentical(k, pre));
}

}  // namespace
}  // namespace mnemo::attention
