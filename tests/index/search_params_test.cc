// Per-call search parameters of the FAISS-backed kinds take effect and
// their defaults are the documented ones: IVF nprobe (default 16), refine
// factor of lossy codes (default 4), efSearch of FAISS HNSW over
// compressed storage (default the factory's ef=). Isotropic Gaussian data,
// where each knob clearly changes recall (mnemo's own HNSW engine has its
// tests in dense_index_test.cc and hnsw_index_test.cc).
#include <omp.h>

#include <algorithm>
#include <iostream>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"
#include "index/dense_index.h"

namespace mnemo::index {
namespace {

constexpr uint32_t kDim = 32;
constexpr size_t kN = 6000;
constexpr size_t kQueries = 60;
constexpr int kK = 10;

class SearchParamsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    omp_set_num_threads(1);  // FAISS training spin-waits on a busy machine
    std::mt19937 rng(21);
    std::normal_distribution<float> gauss;
    data_ = new std::vector<float>(kN * kDim);
    for (float& v : *data_) v = gauss(rng);
    queries_ = new std::vector<float>(kQueries * kDim);
    for (float& v : *queries_) v = gauss(rng);
    truth_ = new std::vector<absl::flat_hash_set<int64_t>>(kQueries);
    for (size_t q = 0; q < kQueries; ++q) {
      std::vector<std::pair<float, int64_t>> d(kN);
      for (size_t i = 0; i < kN; ++i) {
        float s = 0;
        for (uint32_t j = 0; j < kDim; ++j) {
          const float diff = (*queries_)[q * kDim + j] - (*data_)[i * kDim + j];
          s += diff * diff;
        }
        d[i] = {s, static_cast<int64_t>(i)};
      }
      std::partial_sort(d.begin(), d.begin() + kK, d.end());
      for (int r = 0; r < kK; ++r) (*truth_)[q].insert(d[r].second);
    }
  }

  static std::unique_ptr<DenseIndex> Build(const std::string& factory) {
    DenseIndexOptions options;
    options.dim = kDim;
    options.metric = Metric::kL2;
    options.factory = factory;
    options.train_threshold = 3000;
    auto index = DenseIndex::Create(options);
    EXPECT_TRUE(index.ok()) << index.status();
    if (!index.ok()) return nullptr;
    std::vector<int64_t> ids(kN);
    for (size_t i = 0; i < kN; ++i) ids[i] = static_cast<int64_t>(i);
    EXPECT_TRUE((*index)->Add(ids, *data_).ok());
    EXPECT_TRUE((*index)->is_trained());
    return std::move(*index);
  }

  static DenseSearchResult Run(const DenseIndex& index, const DenseSearchParams& params) {
    auto r = index.Search(*queries_, kK, nullptr, params);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : DenseSearchResult{};
  }

  static double Recall(const DenseSearchResult& r) {
    size_t hits = 0;
    for (size_t q = 0; q < kQueries && q < r.n; ++q) {
      for (int j = 0; j < kK; ++j) hits += (*truth_)[q].count(r.ids[q * kK + j]);
    }
    return static_cast<double>(hits) / (kQueries * kK);
  }

  static std::vector<float>* data_;
  static std::vector<float>* queries_;
  static std::vector<absl::flat_hash_set<int64_t>>* truth_;
};

std::vector<float>* SearchParamsTest::data_ = nullptr;
std::vector<float>* SearchParamsTest::queries_ = nullptr;
std::vector<absl::flat_hash_set<int64_t>>* SearchParamsTest::truth_ = nullptr;

DenseSearchParams Nprobe(uint32_t n) {
  DenseSearchParams p;
  p.ivf_nprobe = n;
  return p;
}

TEST_F(SearchParamsTest, IvfNprobeTakesEffectAndDefaultsTo16) {
  auto index = Build("IVF64,Flat");
  ASSERT_NE(index, nullptr);
  const double r1 = Recall(Run(*index, Nprobe(1)));
  const double r16 = Recall(Run(*index, Nprobe(16)));
  const double r64 = Recall(Run(*index, Nprobe(64)));
  std::cout << "IVF64 recall@10 at nprobe 1/16/64: " << r1 << " " << r16 << " " << r64 << "\n";
  EXPECT_GT(r16, r1 + 0.2);
  EXPECT_DOUBLE_EQ(r64, 1.0);  // every list scanned: exact
  EXPECT_EQ(Run(*index, Nprobe(0)).ids, Run(*index, Nprobe(16)).ids);
  EXPECT_NE(Run(*index, Nprobe(0)).ids, Run(*index, Nprobe(8)).ids);
}

TEST_F(SearchParamsTest, ConcurrentNprobesGetTheirOwnAnswers) {
  auto index = Build("IVF64,Flat");
  ASSERT_NE(index, nullptr);
  const std::vector<uint32_t> values = {1, 64, 4, 16};
  std::vector<DenseSearchResult> expected;
  for (uint32_t v : values) expected.push_back(Run(*index, Nprobe(v)));
  std::vector<int> mismatches(values.size(), 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < values.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep) {
        if (Run(*index, Nprobe(values[t])).ids != expected[t].ids) ++mismatches[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (size_t t = 0; t < values.size(); ++t) EXPECT_EQ(mismatches[t], 0) << values[t];
}

TEST_F(SearchParamsTest, RefineFactorTakesEffectAndDefaultsTo4) {
  auto index = Build("PQ4");
  ASSERT_NE(index, nullptr);
  auto refine = [](float f) {
    DenseSearchParams p;
    p.refine_factor = f;
    return p;
  };
  const double r1 = Recall(Run(*index, refine(1)));
  const double r20 = Recall(Run(*index, refine(20)));
  std::cout << "PQ4 recall@10 at refine 1/20: " << r1 << " " << r20 << "\n";
  EXPECT_GT(r20, r1 + 0.1);
  EXPECT_EQ(Run(*index, refine(0)).ids, Run(*index, refine(4)).ids);
  EXPECT_NE(Run(*index, refine(0)).ids, Run(*index, refine(1)).ids);
}

TEST_F(SearchParamsTest, FaissHnswEfTakesEffectAndDefaultsToTheFactorys) {
  auto index = Build("HNSW8,SQ8,efC=40,ef=200");
  ASSERT_NE(index, nullptr);
  auto ef = [](uint32_t e) {
    DenseSearchParams p;
    p.hnsw_ef_search = e;
    return p;
  };
  const double r10 = Recall(Run(*index, ef(10)));
  const double r200 = Recall(Run(*index, ef(200)));
  std::cout << "HNSW8,SQ8 recall@10 at ef 10/200: " << r10 << " " << r200 << "\n";
  EXPECT_GT(r200, r10 + 0.1);
  EXPECT_EQ(Run(*index, ef(0)).ids, Run(*index, ef(200)).ids);
}

}  // namespace
}  // namespace mnemo::index
