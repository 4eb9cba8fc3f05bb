// The CUDA KV dequantization (kernels/kv_dequant.h) against the CPU
// reference (attention/kv_quant.h). GPU cases skip without a usable device;
// without CUDA the call must report UNAVAILABLE.
#include "kernels/kv_dequant.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "attention/kv_quant.h"
#include "gtest/gtest.h"
#include "kernels/exact_topk.h"

namespace mnemo {
namespace {

// Both sides compute fp32(fp32(code * scale) + min) with no FMA, so the
// results are expected to be bitwise equal; the assertion allows 1e-6 of
// the tensor's largest magnitude (one fp32 rounding of a product, should
// a compiler ever contract the CPU side into an FMA).
constexpr double kTolerance = 1e-6;

std::vector<float> Random(size_t n, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, stddev);
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng);
  return x;
}

struct Case {
  int bits;
  attention::QuantGrouping grouping;
  uint32_t heads, tokens, head_dim, group_size;
  attention::QuantParamType params;
  float stddev;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "int" << c.bits
      << (c.grouping == attention::QuantGrouping::kPerToken ? " per-token" : " per-channel") << " ["
      << c.heads << ", " << c.tokens << ", " << c.head_dim << "] g" << c.group_size
      << (c.params == attention::QuantParamType::kFp16 ? " fp16" : " fp32") << " params";
}

attention::KvQuantSpec SpecOf(const Case& c) {
  return attention::KvQuantSpec{c.heads,    c.tokens,     c.head_dim, c.bits,
                                c.grouping, c.group_size, c.params};
}

kernels::KvDequantArgs ArgsOf(const Case& c, const std::string& payload) {
  kernels::KvDequantArgs a;
  a.bits = c.bits;
  a.grouping = c.grouping == attention::QuantGrouping::kPerToken
                   ? kernels::KvDequantGrouping::kPerToken
                   : kernels::KvDequantGrouping::kPerChannel;
  a.heads = c.heads;
  a.tokens = c.tokens;
  a.head_dim = c.head_dim;
  a.group_size = c.group_size;
  a.fp32_params = c.params == attention::QuantParamType::kFp32;
  a.payload = reinterpret_cast<const uint8_t*>(payload.data());
  a.payload_bytes = payload.size();
  return a;
}

class GpuKvDequantTest : public ::testing::TestWithParam<Case> {};

TEST_P(GpuKvDequantTest, MatchesCpuReference) {
  if (absl::Status s = kernels::CudaDeviceAvailable(); !s.ok()) GTEST_SKIP() << s;
  const Case c = GetParam();
  const attention::KvQuantSpec spec = SpecOf(c);
  const size_t n = size_t{c.heads} * c.tokens * c.head_dim;
  auto x = Random(n, c.bits * 100 + c.tokens, c.stddev);
  for (size_t i = 0; i < n; i += 97) x[i] = 0.0f;  // some exact zeros
  std::string payload;
  ASSERT_TRUE(attention::QuantizeKv(x, spec, &payload).ok());
  std::vector<float> want(n);
  ASSERT_TRUE(attention::DequantizeKv(payload, spec, absl::MakeSpan(want)).ok());

  kernels::KvDequantArgs a = ArgsOf(c, payload);
  std::vector<float> got(n, -1.0f);
  std::vector<uint16_t> got16(n, 0xffff);
  a.out = got.data();
  a.out_fp16 = got16.data();
  const absl::Status s = kernels::DequantizeKvGpu(a);
  ASSERT_TRUE(s.ok()) << s;

  double peak = 0;
  for (float v : x) peak = std::max(peak, std::abs(static_cast<double>(v)));
  const double tol = kTolerance * peak;
  size_t exact = 0;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_LE(std::abs(static_cast<double>(got[i]) - want[i]), tol) << "element " << i;
    exact += got[i] == want[i];
    // fp16 output: the fp32 value rounded to nearest even.
    const float want16 = attention::HalfBitsToFloat(attention::FloatToHalfBits(want[i]));
    const float got16f = attention::HalfBitsToFloat(got16[i]);
    ASSERT_LE(std::abs(static_cast<double>(got16f) - want16),
              tol + std::abs(want16) * 0x1p-10 + 0x1p-24)
        << "fp16 element " << i;
  }
  EXPECT_EQ(exact, n) << "expected bitwise equality (no FMA on either side)";
}

using attention::QuantGrouping;
using attention::QuantParamType;

INSTANTIATE_TEST_SUITE_P(
    Layouts, GpuKvDequantTest,
    ::testing::Values(
        // int8 rows (the codec's int8): one group per (head, token).
        Case{8, QuantGrouping::kPerToken, 8, 512, 128, 128, QuantParamType::kFp16, 1.0f},
        Case{8, QuantGrouping::kPerToken, 3, 17, 5, 5, QuantParamType::kFp32, 1e6f},  // tail word
        // int4 keys: per channel, partial last token group.
        Case{4, QuantGrouping::kPerChannel, 8, 100, 128, 32, QuantParamType::kFp16, 1.0f},
        Case{4, QuantGrouping::kPerChannel, 2, 33, 7, 32, QuantParamType::kFp32, 3.0f},  // odd
        // int4 values: per token, partial last channel group.
        Case{4, QuantGrouping::kPerToken, 4, 64, 80, 32, QuantParamType::kFp16, 1.0f},
        Case{4, QuantGrouping::kPerToken, 1, 3, 3, 2, QuantParamType::kFp16, 1.0f},  // 9 elements
        // More words than the grid has threads (4096 blocks of 256): the
        // grid-stride loop runs twice.
        Case{8, QuantGrouping::kPerToken, 8, 5000, 128, 128, QuantParamType::kFp16, 1.0f},
        Case{4, QuantGrouping::kPerChannel, 16, 4200, 128, 32, QuantParamType::kFp16, 1.0f}));

TEST(GpuKvDequantArgsTest, UnavailableOrRejectsBadArgs) {
  const Case c{8, QuantGrouping::kPerToken, 2, 3, 4, 4, QuantParamType::kFp16, 1.0f};
  std::string payload;
  ASSERT_TRUE(attention::QuantizeKv(Random(24, 1, 1.0f), SpecOf(c), &payload).ok());
  std::vector<float> out(24);
  kernels::KvDequantArgs a = ArgsOf(c, payload);
  a.out = out.data();
  a.payload_bytes -= 1;  // not the layout's size
  const absl::Status s = kernels::DequantizeKvGpu(a);
  if (kernels::CudaDeviceAvailable().ok()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  } else {
    EXPECT_TRUE(s.code() == absl::StatusCode::kUnavailable ||
                s.code() == absl::StatusCode::kInvalidArgument)
        << s;
  }
}

// The host checks the payload size with its own copy of the layout; it must
// accept exactly what the CPU reference writes (with or without a device).
TEST(GpuKvDequantArgsTest, LayoutAgreesWithTheCpuReference) {
  for (const Case& c :
       {Case{4, QuantGrouping::kPerChannel, 2, 33, 7, 32, QuantParamType::kFp32, 1.0f},
        Case{4, QuantGrouping::kPerToken, 1, 3, 3, 2, QuantParamType::kFp16, 1.0f},
        Case{8, QuantGrouping::kPerToken, 3, 17, 5, 5, QuantParamType::kFp16, 1.0f}}) {
    std::string payload;
    const size_t n = size_t{c.heads} * c.tokens * c.head_dim;
    ASSERT_TRUE(attention::QuantizeKv(Random(n, 2, 1.0f), SpecOf(c), &payload).ok());
    std::vector<float> out(n);
    kernels::KvDequantArgs a = ArgsOf(c, payload);
    a.out = out.data();
    const absl::Status s = kernels::DequantizeKvGpu(a);
    if (kernels::CudaDeviceAvailable().ok()) {
      EXPECT_TRUE(s.ok()) << s;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    }
  }
}

}  // namespace
}  // namespace mnemo
