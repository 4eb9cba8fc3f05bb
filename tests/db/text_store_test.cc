// Text in the store: encoder namespaces, server-side chunking and
// embedding, BM25, hybrid search and snippets (issue 3). Tests that need
// the USE-lite weights fail when .assets/use-lite is absent.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "db/keys.h"
#include "db/records.h"
#include "db/store.h"
#include "db/text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "tests/db/test_util.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

// $MNEMO_ASSETS_DIR, else <source>/.assets.
std::string AssetsDir() {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  return (env != nullptr && *env != '\0') ? env : MNEMO_SOURCE_DIR "/.assets";
}

bool HaveUseLite() {
  const fs::path dir = fs::path(AssetsDir()) / "use-lite";
  return fs::exists(dir / "model.json") && fs::exists(dir / "vocab.json");
}

constexpr char kMissingAssets[] =
    "USE-lite assets not found (run scripts/fetch_encoder, or set MNEMO_ASSETS_DIR)";

// Five sentences on different topics; with 24-token windows the document
// spans several chunks.
constexpr char kLongText[] =
    "The quokka is a small marsupial that lives on Rottnest Island near Perth. "
    "Sailors once mistook the animals for giant rats and named the island after them. "
    "Volcanic eruptions can inject sulfur dioxide high into the stratosphere. "
    "The resulting aerosols reflect sunlight and can cool the planet for a year or two. "
    "Sourdough bread rises because wild yeast and lactobacilli ferment the dough slowly.";

std::vector<std::string> HitIds(const std::vector<Hit>& hits) {
  std::vector<std::string> ids;
  for (const Hit& h : hits) ids.push_back(h.id);
  return ids;
}

Document Doc(const std::string& id, const std::string& text) {
  Document d;
  d.id = id;
  d.text = text;
  return d;
}

class TextStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("text-store");
    options_.snapshot_every_ops = 0;
    options_.encoder_dir = AssetsDir();
    auto store = Store::Open(options_, dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Reopen(const StoreOptions& options) {
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    auto store = Store::Open(options, dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Creates the encoder namespace `name` (24-token windows, overlap 4).
  void CreateTextNs(const std::string& name = "notes") {
    NamespaceConfig config;
    config.name = name;
    config.encoder = kEncoderUseLite;
    config.metric_unset = true;
    config.chunk_max_tokens = 24;
    config.chunk_overlap_tokens = 4;
    auto info = store_->CreateNamespace(config);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->config.dim, 512u);
    EXPECT_EQ(info->config.metric, Metric::kCosine);
  }

  void PutDocs(const std::vector<Document>& docs, const std::string& ns = "notes") {
    auto r = store_->Upsert(ns, docs, {});
    ASSERT_TRUE(r.ok()) << r.status();
  }

  absl::StatusOr<std::vector<std::vector<Hit>>> TextSearch(const std::string& query,
                                                           SearchMode mode, int k = 5,
                                                           bool highlight = false,
                                                           const std::string& ns = "notes") {
    SearchOptions options;
    options.k = k;
    options.text_queries = {query};
    options.mode = mode;
    options.highlight = highlight;
    return store_->Search(ns, {}, options);
  }

  std::vector<std::string> TopIds(const std::string& query, SearchMode mode, int k = 5) {
    auto hits = TextSearch(query, mode, k);
    EXPECT_TRUE(hits.ok()) << hits.status();
    if (!hits.ok() || hits->size() != 1) return {};
    return HitIds((*hits)[0]);
  }

  // The chunk ids document `doc` has now, from Get on doc#0..doc#(n-1).
  std::vector<Chunk> ChunksOf(const std::string& doc, int max_chunks = 20) {
    std::vector<std::string> ids;
    for (int i = 0; i < max_chunks; ++i) ids.push_back(absl::StrCat(doc, "#", i));
    auto got = store_->Get("notes", ids, {}, false);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? got->chunks : std::vector<Chunk>();
  }

  StoreOptions options_;
  std::string dir_;
  std::unique_ptr<Store> store_;
};

// --- no assets needed --------------------------------------------------------

TEST_F(TextStoreTest, UnknownEncoderIsInvalidArgument) {
  NamespaceConfig config;
  config.name = "x";
  config.encoder = "bert-huge";
  auto info = store_->CreateNamespace(config);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(info.status().message(), HasSubstr("unknown encoder"));
}

TEST_F(TextStoreTest, DimOtherThanEncodersIsInvalidArgument) {
  NamespaceConfig config;
  config.name = "x";
  config.encoder = kEncoderUseLite;
  config.dim = 384;
  EXPECT_EQ(store_->CreateNamespace(config).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TextStoreTest, ChunkingWithoutEncoderIsInvalidArgument) {
  NamespaceConfig config;
  config.name = "x";
  config.dim = 4;
  config.chunk_max_tokens = 64;
  EXPECT_EQ(store_->CreateNamespace(config).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TextStoreTest, EncoderNamespaceWithoutAssetsIsFailedPrecondition) {
  StoreOptions options = options_;
  options.encoder_dir = "";
  Reopen(options);
  NamespaceConfig config;
  config.name = "x";
  config.encoder = kEncoderUseLite;
  auto info = store_->CreateNamespace(config);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(info.status().message(), HasSubstr("encoder use-lite is not available"));
}

TEST_F(TextStoreTest, TextChunkWithoutVectorInPlainNamespaceIsFailedPrecondition) {
  NamespaceConfig config;
  config.name = "plain";
  config.dim = 4;
  ASSERT_TRUE(store_->CreateNamespace(config).ok());
  Chunk chunk;
  chunk.id = "c";
  chunk.text = "some text";
  auto r = store_->Upsert("plain", {}, {chunk});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("no encoder"));
}

TEST_F(TextStoreTest, TextQueryInPlainNamespaceIsFailedPrecondition) {
  NamespaceConfig config;
  config.name = "plain";
  config.dim = 4;
  ASSERT_TRUE(store_->CreateNamespace(config).ok());
  auto hits = TextSearch("hello", SearchMode::kDense, 5, false, "plain");
  EXPECT_EQ(hits.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(TextStoreTest, VectorQueryWithBm25ModeIsInvalidArgument) {
  NamespaceConfig config;
  config.name = "plain";
  config.dim = 4;
  ASSERT_TRUE(store_->CreateNamespace(config).ok());
  SearchOptions options;
  options.mode = SearchMode::kBm25;
  std::vector<float> query = {1, 0, 0, 0};
  EXPECT_EQ(store_->Search("plain", query, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TextSnippetTest, MarksQueryWordsInTheBestSentence) {
  const std::string text =
      "Cats sleep a lot. The Volcano erupted and the volcano smoked. Dogs bark.";
  const std::vector<std::pair<size_t, size_t>> sentences = {{0, 17}, {18, 61}, {62, 72}};
  EXPECT_EQ(text::MakeSnippet(text, "volcano smoke?", sentences),
            "The [[Volcano]] erupted and the [[volcano]] smoked.");
  EXPECT_EQ(text::MakeSnippet(text, "zebra", sentences), "Cats sleep a lot.");
  EXPECT_EQ(text::MakeSnippet("", "zebra", {}), "");
  EXPECT_EQ(text::MakeSnippet("short", "zebra", {{0, 99}}), "");  // bad range: no snippet
}

TEST(TextRecordsTest, ChunkSourceRangeRoundTripsAndOldRecordsStillRead) {
  Chunk decoded;
  ASSERT_TRUE(records::DecodeChunk(records::EncodeChunk("c", "d", "t", "{}", 7, 19), &decoded)
                  .ok());
  EXPECT_EQ(decoded.source_begin, 7u);
  EXPECT_EQ(decoded.source_end, 19u);
  Chunk old;
  ASSERT_TRUE(records::DecodeChunk(records::EncodeChunk("c", "d", "t", "{}"), &old).ok());
  EXPECT_EQ(old.source_begin, 0u);
  EXPECT_EQ(old.source_end, 0u);
  EXPECT_EQ(records::EncodeChunk("c", "d", "t", "{}")[0], 1);  // format 1 unchanged
}

// --- with the USE-lite assets ---------------------------------------------------

class TextStoreAssetsTest : public TextStoreTest {
 protected:
  void SetUp() override {
    if (!HaveUseLite()) GTEST_FAIL() << kMissingAssets;
    TextStoreTest::SetUp();
    CreateTextNs();
  }
};

TEST_F(TextStoreAssetsTest, DocumentTextUpsertCreatesChunksWithSourceOffsets) {
  auto r = store_->Upsert("notes", {Doc("doc", kLongText)}, {});
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<Chunk> chunks = ChunksOf("doc");
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(r->chunks_written, chunks.size());
  const std::string text = kLongText;
  for (const Chunk& c : chunks) {
    EXPECT_EQ(c.document_id, "doc");
    ASSERT_LT(c.source_begin, c.source_end);
    ASSERT_LE(c.source_end, text.size());
    EXPECT_EQ(text.substr(c.source_begin, c.source_end - c.source_begin), c.text) << c.id;
  }
  auto info = store_->GetNamespace("notes");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->chunk_count, chunks.size());
  EXPECT_EQ(info->document_count, 1u);
}

TEST_F(TextStoreAssetsTest, ChunkGivenAsTextOnlyIsEmbedded) {
  Chunk chunk;
  chunk.id = "solo";
  chunk.text = "Penguins huddle together to survive the Antarctic winter.";
  ASSERT_TRUE(store_->Upsert("notes", {}, {chunk}).ok());
  auto got = store_->Get("notes", {std::string("solo")}, {}, /*include_vectors=*/true);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->chunks.size(), 1u);
  EXPECT_EQ(got->chunks[0].vector.size(), 512u);
  EXPECT_EQ(TopIds("penguins in antarctica", SearchMode::kBm25, 1),
            std::vector<std::string>{"solo"});
}

TEST_F(TextStoreAssetsTest, ReupsertingChangedDocumentReplacesItsChunks) {
  PutDocs({Doc("doc", kLongText)});
  const size_t before = ChunksOf("doc").size();
  ASSERT_GE(before, 3u);
  PutDocs({Doc("doc", "Hedgehogs eat beetles and worms at night.")});
  std::vector<Chunk> after = ChunksOf("doc");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].id, "doc#0");
  EXPECT_THAT(after[0].text, HasSubstr("Hedgehogs"));
  // The old text is gone from BM25 and from dense search.
  EXPECT_TRUE(TopIds("quokka Rottnest", SearchMode::kBm25).empty());
  std::vector<std::string> dense = TopIds("volcanic aerosols cool the planet", SearchMode::kDense);
  EXPECT_EQ(dense, std::vector<std::string>{"doc#0"});
  auto info = store_->GetNamespace("notes");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->chunk_count, 1u);
}

TEST_F(TextStoreAssetsTest, DeletingDocumentRemovesEverything) {
  PutDocs({Doc("doc", kLongText), Doc("other", "Hedgehogs eat beetles at night.")});
  auto deleted = store_->Delete("notes", {}, {std::string("doc")});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->documents_deleted, 1u);
  EXPECT_GE(deleted->chunks_deleted, 3u);
  EXPECT_TRUE(ChunksOf("doc").empty());
  EXPECT_TRUE(TopIds("quokka Rottnest", SearchMode::kBm25).empty());
  EXPECT_EQ(TopIds("quokka", SearchMode::kDense), std::vector<std::string>{"other#0"});
  auto info = store_->GetNamespace("notes");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->chunk_count, 1u);
}

TEST_F(TextStoreAssetsTest, Bm25FindsChunkWithRareTermFirst) {
  PutDocs({Doc("doc", kLongText), Doc("other", "Hedgehogs eat beetles and worms at night.")});
  auto hits = TextSearch("Rottnest", SearchMode::kBm25);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_FALSE((*hits)[0].empty());
  auto got = store_->Get("notes", {(*hits)[0][0].id}, {}, false);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->chunks.size(), 1u);
  EXPECT_THAT(got->chunks[0].text, HasSubstr("Rottnest"));
  EXPECT_GT((*hits)[0][0].score, 0.0f);
}

TEST_F(TextStoreAssetsTest, DenseTextSearchFindsParaphrase) {
  PutDocs({Doc("pasta", "Boil the spaghetti in salted water for ten minutes, then drain it."),
           Doc("stocks", "The stock market fell sharply after the interest rate decision."),
           Doc("cats", "My cat sleeps on the windowsill most of the afternoon.")});
  EXPECT_EQ(TopIds("how long should I cook noodles", SearchMode::kDense, 1),
            std::vector<std::string>{"pasta#0"});
  EXPECT_EQ(TopIds("shares dropped on wall street", SearchMode::kDense, 1),
            std::vector<std::string>{"stocks#0"});
}

TEST_F(TextStoreAssetsTest, HybridModesFuseBothSignals) {
  PutDocs({Doc("pasta", "Boil the spaghetti in salted water for ten minutes, then drain it."),
           Doc("stocks", "The stock market fell sharply after the interest rate decision."),
           Doc("cats", "My cat sleeps on the windowsill most of the afternoon."),
           Doc("code", "Error code XJ-9931 means the pump is overheating.")});
  const std::string query = "how long should I cook noodles XJ-9931";
  const std::vector<std::string> dense = TopIds(query, SearchMode::kDense, 1);
  const std::vector<std::string> bm25 = TopIds(query, SearchMode::kBm25, 1);
  ASSERT_EQ(dense.size(), 1u);
  ASSERT_EQ(bm25.size(), 1u);
  for (SearchMode mode : {SearchMode::kHybridRrf, SearchMode::kHybridWeighted}) {
    std::vector<std::string> fused = TopIds(query, mode, 4);
    EXPECT_THAT(fused, Contains(dense[0])) << static_cast<int>(mode);
    EXPECT_THAT(fused, Contains(bm25[0])) << static_cast<int>(mode);
    auto hits = TextSearch(query, mode, 4);
    ASSERT_TRUE(hits.ok());
    for (size_t i = 1; i < (*hits)[0].size(); ++i) {
      EXPECT_GE((*hits)[0][i - 1].score, (*hits)[0][i].score);
    }
  }
}

TEST_F(TextStoreAssetsTest, HighlightMarksQueryWords) {
  PutDocs({Doc("doc", kLongText)});
  auto hits = TextSearch("Rottnest island", SearchMode::kBm25, 1, /*highlight=*/true);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ((*hits)[0].size(), 1u);
  EXPECT_THAT((*hits)[0][0].snippet, HasSubstr("[[Rottnest]]"));
  EXPECT_THAT((*hits)[0][0].snippet, HasSubstr("[[Island]]"));
  EXPECT_FALSE((*hits)[0][0].chunk.has_value());  // payload was not asked for
}

TEST_F(TextStoreAssetsTest, ReopenKeepsBm25StatsAndSearch) {
  PutDocs({Doc("doc", kLongText), Doc("other", "Hedgehogs eat beetles and worms at night.")});
  auto bm25_before = TextSearch("sailors named the island", SearchMode::kBm25);
  auto dense_before = TextSearch("sailors named the island", SearchMode::kDense);
  ASSERT_TRUE(bm25_before.ok() && dense_before.ok());
  Reopen(options_);
  auto bm25_after = TextSearch("sailors named the island", SearchMode::kBm25);
  auto dense_after = TextSearch("sailors named the island", SearchMode::kDense);
  ASSERT_TRUE(bm25_after.ok() && dense_after.ok());
  ASSERT_EQ((*bm25_before)[0].size(), (*bm25_after)[0].size());
  for (size_t i = 0; i < (*bm25_before)[0].size(); ++i) {
    EXPECT_EQ((*bm25_before)[0][i].id, (*bm25_after)[0][i].id);
    EXPECT_FLOAT_EQ((*bm25_before)[0][i].score, (*bm25_after)[0][i].score);
  }
  EXPECT_EQ(HitIds((*dense_before)[0]), HitIds((*dense_after)[0]));
  auto info = store_->GetNamespace("notes");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->config.encoder, kEncoderUseLite);
  EXPECT_EQ(info->config.chunk_max_tokens, 24u);
  EXPECT_EQ(info->config.chunk_overlap_tokens, 4u);
}

TEST_F(TextStoreAssetsTest, ReopenWithoutAssetsOpensAndRefusesOnlyText) {
  PutDocs({Doc("doc", kLongText)});
  StoreOptions options = options_;
  options.encoder_dir = "/nonexistent-mnemo-assets";
  Reopen(options);
  auto hits = TextSearch("quokka", SearchMode::kBm25);
  EXPECT_EQ(hits.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(hits.status().message(), HasSubstr("encoder use-lite is not available"));
  EXPECT_EQ(store_->Upsert("notes", {Doc("x", "Some text.")}, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Deletes and gets need no encoder.
  EXPECT_GE(ChunksOf("doc").size(), 3u);
  EXPECT_TRUE(store_->Delete("notes", {}, {std::string("doc")}).ok());
}

TEST_F(TextStoreAssetsTest, DropRemovesBm25Keys) {
  PutDocs({Doc("doc", kLongText)});
  ASSERT_TRUE(store_->DropNamespace("notes").ok());
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& n : names) descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(
      rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir_, descriptors, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  size_t live_keys = 0;
  bool found_cf = false;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != keys::kBm25Cf) continue;
    found_cf = true;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++live_keys;
  }
  for (rocksdb::ColumnFamilyHandle* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  EXPECT_TRUE(found_cf);
  EXPECT_EQ(live_keys, 0u);
}

TEST_F(TextStoreAssetsTest, EmptyDocumentTextIsInvalidArgument) {
  for (const char* text : {"", "   \n\t "}) {
    auto r = store_->Upsert("notes", {Doc("d", text)}, {});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << "'" << text << "'";
  }
}

TEST_F(TextStoreAssetsTest, TextAndVectorQueriesTogetherIsInvalidArgument) {
  SearchOptions options;
  options.text_queries = {"hello"};
  std::vector<float> query(512, 0.1f);
  EXPECT_EQ(store_->Search("notes", query, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TextStoreAssetsTest, BlankTextQueryIsInvalidArgument) {
  EXPECT_EQ(TextSearch("  ", SearchMode::kBm25).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mnemo::db
