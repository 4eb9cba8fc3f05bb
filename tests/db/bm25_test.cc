#include "db/bm25.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "db/keys.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "tests/db/test_util.h"

namespace mnemo::db {
namespace {

using Corpus = std::map<int64_t, std::vector<uint32_t>>;
using Results = std::vector<std::pair<int64_t, float>>;

constexpr uint32_t kNs = 7;
constexpr char kCf[] = "bm25";

// Direct evaluation of the formula stated in bm25.h, in double.
std::map<int64_t, double> ReferenceScores(const Corpus& corpus, const std::vector<uint32_t>& query,
                                          const Bm25Params& p) {
  std::map<int64_t, double> scores;
  const double n = static_cast<double>(corpus.size());
  double total = 0;
  for (const auto& [id, terms] : corpus) total += terms.size();
  const double avgdl = total / n;
  for (uint32_t t : query) {  // every occurrence counts
    double df = 0;
    for (const auto& [id, terms] : corpus) {
      df += std::count(terms.begin(), terms.end(), t) > 0 ? 1 : 0;
    }
    if (df == 0) continue;
    const double idf = std::log(1.0 + (n - df + 0.5) / (df + 0.5));
    for (const auto& [id, terms] : corpus) {
      const double tf = static_cast<double>(std::count(terms.begin(), terms.end(), t));
      if (tf == 0) continue;
      const double dl = static_cast<double>(terms.size());
      scores[id] += idf * tf * (p.k1 + 1) / (tf + p.k1 * (1 - p.b + p.b * dl / avgdl));
    }
  }
  return scores;
}

class OddIds final : public index::IdPredicate {
 public:
  bool Contains(int64_t id) const override { return id % 2 == 1; }
};

class Bm25Test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("bm25");
    OpenDb();
  }

  void TearDown() override {
    CloseDb();
    std::filesystem::remove_all(dir_);
  }

  void OpenDb() {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {kCf, rocksdb::ColumnFamilyOptions()}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_, cfs, &handles, &raw).ok());
    db_.reset(raw);
    default_cf_ = handles[0];
    cf_ = handles[1];
  }

  void CloseDb() {
    if (db_ == nullptr) return;
    ASSERT_TRUE(db_->DestroyColumnFamilyHandle(default_cf_).ok());
    ASSERT_TRUE(db_->DestroyColumnFamilyHandle(cf_).ok());
    ASSERT_TRUE(db_->Close().ok());
    db_.reset();
  }

  std::unique_ptr<Bm25Index> OpenIndex(uint32_t nsid = kNs, Bm25Params params = {}) {
    auto index = Bm25Index::Open(db_.get(), cf_, nsid, params);
    EXPECT_TRUE(index.ok()) << index.status();
    return index.ok() ? std::move(index).value() : nullptr;
  }

  // Stages adds then removals in one batch, commits and applies.
  void Commit(Bm25Index* index, const Corpus& adds, const std::vector<int64_t>& removes = {}) {
    rocksdb::WriteBatch batch;
    Bm25Update update;
    for (const auto& [id, terms] : adds) {
      ASSERT_TRUE(index->AddToBatch(&batch, id, terms, &update).ok());
    }
    for (int64_t id : removes) ASSERT_TRUE(index->RemoveToBatch(&batch, id, &update).ok());
    ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &batch).ok());
    ASSERT_TRUE(index->ApplyCommitted(update).ok());
  }

  Results Search(const Bm25Index& index, const std::vector<uint32_t>& query, int k = 100,
                 const index::IdPredicate* filter = nullptr) {
    auto r = index.Search(query, k, filter);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : Results{};
  }

  // Checks `got` against the reference: same documents, scores to 1e-5,
  // best first with ties by id.
  void ExpectMatchesReference(const Corpus& corpus, const std::vector<uint32_t>& query,
                              const Results& got, const Bm25Params& p = {}) {
    std::map<int64_t, double> want = ReferenceScores(corpus, query, p);
    ASSERT_EQ(got.size(), want.size());
    for (const auto& [id, score] : got) {
      ASSERT_TRUE(want.count(id)) << id;
      EXPECT_NEAR(score, want[id], 1e-5) << id;
    }
    for (size_t i = 1; i < got.size(); ++i) {
      EXPECT_TRUE(got[i - 1].second > got[i].second ||
                  (got[i - 1].second == got[i].second && got[i - 1].first < got[i].first));
    }
  }

  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_ = nullptr;
};

// Terms: 1 "the", 2 "cat", 3 "dog", 4 "sat", 5 "mat", 6 "bird", 7 "log".
const Corpus kCorpus = {
    {10, {1, 2, 4, 1, 5}},        // the cat sat the mat
    {11, {1, 3, 4, 1, 7}},        // the dog sat the log
    {12, {2, 2, 2}},              // cat cat cat
    {13, {1, 6}},                 // the bird
    {14, {3, 2, 1, 3, 3, 4, 1, 5, 6}},
    {15, {}},                     // empty document counts toward N
};

TEST_F(Bm25Test, ScoresEqualDirectFormula) {
  auto index = OpenIndex();
  Commit(index.get(), kCorpus);
  EXPECT_EQ(index->Stats().doc_count, 6u);
  EXPECT_EQ(index->Stats().total_length, 24u);
  for (const std::vector<uint32_t>& q : std::vector<std::vector<uint32_t>>{
           {2}, {1}, {2, 3}, {4, 5, 6}, {1, 2, 3, 4, 5, 6, 7}, {7, 99}}) {
    ExpectMatchesReference(kCorpus, q, Search(*index, q));
  }
}

TEST_F(Bm25Test, NonDefaultParamsFollowFormula) {
  Bm25Params p{.k1 = 2.0f, .b = 0.3f};
  auto index = OpenIndex(kNs, p);
  Commit(index.get(), kCorpus);
  ExpectMatchesReference(kCorpus, {2, 3, 6}, Search(*index, {2, 3, 6}), p);
}

TEST_F(Bm25Test, RankingPrefersHigherTfAndShorterDocuments) {
  auto index = OpenIndex();
  Commit(index.get(), {{1, {2, 9, 9, 9}}, {2, {2, 2, 9, 9}}, {3, {2, 9, 9, 9, 9, 9, 9, 9}},
                       {4, {9}}});
  Results r = Search(*index, {2});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].first, 2);  // tf 2
  EXPECT_EQ(r[1].first, 1);  // tf 1, length 4
  EXPECT_EQ(r[2].first, 3);  // tf 1, length 8
  Results top1 = Search(*index, {2}, 1);
  ASSERT_EQ(top1.size(), 1u);
  EXPECT_EQ(top1[0].first, 2);
}

TEST_F(Bm25Test, TiesBreakByAscendingId) {
  auto index = OpenIndex();
  Commit(index.get(), {{8, {1, 2}}, {3, {1, 2}}, {5, {1, 2}}, {6, {4}}});
  Results r = Search(*index, {1});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].first, 3);
  EXPECT_EQ(r[1].first, 5);
  EXPECT_EQ(r[2].first, 8);
}

TEST_F(Bm25Test, RemovalUpdatesScoresAndStats) {
  auto index = OpenIndex();
  Commit(index.get(), kCorpus);
  Commit(index.get(), {}, {12, 14, 999});  // 999 is unknown: no-op
  Corpus rest = kCorpus;
  rest.erase(12);
  rest.erase(14);
  EXPECT_EQ(index->Stats().doc_count, 4u);
  EXPECT_EQ(index->Stats().total_length, 12u);
  for (const std::vector<uint32_t>& q :
       std::vector<std::vector<uint32_t>>{{2}, {3, 6}, {1, 4}}) {
    ExpectMatchesReference(rest, q, Search(*index, q));
  }
  auto recount = index->RecountStats();
  ASSERT_TRUE(recount.ok());
  EXPECT_EQ(recount->doc_count, 4u);
  EXPECT_EQ(recount->total_length, 12u);
}

TEST_F(Bm25Test, AddOfExistingDocumentReplacesIt) {
  auto index = OpenIndex();
  Commit(index.get(), kCorpus);
  Commit(index.get(), {{12, {3, 7}}});
  Corpus replaced = kCorpus;
  replaced[12] = {3, 7};
  EXPECT_EQ(index->Stats().doc_count, 6u);
  EXPECT_EQ(index->Stats().total_length, 23u);
  ExpectMatchesReference(replaced, {2}, Search(*index, {2}));
  ExpectMatchesReference(replaced, {3, 7}, Search(*index, {3, 7}));
}

TEST_F(Bm25Test, RemoveThenAddInOneUpdateIsAReplace) {
  auto index = OpenIndex();
  Commit(index.get(), kCorpus);
  rocksdb::WriteBatch batch;
  Bm25Update update;
  ASSERT_TRUE(index->RemoveToBatch(&batch, 11, &update).ok());
  std::vector<uint32_t> terms = {6, 6};
  ASSERT_TRUE(index->AddToBatch(&batch, 11, terms, &update).ok());
  EXPECT_EQ(update.doc_delta(), 0);
  EXPECT_EQ(update.length_delta(), -3);
  ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &batch).ok());
  ASSERT_TRUE(index->ApplyCommitted(update).ok());
  Corpus replaced = kCorpus;
  replaced[11] = {6, 6};
  ExpectMatchesReference(replaced, {3, 6, 7}, Search(*index, {3, 6, 7}));
  EXPECT_EQ(index->Stats().total_length, 21u);
}

TEST_F(Bm25Test, StatsAndPostingsSurviveReopen) {
  {
    auto index = OpenIndex();
    Commit(index.get(), kCorpus);
    Commit(index.get(), {}, {13});
  }
  CloseDb();
  OpenDb();
  auto index = OpenIndex();
  Corpus rest = kCorpus;
  rest.erase(13);
  EXPECT_EQ(index->Stats().doc_count, 5u);
  EXPECT_EQ(index->Stats().total_length, 22u);
  ExpectMatchesReference(rest, {1, 2, 6}, Search(*index, {1, 2, 6}));
}

TEST_F(Bm25Test, SearchAmongScoresCandidatesWithWholeIndexStatistics) {
  // Document frequencies come from the whole index (kept in memory: built
  // at Open, moved by every committed update), so a candidate's score is
  // its Search score, through replaces, removals and a reopen.
  auto check = [&](const Bm25Index& index, const Corpus& corpus) {
    for (const std::vector<uint32_t>& query :
         {std::vector<uint32_t>{2}, {1, 2, 6}, {3, 3, 7}, {4, 5, 6, 9}}) {
      const Results all = Search(index, query);
      ExpectMatchesReference(corpus, query, all);
      // Every document as a candidate: the same list.
      std::vector<int64_t> every;
      for (const auto& [id, terms] : corpus) every.push_back(id);
      auto among = index.SearchAmong(query, 100, every);
      ASSERT_TRUE(among.ok()) << among.status();
      EXPECT_EQ(*among, all);
      // Two of them (one unknown, one repeated): exactly their Search scores.
      std::vector<int64_t> two = {14, 99, 10, 14};
      auto some = index.SearchAmong(query, 100, two);
      ASSERT_TRUE(some.ok()) << some.status();
      Results want;
      for (const auto& hit : all) {
        if (hit.first == 10 || hit.first == 14) want.push_back(hit);
      }
      EXPECT_EQ(*some, want);
    }
  };
  Corpus corpus = kCorpus;
  {
    auto index = OpenIndex();
    Commit(index.get(), kCorpus);
    EXPECT_EQ(index->DocumentFrequency(1), 4u);
    EXPECT_EQ(index->DocumentFrequency(2), 3u);
    check(*index, corpus);
    Commit(index.get(), {{12, {3, 7}}}, {13});  // replace 12, remove 13
    corpus[12] = {3, 7};
    corpus.erase(13);
    EXPECT_EQ(index->DocumentFrequency(2), 2u);
    EXPECT_EQ(index->DocumentFrequency(7), 2u);
    EXPECT_EQ(index->DocumentFrequency(6), 1u);
    check(*index, corpus);
  }
  CloseDb();
  OpenDb();
  auto index = OpenIndex();
  EXPECT_EQ(index->DocumentFrequency(7), 2u);
  EXPECT_EQ(index->DocumentFrequency(9), 0u);
  check(*index, corpus);
  EXPECT_EQ(index->SearchAmong({2}, 0, {10}).status().code(), absl::StatusCode::kInvalidArgument);
  auto none = index->SearchAmong({2}, 5, {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(Bm25Test, MissingStatsRecordIsRebuiltFromLengths) {
  {
    auto index = OpenIndex();
    Commit(index.get(), kCorpus);
  }
  std::string stats_key = keys::NsPrefix(kNs) + "s";
  ASSERT_TRUE(db_->Delete(rocksdb::WriteOptions(), cf_, stats_key).ok());
  auto index = OpenIndex();
  EXPECT_EQ(index->Stats().doc_count, 6u);
  EXPECT_EQ(index->Stats().total_length, 24u);
}

TEST_F(Bm25Test, FilterIsAppliedBeforeTopK) {
  auto index = OpenIndex();
  Commit(index.get(), kCorpus);
  OddIds odd;
  // "the": 10 and 11 tie at the top, 10 wins by id; filtered top-1 is 11.
  Results all = Search(*index, {1}, 1);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].first, 10);
  Results r = Search(*index, {1}, 1, &odd);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].first, 11);
  // Scores under a filter keep the whole collection's statistics.
  std::map<int64_t, double> want = ReferenceScores(kCorpus, {1, 2, 3}, {});
  Results filtered = Search(*index, {1, 2, 3}, 100, &odd);
  ASSERT_EQ(filtered.size(), 2u);  // 11 and 13: the odd ids with a hit
  for (const auto& [id, score] : filtered) {
    EXPECT_EQ(id % 2, 1) << id;
    EXPECT_NEAR(score, want[id], 1e-5) << id;
  }
}

TEST_F(Bm25Test, EmptyQueryUnknownTermsAndEmptyIndexGiveNothing) {
  auto index = OpenIndex();
  EXPECT_TRUE(Search(*index, {1, 2}).empty());  // empty index
  Commit(index.get(), kCorpus);
  EXPECT_TRUE(Search(*index, {}).empty());
  EXPECT_TRUE(Search(*index, {100, 4000000000u}).empty());
}

TEST_F(Bm25Test, NonPositiveKIsInvalidArgument) {
  auto index = OpenIndex();
  Commit(index.get(), kCorpus);
  std::vector<uint32_t> q = {1};
  EXPECT_EQ(index->Search(q, 0, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Search(q, -3, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(Bm25Test, RepeatedQueryTermCountsPerOccurrence) {
  auto index = OpenIndex();
  Commit(index.get(), kCorpus);
  Results once = Search(*index, {2});
  Results twice = Search(*index, {2, 2});
  ASSERT_EQ(once.size(), twice.size());
  for (size_t i = 0; i < once.size(); ++i) {
    EXPECT_EQ(once[i].first, twice[i].first);
    EXPECT_NEAR(twice[i].second, 2 * once[i].second, 1e-5);
  }
  ExpectMatchesReference(kCorpus, {2, 3, 2}, Search(*index, {2, 3, 2}));
}

TEST_F(Bm25Test, NamespacesAreIsolated) {
  auto a = OpenIndex(1);
  auto b = OpenIndex(2);
  Commit(a.get(), kCorpus);
  Commit(b.get(), {{10, {50}}});
  EXPECT_EQ(b->Stats().doc_count, 1u);
  EXPECT_TRUE(Search(*b, {2}).empty());
  EXPECT_TRUE(Search(*a, {50}).empty());
  ExpectMatchesReference(kCorpus, {2}, Search(*a, {2}));
}

TEST_F(Bm25Test, BadWritesAreRefused) {
  auto index = OpenIndex();
  rocksdb::WriteBatch batch;
  Bm25Update update;
  std::vector<uint32_t> terms = {1};
  EXPECT_EQ(index->AddToBatch(&batch, -1, terms, &update).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->AddToBatch(nullptr, 1, terms, &update).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->AddToBatch(&batch, 1, terms, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->RemoveToBatch(&batch, -5, &update).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(index->AddToBatch(&batch, 1, terms, &update).ok());
  EXPECT_EQ(index->AddToBatch(&batch, 1, terms, &update).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(index->RemoveToBatch(&batch, 1, &update).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(Bm25Test, BadParamsAreInvalidArgument) {
  for (Bm25Params p : {Bm25Params{.k1 = -1.0f}, Bm25Params{.b = 1.5f},
                       Bm25Params{.k1 = std::nanf("")}, Bm25Params{.b = -0.1f}}) {
    EXPECT_EQ(Bm25Index::Open(db_.get(), cf_, kNs, p).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Bm25Index::Open(nullptr, cf_, kNs).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(Bm25Test, DroppedUpdateChangesNothing) {
  auto index = OpenIndex();
  Commit(index.get(), kCorpus);
  {
    rocksdb::WriteBatch batch;
    Bm25Update update;
    std::vector<uint32_t> terms = {2, 2};
    ASSERT_TRUE(index->AddToBatch(&batch, 40, terms, &update).ok());
    // Never written: the in-memory stats must not move.
  }
  EXPECT_EQ(index->Stats().doc_count, 6u);
  ExpectMatchesReference(kCorpus, {2}, Search(*index, {2}));
}

TEST_F(Bm25Test, OverlappingUpdatesAreReportedAndStatsStayExact) {
  auto index = OpenIndex();
  rocksdb::WriteBatch b1, b2;
  Bm25Update u1, u2;
  std::vector<uint32_t> t1 = {1, 2}, t2 = {3};
  ASSERT_TRUE(index->AddToBatch(&b1, 1, t1, &u1).ok());
  ASSERT_TRUE(index->AddToBatch(&b2, 2, t2, &u2).ok());
  ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &b1).ok());
  ASSERT_TRUE(index->ApplyCommitted(u1).ok());
  ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &b2).ok());
  EXPECT_EQ(index->ApplyCommitted(u2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(index->Stats().doc_count, 2u);
  EXPECT_EQ(index->Stats().total_length, 3u);
  // The next update rewrites the stored record from the exact values.
  Commit(index.get(), {{3, {4}}});
  index.reset();
  index = OpenIndex();
  EXPECT_EQ(index->Stats().doc_count, 3u);
  EXPECT_EQ(index->Stats().total_length, 4u);
}

TEST_F(Bm25Test, SearchesRunBesideSerialisedWriters) {
  auto index = OpenIndex();
  Commit(index.get(), kCorpus);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    std::vector<uint32_t> q = {1, 2, 3};
    while (!done.load()) {
      auto r = index->Search(q, 5, nullptr);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_FALSE(r->empty());
    }
  });
  absl::Mutex write_mu;  // the caller's serialisation of updates
  auto writer = [&](int64_t first) {
    for (int64_t id = first; id < first + 100; ++id) {
      absl::MutexLock l(&write_mu);
      Commit(index.get(), {{id, {2, static_cast<uint32_t>(id % 7)}}});
    }
  };
  std::thread w1(writer, 1000);
  std::thread w2(writer, 2000);
  w1.join();
  w2.join();
  done = true;
  reader.join();
  EXPECT_EQ(index->Stats().doc_count, 206u);
  EXPECT_EQ(index->Stats().total_length, 24u + 400u);
  auto recount = index->RecountStats();
  ASSERT_TRUE(recount.ok());
  EXPECT_EQ(recount->doc_count, 206u);
  EXPECT_EQ(recount->total_length, 424u);
}

TEST_F(Bm25Test, CorruptPostingIsDataLoss) {
  auto index = OpenIndex();
  Commit(index.get(), {{1, {5}}});
  std::string key = keys::NsPrefix(kNs) + "p";
  keys::AppendU32(&key, 5);
  keys::AppendU64(&key, 1);
  ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), cf_, key, std::string("\xff", 1)).ok());
  std::vector<uint32_t> q = {5};
  EXPECT_EQ(index->Search(q, 3, nullptr).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace mnemo::db
