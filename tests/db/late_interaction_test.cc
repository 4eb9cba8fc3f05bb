// Late interaction in the store (issue 3, multi-vector): token vectors of
// every chunk in the multivec CF, the per-namespace codec, recovery on
// open, replace / delete / drop, and SearchMode::kLateInteraction against
// brute-force MaxSim. Tests that need the USE-lite weights fail without
// them.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "db/keys.h"
#include "db/records.h"
#include "db/store.h"
#include "db/store_testing.h"
#include "db/text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/multivec.h"
#include "rocksdb/db.h"
#include "tests/db/test_util.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

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

// Short documents on distinct topics: one chunk each with 24-token windows,
// except the last two.
const std::vector<std::pair<std::string, std::string>>& Corpus() {
  static const auto* corpus = new std::vector<std::pair<std::string, std::string>>{
      {"quokka", "The quokka is a small marsupial that lives on Rottnest Island near Perth."},
      {"volcano", "Volcanic eruptions can inject sulfur dioxide high into the stratosphere."},
      {"bread", "Sourdough bread rises because wild yeast and lactobacilli ferment the dough."},
      {"chess", "The queen's gambit is one of the oldest chess openings still played today."},
      {"comet", "A comet grows a glowing tail of gas and dust as it approaches the sun."},
      {"tea", "Green tea leaves are steamed or pan fired soon after picking to stop oxidation."},
      {"bridge", "Suspension bridges hang their deck from cables draped over tall towers."},
      {"bees", "Honey bees dance in the hive to tell their sisters where the flowers are."},
      {"tariff",
       "Congress debated the tariff on imported iron for many weeks. The duties protected "
       "the mills of Pennsylvania, but farmers in the South paid higher prices for tools."},
      {"navy",
       "The navy asked for new ships to guard the coast and the merchant fleet. Sailors "
       "trained through the winter, and the yards at Norfolk launched two frigates."},
  };
  return *corpus;
}

Document Doc(const std::string& id, const std::string& text, const std::string& meta = "") {
  Document d;
  d.id = id;
  d.text = text;
  d.metadata_json = meta;
  return d;
}

class LateInteractionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveUseLite()) GTEST_FAIL() << kMissingAssets;
    dir_ = test::MakeTempDir("late-interaction");
    options_.snapshot_every_ops = 0;
    options_.encoder_dir = AssetsDir();
    auto store = Store::Open(options_, dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto enc = text::GetEncoder(AssetsDir(), kEncoderUseLite);
    ASSERT_TRUE(enc.ok()) << enc.status();
    enc_ = *enc;
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // An encoder namespace with late interaction; `train_tokens` = 0 keeps
  // the default (far above these corpora: exact search on staged tokens).
  void CreateNs(const std::string& name, uint64_t train_tokens = 0, uint32_t nbits = 0) {
    NamespaceConfig config;
    config.name = name;
    config.encoder = kEncoderUseLite;
    config.metric_unset = true;
    config.chunk_max_tokens = 24;
    config.chunk_overlap_tokens = 4;
    config.late_interaction_train_tokens = train_tokens;
    config.late_interaction_nbits = nbits;
    auto info = store_->CreateNamespace(config);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_TRUE(info->config.late_interaction.value_or(false));
  }

  void PutCorpus(const std::string& ns) {
    std::vector<Document> docs;
    for (const auto& [id, text] : Corpus()) {
      docs.push_back(
          Doc(id, text, absl::StrCat("{\"long\": ", text.size() > 100 ? "true" : "false", "}")));
    }
    auto r = store_->Upsert(ns, docs, {});
    ASSERT_TRUE(r.ok()) << r.status();
  }

  void Reopen() {
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    auto store = Store::Open(options_, dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  absl::StatusOr<std::vector<Hit>> Late(const std::string& ns, const std::string& query, int k,
                                        const std::string& filter_json = "") {
    SearchOptions options;
    options.k = k;
    options.text_queries = {query};
    options.mode = SearchMode::kLateInteraction;
    if (!filter_json.empty()) {
      auto filter = index::ParseJsonFilter(filter_json);
      if (!filter.ok()) return filter.status();
      options.filter = *std::move(filter);
    }
    auto hits = store_->Search(ns, {}, options);
    if (!hits.ok()) return hits.status();
    return (*hits)[0];
  }

  // Exact MaxSim of `query` against the stored chunks `chunk_ids` (their
  // text re-encoded), best first: the reference the mode must match.
  std::vector<std::pair<std::string, float>> BruteForce(const std::string& ns,
                                                        const std::string& query,
                                                        const std::vector<std::string>& chunk_ids,
                                                        int k) {
    auto got = store_->Get(ns, chunk_ids, {}, false);
    EXPECT_TRUE(got.ok()) << got.status();
    std::vector<std::string> texts;
    for (const Chunk& c : got->chunks) texts.push_back(c.text);
    texts.push_back(query);
    auto states = enc_->EncodeTokens(texts);
    EXPECT_TRUE(states.ok()) << states.status();
    index::MultiVectorCorpus corpus;
    corpus.dim = 512;
    for (size_t i = 0; i + 1 < texts.size(); ++i) {
      std::vector<float> unit;
      EXPECT_TRUE(index::NormalizeMultiVectorTokens((*states)[i], 512, &unit).ok());
      corpus.ids.push_back(static_cast<int64_t>(i));
      corpus.vectors.insert(corpus.vectors.end(), unit.begin(), unit.end());
      corpus.offsets.push_back(corpus.vectors.size() / 512);
    }
    std::vector<float> q;
    EXPECT_TRUE(index::NormalizeMultiVectorTokens(states->back(), 512, &q).ok());
    auto found = index::BruteForceMaxSim(corpus, q, k, nullptr);
    EXPECT_TRUE(found.ok()) << found.status();
    std::vector<std::pair<std::string, float>> out;
    for (size_t j = 0; j < found->ids.size(); ++j) {
      if (found->ids[j] < 0) continue;
      out.emplace_back(got->chunks[found->ids[j]].id, found->scores[j]);
    }
    return out;
  }

  std::vector<std::string> AllChunkIds() {
    std::vector<std::string> ids;
    for (const auto& [id, text] : Corpus()) {
      for (int i = 0; i < 4; ++i) ids.push_back(absl::StrCat(id, "#", i));
    }
    return ids;
  }

  // Rows of the multivec CF by format byte, and whether the codec key of
  // namespace id `nsid` exists, read from the closed store's files.
  struct CfState {
    size_t raw_rows = 0;
    size_t coded_rows = 0;
    bool codec = false;
  };
  CfState ReadCf(uint32_t nsid) {
    CfState state;
    std::vector<std::string> names;
    EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const std::string& n : names) descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    EXPECT_TRUE(
        rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir_, descriptors, &handles, &raw)
            .ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == keys::kMultiVecCf) {
        std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
          (it->value()[0] == 1 ? state.raw_rows : state.coded_rows) += 1;
        }
      }
      if (names[i] == keys::kMetaCf) {
        std::string value;
        state.codec = db->Get(rocksdb::ReadOptions(), handles[i], keys::MultiVecCodecKey(nsid),
                              &value)
                          .ok();
      }
    }
    for (rocksdb::ColumnFamilyHandle* h : handles) EXPECT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    return state;
  }

  StoreOptions options_;
  std::string dir_;
  std::unique_ptr<Store> store_;
  const text::TextEncoder* enc_ = nullptr;
};

constexpr char kQuery[] = "which island is home to the little marsupial";

// Before the codec is trained the mode is exact MaxSim over the staged
// (fp16) tokens: the same ranking as brute force over the re-encoded text.
TEST_F(LateInteractionTest, StagedResultsEqualBruteForceMaxSim) {
  CreateNs("notes");
  PutCorpus("notes");
  auto info = store_->GetNamespace("notes");
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->late_interaction_trained);
  EXPECT_GT(info->late_interaction_tokens, 100u);

  const auto want = BruteForce("notes", kQuery, AllChunkIds(), 8);
  auto hits = Late("notes", kQuery, 8);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ((*hits)[i].id, want[i].first) << "rank " << i;
    EXPECT_NEAR((*hits)[i].score, want[i].second, 0.01) << "rank " << i;
  }
  EXPECT_EQ((*hits)[0].id, "quokka#0");
}

// The write that reaches the threshold trains the codec, rewrites every
// staged row encoded and stores the codec, in one batch; search then runs
// on decompressed tokens and still ranks like brute force at the top.
TEST_F(LateInteractionTest, TrainingEncodesEveryRowAndKeepsTheRanking) {
  CreateNs("notes", /*train_tokens=*/150);
  PutCorpus("notes");
  auto info = store_->GetNamespace("notes");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->late_interaction_trained);
  EXPECT_THAT(info->late_interaction_description, HasSubstr("2-bit"));

  const auto want = BruteForce("notes", kQuery, AllChunkIds(), 3);
  auto hits = Late("notes", kQuery, 3);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 3u);
  EXPECT_EQ((*hits)[0].id, want[0].first);
  EXPECT_NEAR((*hits)[0].score, want[0].second, 0.1 * want[0].second);

  // Later writes are encoded with the stored codec.
  ASSERT_TRUE(store_->Upsert("notes", {Doc("owl", "Owls hunt mice at night in the barn.")}, {})
                  .ok());
  auto owl = Late("notes", "an owl hunting mice at night", 1);
  ASSERT_TRUE(owl.ok()) << owl.status();
  ASSERT_EQ(owl->size(), 1u);
  EXPECT_EQ((*owl)[0].id, "owl#0");

  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  const CfState cf = ReadCf(/*nsid=*/1);
  EXPECT_EQ(cf.raw_rows, 0u);
  EXPECT_EQ(cf.coded_rows, Corpus().size() + 2 + 1);  // 2 two-chunk documents, + owl
  EXPECT_TRUE(cf.codec);
}

TEST_F(LateInteractionTest, OneAndFourBitCodecsWorkToo) {
  for (uint32_t nbits : {1u, 4u}) {
    const std::string ns = absl::StrCat("notes", nbits);
    CreateNs(ns, /*train_tokens=*/150, nbits);
    PutCorpus(ns);
    auto info = store_->GetNamespace(ns);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->config.late_interaction_nbits, nbits);
    EXPECT_THAT(info->late_interaction_description, HasSubstr(absl::StrCat(nbits, "-bit")));
    auto hits = Late(ns, kQuery, 1);
    ASSERT_TRUE(hits.ok()) << hits.status();
    EXPECT_EQ((*hits)[0].id, "quokka#0") << nbits;
  }
}

// Reopening (snapshots saved) and reopening after a simulated crash (no
// snapshot: the index log is replayed) rebuild the token index from the
// multivec CF and give identical results, staged and trained.
TEST_F(LateInteractionTest, ResultsSurviveReopenAndCrash) {
  CreateNs("staged");
  CreateNs("trained", /*train_tokens=*/150);
  PutCorpus("staged");
  PutCorpus("trained");
  std::vector<std::vector<Hit>> before;
  auto record = [&] {
    before.clear();
    for (const char* ns : {"staged", "trained"}) {
      auto hits = Late(ns, kQuery, 5);
      ASSERT_TRUE(hits.ok()) << hits.status();
      before.push_back(*hits);
    }
  };
  record();
  auto check = [&](const char* when) {
    int i = 0;
    for (const char* ns : {"staged", "trained"}) {
      auto hits = Late(ns, kQuery, 5);
      ASSERT_TRUE(hits.ok()) << hits.status();
      ASSERT_EQ(hits->size(), before[i].size()) << when << " " << ns;
      for (size_t j = 0; j < hits->size(); ++j) {
        EXPECT_EQ((*hits)[j].id, before[i][j].id) << when << " " << ns;
        EXPECT_FLOAT_EQ((*hits)[j].score, before[i][j].score) << when << " " << ns;
      }
      ++i;
    }
  };
  Reopen();
  check("after reopen");

  // Writes to both (one replaces a chunk), then a crash before any
  // snapshot.
  for (const char* ns : {"staged", "trained"}) {
    ASSERT_TRUE(store_->Upsert(ns, {Doc("owl", "Owls hunt mice at night in the barn."),
                                    Doc("bees", "Bees make honey from nectar.")}, {})
                    .ok());
  }
  record();
  ASSERT_TRUE(testing::CloseWithoutSnapshotForTesting(store_.get()).ok());
  store_.reset();
  auto store = Store::Open(options_, dir_);
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
  check("after crash");
  auto owl = Late("trained", "an owl hunting mice at night", 1);
  ASSERT_TRUE(owl.ok()) << owl.status();
  EXPECT_EQ((*owl)[0].id, "owl#0");
  auto info = store_->GetNamespace("trained");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->late_interaction_trained);
}

TEST_F(LateInteractionTest, ReplaceAndDeleteRemoveTheTokens) {
  CreateNs("notes", /*train_tokens=*/150);
  PutCorpus("notes");
  auto before = store_->GetNamespace("notes");
  ASSERT_TRUE(before.ok());
  // The two-chunk "tariff" document becomes one short chunk.
  ASSERT_TRUE(
      store_->Upsert("notes", {Doc("tariff", "Import duties on iron were raised.")}, {}).ok());
  auto after = store_->GetNamespace("notes");
  ASSERT_TRUE(after.ok());
  EXPECT_LT(after->late_interaction_tokens, before->late_interaction_tokens);
  auto hits = Late("notes", "farmers in the South paid higher prices for tools", 20);
  ASSERT_TRUE(hits.ok()) << hits.status();
  for (const Hit& h : *hits) EXPECT_NE(h.id, "tariff#1");

  ASSERT_TRUE(store_->Delete("notes", {}, {std::string("quokka")}).ok());
  hits = Late("notes", kQuery, 20);
  ASSERT_TRUE(hits.ok()) << hits.status();
  EXPECT_EQ(hits->size(), after->chunk_count - 1);
  for (const Hit& h : *hits) EXPECT_NE(h.id, "quokka#0");

  Reopen();
  auto reopened = store_->GetNamespace("notes");
  ASSERT_TRUE(reopened.ok());
  hits = Late("notes", kQuery, 20);
  ASSERT_TRUE(hits.ok()) << hits.status();
  EXPECT_EQ(hits->size(), reopened->chunk_count);
  for (const Hit& h : *hits) EXPECT_NE(h.id, "quokka#0");
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  EXPECT_EQ(ReadCf(1).coded_rows, reopened->chunk_count);
}

TEST_F(LateInteractionTest, DropRemovesRowsAndCodec) {
  CreateNs("notes", /*train_tokens=*/150);
  PutCorpus("notes");
  ASSERT_TRUE(store_->DropNamespace("notes").ok());
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  const CfState cf = ReadCf(1);
  EXPECT_EQ(cf.raw_rows + cf.coded_rows, 0u);
  EXPECT_FALSE(cf.codec);
}

TEST_F(LateInteractionTest, FilterRestrictsResults) {
  CreateNs("notes", /*train_tokens=*/150);
  PutCorpus("notes");
  auto hits = Late("notes", kQuery, 10, R"({"long": true})");
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 4u);  // the chunks of "tariff" and "navy"
  for (const Hit& h : *hits) {
    EXPECT_TRUE(h.id.rfind("tariff#", 0) == 0 || h.id.rfind("navy#", 0) == 0) << h.id;
  }
}

TEST_F(LateInteractionTest, VectorQueryInLateModeIsInvalidArgument) {
  CreateNs("notes");
  SearchOptions options;
  options.mode = SearchMode::kLateInteraction;
  std::vector<float> q(512, 0.1f);
  auto hits = store_->Search("notes", q, options);
  EXPECT_EQ(hits.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(hits.status().message(), HasSubstr("late-interaction"));
}

TEST_F(LateInteractionTest, NamespaceWithLateInteractionOffIsFailedPrecondition) {
  NamespaceConfig config;
  config.name = "plain-text";
  config.encoder = kEncoderUseLite;
  config.late_interaction = false;
  auto info = store_->CreateNamespace(config);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->config.late_interaction_nbits, 0u);
  ASSERT_TRUE(store_->Upsert("plain-text", {Doc("d", "Some text about bees.")}, {}).ok());
  auto hits = Late("plain-text", "bees", 3);
  EXPECT_EQ(hits.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(hits.status().message(), HasSubstr("late_interaction"));
  EXPECT_EQ(store_->GetNamespace("plain-text")->late_interaction_tokens, 0u);
}

TEST_F(LateInteractionTest, LateModeWithoutEncoderIsFailedPrecondition) {
  NamespaceConfig config;
  config.name = "vectors";
  config.dim = 4;
  ASSERT_TRUE(store_->CreateNamespace(config).ok());
  auto hits = Late("vectors", "anything", 3);
  EXPECT_EQ(hits.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(LateInteractionTest, BadLateInteractionConfigIsInvalidArgument) {
  NamespaceConfig config;
  config.name = "vectors";
  config.dim = 4;
  config.late_interaction = true;
  EXPECT_EQ(store_->CreateNamespace(config).status().code(),
            absl::StatusCode::kInvalidArgument);
  config.name = "text";
  config.dim = 0;
  config.encoder = kEncoderUseLite;
  config.late_interaction_nbits = 3;
  EXPECT_EQ(store_->CreateNamespace(config).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- no assets needed ---------------------------------------------------------

TEST(MultiVecRecordTest, RawAndCodedRecordsRoundTrip) {
  std::vector<float> tokens = {0.5f, -0.25f, 1.0f / 3, 0.0f, 1e-3f, -0.999f};
  records::MultiVecRecord row;
  ASSERT_TRUE(records::DecodeMultiVec(records::EncodeMultiVecRaw(tokens, 3), 3, 0, &row).ok());
  EXPECT_FALSE(row.encoded);
  ASSERT_EQ(row.ntokens, 2u);
  ASSERT_EQ(row.raw.size(), tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    EXPECT_NEAR(row.raw[i], tokens[i], std::fabs(tokens[i]) / 1024 + 1e-7) << i;
  }
  const std::vector<uint32_t> centroids = {7, 0, 65535};
  const std::vector<uint8_t> residuals = {1, 2, 3, 4, 5, 6};
  const std::string coded = records::EncodeMultiVecCoded(centroids, residuals);
  ASSERT_TRUE(records::DecodeMultiVec(coded, 8, 2, &row).ok());
  EXPECT_TRUE(row.encoded);
  EXPECT_EQ(row.centroids, centroids);
  EXPECT_EQ(row.residuals, residuals);
  // Wrong code size, no codec, truncation and garbage are DATA_LOSS.
  EXPECT_EQ(records::DecodeMultiVec(coded, 8, 3, &row).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(records::DecodeMultiVec(coded, 8, 0, &row).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(records::DecodeMultiVec(coded.substr(0, coded.size() - 1), 8, 2, &row).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(records::DecodeMultiVec("\x09garbage", 8, 2, &row).code(),
            absl::StatusCode::kDataLoss);
}

TEST(MultiVecRecordTest, HalfConversionIsExactOnRepresentableValues) {
  for (float f : {0.0f, 1.0f, -2.0f, 0.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f}) {
    EXPECT_EQ(records::HalfToFloat(records::FloatToHalf(f)), f) << f;
  }
  EXPECT_TRUE(std::isinf(records::HalfToFloat(records::FloatToHalf(1e6f))));
  // Round to nearest even between 1 and the next half (1 + 2^-10).
  EXPECT_EQ(records::HalfToFloat(records::FloatToHalf(1.0f + 1.0f / 4096)), 1.0f);
  EXPECT_EQ(records::HalfToFloat(records::FloatToHalf(1.0f + 3.0f / 4096)), 1.0f + 1.0f / 1024);
}

}  // namespace
}  // namespace mnemo::db
