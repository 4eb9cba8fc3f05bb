// KV retention in the background (db/kv_retention.cc): the LRU order
// survives a restart through persisted recency stamps (flushed by a timer
// and at Close), FIFO keeps put order, a timer removes expired KV without
// any further put, and Close stops the timers cleanly.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "db/keys.h"
#include "db/kv_records.h"
#include "db/store.h"
#include "db/store_testing.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "tests/db/test_util.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;

constexpr int kDim = 8;
constexpr int kLayers = 2;
constexpr int kKvHeads = 2;
constexpr int kHeadDim = 8;
constexpr int kTokens = 8;

ModelFingerprint TestModel() { return test::SmallKvModel(kLayers, kKvHeads, kHeadDim); }

// Rows of the kv CF of the closed store (or checkpoint) at `dir`, by the
// kind byte after the namespace id ('b' block, 'k' key index, 'c' record,
// 'r' recency stamp): key -> value.
std::map<std::string, std::string> KvRows(const std::string& dir, char kind) {
  std::map<std::string, std::string> rows;
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status opened =
      rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir, cfs, &handles, &raw);
  EXPECT_TRUE(opened.ok()) << opened.ToString();
  if (!opened.ok()) return rows;
  std::unique_ptr<rocksdb::DB> db(raw);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != kvrecords::kKvCf) continue;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() > 4 && it->key()[4] == kind) {
        rows[it->key().ToString()] = it->value().ToString();
      }
    }
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  return rows;
}

// Polls `done` every 10 ms for at most `limit`.
bool WaitFor(const std::function<bool()>& done,
             std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

class KvRetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("kvret");
    options_.snapshot_every_ops = 0;
    // Timers off unless a test turns them on (Close still flushes).
    options_.kv_expiry_interval_ms = 0;
    options_.kv_recency_flush_ms = 0;
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    for (const auto& d : extra_dirs_) fs::remove_all(d, ec);
  }

  // Opens the store at `dir` (dir_ by default) with the test clock.
  void Open(const std::string& dir = "") {
    auto store = Store::Open(options_, dir.empty() ? dir_ : dir);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_TRUE(
        testing::SetKvClockForTesting(store_.get(), [this] { return now_ms_.load(); }).ok());
  }

  void Reopen() {
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    Open();
  }

  // A namespace with chunks c0..c7 and a KV model whose budget holds
  // `fit` chunks of kTokens tokens under `policy`.
  void CreateKvNamespace(int fit, const std::string& policy) {
    NamespaceConfig config;
    config.name = "ns";
    config.dim = kDim;
    ASSERT_TRUE(store_->CreateNamespace(config).ok());
    for (int i = 0; i < 8; ++i) {
      Chunk c;
      c.id = absl::StrCat("c", i);
      c.text = absl::StrCat("text of ", c.id);
      c.vector = test::VectorFor(c.id, kDim);
      ASSERT_TRUE(store_->Upsert("ns", {}, {c}).ok());
    }
    KvConfig kv;
    kv.model = TestModel();
    kv.eviction_policy = policy;
    ASSERT_TRUE(store_->RegisterKvModel("ns", kv).ok());
    // Measure one chunk's size, then set the budget.
    auto probe = Put("c7");
    ASSERT_TRUE(probe.ok()) << probe.status();
    ASSERT_TRUE(store_->DeleteKv("ns", {"c7"}).ok());
    kv.capacity_bytes = fit * probe->stored_bytes + probe->stored_bytes / 2;
    ASSERT_TRUE(store_->RegisterKvModel("ns", kv).ok());
  }

  absl::StatusOr<KvPutResult> Put(const std::string& id, int64_t ttl = 0) {
    KvPutHeader header;
    header.chunk_id = id;
    header.model = TestModel();
    for (int t = 0; t < kTokens; ++t) header.tokens.push_back(100 + t);
    header.ttl_seconds = ttl;
    auto writer = store_->BeginPutKv("ns", header);
    if (!writer.ok()) return writer.status();
    std::mt19937 rng(static_cast<unsigned>(std::hash<std::string>()(id)));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const KvTensorShape shape{kKvHeads, kTokens, kHeadDim};
    std::vector<float> k(static_cast<size_t>(kKvHeads) * kTokens * kHeadDim), v(k.size());
    for (int l = 0; l < kLayers; ++l) {
      for (float& x : k) x = normal(rng);
      for (float& x : v) x = normal(rng);
      absl::Status st = (*writer)->AddLayer(l, shape, k, v);
      if (!st.ok()) return st;
    }
    return (*writer)->Commit();
  }

  absl::Status Read(const std::string& id) {
    KvReadOptions options;
    options.chunk_ids = {id};
    options.model = TestModel();
    auto reader = store_->ReadKv("ns", options);
    if (!reader.ok()) return reader.status();
    KvBlock block;
    while (true) {
      auto more = (*reader)->Next(&block);
      if (!more.ok()) return more.status();
      if (!*more) return absl::OkStatus();
    }
  }

  bool Has(const std::string& id) {
    auto e = store_->ExistsKv("ns", {id}, TestModel());
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() && (*e)[0] > 0;
  }

  std::string NewDir(const std::string& prefix) {
    std::string d = test::MakeTempDir(prefix);
    extra_dirs_.push_back(d);
    return d;
  }

  std::string dir_;
  std::vector<std::string> extra_dirs_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
  std::atomic<int64_t> now_ms_{1'000'000};
};

TEST_F(KvRetentionTest, LruOrderSurvivesReopen) {
  Open();
  CreateKvNamespace(3, "lru");
  ASSERT_TRUE(Put("c0").ok());
  ASSERT_TRUE(Put("c1").ok());
  ASSERT_TRUE(Put("c2").ok());
  ASSERT_TRUE(Read("c0").ok());  // c1 is now the least recently used
  Reopen();
  auto put = Put("c3");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->evicted_chunks, 1u);
  EXPECT_FALSE(Has("c1"));  // put order alone would have evicted c0
  EXPECT_TRUE(Has("c0"));
  EXPECT_TRUE(Has("c2"));
  // The order keeps going after the restart: c2 is next, then c0.
  ASSERT_TRUE(Read("c0").ok());
  ASSERT_TRUE(Put("c4").ok());
  EXPECT_FALSE(Has("c2"));
  EXPECT_TRUE(Has("c0"));
  Reopen();
  ASSERT_TRUE(Put("c5").ok());
  EXPECT_FALSE(Has("c3"));
  EXPECT_TRUE(Has("c0"));
  EXPECT_TRUE(Has("c4"));
}

TEST_F(KvRetentionTest, FifoKeepsPutOrderAcrossReopen) {
  Open();
  CreateKvNamespace(2, "fifo");
  ASSERT_TRUE(Put("c0").ok());
  ASSERT_TRUE(Put("c1").ok());
  ASSERT_TRUE(Read("c0").ok());  // FIFO ignores reads
  Reopen();
  ASSERT_TRUE(Put("c2").ok());
  EXPECT_FALSE(Has("c0"));
  EXPECT_TRUE(Has("c1"));
  EXPECT_TRUE(Has("c2"));
}

// The timer writes stamps without Close: a consistent copy taken while the
// store runs (as a crash would leave it) has the order of the reads.
TEST_F(KvRetentionTest, TimerFlushesRecencyBeforeAnyClose) {
  options_.kv_recency_flush_ms = 20;
  Open();
  CreateKvNamespace(3, "lru");
  ASSERT_TRUE(Put("c0").ok());
  ASSERT_TRUE(Put("c1").ok());
  ASSERT_TRUE(Put("c2").ok());
  ASSERT_TRUE(Read("c0").ok());
  std::string copy;
  // The stamp of c0 (first chunk, so the smallest internal id) becomes
  // the largest once the timer flushed it.
  ASSERT_TRUE(WaitFor([&] {
    copy = NewDir("kvret-copy");
    fs::remove_all(copy);
    if (!store_->Checkpoint(copy).ok()) return false;
    auto stamps = KvRows(copy, 'r');
    if (stamps.size() != 3) return false;
    auto first = kvrecords::DecodeRecency(stamps.begin()->second);
    for (const auto& [key, value] : stamps) {
      if (*kvrecords::DecodeRecency(value) > *first) return false;
    }
    return true;
  }));
  store_.reset();
  Open(copy);
  ASSERT_TRUE(Put("c3").ok());
  EXPECT_FALSE(Has("c1"));
  EXPECT_TRUE(Has("c0"));
}

// Without a flush (timer off, no Close) a crash leaves the older order:
// stale, never broken. Also shows the test above could fail.
TEST_F(KvRetentionTest, UnflushedRecencyOnlyMakesTheOrderStale) {
  Open();
  CreateKvNamespace(3, "lru");
  ASSERT_TRUE(Put("c0").ok());
  ASSERT_TRUE(Put("c1").ok());
  ASSERT_TRUE(Put("c2").ok());
  ASSERT_TRUE(Read("c0").ok());
  const std::string copy = NewDir("kvret-copy");
  fs::remove_all(copy);
  ASSERT_TRUE(store_->Checkpoint(copy).ok());
  store_.reset();
  Open(copy);
  ASSERT_TRUE(Put("c3").ok());
  EXPECT_FALSE(Has("c0"));  // put order: the read was not persisted
  EXPECT_TRUE(Has("c1"));
  EXPECT_TRUE(Has("c2"));
  ASSERT_TRUE(Read("c1").ok());
  EXPECT_TRUE(absl::IsNotFound(Read("c0")));
}

TEST_F(KvRetentionTest, TimerRemovesExpiredKvWithoutAPut) {
  options_.kv_expiry_interval_ms = 10;
  Open();
  CreateKvNamespace(8, "lru");
  ASSERT_TRUE(Put("c0", /*ttl=*/5).ok());
  ASSERT_TRUE(Put("c1").ok());
  // Not yet expired: the timer leaves it alone.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(store_->GetKvStats("ns")->expired_chunks, 0u);
  EXPECT_TRUE(Has("c0"));
  now_ms_ += 5'000;
  ASSERT_TRUE(WaitFor([&] { return store_->GetKvStats("ns")->expired_chunks == 1; }));
  auto stats = store_->GetKvStats("ns");
  EXPECT_EQ(stats->chunks, 1u);
  EXPECT_FALSE(Has("c0"));
  EXPECT_TRUE(Has("c1"));
  // The chunk itself (text, vector) stays.
  auto got = store_->Get("ns", {"c0"}, {}, /*include_vectors=*/true);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->chunks.size(), 1u);
  EXPECT_EQ(got->chunks[0].text, "text of c0");
  EXPECT_EQ(got->chunks[0].vector, test::VectorFor("c0", kDim));
  // The rows are gone, not only hidden: one chunk's record, stamp, blocks.
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  EXPECT_EQ(KvRows(dir_, 'c').size(), 1u);
  EXPECT_EQ(KvRows(dir_, 'r').size(), 1u);
  EXPECT_EQ(KvRows(dir_, 'b').size(), static_cast<size_t>(kLayers));
  Open();
  EXPECT_EQ(store_->GetKvStats("ns")->chunks, 1u);
  EXPECT_TRUE(Has("c1"));
}

TEST_F(KvRetentionTest, CloseWhileTimersRunIsClean) {
  options_.kv_expiry_interval_ms = 1;
  options_.kv_recency_flush_ms = 1;
  Open();
  CreateKvNamespace(8, "lru");
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 6; ++i) {
      ASSERT_TRUE(Put(absl::StrCat("c", i), /*ttl=*/i % 2 == 0 ? 1 : 0).ok());
      ASSERT_TRUE(Read(absl::StrCat("c", i)).ok());
    }
    now_ms_ += 1'000;  // the even chunks expire while the store closes
    Reopen();
    ASSERT_TRUE(WaitFor([&] { return store_->GetKvStats("ns")->chunks == 3; }));
    for (int i = 0; i < 6; ++i) EXPECT_EQ(Has(absl::StrCat("c", i)), i % 2 == 1) << i;
  }
  ASSERT_TRUE(store_->Close().ok());
  ASSERT_TRUE(store_->Close().ok());  // a second Close is a no-op
}

TEST_F(KvRetentionTest, IntervalsBeyondADayAreRefused) {
  options_.kv_expiry_interval_ms = 25ull * 3600 * 1000;
  auto store = Store::Open(options_, dir_);
  EXPECT_TRUE(absl::IsInvalidArgument(store.status())) << store.status();
  options_.kv_expiry_interval_ms = 0;
  options_.kv_recency_flush_ms = 25ull * 3600 * 1000;
  store = Store::Open(options_, dir_);
  EXPECT_TRUE(absl::IsInvalidArgument(store.status())) << store.status();
}

}  // namespace
}  // namespace mnemo::db
