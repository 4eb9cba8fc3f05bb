// The CUDA exact top-k against the CPU reference (index::MakeCpuExactSearch),
// and the CPU reference against a naive loop. GPU cases skip without a
// usable device.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <ostream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"
#include "index/exact_search.h"
#include "kernels/exact_topk.h"

namespace mnemo {
namespace {

using index::ExactSearchBackend;
using index::Metric;

// Relative score tolerance between the GPU (fp32 FMA, per-row accumulation)
// and the CPU reference (BLAS sgemm; L2 expanded as |q|^2+|x|^2-2<q,x>).
constexpr float kRelTolerance = 1e-3f;
// Fraction of the reference's ids the kernel must return: near-ties may
// swap at the k-th place within the score tolerance.
constexpr double kMinIdOverlap = 0.99;

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss;
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng);
  return x;
}

struct TopK {
  std::vector<int64_t> ids;
  std::vector<float> scores;
};

TopK RunBackend(const ExactSearchBackend& backend, const std::vector<float>& base,
         const std::vector<float>& queries, size_t dim, Metric metric, int k) {
  const size_t nb = base.size() / dim, nq = queries.size() / dim;
  TopK out{std::vector<int64_t>(nq * k), std::vector<float>(nq * k)};
  absl::Status s = backend.Search(base.data(), nb, queries.data(), nq, dim,
                                  metric, k, out.ids.data(), out.scores.data());
  EXPECT_TRUE(s.ok()) << backend.name() << ": " << s;
  return out;
}

TopK Naive(const std::vector<float>& base, const std::vector<float>& queries,
           size_t dim, Metric metric, int k) {
  const size_t nb = base.size() / dim, nq = queries.size() / dim;
  const bool l2 = metric == Metric::kL2;
  TopK out;
  for (size_t q = 0; q < nq; ++q) {
    std::vector<std::pair<double, int64_t>> all;
    for (size_t i = 0; i < nb; ++i) {
      double s = 0;
      for (size_t j = 0; j < dim; ++j) {
        const double a = queries[q * dim + j], b = base[i * dim + j];
        s += l2 ? (a - b) * (a - b) : a * b;
      }
      all.emplace_back(l2 ? s : -s, static_cast<int64_t>(i));
    }
    std::sort(all.begin(), all.end());
    for (int j = 0; j < k; ++j) {
      if (j < static_cast<int>(all.size())) {
        out.ids.push_back(all[j].second);
        out.scores.push_back(static_cast<float>(l2 ? all[j].first
                                                   : -all[j].first));
      } else {
        out.ids.push_back(-1);
        out.scores.push_back(l2 ? std::numeric_limits<float>::infinity()
                                : -std::numeric_limits<float>::infinity());
      }
    }
  }
  return out;
}

void ExpectClose(const TopK& got, const TopK& want, size_t nq, int k) {
  size_t overlap = 0, valid = 0;
  for (size_t q = 0; q < nq; ++q) {
    absl::flat_hash_set<int64_t> want_ids(want.ids.begin() + q * k,
                                          want.ids.begin() + (q + 1) * k);
    for (int j = 0; j < k; ++j) {
      const size_t i = q * k + j;
      if (want.ids[i] < 0) {
        EXPECT_EQ(got.ids[i], -1);
        EXPECT_EQ(got.scores[i], want.scores[i]);
        continue;
      }
      ++valid;
      overlap += want_ids.contains(got.ids[i]);
      // Scores are compared rank by rank: even when near-ties swap ids, the
      // j-th best score is the same up to rounding.
      const float tol =
          kRelTolerance * std::max(1.f, std::fabs(want.scores[i]));
      EXPECT_NEAR(got.scores[i], want.scores[i], tol) << "q " << q << " j " << j;
    }
  }
  if (valid > 0) {
    EXPECT_GE(static_cast<double>(overlap) / valid, kMinIdOverlap);
  }
}

TEST(CpuExactSearchTest, MatchesNaiveLoopForInnerProduct) {
  const size_t dim = 24;
  const std::vector<float> base = Random(500 * dim, 1);
  const std::vector<float> queries = Random(30 * dim, 2);
  auto cpu = index::MakeCpuExactSearch();
  ExpectClose(RunBackend(*cpu, base, queries, dim, Metric::kInnerProduct, 10),
              Naive(base, queries, dim, Metric::kInnerProduct, 10), 30, 10);
}

TEST(CpuExactSearchTest, MatchesNaiveLoopForL2) {
  const size_t dim = 17;
  const std::vector<float> base = Random(400 * dim, 3);
  const std::vector<float> queries = Random(25 * dim, 4);
  auto cpu = index::MakeCpuExactSearch();
  ExpectClose(RunBackend(*cpu, base, queries, dim, Metric::kL2, 7),
              Naive(base, queries, dim, Metric::kL2, 7), 25, 7);
}

TEST(CpuExactSearchTest, PadsWhenBaseSmallerThanK) {
  const size_t dim = 8;
  const std::vector<float> base = Random(3 * dim, 5);
  const std::vector<float> queries = Random(2 * dim, 6);
  auto cpu = index::MakeCpuExactSearch();
  ExpectClose(RunBackend(*cpu, base, queries, dim, Metric::kL2, 5),
              Naive(base, queries, dim, Metric::kL2, 5), 2, 5);
}

TEST(CpuExactSearchTest, RejectsBadK) {
  auto cpu = index::MakeCpuExactSearch();
  float x[4] = {0, 0, 0, 0};
  int64_t id;
  float score;
  EXPECT_EQ(cpu->Search(x, 1, x, 1, 4, Metric::kL2, 0, &id, &score).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CudaExactSearchTest, UnavailableIsReportedCleanly) {
  auto cuda = index::MakeCudaExactSearch();
  if (!cuda.ok()) {
    EXPECT_EQ(cuda.status().code(), absl::StatusCode::kUnavailable);
  } else {
    EXPECT_EQ((*cuda)->name(), "cuda");
  }
}

struct GpuCase {
  size_t nb, nq, dim;
  int k;
  Metric metric;
};

void PrintTo(const GpuCase& c, std::ostream* os) {
  *os << "nb=" << c.nb << " nq=" << c.nq << " dim=" << c.dim << " k=" << c.k
      << (c.metric == Metric::kL2 ? " L2" : " IP");
}

class CudaVsCpuTest : public ::testing::TestWithParam<GpuCase> {};

TEST_P(CudaVsCpuTest, MatchesCpuReference) {
  auto cuda = index::MakeCudaExactSearch();
  if (!cuda.ok()) GTEST_SKIP() << cuda.status();
  const GpuCase& c = GetParam();
  const std::vector<float> base = Random(c.nb * c.dim, 11);
  const std::vector<float> queries = Random(c.nq * c.dim, 12);
  auto cpu = index::MakeCpuExactSearch();
  const TopK want = RunBackend(*cpu, base, queries, c.dim, c.metric, c.k);
  const TopK got = RunBackend(**cuda, base, queries, c.dim, c.metric, c.k);
  ExpectClose(got, want, c.nq, c.k);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaVsCpuTest,
    ::testing::Values(GpuCase{1000, 7, 32, 10, Metric::kInnerProduct},
                      GpuCase{1000, 7, 32, 10, Metric::kL2},
                      GpuCase{20000, 64, 128, 100, Metric::kInnerProduct},
                      GpuCase{20000, 3, 67, 1024, Metric::kL2},
                      GpuCase{5, 4, 16, 8, Metric::kL2},      // nb < k
                      GpuCase{300000, 2, 64, 1, Metric::kInnerProduct}),
    [](const ::testing::TestParamInfo<GpuCase>& info) {
      const GpuCase& c = info.param;
      return std::string(c.metric == Metric::kL2 ? "L2" : "IP") + "_nb" +
             std::to_string(c.nb) + "_nq" + std::to_string(c.nq) + "_d" +
             std::to_string(c.dim) + "_k" + std::to_string(c.k);
    });

TEST(CudaExactSearchTest, RejectsKAboveLimit) {
  auto cuda = index::MakeCudaExactSearch();
  if (!cuda.ok()) GTEST_SKIP() << cuda.status();
  std::vector<float> x(8, 1.f);
  std::vector<int64_t> ids(kernels::kMaxExactTopK + 1);
  std::vector<float> scores(ids.size());
  EXPECT_EQ((*cuda)
                ->Search(x.data(), 1, x.data(), 1, 8, Metric::kL2,
                         kernels::kMaxExactTopK + 1, ids.data(), scores.data())
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mnemo
