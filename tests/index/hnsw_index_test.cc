// mnemo's HNSW engine (index/hnsw_index.h) through DenseIndex: parallel
// build, in-walk filtering, deletion, replacement, revival, and loading of
// damaged graphs. The generic DenseIndex contract (round trips, scores,
// concurrent searches) is covered for "HNSW32" in dense_index_test.cc.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/checksum_frame.h"
#include "gtest/gtest.h"
#include "index/dense_index.h"
#include "index/filter.h"

namespace mnemo::index {
namespace {

constexpr uint32_t kDim = 24;

// Clustered vectors (30 centres), so that a filter on the cluster number
// selects a region of the space the graph must walk through.
struct Data {
  std::vector<float> x;
  std::vector<int64_t> ids;
  std::vector<int> cluster;
};

Data MakeData(size_t n, uint32_t seed) {
  std::mt19937 centre_rng(99);
  std::normal_distribution<float> gauss;
  std::vector<float> centres(30 * kDim);
  for (float& c : centres) c = gauss(centre_rng) * 2.f;
  std::mt19937 rng(seed);
  Data d;
  d.x.resize(n * kDim);
  for (size_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng() % 30);
    d.cluster.push_back(c);
    d.ids.push_back(static_cast<int64_t>(10 * i + 3));
    for (uint32_t j = 0; j < kDim; ++j) d.x[i * kDim + j] = centres[c * kDim + j] + gauss(rng);
  }
  return d;
}

std::unique_ptr<DenseIndex> MakeIndex(const std::string& factory, Metric metric = Metric::kL2) {
  DenseIndexOptions options;
  options.dim = kDim;
  options.metric = metric;
  options.factory = factory;
  auto index = DenseIndex::Create(options);
  EXPECT_TRUE(index.ok()) << index.status();
  return index.ok() ? std::move(*index) : nullptr;
}

// Exact top-k ids among rows accepted by `keep`.
template <typename Keep>
std::vector<int64_t> BruteForce(const Data& d, const float* q, size_t k, Keep keep) {
  std::vector<std::pair<float, int64_t>> all;
  for (size_t i = 0; i < d.ids.size(); ++i) {
    if (!keep(i)) continue;
    float s = 0;
    for (uint32_t j = 0; j < kDim; ++j) {
      const float diff = q[j] - d.x[i * kDim + j];
      s += diff * diff;
    }
    all.emplace_back(s, d.ids[i]);
  }
  const size_t top = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + top, all.end());
  std::vector<int64_t> out;
  for (size_t i = 0; i < top; ++i) out.push_back(all[i].second);
  return out;
}

class IdSetPredicate final : public IdPredicate {
 public:
  explicit IdSetPredicate(absl::flat_hash_set<int64_t> ids) : ids_(std::move(ids)) {}
  bool Contains(int64_t id) const override { return ids_.contains(id); }

 private:
  absl::flat_hash_set<int64_t> ids_;
};

class HnswIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The parallel insert and search paths need a team of threads.
    omp_set_num_threads(2);
    data_ = MakeData(6000, 5);
    queries_ = MakeData(50, 77);
    index_ = MakeIndex("HNSW16,efC=100");
    ASSERT_NE(index_, nullptr);
    ASSERT_TRUE(index_->Add(data_.ids, data_.x).ok());
  }

  DenseSearchResult Search(const float* q, size_t n, int k, const IdPredicate* filter,
                           uint32_t ef = 0) {
    DenseSearchParams params;
    params.hnsw_ef_search = ef;
    auto r = index_->Search(absl::MakeConstSpan(q, n * kDim), k, filter, params);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : DenseSearchResult{};
  }

  Data data_;
  Data queries_;
  std::unique_ptr<DenseIndex> index_;
};

TEST_F(HnswIndexTest, ParallelBuildFindsTrueNeighbours) {
  EXPECT_EQ(index_->size(), data_.ids.size());
  const DenseSearchResult r = Search(queries_.x.data(), 50, 10, nullptr, 128);
  size_t hits = 0;
  for (size_t q = 0; q < 50; ++q) {
    const auto truth = BruteForce(data_, queries_.x.data() + q * kDim, 10, [](size_t) {
      return true;
    });
    const absl::flat_hash_set<int64_t> want(truth.begin(), truth.end());
    for (size_t j = 0; j < 10; ++j) hits += want.count(r.ids[q * 10 + j]);
  }
  EXPECT_GE(static_cast<double>(hits) / 500, 0.95);
}

// A filter that keeps one cluster of 30 (about 200 of 6000 rows): every
// result passes it and the answer is the exact filtered top-k.
TEST_F(HnswIndexTest, FilterIsAppliedInsideTheWalk) {
  absl::flat_hash_set<int64_t> keep_ids;
  for (size_t i = 0; i < data_.ids.size(); ++i) {
    if (data_.cluster[i] == 4) keep_ids.insert(data_.ids[i]);
  }
  const IdSetPredicate keep(keep_ids);
  const DenseSearchResult r = Search(queries_.x.data(), 50, 10, &keep, 64);
  size_t hits = 0;
  for (size_t q = 0; q < 50; ++q) {
    const auto truth = BruteForce(data_, queries_.x.data() + q * kDim, 10,
                                  [&](size_t i) { return data_.cluster[i] == 4; });
    const absl::flat_hash_set<int64_t> want(truth.begin(), truth.end());
    for (size_t j = 0; j < 10; ++j) {
      ASSERT_TRUE(keep_ids.contains(r.ids[q * 10 + j])) << "row " << q << " rank " << j;
      hits += want.count(r.ids[q * 10 + j]);
    }
  }
  EXPECT_GE(static_cast<double>(hits) / 500, 0.95);
}

// A filter with fewer matches than k returns exactly those matches.
TEST_F(HnswIndexTest, FilterWithFewerMatchesThanKReturnsAllOfThem) {
  const IdSetPredicate keep({data_.ids[17], data_.ids[4000], data_.ids[5999]});
  const DenseSearchResult r = Search(queries_.x.data(), 1, 10, &keep);
  const absl::flat_hash_set<int64_t> got(r.ids.begin(), r.ids.begin() + 3);
  EXPECT_EQ(got, absl::flat_hash_set<int64_t>({data_.ids[17], data_.ids[4000], data_.ids[5999]}));
  for (size_t j = 3; j < 10; ++j) EXPECT_EQ(r.ids[j], -1);
}

// Deleted ids are never served, even when k asks for every live vector.
TEST_F(HnswIndexTest, RemovedIdsAreNeverServed) {
  std::vector<int64_t> gone;
  for (size_t i = 0; i < data_.ids.size(); i += 3) gone.push_back(data_.ids[i]);
  auto removed = index_->Remove(gone);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, gone.size());
  EXPECT_EQ(index_->size(), data_.ids.size() - gone.size());
  EXPECT_NE(index_->Describe().find(absl::StrCat(gone.size(), " dead")), std::string::npos)
      << index_->Describe();
  const absl::flat_hash_set<int64_t> gone_set(gone.begin(), gone.end());
  const DenseSearchResult r = Search(queries_.x.data(), 50, 20, nullptr);
  for (int64_t id : r.ids) EXPECT_FALSE(gone_set.contains(id)) << id;
  // Removing again counts nothing.
  EXPECT_EQ(*index_->Remove(gone), 0u);
  // A tiny live set: all of it comes back, nothing else.
  std::vector<int64_t> rest;
  for (int64_t id : data_.ids) {
    if (!gone_set.contains(id) && id != data_.ids[1] && id != data_.ids[2]) rest.push_back(id);
  }
  ASSERT_TRUE(index_->Remove(rest).ok());
  ASSERT_EQ(index_->size(), 2u);
  const DenseSearchResult two = Search(queries_.x.data(), 1, 5, nullptr);
  EXPECT_EQ(absl::flat_hash_set<int64_t>(two.ids.begin(), two.ids.begin() + 2),
            absl::flat_hash_set<int64_t>({data_.ids[1], data_.ids[2]}));
  EXPECT_EQ(two.ids[2], -1);
}

// Upsert replaces the vector in place; a removed id added again comes back.
TEST_F(HnswIndexTest, ReplaceAndReviveMoveTheVector) {
  const int64_t moved = data_.ids[10];
  const int64_t revived = data_.ids[20];
  ASSERT_EQ(*index_->Remove({revived}), 1u);
  // Both go to where query 0 is.
  std::vector<float> at_query(queries_.x.begin(), queries_.x.begin() + kDim);
  std::vector<float> near_query = at_query;
  near_query[0] += 1e-3f;
  std::vector<float> rows = at_query;
  rows.insert(rows.end(), near_query.begin(), near_query.end());
  ASSERT_TRUE(index_->Add({moved, revived}, rows).ok());
  EXPECT_EQ(index_->size(), data_.ids.size());
  EXPECT_TRUE(index_->Contains(revived));
  const DenseSearchResult r = Search(at_query.data(), 1, 2, nullptr);
  EXPECT_EQ(r.ids[0], moved);
  EXPECT_EQ(r.ids[1], revived);
  EXPECT_FLOAT_EQ(r.scores[0], 0.f);
}

TEST_F(HnswIndexTest, RoundTripKeepsDeletionsAndAnswers) {
  ASSERT_TRUE(index_->Remove({data_.ids[0], data_.ids[1]}).ok());
  auto bytes = index_->Serialize();
  ASSERT_TRUE(bytes.ok());
  auto back = DenseIndex::Deserialize(index_->options(), *bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)->size(), index_->size());
  EXPECT_FALSE((*back)->Contains(data_.ids[0]));
  EXPECT_TRUE((*back)->Contains(data_.ids[2]));
  DenseSearchParams params;
  auto a = index_->Search(queries_.x, 10, nullptr, params);
  auto b = (*back)->Search(queries_.x, 10, nullptr, params);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->ids, b->ids);
  EXPECT_EQ(a->scores, b->scores);
  // The loaded graph keeps growing like the original.
  std::vector<float> row(queries_.x.begin(), queries_.x.begin() + kDim);
  ASSERT_TRUE((*back)->Add({123456789}, row).ok());
  auto c = (*back)->Search(row, 1, nullptr, params);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ids[0], 123456789);
}

// A damaged graph whose checksum was recomputed (so only the structural
// checks can catch it) gives DATA_LOSS, never a crash.
TEST_F(HnswIndexTest, DamagedGraphWithValidChecksumGivesDataLoss) {
  auto bytes = index_->Serialize();
  ASSERT_TRUE(bytes.ok());
  const size_t body = bytes->size() - kChecksumTrailerBytes;
  const size_t header = 4 * 5 + index_->options().factory.size() + 8 + 8 + 4 + 4;
  std::mt19937 rng(3);
  int rejected = 0;
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<uint8_t> damaged(bytes->begin(), bytes->begin() + body);
    // Overwrite a link count or a neighbour of some node with a large value.
    const size_t at = header + (rng() % (body - header - 4));
    const uint32_t junk = 0x7fff0000u + static_cast<uint32_t>(rng() % 1000);
    std::memcpy(damaged.data() + at, &junk, sizeof(junk));
    AppendChecksumTrailer(&damaged);
    auto back = DenseIndex::Deserialize(index_->options(), damaged);
    if (!back.ok()) {
      EXPECT_EQ(back.status().code(), absl::StatusCode::kDataLoss) << back.status();
      ++rejected;
      continue;
    }
    // Damage to vector bytes or labels may load; searching must still work.
    auto r = (*back)->Search(queries_.x, 5, nullptr, DenseSearchParams{});
    EXPECT_TRUE(r.ok());
  }
  EXPECT_GT(rejected, 0);
}

TEST(HnswIndexOptionsTest, FactoryOptionsSetTheDefaults) {
  omp_set_num_threads(1);
  const Data data = MakeData(3000, 11);
  const Data queries = MakeData(40, 12);
  auto low = MakeIndex("HNSW8,efC=40,ef=16");
  auto high = MakeIndex("HNSW8,efC=40,ef=256");
  ASSERT_NE(low, nullptr);
  ASSERT_NE(high, nullptr);
  ASSERT_TRUE(low->Add(data.ids, data.x).ok());
  ASSERT_TRUE(high->Add(data.ids, data.x).ok());
  // Same graph (same seed, one thread), different default ef.
  DenseSearchParams none;
  DenseSearchParams ef256;
  ef256.hnsw_ef_search = 256;
  auto a = low->Search(queries.x, 10, nullptr, ef256);
  auto b = high->Search(queries.x, 10, nullptr, none);
  auto c = low->Search(queries.x, 10, nullptr, none);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->ids, b->ids);
  EXPECT_NE(c->ids, b->ids);
  EXPECT_NE(low->Describe().find("ef 16"), std::string::npos) << low->Describe();
}

TEST(HnswIndexOptionsTest, BadFactoryOptionsAreRejected) {
  for (const char* bad : {"HNSW16,efC=0", "HNSW16,ef=x", "HNSW16,foo=3", "Flat,ef=10",
                          "IVF16,Flat,efC=100", "HNSW1", "HNSW100000"}) {
    DenseIndexOptions options;
    options.dim = kDim;
    options.factory = bad;
    auto index = DenseIndex::Create(options);
    ASSERT_FALSE(index.ok()) << bad;
    EXPECT_EQ(index.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace mnemo::index

namespace mnemo::index {
namespace {

// Small graphs: replacing the only node, deleting every node, reviving one.
TEST(HnswIndexEdgeTest, TinyGraphsReplaceDeleteAndRevive) {
  auto index = MakeIndex("HNSW4,efC=16");
  ASSERT_NE(index, nullptr);
  const std::vector<float> a(kDim, 1.0f), b(kDim, -1.0f);
  DenseSearchParams params;
  ASSERT_TRUE(index->Add({7}, a).ok());
  ASSERT_TRUE(index->Add({7}, b).ok());  // replace the only node
  auto r = index->Search(b, 1, nullptr, params);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ids[0], 7);
  EXPECT_FLOAT_EQ(r->scores[0], 0.0f);
  ASSERT_TRUE(index->Add({8}, a).ok());
  EXPECT_EQ(*index->Remove({7, 8, 9}), 2u);
  EXPECT_EQ(index->size(), 0u);
  r = index->Search(a, 3, nullptr, params);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ids, std::vector<int64_t>({-1, -1, -1}));
  ASSERT_TRUE(index->Add({8}, b).ok());  // revive with a new vector
  r = index->Search(b, 2, nullptr, params);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ids, std::vector<int64_t>({8, -1}));
  // The serial form of a graph whose nodes were all deleted once loads.
  auto bytes = index->Serialize();
  ASSERT_TRUE(bytes.ok());
  auto back = DenseIndex::Deserialize(index->options(), *bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)->size(), 1u);
  EXPECT_TRUE((*back)->Contains(8));
  EXPECT_FALSE((*back)->Contains(7));
}

}  // namespace
}  // namespace mnemo::index
