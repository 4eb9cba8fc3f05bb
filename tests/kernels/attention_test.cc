// The CUDA partial attention and merge (kernels/attention.h) against the
// CPU reference (attention/partial.h). GPU cases skip without a usable
// device; without CUDA the calls must report UNAVAILABLE.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <ostream>
#include <random>
#include <vector>

#include "attention/partial.h"
#include "gtest/gtest.h"
#include "kernels/exact_topk.h"

namespace mnemo {
namespace {

// fp32 on both sides; the kernel uses __expf and a different summation
// order (online softmax over chunks of 128 keys).
constexpr float kOutTolerance = 2e-5f;
constexpr float kLseTolerance = 1e-4f;

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss;
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng);
  return x;
}

struct Case {
  int n_heads, n_kv_heads, head_dim, n_queries, n_keys;
  int32_t q0;
  bool causal;
  bool scrambled_positions;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "heads=" << c.n_heads << "/" << c.n_kv_heads << " hd=" << c.head_dim
      << " nq=" << c.n_queries << " nk=" << c.n_keys << " q0=" << c.q0
      << (c.causal ? " causal" : "") << (c.scrambled_positions ? " positions" : "");
}

class GpuAttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(GpuAttentionTest, MatchesCpuReference) {
  if (absl::Status s = kernels::CudaDeviceAvailable(); !s.ok()) GTEST_SKIP() << s;
  const Case c = GetParam();
  const int64_t stride = c.n_keys + 3;  // a view into a larger cache
  auto q = Random(size_t{1} * c.n_queries * c.n_heads * c.head_dim, 1);
  auto k = Random(size_t{1} * c.n_kv_heads * stride * c.head_dim, 2);
  auto v = Random(k.size(), 3);
  std::vector<int32_t> pos(c.n_keys);
  for (int j = 0; j < c.n_keys; ++j) pos[j] = c.scrambled_positions ? (j * 7919) % c.n_keys : j;

  attention::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim,
                                  1.0f / std::sqrt(static_cast<float>(c.head_dim))};
  attention::KeyValueBlock kv{k.data(), v.data(), c.n_keys, stride,
                              c.scrambled_positions ? pos.data() : nullptr, 0};
  attention::PartialResult want;
  ASSERT_TRUE(attention::AttendPartial(shape, attention::QueryBlock{q.data(), c.n_queries, c.q0},
                                       kv, c.causal, &want)
                  .ok());

  kernels::PartialAttentionArgs a;
  a.n_heads = c.n_heads;
  a.n_kv_heads = c.n_kv_heads;
  a.head_dim = c.head_dim;
  a.scale = shape.scale;
  a.queries = q.data();
  a.n_queries = c.n_queries;
  a.query_first_position = c.q0;
  a.keys = k.data();
  a.values = v.data();
  a.n_keys = c.n_keys;
  a.head_stride = stride;
  a.key_positions = c.scrambled_positions ? pos.data() : nullptr;
  a.causal = c.causal;
  std::vector<float> out(want.out.size()), lse(want.lse.size()), mx(want.max.size());
  a.out = out.data();
  a.lse = lse.data();
  a.max = mx.data();
  ASSERT_TRUE(kernels::PartialAttention(a).ok());
  float worst = 0;
  for (size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::abs(out[i] - want.out[i]));
  EXPECT_LE(worst, kOutTolerance);
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(want.lse[i])) {
      EXPECT_EQ(lse[i], want.lse[i]);
    } else {
      EXPECT_NEAR(lse[i], want.lse[i], kLseTolerance);
      EXPECT_NEAR(mx[i], want.max[i], kLseTolerance);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GpuAttentionTest,
    ::testing::Values(Case{8, 2, 32, 1, 200, 199, true, false},    // decode step
                      Case{8, 2, 32, 37, 37, 0, true, false},      // prefill from 0
                      Case{8, 2, 32, 16, 300, 284, true, false},   // prefill after a cache
                      Case{4, 4, 64, 3, 129, 1000, false, false},  // MHA, chunk edge
                      Case{16, 2, 128, 2, 500, 0, true, true},     // retrieved keys, masked
                      Case{6, 3, 256, 2, 1, 0, true, false}));     // widest head, one key

TEST(GpuAttentionMergeTest, MatchesCpuMerge) {
  if (absl::Status s = kernels::CudaDeviceAvailable(); !s.ok()) GTEST_SKIP() << s;
  const int rows = 24, hd = 32;
  attention::PartialResult a = attention::PartialResult::Empty(3, 8, hd), b = a;
  a.out = Random(a.out.size(), 4);
  b.out = Random(b.out.size(), 5);
  auto la = Random(rows, 6), lb = Random(rows, 7);
  for (int r = 0; r < rows; ++r) {
    a.lse[r] = la[r];
    a.max[r] = la[r] - 1;
    b.lse[r] = r % 5 == 0 ? -std::numeric_limits<float>::infinity() : lb[r];
    b.max[r] = lb[r] - 1;
  }
  attention::PartialResult want = a;
  ASSERT_TRUE(attention::MergePartial(b, &want).ok());
  attention::PartialResult got = a;
  ASSERT_TRUE(kernels::MergePartialAttention(rows, hd, got.out.data(), got.lse.data(),
                                             got.max.data(), b.out.data(), b.lse.data(),
                                             b.max.data())
                  .ok());
  for (size_t i = 0; i < got.out.size(); ++i) EXPECT_NEAR(got.out[i], want.out[i], 1e-5f);
  for (int r = 0; r < rows; ++r) EXPECT_NEAR(got.lse[r], want.lse[r], 1e-5f);
}

TEST(GpuAttentionArgsTest, UnavailableOrRejectsBadArgs) {
  kernels::PartialAttentionArgs a;  // all zero: invalid sizes
  const absl::Status s = kernels::PartialAttention(a);
  if (kernels::CudaDeviceAvailable().ok()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  } else {
    EXPECT_TRUE(s.code() == absl::StatusCode::kUnavailable ||
                s.code() == absl::StatusCode::kInvalidArgument)
        << s;
  }
}

}  // namespace
}  // namespace mnemo
