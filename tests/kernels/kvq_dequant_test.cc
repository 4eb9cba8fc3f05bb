// The CUDA kvq dequantization (kernels/kvq_dequant.h) against the CPU
// reference (attention::DequantizeKvqPlanes). GPU cases skip without a
// usable device.
#include "kernels/kvq_dequant.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "attention/kvq.h"
#include "gtest/gtest.h"
#include "kernels/exact_topk.h"

namespace mnemo {
namespace {

// Both sides compute fp32(fp32(level * scale) + offset) with no FMA and copy
// fp16 sinks and outliers, so the results are expected to be bitwise
// equal; the assertion allows 1e-6 of the tensor's largest magnitude (one
// fp32 rounding, should a compiler ever contract the CPU side into an FMA).
constexpr double kTolerance = 1e-6;

struct Case {
  uint32_t heads, tokens, head_dim;
  bool keys;
  int bits;
  uint32_t sinks;
  double outliers;
};

class KvqDequantGpuTest : public ::testing::TestWithParam<Case> {};

TEST_P(KvqDequantGpuTest, MatchesTheCpuReference) {
  if (absl::Status s = kernels::CudaDeviceAvailable(); !s.ok()) GTEST_SKIP() << s;
  const Case c = GetParam();
  std::mt19937 rng(c.heads * 131 + c.tokens * 7 + c.bits);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> x(uint64_t{c.heads} * c.tokens * c.head_dim);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.3f * static_cast<float>(i % c.head_dim) + n(rng);
  attention::KvqOptions o;
  o.bits = c.bits;
  o.sink_tokens = c.sinks;
  o.outlier_fraction = c.outliers;
  std::string payload;
  ASSERT_TRUE(attention::EncodeKvq(x, c.heads, c.tokens, c.head_dim, c.keys, o, &payload).ok());
  auto planes = attention::ParseKvq(payload, c.heads, c.tokens, c.head_dim, c.keys);
  ASSERT_TRUE(planes.ok()) << planes.status();
  std::vector<float> cpu(x.size()), gpu(x.size(), std::nanf(""));
  ASSERT_TRUE(attention::DequantizeKvqPlanes(*planes, absl::MakeSpan(cpu)).ok());

  kernels::KvqDequantArgs a;
  a.heads = c.heads;
  a.tokens = c.tokens;
  a.head_dim = c.head_dim;
  a.keys = c.keys;
  a.bits = planes->spec.bits;
  a.sink_tokens = planes->spec.sink_tokens;
  a.packed_codes = planes->packed_codes.data();
  a.packed_bytes = planes->packed_codes.size();
  a.levels = planes->levels.data();
  a.scales = planes->scales.data();
  a.offsets = planes->offsets.data();
  a.sinks = planes->sinks.data();
  a.outlier_index = planes->outlier_index.data();
  a.outlier_value = planes->outlier_value.data();
  a.outliers = planes->outlier_index.size();
  a.out = gpu.data();
  ASSERT_TRUE(kernels::DequantizeKvqGpu(a).ok());
  double max_abs = 0;
  for (float v : cpu) max_abs = std::max(max_abs, std::abs(static_cast<double>(v)));
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_NEAR(gpu[i], cpu[i], kTolerance * max_abs) << "element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, KvqDequantGpuTest,
    ::testing::Values(Case{2, 64, 32, true, 3, 1, 0.01}, Case{2, 64, 32, false, 3, 1, 0.01},
                      Case{8, 509, 128, true, 4, 4, 0.02}, Case{8, 509, 128, false, 2, 0, 0.0},
                      Case{3, 17, 5, true, 5, 2, 0.1}, Case{1, 3, 7, false, 8, 3, 0.0},
                      Case{4, 1000, 64, true, 1, 1, 0.005}));

TEST(KvqDequantGpuArgsTest, BadArgumentsAreRefusedBeforeTheDevice) {
  kernels::KvqDequantArgs a;  // zero dimensions
  EXPECT_TRUE(absl::IsInvalidArgument(kernels::DequantizeKvqGpu(a)) ||
              absl::IsUnavailable(kernels::DequantizeKvqGpu(a)));
  if (!kernels::CudaDeviceAvailable().ok()) GTEST_SKIP() << "no CUDA device";
  const std::vector<uint8_t> codes(8, 0);
  const std::vector<uint16_t> levels(8, 0), scales(2, 0), offsets(2, 0);
  const std::vector<uint32_t> index = {100};
  const std::vector<uint16_t> values = {0};
  std::vector<float> out(8);
  a.heads = 1;
  a.tokens = 4;
  a.head_dim = 2;
  a.bits = 3;
  a.packed_codes = codes.data();
  a.packed_bytes = codes.size();
  a.levels = levels.data();
  a.scales = scales.data();
  a.offsets = offsets.data();
  a.out = out.data();
  EXPECT_TRUE(kernels::DequantizeKvqGpu(a).ok());
  a.outlier_index = index.data();  // beyond the tensor
  a.outlier_value = values.data();
  a.outliers = 1;
  EXPECT_TRUE(absl::IsInvalidArgument(kernels::DequantizeKvqGpu(a)));
  a.outliers = 0;
  a.packed_bytes = 1;  // 8 codes of 3 bits need 4 bytes
  EXPECT_TRUE(absl::IsInvalidArgument(kernels::DequantizeKvqGpu(a)));
}

}  // namespace
}  // namespace mnemo
