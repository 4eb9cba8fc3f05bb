// Namespace quotas in db::Store (db/quota.h): limits set at creation and by
// SetNamespaceQuota, exact usage, whole writes refused with
// RESOURCE_EXHAUSTED, deletes freeing space, concurrent writers, KV bytes,
// and usage recomputed on reopen.
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "db/records.h"
#include "db/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/db/test_util.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int kDim = 8;

NamespaceQuota Limits(uint64_t max_bytes, uint64_t max_chunks, uint64_t max_kv_bytes) {
  NamespaceQuota q;
  q.max_bytes = max_bytes;
  q.max_chunks = max_chunks;
  q.max_kv_bytes = max_kv_bytes;
  return q;
}

QuotaChange Change(std::optional<uint64_t> max_bytes,
                   std::optional<uint64_t> max_chunks = std::nullopt,
                   std::optional<uint64_t> max_kv_bytes = std::nullopt) {
  QuotaChange c;
  c.max_bytes = max_bytes;
  c.max_chunks = max_chunks;
  c.max_kv_bytes = max_kv_bytes;
  return c;
}

Chunk MakeChunk(const std::string& id, const std::string& text = "", const std::string& doc = "") {
  Chunk c;
  c.id = id;
  c.document_id = doc;
  c.text = text.empty() ? absl::StrCat("text of ", id) : text;
  c.vector = test::VectorFor(id, kDim);
  return c;
}

// The bytes a chunk counts, from the store's own record encoder.
uint64_t BytesOf(const Chunk& c) {
  return records::EncodeChunk(c.id, c.document_id, c.text, c.metadata_json).size() +
         kDim * sizeof(float);
}

uint64_t BytesOf(const Document& d) {
  return records::EncodeDocument(d.text, d.metadata_json).size();
}

class QuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("quota");
    options_.snapshot_every_ops = 0;
    Open();
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Open() {
    auto store = Store::Open(options_, dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  void Reopen() {
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    Open();
  }

  void Create(const NamespaceQuota& quota, const std::string& name = "ns") {
    NamespaceConfig config;
    config.name = name;
    config.dim = kDim;
    config.quota = quota;
    auto info = store_->CreateNamespace(config);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->config.quota, quota);
    EXPECT_EQ(info->usage.bytes, 0u);
    EXPECT_EQ(info->usage.chunks, 0u);
  }

  NamespaceInfo Info(const std::string& name = "ns") {
    auto info = store_->GetNamespace(name);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : NamespaceInfo();
  }

  std::string dir_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
};

TEST_F(QuotaTest, UsageCountsEncodedRecordsAndVectorsExactly) {
  Create({});
  const Chunk a = MakeChunk("a", "", "d");
  const Chunk b = MakeChunk("b", "a longer text for the second chunk");
  Document d;
  d.id = "d";
  d.text = "the document's own text";
  d.metadata_json = R"({"k":1})";
  ASSERT_TRUE(store_->Upsert("ns", {d}, {a, b}).ok());
  NamespaceInfo info = Info();
  EXPECT_EQ(info.usage.chunks, 2u);
  EXPECT_EQ(info.usage.bytes, BytesOf(a) + BytesOf(b) + BytesOf(d));

  // Replacing a chunk with a longer one counts the new record only.
  const Chunk a2 = MakeChunk("a", std::string(500, 'x'), "d");
  ASSERT_TRUE(store_->Upsert("ns", {}, {a2}).ok());
  info = Info();
  EXPECT_EQ(info.usage.chunks, 2u);
  EXPECT_EQ(info.usage.bytes, BytesOf(a2) + BytesOf(b) + BytesOf(d));

  // Deleting the document takes its member chunk along.
  ASSERT_TRUE(store_->Delete("ns", {}, {"d"}).ok());
  info = Info();
  EXPECT_EQ(info.usage.chunks, 1u);
  EXPECT_EQ(info.usage.bytes, BytesOf(b));
  ASSERT_TRUE(store_->Delete("ns", {"b"}, {}).ok());
  EXPECT_EQ(Info().usage.bytes, 0u);
  EXPECT_EQ(Info().usage.chunks, 0u);
}

TEST_F(QuotaTest, MaxChunksRefusesTheWholeBatchAndDeletesFreeRoom) {
  Create(Limits(0, 3, 0));
  ASSERT_TRUE(store_->Upsert("ns", {}, {MakeChunk("c0"), MakeChunk("c1")}).ok());
  auto over = store_->Upsert("ns", {}, {MakeChunk("c2"), MakeChunk("c3")});
  ASSERT_TRUE(absl::IsResourceExhausted(over.status())) << over.status();
  EXPECT_THAT(over.status().message(), AllOf(HasSubstr("'ns'"), HasSubstr("max_chunks is 3"),
                                             HasSubstr("to 4"), HasSubstr("now 2")));
  // Nothing of the refused batch was stored.
  auto got = store_->Get("ns", {"c2", "c3"}, {}, false);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->chunks.empty());
  EXPECT_EQ(Info().chunk_count, 2u);
  SearchOptions search;
  search.k = 10;
  auto hits = store_->Search("ns", test::VectorFor("c2", kDim), search);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ((*hits)[0].size(), 2u);

  // Up to the limit is fine; replacing at the limit too (no new chunk).
  ASSERT_TRUE(store_->Upsert("ns", {}, {MakeChunk("c2")}).ok());
  ASSERT_TRUE(store_->Upsert("ns", {}, {MakeChunk("c2", "new text")}).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(store_->Upsert("ns", {}, {MakeChunk("c3")}).status()));
  ASSERT_TRUE(store_->Delete("ns", {"c0"}, {}).ok());
  EXPECT_TRUE(store_->Upsert("ns", {}, {MakeChunk("c3")}).ok());
  EXPECT_EQ(Info().usage.chunks, 3u);
}

TEST_F(QuotaTest, MaxBytesRefusesWritesOverItAndNamesTheUsage) {
  const Chunk c0 = MakeChunk("c0");
  const Chunk c1 = MakeChunk("c1");
  const uint64_t limit = BytesOf(c0) + BytesOf(c1);
  Create(Limits(limit, 0, 0));
  ASSERT_TRUE(store_->Upsert("ns", {}, {c0, c1}).ok());
  EXPECT_EQ(Info().usage.bytes, limit);
  const Chunk c2 = MakeChunk("c2");
  auto over = store_->Upsert("ns", {}, {c2});
  ASSERT_TRUE(absl::IsResourceExhausted(over.status())) << over.status();
  EXPECT_THAT(over.status().message(), AllOf(HasSubstr(absl::StrCat("max_bytes is ", limit)),
                                             HasSubstr(absl::StrCat("to ", limit + BytesOf(c2))),
                                             HasSubstr(absl::StrCat("now ", limit))));
  // A larger replacement is refused too, a smaller one passes.
  EXPECT_TRUE(absl::IsResourceExhausted(
      store_->Upsert("ns", {}, {MakeChunk("c0", "much longer text than before")}).status()));
  const Chunk small = MakeChunk("c0", "x");
  ASSERT_TRUE(store_->Upsert("ns", {}, {small}).ok());
  EXPECT_EQ(Info().usage.bytes, BytesOf(small) + BytesOf(c1));
  // Documents count as well.
  Document d;
  d.id = "d";
  d.text = std::string(static_cast<size_t>(limit), 'y');
  EXPECT_TRUE(absl::IsResourceExhausted(store_->Upsert("ns", {d}, {}).status()));
  EXPECT_EQ(Info().document_count, 0u);
}

TEST_F(QuotaTest, SetNamespaceQuotaChangesOnlyTheGivenLimits) {
  Create(Limits(1 << 20, 10, 0));
  auto info = store_->SetNamespaceQuota("ns", Change(std::nullopt, 1));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->config.quota.max_bytes, 1u << 20);
  EXPECT_EQ(info->config.quota.max_chunks, 1u);
  EXPECT_EQ(info->config.quota.max_kv_bytes, 0u);
  ASSERT_TRUE(store_->Upsert("ns", {}, {MakeChunk("c0")}).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(store_->Upsert("ns", {}, {MakeChunk("c1")}).status()));
  // 0 removes the limit.
  ASSERT_TRUE(store_->SetNamespaceQuota("ns", Change(std::nullopt, 0)).ok());
  EXPECT_TRUE(store_->Upsert("ns", {}, {MakeChunk("c1")}).ok());
  EXPECT_EQ(Info().config.quota.max_bytes, 1u << 20);

  EXPECT_TRUE(absl::IsInvalidArgument(store_->SetNamespaceQuota("ns", {}).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->SetNamespaceQuota("nope", Change(1)).status()));
}

TEST_F(QuotaTest, ALimitBelowTheUsageStillLetsDeletesThrough) {
  Create({});
  ASSERT_TRUE(store_->Upsert("ns", {}, {MakeChunk("c0"), MakeChunk("c1"), MakeChunk("c2")}).ok());
  ASSERT_TRUE(store_->SetNamespaceQuota("ns", Change(1, 1)).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(store_->Upsert("ns", {}, {MakeChunk("c3")}).status()));
  auto deleted = store_->Delete("ns", {"c0"}, {});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->chunks_deleted, 1u);
  EXPECT_EQ(Info().usage.chunks, 2u);
  // A replacement that shrinks passes although the usage stays above.
  EXPECT_TRUE(store_->Upsert("ns", {}, {MakeChunk("c1", "z")}).ok());
}

TEST_F(QuotaTest, QuotaAndUsageSurviveReopen) {
  Create(Limits(0, 4, 0));
  Document d;
  d.id = "d";
  d.text = "document text";
  ASSERT_TRUE(
      store_->Upsert("ns", {d}, {MakeChunk("c0", "", "d"), MakeChunk("c1"), MakeChunk("c2")}).ok());
  ASSERT_TRUE(store_->Upsert("ns", {}, {MakeChunk("c1", std::string(300, 'q'))}).ok());
  ASSERT_TRUE(store_->Delete("ns", {"c2"}, {}).ok());
  ASSERT_TRUE(store_->SetNamespaceQuota("ns", Change(100000)).ok());
  const NamespaceInfo before = Info();
  Reopen();
  const NamespaceInfo after = Info();
  EXPECT_EQ(after.config.quota, before.config.quota);
  EXPECT_EQ(after.config.quota.max_chunks, 4u);
  EXPECT_EQ(after.usage.bytes, before.usage.bytes);
  EXPECT_EQ(after.usage.chunks, 2u);
  ASSERT_TRUE(store_->Upsert("ns", {}, {MakeChunk("c3"), MakeChunk("c4")}).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(store_->Upsert("ns", {}, {MakeChunk("c5")}).status()));
}

TEST_F(QuotaTest, ConcurrentWritersStopExactlyAtTheLimit) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  constexpr uint64_t kLimit = 60;
  Create(Limits(0, kLimit, 0));
  std::atomic<int> accepted{0};
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = store_->Upsert("ns", {}, {MakeChunk(absl::StrFormat("t%d-%02d", t, i))});
        if (r.ok()) {
          ++accepted;
        } else if (absl::IsResourceExhausted(r.status())) {
          ++refused;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(accepted.load(), static_cast<int>(kLimit));
  EXPECT_EQ(refused.load(), kThreads * kPerThread - static_cast<int>(kLimit));
  const NamespaceInfo info = Info();
  EXPECT_EQ(info.chunk_count, kLimit);
  EXPECT_EQ(info.usage.chunks, kLimit);
  EXPECT_EQ(info.usage.bytes, kLimit * BytesOf(MakeChunk("t0-00")));
  Reopen();
  EXPECT_EQ(Info().usage.bytes, info.usage.bytes);
}

TEST_F(QuotaTest, DroppedNamespaceTakesItsQuotaAlong) {
  Create(Limits(0, 1, 0));
  ASSERT_TRUE(store_->DropNamespace("ns").ok());
  Create({});
  EXPECT_TRUE(store_->Upsert("ns", {}, {MakeChunk("c0"), MakeChunk("c1")}).ok());
  Reopen();
  EXPECT_EQ(Info().config.quota, NamespaceQuota());
}

// --- KV bytes --------------------------------------------------------------

constexpr int kLayers = 2;
constexpr int kKvHeads = 1;
constexpr int kHeadDim = 8;
constexpr int kTokens = 4;

class KvQuotaTest : public QuotaTest {
 protected:
  absl::StatusOr<KvPutResult> PutKv(const std::string& id) {
    KvPutHeader header;
    header.chunk_id = id;
    header.model = test::SmallKvModel(kLayers, kKvHeads, kHeadDim);
    for (int t = 0; t < kTokens; ++t) header.tokens.push_back(t + 1);
    auto writer = store_->BeginPutKv("ns", header);
    if (!writer.ok()) return writer.status();
    std::mt19937 rng(std::hash<std::string>()(id));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const KvTensorShape shape{kKvHeads, kTokens, kHeadDim};
    std::vector<float> k(kKvHeads * kTokens * kHeadDim), v(k.size());
    for (int l = 0; l < kLayers; ++l) {
      for (float& x : k) x = normal(rng);
      for (float& x : v) x = normal(rng);
      absl::Status st = (*writer)->AddLayer(l, shape, k, v);
      if (!st.ok()) return st;
    }
    return (*writer)->Commit();
  }
};

TEST_F(KvQuotaTest, MaxKvBytesRefusesPutsOverItAndDeletesFreeRoom) {
  Create({});
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(store_->Upsert("ns", {}, {MakeChunk(absl::StrCat("c", i))}).ok());
  KvConfig config;
  config.model = test::SmallKvModel(kLayers, kKvHeads, kHeadDim);
  ASSERT_TRUE(store_->RegisterKvModel("ns", config).ok());
  auto first = PutKv("c0");
  ASSERT_TRUE(first.ok()) << first.status();
  const uint64_t one = first->stored_bytes;
  ASSERT_GT(one, 0u);
  EXPECT_EQ(Info().usage.kv_bytes, one);

  ASSERT_TRUE(store_->SetNamespaceQuota("ns", Change(std::nullopt, std::nullopt, 2 * one)).ok());
  ASSERT_TRUE(PutKv("c1").ok());
  // Replacing c1's KV does not grow the usage.
  ASSERT_TRUE(PutKv("c1").ok());
  auto over = PutKv("c2");
  ASSERT_TRUE(absl::IsResourceExhausted(over.status())) << over.status();
  EXPECT_THAT(over.status().message(), AllOf(HasSubstr(absl::StrCat("max_kv_bytes is ", 2 * one)),
                                             HasSubstr(absl::StrCat("to ", 3 * one))));
  auto exists = store_->ExistsKv("ns", {"c2"}, config.model);
  ASSERT_TRUE(exists.ok());
  EXPECT_EQ((*exists)[0], 0u);
  EXPECT_EQ(Info().usage.kv_bytes, 2 * one);

  ASSERT_TRUE(store_->DeleteKv("ns", {"c0"}).ok());
  EXPECT_EQ(Info().usage.kv_bytes, one);
  ASSERT_TRUE(PutKv("c2").ok());
  // Deleting a chunk frees its KV too.
  ASSERT_TRUE(store_->Delete("ns", {"c1"}, {}).ok());
  EXPECT_EQ(Info().usage.kv_bytes, one);
  Reopen();
  EXPECT_EQ(Info().usage.kv_bytes, one);
  EXPECT_EQ(Info().config.quota.max_kv_bytes, 2 * one);
}

}  // namespace
}  // namespace mnemo::db
