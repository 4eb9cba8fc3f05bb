// Every SIMD level of index/distance_kernels.h against a double-precision
// reference, on the dimensions that exercise each loop and tail. A level
// this CPU lacks is skipped.
#include "index/distance_kernels.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace mnemo::index {
namespace {

class DistanceKernelsTest : public ::testing::TestWithParam<SimdLevel> {};

TEST_P(DistanceKernelsTest, MatchesDoubleReference) {
  if (!CpuSupports(GetParam())) {
    GTEST_SKIP() << "this CPU has no " << SimdLevelName(GetParam());
  }
  const DistanceKernels& k = KernelsFor(GetParam());
  ASSERT_EQ(k.level, GetParam());
  std::mt19937 rng(1);
  std::normal_distribution<float> gauss;
  for (size_t dim : {1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 64, 96, 100, 384, 784, 1027}) {
    std::vector<float> a(dim), b(dim);
    for (float& v : a) v = gauss(rng);
    for (float& v : b) v = gauss(rng);
    double l2 = 0, dot = 0, scale = 0;
    for (size_t i = 0; i < dim; ++i) {
      l2 += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
      dot += double{a[i]} * b[i];
      scale += std::fabs(double{a[i]} * b[i]);
    }
    // Float accumulation in a different order: relative error ~1e-6.
    EXPECT_NEAR(k.l2sqr(a.data(), b.data(), dim), l2, 1e-5 * l2 + 1e-6) << "dim " << dim;
    EXPECT_NEAR(k.dot(a.data(), b.data(), dim), dot, 1e-5 * scale + 1e-6) << "dim " << dim;
    // The graph forms: same values, inner product negated.
    EXPECT_EQ(k.l2sqr_graph(a.data(), b.data(), &dim), k.l2sqr(a.data(), b.data(), dim));
    EXPECT_EQ(k.neg_dot_graph(a.data(), b.data(), &dim), -k.dot(a.data(), b.data(), dim));
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, DistanceKernelsTest,
                         ::testing::Values(SimdLevel::kGeneric, SimdLevel::kAvx2,
                                           SimdLevel::kAvx512),
                         [](const auto& info) { return std::string(SimdLevelName(info.param)); });

TEST(DistanceKernelsTest, BestIsSupportedAndAtLeastAvx2WhereAvailable) {
  const DistanceKernels& best = BestKernels();
  EXPECT_TRUE(CpuSupports(best.level));
  if (std::getenv("MNEMO_SIMD") == nullptr && CpuSupports(SimdLevel::kAvx2)) {
    EXPECT_NE(best.level, SimdLevel::kGeneric);
  }
}

}  // namespace
}  // namespace mnemo::index
