// attention/partial.h against a naive double-precision attention: partials
// merged by log-sum-exp equal full attention, GQA head mapping, causal mask.
#include "attention/partial.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace mnemo::attention {
namespace {

// float32 BLAS products of length <= 128 against a double reference.
constexpr float kTolerance = 1e-5f;

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss;
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng);
  return x;
}

AttentionShape Shape(int h, int kvh, int hd) {
  return AttentionShape{h, kvh, hd, static_cast<float>(1.0 / std::sqrt(hd))};
}

// Naive attention: queries [nq, H, hd] at positions q0 + i, keys/values
// [KVH, nk, hd] at positions k0 + j. kv_head_of(h) picks the KV head.
std::vector<double> Naive(const AttentionShape& s, const std::vector<float>& q, int nq, int q0,
                          const std::vector<float>& k, const std::vector<float>& v, int nk, int k0,
                          bool causal) {
  const int hd = s.head_dim;
  std::vector<double> out(static_cast<size_t>(nq) * s.n_heads * hd, 0.0);
  for (int i = 0; i < nq; ++i) {
    for (int h = 0; h < s.n_heads; ++h) {
      const int g = h / (s.n_heads / s.n_kv_heads);
      std::vector<double> sc(nk);
      double m = -std::numeric_limits<double>::infinity();
      for (int j = 0; j < nk; ++j) {
        double dot = 0;
        for (int d = 0; d < hd; ++d) {
          dot += double{q[(static_cast<size_t>(i) * s.n_heads + h) * hd + d]} *
                 k[(static_cast<size_t>(g) * nk + j) * hd + d];
        }
        sc[j] = (causal && k0 + j > q0 + i) ? -INFINITY : dot * s.scale;
        m = std::max(m, sc[j]);
      }
      if (m == -INFINITY) continue;
      double z = 0;
      for (int j = 0; j < nk; ++j) z += std::exp(sc[j] - m);
      for (int j = 0; j < nk; ++j) {
        const double p = std::exp(sc[j] - m) / z;
        for (int d = 0; d < hd; ++d) {
          out[(static_cast<size_t>(i) * s.n_heads + h) * hd + d] +=
              p * v[(static_cast<size_t>(g) * nk + j) * hd + d];
        }
      }
    }
  }
  return out;
}

void ExpectNear(const std::vector<float>& got, const std::vector<double>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  double max_diff = 0;
  for (size_t i = 0; i < got.size(); ++i) max_diff = std::max(max_diff, std::abs(got[i] - want[i]));
  EXPECT_LE(max_diff, tol) << "max abs diff " << max_diff;
}

// Copies keys [KVH, nk, hd] rows [begin, end) of every head.
std::vector<float> Slice(const std::vector<float>& x, int kvh, int nk, int hd, int begin, int end) {
  std::vector<float> out;
  for (int g = 0; g < kvh; ++g) {
    out.insert(out.end(), x.begin() + (static_cast<size_t>(g) * nk + begin) * hd,
               x.begin() + (static_cast<size_t>(g) * nk + end) * hd);
  }
  return out;
}

TEST(PartialAttentionTest, SinglePartialMatchesNaive) {
  const AttentionShape s = Shape(8, 2, 32);
  const int nq = 5, nk = 37;
  auto q = Random(nq * 8 * 32, 1), k = Random(2 * nk * 32, 2), v = Random(2 * nk * 32, 3);
  KeyValueBlock kv{k.data(), v.data(), nk, nk};
  PartialResult r;
  ASSERT_TRUE(AttendPartial(s, QueryBlock{q.data(), nq, 100}, kv, false, &r).ok());
  ExpectNear(r.out, Naive(s, q, nq, 100, k, v, nk, 0, false), kTolerance);
}

TEST(PartialAttentionTest, MergedPartialsEqualFullAttention) {
  const AttentionShape s = Shape(8, 2, 32);
  const int nq = 4, nk = 100;
  auto q = Random(nq * 8 * 32, 4), k = Random(2 * nk * 32, 5), v = Random(2 * nk * 32, 6);
  // Three uneven pieces merged in a scrambled order.
  const int cuts[] = {0, 13, 71, 100};
  PartialResult acc = PartialResult::Empty(nq, 8, 32);
  for (int piece : {2, 0, 1}) {
    const int b = cuts[piece], e = cuts[piece + 1];
    auto ks = Slice(k, 2, nk, 32, b, e), vs = Slice(v, 2, nk, 32, b, e);
    KeyValueBlock kv{ks.data(), vs.data(), e - b, e - b, nullptr, b};
    PartialResult part;
    ASSERT_TRUE(AttendPartial(s, QueryBlock{q.data(), nq, 1000}, kv, true, &part).ok());
    ASSERT_TRUE(MergePartial(part, &acc).ok());
  }
  ExpectNear(acc.out, Naive(s, q, nq, 1000, k, v, nk, 0, false), kTolerance);
  // The merged log-sum-exp and max equal those over all keys at once.
  PartialResult full;
  KeyValueBlock all{k.data(), v.data(), nk, nk};
  ASSERT_TRUE(AttendPartial(s, QueryBlock{q.data(), nq, 1000}, all, true, &full).ok());
  for (size_t i = 0; i < full.lse.size(); ++i) {
    EXPECT_NEAR(acc.lse[i], full.lse[i], 1e-4f);
    EXPECT_NEAR(acc.max[i], full.max[i], 1e-5f);
  }
}

TEST(PartialAttentionTest, GqaQueryHeadReadsItsKvHead) {
  // KV head g holds values all equal to g: query head h must output
  // h / (n_heads / n_kv_heads) in every dimension.
  const AttentionShape s = Shape(6, 3, 8);
  const int nk = 4;
  auto q = Random(6 * 8, 7), k = Random(3 * nk * 8, 8);
  std::vector<float> v(3 * nk * 8);
  for (int g = 0; g < 3; ++g) std::fill_n(v.begin() + g * nk * 8, nk * 8, static_cast<float>(g));
  PartialResult r;
  ASSERT_TRUE(AttendPartial(s, QueryBlock{q.data(), 1, 0}, KeyValueBlock{k.data(), v.data(), nk, nk},
                            false, &r).ok());
  for (int h = 0; h < 6; ++h) {
    for (int d = 0; d < 8; ++d) EXPECT_NEAR(r.out[h * 8 + d], h / 2, 1e-6f) << "head " << h;
  }
}

TEST(PartialAttentionTest, CausalMaskHidesLaterKeys) {
  const AttentionShape s = Shape(4, 2, 16);
  const int n = 9;
  auto q = Random(n * 4 * 16, 9), k = Random(2 * n * 16, 10), v = Random(2 * n * 16, 11);
  PartialResult r;
  ASSERT_TRUE(AttendPartial(s, QueryBlock{q.data(), n, 0}, KeyValueBlock{k.data(), v.data(), n, n},
                            true, &r).ok());
  ExpectNear(r.out, Naive(s, q, n, 0, k, v, n, 0, true), kTolerance);
  // Query 0 sees only key 0: its output is exactly v[0] of its KV head.
  for (int h = 0; h < 4; ++h) {
    for (int d = 0; d < 16; ++d) EXPECT_NEAR(r.out[h * 16 + d], v[(h / 2) * n * 16 + d], 1e-6f);
  }
  std::vector<float> probs;
  ASSERT_TRUE(AttentionProbabilities(s, QueryBlock{q.data(), n, 0},
                                     KeyValueBlock{k.data(), v.data(), n, n}, true, &probs).ok());
  for (int h = 0; h < 4; ++h) {
    for (int i = 0; i < n; ++i) {
      double sum = 0;
      for (int j = 0; j < n; ++j) {
        const float p = probs[(static_cast<size_t>(h) * n + i) * n + j];
        if (j > i) {
          EXPECT_EQ(p, 0.0f);
        }
        sum += p;
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  }
}

TEST(PartialAttentionTest, RetrievedKeysInAnyOrderWithPositions) {
  // A key set given in scrambled order with explicit positions equals the
  // same keys in order, and masks by the given positions.
  const AttentionShape s = Shape(2, 1, 8);
  const int nk = 6;
  auto q = Random(2 * 8, 12), k = Random(nk * 8, 13), v = Random(nk * 8, 14);
  const int perm[nk] = {4, 1, 5, 0, 3, 2};
  std::vector<float> kp, vp;
  std::vector<int32_t> pos;
  for (int j : perm) {
    kp.insert(kp.end(), k.begin() + j * 8, k.begin() + j * 8 + 8);
    vp.insert(vp.end(), v.begin() + j * 8, v.begin() + j * 8 + 8);
    pos.push_back(10 + j);
  }
  PartialResult a, b;
  KeyValueBlock in_order{k.data(), v.data(), nk, nk, nullptr, 10};
  KeyValueBlock scrambled{kp.data(), vp.data(), nk, nk, pos.data(), 0};
  ASSERT_TRUE(AttendPartial(s, QueryBlock{q.data(), 1, 13}, in_order, true, &a).ok());
  ASSERT_TRUE(AttendPartial(s, QueryBlock{q.data(), 1, 13}, scrambled, true, &b).ok());
  for (size_t i = 0; i < a.out.size(); ++i) EXPECT_NEAR(a.out[i], b.out[i], 1e-6f);
  EXPECT_NEAR(a.lse[0], b.lse[0], 1e-6f);
}

TEST(PartialAttentionTest, FullyMaskedAndEmptyMergeAsIdentity) {
  const AttentionShape s = Shape(2, 2, 4);
  auto q = Random(2 * 4, 15), k = Random(2 * 3 * 4, 16), v = Random(2 * 3 * 4, 17);
  PartialResult masked;
  // Keys at positions 5..7, query at 0: everything masked.
  ASSERT_TRUE(AttendPartial(s, QueryBlock{q.data(), 1, 0},
                            KeyValueBlock{k.data(), v.data(), 3, 3, nullptr, 5}, true, &masked)
                  .ok());
  EXPECT_EQ(masked.lse[0], -std::numeric_limits<float>::infinity());
  for (float x : masked.out) EXPECT_EQ(x, 0.0f);
  PartialResult real;
  ASSERT_TRUE(AttendPartial(s, QueryBlock{q.data(), 1, 0},
                            KeyValueBlock{k.data(), v.data(), 3, 3}, false, &real).ok());
  PartialResult acc = real;
  ASSERT_TRUE(MergePartial(masked, &acc).ok());
  EXPECT_EQ(acc.out, real.out);
  PartialResult acc2 = masked;
  ASSERT_TRUE(MergePartial(real, &acc2).ok());
  EXPECT_EQ(acc2.out, real.out);
}

TEST(PartialAttentionTest, RejectsBadShapes) {
  PartialResult r;
  std::vector<float> q(8), k(8);
  EXPECT_EQ(AttendPartial(Shape(3, 2, 4), QueryBlock{q.data(), 1, 0},
                          KeyValueBlock{k.data(), k.data(), 1, 1}, false, &r).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AttendPartial(Shape(2, 2, 4), QueryBlock{q.data(), 1, 0},
                          KeyValueBlock{k.data(), k.data(), 2, 1}, false, &r).code(),
            absl::StatusCode::kInvalidArgument);
  PartialResult a = PartialResult::Empty(1, 2, 4), b = PartialResult::Empty(2, 2, 4);
  EXPECT_EQ(MergePartial(b, &a).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mnemo::attention
