#include "db/store.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <atomic>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "db/store_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/db/test_util.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr int kDim = 8;

Chunk MakeChunk(const std::string& id, const std::string& doc = "",
                const std::string& metadata = "", std::vector<float> vector = {}) {
  Chunk c;
  c.id = id;
  c.document_id = doc;
  c.text = absl::StrCat("text of ", id);
  c.metadata_json = metadata;
  c.vector = vector.empty() ? test::VectorFor(id, kDim) : std::move(vector);
  return c;
}

Document MakeDoc(const std::string& id, const std::string& metadata = "") {
  Document d;
  d.id = id;
  d.text = absl::StrCat("document ", id);
  d.metadata_json = metadata;
  return d;
}

std::vector<std::string> HitIds(const std::vector<Hit>& hits) {
  std::vector<std::string> ids;
  for (const Hit& h : hits) ids.push_back(h.id);
  return ids;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("store");
    options_.snapshot_every_ops = 0;
    store_ = OpenStore(dir_);
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    for (const std::string& d : extra_dirs_) fs::remove_all(d, ec);
  }

  std::unique_ptr<Store> OpenStore(const std::string& dir) {
    auto store = Store::Open(options_, dir);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  void Reopen() {
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    store_ = OpenStore(dir_);
    ASSERT_NE(store_, nullptr);
  }

  void CreateNs(const std::string& name, Metric metric = Metric::kL2,
                const std::string& factory = "Flat") {
    NamespaceConfig config;
    config.name = name;
    config.dim = kDim;
    config.metric = metric;
    config.index_factory = factory;
    auto info = store_->CreateNamespace(config);
    ASSERT_TRUE(info.ok()) << info.status();
  }

  void Put(const std::string& ns, std::vector<Chunk> chunks, std::vector<Document> docs = {}) {
    auto r = store_->Upsert(ns, docs, chunks);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  uint64_t ChunkCount(const std::string& ns) {
    auto info = store_->GetNamespace(ns);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->chunk_count : 0;
  }

  // Top hits for the vector of `id` (L2: the chunk itself comes first).
  std::vector<std::string> SearchFor(const std::string& ns, const std::vector<float>& query,
                                     int k = 3, index::Filter filter = {}) {
    SearchOptions options;
    options.k = k;
    options.filter = std::move(filter);
    auto hits = store_->Search(ns, query, options);
    EXPECT_TRUE(hits.ok()) << hits.status();
    if (!hits.ok() || hits->empty()) return {};
    return HitIds((*hits)[0]);
  }

  bool Exists(const std::string& ns, const std::string& chunk_id) {
    std::vector<std::string> ids = {chunk_id};
    auto got = store_->Get(ns, ids, {}, false);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() && got->chunks.size() == 1;
  }

  StoreOptions options_;
  std::string dir_;
  std::vector<std::string> extra_dirs_;
  std::unique_ptr<Store> store_;
};

// --- namespaces ------------------------------------------------------------

TEST_F(StoreTest, CreateNamespaceReportsConfig) {
  CreateNs("docs.v1");
  auto info = store_->GetNamespace("docs.v1");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->config.name, "docs.v1");
  EXPECT_EQ(info->config.dim, static_cast<uint32_t>(kDim));
  EXPECT_EQ(info->config.metric, Metric::kL2);
  EXPECT_EQ(info->chunk_count, 0u);
  EXPECT_GT(info->created_unix_ms, 0);
}

TEST_F(StoreTest, ListNamespacesReturnsAllSortedByName) {
  CreateNs("b");
  CreateNs("a");
  auto list = store_->ListNamespaces();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].config.name, "a");
  EXPECT_EQ((*list)[1].config.name, "b");
}

TEST_F(StoreTest, CreateNamespaceRejectsBadNames) {
  for (const std::string& name :
       {std::string(), std::string(129, 'a'), std::string("a/b"), std::string("sp ace"),
        std::string("nul\0l", 5)}) {
    NamespaceConfig config;
    config.name = name;
    config.dim = kDim;
    EXPECT_EQ(store_->CreateNamespace(config).status().code(),
              absl::StatusCode::kInvalidArgument)
        << name;
  }
  EXPECT_TRUE(ValidateNamespaceName(std::string(128, 'z')).ok());
  EXPECT_TRUE(ValidateNamespaceName("A-z_0.9").ok());
}

TEST_F(StoreTest, CreateNamespaceRejectsBadDim) {
  NamespaceConfig config;
  config.name = "n";
  config.dim = 0;
  EXPECT_EQ(store_->CreateNamespace(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.dim = options_.limits.max_dim + 1;
  EXPECT_EQ(store_->CreateNamespace(config).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, CreateNamespaceRejectsBadFactory) {
  NamespaceConfig config;
  config.name = "n";
  config.dim = kDim;
  config.index_factory = "NoSuchIndex123";
  EXPECT_EQ(store_->CreateNamespace(config).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetNamespace("n").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, CreateNamespaceTwiceIsAlreadyExists) {
  CreateNs("n");
  NamespaceConfig config;
  config.name = "n";
  config.dim = kDim;
  EXPECT_EQ(store_->CreateNamespace(config).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(StoreTest, MissingNamespaceIsNotFound) {
  EXPECT_EQ(store_->GetNamespace("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->DropNamespace("nope").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Upsert("nope", {}, std::vector<Chunk>{MakeChunk("c")}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Search("nope", test::VectorFor("q", kDim), {}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, DropThenRecreateSameNameIsEmpty) {
  CreateNs("n");
  Put("n", {MakeChunk("c1", "d1"), MakeChunk("c2")}, {MakeDoc("d1")});
  ASSERT_TRUE(store_->DropNamespace("n").ok());
  EXPECT_EQ(store_->GetNamespace("n").status().code(), absl::StatusCode::kNotFound);
  CreateNs("n");
  auto info = store_->GetNamespace("n");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->chunk_count, 0u);
  EXPECT_EQ(info->document_count, 0u);
  EXPECT_FALSE(Exists("n", "c1"));
  EXPECT_TRUE(SearchFor("n", test::VectorFor("c1", kDim)).empty());
  Reopen();
  EXPECT_EQ(ChunkCount("n"), 0u);
  EXPECT_FALSE(Exists("n", "c1"));
}

// --- writes and reads ------------------------------------------------------

TEST_F(StoreTest, UpsertGetDeleteRoundTrip) {
  CreateNs("n");
  auto written = store_->Upsert("n", std::vector<Document>{MakeDoc("d1", R"({"lang":"en"})")},
                                std::vector<Chunk>{MakeChunk("c1", "d1", R"({"x":1})"),
                                                   MakeChunk("c2")});
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->documents_written, 1u);
  EXPECT_EQ(written->chunks_written, 2u);

  std::vector<std::string> chunk_ids = {"c1", "zz", "c2"};
  std::vector<std::string> doc_ids = {"d1", "d9"};
  auto got = store_->Get("n", chunk_ids, doc_ids, /*include_vectors=*/true);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->chunks.size(), 2u);
  EXPECT_EQ(got->chunks[0].id, "c1");
  EXPECT_EQ(got->chunks[0].document_id, "d1");
  EXPECT_EQ(got->chunks[0].text, "text of c1");
  EXPECT_EQ(got->chunks[0].metadata_json, R"({"x":1})");
  EXPECT_EQ(got->chunks[0].vector, test::VectorFor("c1", kDim));
  EXPECT_EQ(got->chunks[1].id, "c2");
  ASSERT_EQ(got->documents.size(), 1u);
  EXPECT_EQ(got->documents[0].id, "d1");
  EXPECT_EQ(got->documents[0].metadata_json, R"({"lang":"en"})");
  EXPECT_THAT(got->missing_ids, ElementsAre("zz", "d9"));

  std::vector<std::string> del = {"c2", "unknown"};
  auto deleted = store_->Delete("n", del, {});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->chunks_deleted, 1u);
  EXPECT_FALSE(Exists("n", "c2"));
  EXPECT_EQ(ChunkCount("n"), 1u);
  EXPECT_THAT(SearchFor("n", test::VectorFor("c2", kDim), 5), ElementsAre("c1"));
}

TEST_F(StoreTest, SearchReturnsNearestFirstWithPayload) {
  CreateNs("n");
  Put("n", {MakeChunk("a", "d", R"({"k":"v"})"), MakeChunk("b"), MakeChunk("c")});
  SearchOptions options;
  options.k = 2;
  options.include_payload = true;
  options.include_vectors = true;
  auto hits = store_->Search("n", test::VectorFor("b", kDim), options);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 1u);
  ASSERT_EQ((*hits)[0].size(), 2u);
  const Hit& top = (*hits)[0][0];
  EXPECT_EQ(top.id, "b");
  EXPECT_NEAR(top.score, 0.0f, 1e-5);
  ASSERT_TRUE(top.chunk.has_value());
  EXPECT_EQ(top.chunk->text, "text of b");
  EXPECT_EQ(top.chunk->vector, test::VectorFor("b", kDim));
}

TEST_F(StoreTest, SearchBatchGivesOneListPerQuery) {
  CreateNs("n");
  Put("n", {MakeChunk("a"), MakeChunk("b"), MakeChunk("c")});
  std::vector<float> queries = test::VectorFor("c", kDim);
  auto second = test::VectorFor("a", kDim);
  queries.insert(queries.end(), second.begin(), second.end());
  SearchOptions options;
  options.k = 10;
  auto hits = store_->Search("n", queries, options);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_EQ((*hits)[0].size(), 3u);  // fewer than k: only 3 chunks exist
  EXPECT_EQ((*hits)[0][0].id, "c");
  EXPECT_EQ((*hits)[1][0].id, "a");
}

// Large batches run one at a time with the whole OpenMP team and small
// ones single-threaded side by side; either way each caller gets exactly
// the results a lone caller gets.
TEST_F(StoreTest, ConcurrentLargeAndSmallBatchesMatchSerialResults) {
  CreateNs("n");
  std::vector<Chunk> chunks;
  for (int i = 0; i < 200; ++i) chunks.push_back(MakeChunk(absl::StrCat("c", i)));
  Put("n", chunks);
  std::vector<float> large;
  for (int i = 0; i < 64; ++i) {
    auto v = test::VectorFor(absl::StrCat("c", i * 3), kDim);
    large.insert(large.end(), v.begin(), v.end());
  }
  const std::vector<float> small = test::VectorFor("c7", kDim);
  SearchOptions options;
  options.k = 5;
  auto want_large = store_->Search("n", large, options);
  auto want_small = store_->Search("n", small, options);
  ASSERT_TRUE(want_large.ok() && want_small.ok());
  auto ids = [](const std::vector<std::vector<Hit>>& lists) {
    std::vector<std::string> out;
    for (const auto& hits : lists)
      for (const Hit& h : hits) out.push_back(h.id);
    return out;
  };
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 10; ++round) {
        const bool use_large = (t + round) % 2 == 0;
        auto got = store_->Search("n", use_large ? large : small, options);
        if (!got.ok() || ids(*got) != ids(use_large ? *want_large : *want_small)) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(StoreTest, ReplacingChunkServesNewVectorOnly) {
  CreateNs("n");
  Put("n", {MakeChunk("c1", "", R"({"v":1})"), MakeChunk("other")});
  const std::vector<float> fresh = test::VectorFor("fresh", kDim);
  Put("n", {MakeChunk("c1", "", R"({"v":2})", fresh)});
  EXPECT_EQ(ChunkCount("n"), 2u);
  EXPECT_EQ(SearchFor("n", fresh, 1), std::vector<std::string>{"c1"});
  // The old vector's nearest neighbour is no longer at distance 0.
  SearchOptions options;
  options.k = 2;
  auto hits = store_->Search("n", test::VectorFor("c1", kDim), options);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ((*hits)[0].size(), 2u);
  for (const Hit& h : (*hits)[0]) EXPECT_GT(h.score, 1e-3) << h.id;
  std::vector<std::string> ids = {"c1"};
  auto got = store_->Get("n", ids, {}, true);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->chunks.size(), 1u);
  EXPECT_EQ(got->chunks[0].vector, fresh);
  EXPECT_EQ(got->chunks[0].metadata_json, R"({"v":2})");
  // Filters see the new metadata only.
  index::FieldCondition cond;
  cond.field = "v";
  cond.values = {index::FilterValue(1.0)};
  index::Filter filter;
  filter.all_of.push_back(cond);
  EXPECT_TRUE(SearchFor("n", fresh, 5, filter).empty());
}

TEST_F(StoreTest, DeletingDocumentDeletesItsChunks) {
  CreateNs("n");
  Put("n", {MakeChunk("a1", "A"), MakeChunk("a2", "A"), MakeChunk("b1", "B"), MakeChunk("free")},
      {MakeDoc("A"), MakeDoc("B")});
  std::vector<std::string> docs = {"A"};
  auto deleted = store_->Delete("n", {}, docs);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->documents_deleted, 1u);
  EXPECT_EQ(deleted->chunks_deleted, 2u);
  EXPECT_FALSE(Exists("n", "a1"));
  EXPECT_FALSE(Exists("n", "a2"));
  EXPECT_TRUE(Exists("n", "b1"));
  EXPECT_TRUE(Exists("n", "free"));
  auto info = store_->GetNamespace("n");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->chunk_count, 2u);
  EXPECT_EQ(info->document_count, 1u);
  EXPECT_THAT(SearchFor("n", test::VectorFor("a1", kDim), 10),
              UnorderedElementsAre("b1", "free"));
}

TEST_F(StoreTest, ChunkMovedToAnotherDocumentLeavesTheOld) {
  CreateNs("n");
  Put("n", {MakeChunk("c", "A")}, {MakeDoc("A"), MakeDoc("B")});
  Put("n", {MakeChunk("c", "B")});
  std::vector<std::string> docs = {"A"};
  auto deleted = store_->Delete("n", {}, docs);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->chunks_deleted, 0u);
  EXPECT_TRUE(Exists("n", "c"));
  docs = {"B"};
  deleted = store_->Delete("n", {}, docs);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->chunks_deleted, 1u);
  EXPECT_FALSE(Exists("n", "c"));
}

TEST_F(StoreTest, DocumentIdPrefixDoesNotCaptureOtherDocuments) {
  CreateNs("n");
  Put("n", {MakeChunk("x", "doc"), MakeChunk("y", "doc1")});
  std::vector<std::string> docs = {"doc"};
  ASSERT_TRUE(store_->Delete("n", {}, docs).ok());
  EXPECT_FALSE(Exists("n", "x"));
  EXPECT_TRUE(Exists("n", "y"));
}

TEST_F(StoreTest, CosineStoresVectorsAsGiven) {
  CreateNs("n", Metric::kCosine);
  std::vector<float> v(kDim, 3.0f);
  Put("n", {MakeChunk("c", "", "", v)});
  std::vector<std::string> ids = {"c"};
  auto got = store_->Get("n", ids, {}, true);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->chunks.size(), 1u);
  EXPECT_EQ(got->chunks[0].vector, v);
}

// --- bad input: right code, nothing stored --------------------------------

class StoreRejectTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    CreateNs("n");
    Put("n", {MakeChunk("keep1", "D"), MakeChunk("keep2")}, {MakeDoc("D")});
  }

  // The status has `code` and the stored data is what SetUp wrote.
  void ExpectRejectedIntact(const absl::Status& status, absl::StatusCode code) {
    EXPECT_EQ(status.code(), code) << status;
    auto info = store_->GetNamespace("n");
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->chunk_count, 2u);
    EXPECT_EQ(info->document_count, 1u);
    EXPECT_FALSE(Exists("n", "new"));
    EXPECT_THAT(SearchFor("n", test::VectorFor("keep1", kDim), 10),
                ElementsAre("keep1", "keep2"));
  }

  absl::Status UpsertChunks(std::vector<Chunk> chunks) {
    return store_->Upsert("n", {}, chunks).status();
  }
};

TEST_F(StoreRejectTest, EmptyChunkIdIsInvalid) {
  ExpectRejectedIntact(UpsertChunks({MakeChunk("new"), MakeChunk("")}),
                       absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreRejectTest, OverlongIdIsInvalid) {
  ExpectRejectedIntact(UpsertChunks({MakeChunk("new"), MakeChunk(std::string(513, 'x'))}),
                       absl::StatusCode::kInvalidArgument);
  Document doc = MakeDoc(std::string(513, 'd'));
  ExpectRejectedIntact(store_->Upsert("n", std::vector<Document>{doc}, {}).status(),
                       absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreRejectTest, DuplicateIdsInOneWriteAreInvalid) {
  ExpectRejectedIntact(UpsertChunks({MakeChunk("new"), MakeChunk("new")}),
                       absl::StatusCode::kInvalidArgument);
  ExpectRejectedIntact(
      store_->Upsert("n", std::vector<Document>{MakeDoc("x"), MakeDoc("x")}, {}).status(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreRejectTest, WrongDimIsInvalid) {
  ExpectRejectedIntact(UpsertChunks({MakeChunk("new"), MakeChunk("bad", "", "", {1, 2, 3})}),
                       absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreRejectTest, NanNamesChunkAndIndex) {
  std::vector<float> v = test::VectorFor("bad", kDim);
  v[5] = std::numeric_limits<float>::quiet_NaN();
  absl::Status st = UpsertChunks({MakeChunk("new"), MakeChunk("bad", "", "", v)});
  EXPECT_THAT(std::string(st.message()), HasSubstr("'bad'"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("index 5"));
  ExpectRejectedIntact(st, absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreRejectTest, InfinityIsInvalid) {
  std::vector<float> v = test::VectorFor("bad", kDim);
  v[0] = -std::numeric_limits<float>::infinity();
  ExpectRejectedIntact(UpsertChunks({MakeChunk("new"), MakeChunk("bad", "", "", v)}),
                       absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreRejectTest, MetadataThatIsNotAnObjectIsInvalid) {
  for (const char* meta : {"[1,2]", "\"str\"", "{not json", "42"}) {
    ExpectRejectedIntact(UpsertChunks({MakeChunk("new"), MakeChunk("bad", "", meta)}),
                         absl::StatusCode::kInvalidArgument);
  }
  ExpectRejectedIntact(
      store_->Upsert("n", std::vector<Document>{MakeDoc("x", "[]")}, {}).status(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreRejectTest, OversizedMetadataIsResourceExhausted) {
  std::string meta = absl::StrCat(R"({"k":")", std::string(options_.limits.max_metadata_bytes, 'x'),
                                  R"("})");
  ExpectRejectedIntact(UpsertChunks({MakeChunk("new"), MakeChunk("bad", "", meta)}),
                       absl::StatusCode::kResourceExhausted);
}

TEST_F(StoreRejectTest, OversizedTextIsResourceExhausted) {
  Chunk big = MakeChunk("bad");
  big.text.assign(options_.limits.max_text_bytes + 1, 't');
  ExpectRejectedIntact(UpsertChunks({MakeChunk("new"), big}),
                       absl::StatusCode::kResourceExhausted);
}

TEST_F(StoreRejectTest, OversizedBatchIsResourceExhausted) {
  std::vector<Chunk> chunks;
  for (uint32_t i = 0; i <= options_.limits.max_write_batch; ++i) {
    chunks.push_back(MakeChunk(i == 0 ? "new" : absl::StrCat("c", i)));
  }
  ExpectRejectedIntact(UpsertChunks(std::move(chunks)), absl::StatusCode::kResourceExhausted);
}

TEST_F(StoreRejectTest, EmptyIdInDeleteOrGetIsInvalid) {
  std::vector<std::string> ids = {"keep1", ""};
  ExpectRejectedIntact(store_->Delete("n", ids, {}).status(), absl::StatusCode::kInvalidArgument);
  ExpectRejectedIntact(store_->Get("n", ids, {}, false).status(),
                       absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreRejectTest, SearchKOutOfRangeIsInvalid) {
  SearchOptions options;
  options.k = 0;
  auto q = test::VectorFor("q", kDim);
  ExpectRejectedIntact(store_->Search("n", q, options).status(),
                       absl::StatusCode::kInvalidArgument);
  options.k = static_cast<int>(options_.limits.max_k) + 1;
  absl::Status st = store_->Search("n", q, options).status();
  EXPECT_THAT(std::string(st.message()), HasSubstr(absl::StrCat(options_.limits.max_k)));
  ExpectRejectedIntact(st, absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreRejectTest, SearchQueryShapeIsChecked) {
  SearchOptions options;
  ExpectRejectedIntact(store_->Search("n", {}, options).status(),
                       absl::StatusCode::kInvalidArgument);
  std::vector<float> ragged(kDim + 1, 0.5f);
  ExpectRejectedIntact(store_->Search("n", ragged, options).status(),
                       absl::StatusCode::kInvalidArgument);
  std::vector<float> nan(kDim, 0.5f);
  nan[2] = std::nanf("");
  ExpectRejectedIntact(store_->Search("n", nan, options).status(),
                       absl::StatusCode::kInvalidArgument);
  std::vector<float> many(static_cast<size_t>(kDim) * (options_.limits.max_query_batch + 1),
                          0.1f);
  ExpectRejectedIntact(store_->Search("n", many, options).status(),
                       absl::StatusCode::kResourceExhausted);
}

TEST_F(StoreRejectTest, SearchWithAnotherExpectedDimIsInvalid) {
  // Two queries of kDim are also one query of 2 * kDim floats: the stated
  // dimension is what tells them apart.
  std::vector<float> queries(2 * static_cast<size_t>(kDim), 0.25f);
  SearchOptions options;
  options.expected_dim = 2 * kDim;
  ExpectRejectedIntact(store_->Search("n", queries, options).status(),
                       absl::StatusCode::kInvalidArgument);
  options.expected_dim = kDim;
  auto hits = store_->Search("n", queries, options);
  ASSERT_TRUE(hits.ok()) << hits.status();
  EXPECT_EQ(hits->size(), 2u);
}

TEST_F(StoreRejectTest, MalformedFilterIsInvalid) {
  SearchOptions options;
  index::FieldCondition cond;
  cond.field = "";
  cond.values = {index::FilterValue(1.0)};
  options.filter.all_of.push_back(cond);
  ExpectRejectedIntact(store_->Search("n", test::VectorFor("q", kDim), options).status(),
                       absl::StatusCode::kInvalidArgument);
}

// --- filters ---------------------------------------------------------------

class StoreFilterTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    CreateNs("n");
    Put("n", {MakeChunk("en1", "", R"({"lang":"en","year":2001,"tags":["a","b"]})"),
              MakeChunk("en2", "", R"({"lang":"en","year":2010})"),
              MakeChunk("fr1", "", R"({"lang":"fr","year":2005,"tags":["b"]})"),
              MakeChunk("none")});
  }
  std::vector<std::string> Filtered(index::FieldCondition cond) {
    index::Filter filter;
    filter.all_of.push_back(std::move(cond));
    return SearchFor("n", test::VectorFor("q", kDim), 10, filter);
  }
};

TEST_F(StoreFilterTest, EqualityFilter) {
  index::FieldCondition cond;
  cond.field = "lang";
  cond.values = {index::FilterValue(std::string("en"))};
  EXPECT_THAT(Filtered(cond), UnorderedElementsAre("en1", "en2"));
}

TEST_F(StoreFilterTest, MembershipFilterMatchesArrays) {
  index::FieldCondition cond;
  cond.field = "tags";
  cond.op = index::FieldCondition::Op::kIn;
  cond.values = {index::FilterValue(std::string("b")), index::FilterValue(std::string("z"))};
  EXPECT_THAT(Filtered(cond), UnorderedElementsAre("en1", "fr1"));
}

TEST_F(StoreFilterTest, RangeFilter) {
  index::FieldCondition cond;
  cond.field = "year";
  cond.op = index::FieldCondition::Op::kRange;
  cond.lower = 2001;
  cond.lower_inclusive = false;
  cond.upper = 2010;
  EXPECT_THAT(Filtered(cond), UnorderedElementsAre("fr1", "en2"));
}

TEST_F(StoreFilterTest, FiltersSurviveReopen) {
  Reopen();
  index::FieldCondition cond;
  cond.field = "lang";
  cond.values = {index::FilterValue(std::string("fr"))};
  EXPECT_THAT(Filtered(cond), ElementsAre("fr1"));
}

// --- persistence -------------------------------------------------------------

TEST_F(StoreTest, ReopenAfterCloseFindsEverything) {
  CreateNs("n");
  Put("n", {MakeChunk("c1", "d"), MakeChunk("c2"), MakeChunk("c3")}, {MakeDoc("d")});
  std::vector<std::string> del = {"c3"};
  ASSERT_TRUE(store_->Delete("n", del, {}).ok());
  Reopen();
  auto info = store_->GetNamespace("n");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->chunk_count, 2u);
  EXPECT_EQ(info->document_count, 1u);
  EXPECT_EQ(SearchFor("n", test::VectorFor("c2", kDim), 1), std::vector<std::string>{"c2"});
  EXPECT_FALSE(Exists("n", "c3"));
  // Ids keep being allocated past the old ones after a reopen.
  Put("n", {MakeChunk("c4")});
  EXPECT_EQ(SearchFor("n", test::VectorFor("c4", kDim), 1), std::vector<std::string>{"c4"});
  EXPECT_EQ(SearchFor("n", test::VectorFor("c1", kDim), 1), std::vector<std::string>{"c1"});
}

// Parameter: index factory. Flat removes ids; HNSW marks them dead.
class StoreReplayTest : public StoreTest,
                        public ::testing::WithParamInterface<const char*> {};

TEST_P(StoreReplayTest, SnapshotPlusLogReplayRestoresLaterWrites) {
  CreateNs("n", Metric::kL2, GetParam());
  Put("n", {MakeChunk("a"), MakeChunk("b"), MakeChunk("c")});
  auto checkpoint = store_->Checkpoint("");  // snapshot at log seq 3; log trimmed
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const std::vector<float> moved = test::VectorFor("moved", kDim);
  Put("n", {MakeChunk("d"), MakeChunk("a", "", "", moved)});  // add d, remove a, add a
  std::vector<std::string> del = {"b"};
  ASSERT_TRUE(store_->Delete("n", del, {}).ok());  // remove b

  // The snapshot on disk predates these writes; reopening must replay them.
  ASSERT_TRUE(testing::CloseWithoutSnapshotForTesting(store_.get()).ok());
  store_.reset();
  store_ = OpenStore(dir_);
  ASSERT_NE(store_, nullptr);
  auto recovery = testing::RecoveryInfoForTesting(store_.get(), "n");
  ASSERT_TRUE(recovery.ok()) << recovery.status();
  EXPECT_TRUE(recovery->loaded_snapshot) << "the index was rebuilt instead of loaded";
  EXPECT_EQ(recovery->snapshot_seq, 3u);
  EXPECT_EQ(recovery->replayed_entries, 4u);

  EXPECT_EQ(ChunkCount("n"), 3u);
  EXPECT_FALSE(Exists("n", "b"));
  EXPECT_EQ(SearchFor("n", moved, 1), std::vector<std::string>{"a"});
  EXPECT_EQ(SearchFor("n", test::VectorFor("d", kDim), 1), std::vector<std::string>{"d"});
  EXPECT_EQ(SearchFor("n", test::VectorFor("c", kDim), 1), std::vector<std::string>{"c"});
  EXPECT_THAT(SearchFor("n", test::VectorFor("b", kDim), 10), UnorderedElementsAre("a", "c", "d"));
}

TEST_P(StoreReplayTest, CleanCloseLeavesNothingToReplay) {
  CreateNs("n", Metric::kL2, GetParam());
  Put("n", {MakeChunk("a"), MakeChunk("b")});
  Reopen();
  auto recovery = testing::RecoveryInfoForTesting(store_.get(), "n");
  ASSERT_TRUE(recovery.ok()) << recovery.status();
  EXPECT_TRUE(recovery->loaded_snapshot) << "the index was rebuilt instead of loaded";
  EXPECT_EQ(recovery->replayed_entries, 0u);
  EXPECT_EQ(SearchFor("n", test::VectorFor("b", kDim), 1), std::vector<std::string>{"b"});
}

INSTANTIATE_TEST_SUITE_P(Factories, StoreReplayTest, ::testing::Values("Flat", "HNSW16"));

TEST_F(StoreTest, CorruptSnapshotIsRebuiltFromStoredVectors) {
  CreateNs("n");
  Put("n", {MakeChunk("a"), MakeChunk("b")});
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  int corrupted = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(dir_) / "indexes")) {
    std::ofstream out(entry.path(), std::ios::binary | std::ios::trunc);
    out << "this is not an index";
    ++corrupted;
  }
  ASSERT_GT(corrupted, 0);
  store_ = OpenStore(dir_);
  ASSERT_NE(store_, nullptr);
  auto recovery = testing::RecoveryInfoForTesting(store_.get(), "n");
  ASSERT_TRUE(recovery.ok());
  EXPECT_FALSE(recovery->loaded_snapshot);
  EXPECT_EQ(ChunkCount("n"), 2u);
  EXPECT_EQ(SearchFor("n", test::VectorFor("b", kDim), 1), std::vector<std::string>{"b"});
}

TEST_F(StoreTest, MissingSnapshotIsRebuiltFromStoredVectors) {
  CreateNs("n");
  Put("n", {MakeChunk("a"), MakeChunk("b")});
  ASSERT_TRUE(store_->Checkpoint("").ok());
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  fs::remove_all(fs::path(dir_) / "indexes");
  store_ = OpenStore(dir_);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(ChunkCount("n"), 2u);
  EXPECT_EQ(SearchFor("n", test::VectorFor("a", kDim), 1), std::vector<std::string>{"a"});
}

TEST_F(StoreTest, SecondOpenOfSameDirectoryIsFailedPrecondition) {
  auto second = Store::Open(options_, dir_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
}

TEST_F(StoreTest, OpenRejectsInvalidLimits) {
  StoreOptions options = options_;
  options.limits.max_id_bytes = 0;
  EXPECT_EQ(Store::Open(options, dir_ + "_limits").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir_ + "_limits"));
}

TEST_F(StoreTest, OpenMissingDirectoryWithoutCreateIsNotFound) {
  StoreOptions options = options_;
  options.create_if_missing = false;
  auto store = Store::Open(options, dir_ + "/absent");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound) << store.status();
}

TEST_F(StoreTest, CheckpointDirectoryIsOpenableAndHasTheData) {
  CreateNs("n");
  Put("n", {MakeChunk("a", "d"), MakeChunk("b")}, {MakeDoc("d")});
  const std::string target = dir_ + "_ckpt";
  extra_dirs_.push_back(target);
  auto seq = store_->Checkpoint(target);
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_GT(*seq, 0u);
  // Writes after the checkpoint stay out of it.
  Put("n", {MakeChunk("late")});

  auto copy = Store::Open(options_, target);
  ASSERT_TRUE(copy.ok()) << copy.status();
  auto info = (*copy)->GetNamespace("n");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->chunk_count, 2u);
  EXPECT_EQ(info->document_count, 1u);
  SearchOptions options;
  options.k = 1;
  auto hits = (*copy)->Search("n", test::VectorFor("b", kDim), options);
  ASSERT_TRUE(hits.ok());
  EXPECT_THAT(HitIds((*hits)[0]), ElementsAre("b"));
  EXPECT_TRUE((*copy)->Close().ok());
}

TEST_F(StoreTest, CheckpointIntoExistingDirectoryIsRefused) {
  CreateNs("n");
  EXPECT_EQ(store_->Checkpoint(dir_).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(StoreTest, StatsCountsAndSizes) {
  CreateNs("a");
  CreateNs("b");
  Put("a", {MakeChunk("x", "d"), MakeChunk("y")}, {MakeDoc("d")});
  ASSERT_TRUE(store_->Checkpoint("").ok());
  auto all = store_->Stats("");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].config.name, "a");
  EXPECT_EQ((*all)[0].chunk_count, 2u);
  EXPECT_EQ((*all)[0].document_count, 1u);
  EXPECT_GT((*all)[0].approximate_bytes, 0u);
  EXPECT_TRUE((*all)[0].index_trained);
  EXPECT_FALSE((*all)[0].index_description.empty());
  EXPECT_EQ((*all)[1].chunk_count, 0u);
  auto one = store_->Stats("b");
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ(store_->Stats("zz").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, CompactRebuildsGraphIndexWithoutDeadEntries) {
  CreateNs("g", Metric::kL2, "HNSW16");
  std::vector<Chunk> chunks;
  for (int i = 0; i < 50; ++i) chunks.push_back(MakeChunk(absl::StrCat("c", i)));
  Put("g", chunks);
  std::vector<std::string> del;
  for (int i = 0; i < 25; ++i) del.push_back(absl::StrCat("c", i));
  ASSERT_TRUE(store_->Delete("g", del, {}).ok());
  auto before = store_->GetNamespace("g");
  ASSERT_TRUE(before.ok());
  EXPECT_THAT(before->index_description, ::testing::HasSubstr("25 dead"));
  ASSERT_TRUE(store_->Compact("g").ok());
  ASSERT_TRUE(store_->Compact("").ok());
  auto after = store_->GetNamespace("g");
  ASSERT_TRUE(after.ok());
  EXPECT_THAT(after->index_description, ::testing::HasSubstr("25 live"));
  EXPECT_THAT(after->index_description, ::testing::Not(::testing::HasSubstr("dead")));
  EXPECT_EQ(ChunkCount("g"), 25u);
  EXPECT_EQ(SearchFor("g", test::VectorFor("c30", kDim), 1), std::vector<std::string>{"c30"});
  EXPECT_EQ(SearchFor("g", test::VectorFor("c3", kDim), 30).size(), 25u);
  EXPECT_EQ(store_->Compact("zz").code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, ConcurrentWritersReadersAndSnapshotsAgree) {
  options_.snapshot_every_ops = 16;  // background snapshots race too
  Reopen();
  CreateNs("a");
  CreateNs("b", Metric::kL2, "HNSW16");
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  auto writer = [&](const std::string& ns) {
    for (int batch = 0; batch < 30; ++batch) {
      std::vector<Chunk> chunks;
      for (int i = 0; i < 4; ++i) chunks.push_back(MakeChunk(absl::StrCat(ns, batch, "_", i)));
      if (!store_->Upsert(ns, {}, chunks).ok()) ++failures;
      std::vector<std::string> del = {absl::StrCat(ns, batch, "_0")};
      if (!store_->Delete(ns, del, {}).ok()) ++failures;
    }
  };
  auto reader = [&] {
    do {
      for (const char* ns : {"a", "b"}) {
        SearchOptions options;
        options.k = 5;
        options.include_payload = true;
        auto hits = store_->Search(ns, test::VectorFor("q", kDim), options);
        if (!hits.ok()) ++failures;
        if (!store_->Stats("").ok()) ++failures;
      }
    } while (!done.load());
  };
  std::thread wa(writer, "a"), wb(writer, "b"), r1(reader), r2(reader);
  std::thread checkpointer([&] {
    for (int i = 0; i < 5; ++i) {
      if (!store_->Checkpoint("").ok()) ++failures;
    }
  });
  wa.join();
  wb.join();
  checkpointer.join();
  done = true;
  r1.join();
  r2.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(ChunkCount("a"), 90u);
  EXPECT_EQ(ChunkCount("b"), 90u);
  Reopen();
  EXPECT_EQ(ChunkCount("a"), 90u);
  EXPECT_EQ(ChunkCount("b"), 90u);
  EXPECT_EQ(SearchFor("a", test::VectorFor("a7_2", kDim), 1), std::vector<std::string>{"a7_2"});
  EXPECT_EQ(SearchFor("b", test::VectorFor("b29_3", kDim), 1), std::vector<std::string>{"b29_3"});
}

TEST_F(StoreTest, CallsAfterCloseAreFailedPrecondition) {
  CreateNs("n");
  ASSERT_TRUE(store_->Close().ok());
  EXPECT_TRUE(store_->Close().ok());
  EXPECT_EQ(store_->GetNamespace("n").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Upsert("n", {}, std::vector<Chunk>{MakeChunk("c")}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace mnemo::db
