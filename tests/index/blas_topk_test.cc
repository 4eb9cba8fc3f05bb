// BlasTopK (the batched exact search of Flat indexes) against a brute-force
// double-precision reference, across base blocks, query blocks and threads.
#include "index/blas_topk.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace mnemo::index {
namespace {

struct Case {
  size_t nb, nq, dim, k;
  Metric metric;
  int threads;
};

class BlasTopKTest : public ::testing::TestWithParam<Case> {};

TEST_P(BlasTopKTest, MatchesBruteForce) {
  const Case c = GetParam();
  omp_set_num_threads(c.threads);
  std::mt19937 rng(static_cast<unsigned>(c.nb + c.nq));
  std::normal_distribution<float> gauss;
  std::vector<float> base(c.nb * c.dim), queries(c.nq * c.dim);
  for (float& v : base) v = gauss(rng);
  for (float& v : queries) v = gauss(rng);
  const std::vector<float> half = HalfSquaredNorms(base.data(), c.nb, c.dim);
  std::vector<int64_t> ids(c.nq * c.k);
  std::vector<float> scores(c.nq * c.k);
  BlasTopK(base.data(), c.nb, half.data(), queries.data(), c.nq, c.dim, c.metric, c.k, ids.data(),
           scores.data());
  const bool l2 = c.metric == Metric::kL2;
  size_t mismatched = 0;
  for (size_t q = 0; q < c.nq; ++q) {
    std::vector<std::pair<double, int64_t>> all(c.nb);
    for (size_t i = 0; i < c.nb; ++i) {
      double s = 0;
      for (size_t j = 0; j < c.dim; ++j) {
        const double a = queries[q * c.dim + j], b = base[i * c.dim + j];
        s += l2 ? (a - b) * (a - b) : a * b;
      }
      all[i] = {l2 ? s : -s, static_cast<int64_t>(i)};  // ascending = best first
    }
    std::sort(all.begin(), all.end());
    for (size_t j = 0; j < c.k; ++j) {
      const size_t at = q * c.k + j;
      if (j >= c.nb) {
        EXPECT_EQ(ids[at], -1);
        EXPECT_TRUE(std::isinf(scores[at]));
        continue;
      }
      const double want = l2 ? all[j].first : -all[j].first;
      // Float sgemm + the norm identity: a few ulps of the magnitudes.
      EXPECT_NEAR(scores[at], want, 1e-3 * (1 + std::fabs(want))) << "query " << q << " rank " << j;
      if (ids[at] != all[j].second) ++mismatched;  // near-ties may swap
    }
  }
  EXPECT_LE(mismatched, c.nq * std::min(c.k, c.nb) / 100);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, BlasTopKTest,
    ::testing::Values(Case{10000, 300, 32, 10, Metric::kL2, 2},
                      Case{10000, 300, 32, 10, Metric::kInnerProduct, 2},
                      Case{9000, 25, 96, 1, Metric::kInnerProduct, 1},
                      Case{4097, 21, 17, 100, Metric::kL2, 2},
                      Case{5, 30, 8, 10, Metric::kL2, 2}));

}  // namespace
}  // namespace mnemo::index
