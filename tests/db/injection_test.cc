// Memory injection in the store (issue 14): a namespace's injection model,
// the records committed with each chunk (and removed, replaced and dropped
// with it), Recall, and their failures. Uses the committed model directory
// decoder/models/mnemo-ref-4m-inject and the USE-lite assets (fails
// without them, like the text store tests).
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "db/injection_records.h"
#include "db/keys.h"
#include "db/store.h"
#include "db/text.h"
#include "encoder/injection_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
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

std::string ModelDir() { return MNEMO_SOURCE_DIR "/decoder/models/mnemo-ref-4m-inject"; }

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

InjectionFiles ModelFiles() {
  InjectionFiles files;
  for (const std::string& name : encoder::InjectionModel::FileNames()) {
    files[name] = ReadFile(fs::path(ModelDir()) / name);
  }
  return files;
}

// The same model with one lineage field of config.json changed.
InjectionFiles FilesWithConfig(const std::string& field, const std::string& value) {
  InjectionFiles files = ModelFiles();
  nlohmann::json config = nlohmann::json::parse(files["config.json"]);
  config[field] = value;
  files["config.json"] = config.dump();
  return files;
}

constexpr const char* kTexts[] = {
    "The quokka is a small marsupial that lives on Rottnest Island near Perth.",
    "Volcanic eruptions can inject sulfur dioxide high into the stratosphere.",
    "Sourdough bread rises because wild yeast and lactobacilli ferment the dough.",
    "The Treaty of Westphalia ended the Thirty Years War in 1648.",
};

class InjectionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(AssetsDir()) / "use-lite" / "model.json")) {
      GTEST_FAIL() << "USE-lite assets not found (run scripts/fetch_encoder)";
    }
    dir_ = test::MakeTempDir("inject-store");
    options_.snapshot_every_ops = 0;
    options_.encoder_dir = AssetsDir();
    Reopen();
    NamespaceConfig config;
    config.name = "ns";
    config.encoder = kEncoderUseLite;
    config.late_interaction = false;
    ASSERT_TRUE(store_->CreateNamespace(config).ok());
    auto model = encoder::InjectionModel::Load(ModelDir());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Reopen() {
    store_.reset();
    auto store = Store::Open(options_, dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  void UpsertTexts(size_t n) {
    std::vector<Document> docs;
    for (size_t i = 0; i < n; ++i) docs.push_back({absl::StrCat("d", i), kTexts[i], ""});
    auto written = store_->Upsert("ns", docs, {});
    ASSERT_TRUE(written.ok()) << written.status();
  }

  void Register(bool exact = false) {
    auto info = store_->RegisterInjectionModel("ns", ModelFiles(), exact);
    ASSERT_TRUE(info.ok()) << info.status();
  }

  uint64_t RecordCount() {
    auto info = store_->GetInjectionModel("ns");
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->chunks : 0;
  }

  std::vector<float> Embed(const std::string& text) {
    auto enc = text::GetEncoder(AssetsDir(), kEncoderUseLite);
    EXPECT_TRUE(enc.ok()) << enc.status();
    auto e = (*enc)->Encode({text});
    EXPECT_TRUE(e.ok()) << e.status();
    return *e;
  }

  // The memory tokens the model itself gives `text` for `query`:
  // Compress, PQ encode and decode, Condition.
  std::vector<float> ExpectedMemory(const std::string& text, const std::string& query,
                                    bool exact) {
    auto memory = model_->Compress({text});
    EXPECT_TRUE(memory.ok()) << memory.status();
    std::vector<float> m = *memory;
    if (!exact) {
      auto decoded = model_->pq().DecodeToVector(model_->pq().Encode(m));
      EXPECT_TRUE(decoded.ok()) << decoded.status();
      m = *decoded;
    }
    auto conditioned = model_->Condition(m, Embed(query));
    EXPECT_TRUE(conditioned.ok()) << conditioned.status();
    return *conditioned;
  }

  // Runs `fn` on the store's raw RocksDB and its inject CF (store closed).
  template <typename Fn>
  void WithInjectCf(Fn fn) {
    store_.reset();
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir_, cfs, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == injection::kInjectCf) fn(db.get(), handles[i]);
    }
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    ASSERT_TRUE(db->Close().ok());
    db.reset();
    Reopen();
  }

  RecallOptions TextRecall(const std::string& query, RecallMode mode, int k = 2) {
    RecallOptions o;
    o.query_text = query;
    o.mode = mode;
    o.k = k;
    return o;
  }

  StoreOptions options_;
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<encoder::InjectionModel> model_;
};

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  float worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  EXPECT_LE(worst, tol);
}

TEST_F(InjectionStoreTest, RegistrationBackfillsAndUpsertsCommitRecordsWithTheirChunks) {
  UpsertTexts(2);
  auto info = store_->RegisterInjectionModel("ns", ModelFiles(), false);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->backfilled_chunks, 2u);
  EXPECT_EQ(info->chunks, 2u);
  EXPECT_EQ(info->lineage.model_sha256, model_->lineage().model_sha256);
  EXPECT_EQ(info->memory_code_bytes_per_chunk,
            static_cast<uint64_t>(model_->config().memory_tokens) * model_->pq().code_size());
  UpsertTexts(4);  // two replaced, two new
  EXPECT_EQ(RecordCount(), 4u);

  for (int i = 0; i < 4; ++i) {
    auto r = store_->Recall("ns", TextRecall(kTexts[i], RecallMode::kMemory));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_FALSE(r->hits.empty());
    EXPECT_EQ(r->hits[0].chunk_id, absl::StrCat("d", i, "#0"));
    EXPECT_EQ(r->hits[0].m, static_cast<uint32_t>(model_->config().memory_tokens));
    ExpectNear(r->hits[0].tokens, ExpectedMemory(r->hits[0].text, kTexts[i], false), 1e-3f);
  }
  auto x = store_->Recall("ns", TextRecall(kTexts[1], RecallMode::kXrag));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->hits[0].m, 1u);
  auto projected = model_->Project(Embed(x->hits[0].text));
  ASSERT_TRUE(projected.ok());
  ExpectNear(x->hits[0].tokens, *projected, 1e-3f);
}

TEST_F(InjectionStoreTest, DeletingAndDroppingRemoveRecordsInTheSameCommit) {
  Register();
  UpsertTexts(3);
  EXPECT_EQ(RecordCount(), 3u);
  ASSERT_TRUE(store_->Delete("ns", {"d0#0"}, {}).ok());
  EXPECT_EQ(RecordCount(), 2u);
  ASSERT_TRUE(store_->Delete("ns", {}, {"d1"}).ok());
  EXPECT_EQ(RecordCount(), 1u);
  ASSERT_TRUE(store_->DropNamespace("ns").ok());
  NamespaceConfig config;
  config.name = "ns";
  config.encoder = kEncoderUseLite;
  config.late_interaction = false;
  ASSERT_TRUE(store_->CreateNamespace(config).ok());
  EXPECT_EQ(store_->GetInjectionModel("ns").status().code(),
            absl::StatusCode::kFailedPrecondition);
  size_t rows = 0;
  WithInjectCf([&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++rows;
  });
  EXPECT_EQ(rows, 0u);
}

TEST_F(InjectionStoreTest, ModelAndRecordsSurviveReopenAndExactTokensAreKept) {
  UpsertTexts(2);
  Register(/*exact=*/true);
  Reopen();
  auto info = store_->GetInjectionModel("ns");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->exact);
  EXPECT_EQ(info->chunks, 2u);
  RecallOptions o = TextRecall(kTexts[1], RecallMode::kMemory);
  o.exact = true;
  auto r = store_->Recall("ns", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->hits[0].chunk_id, "d1#0");
  ExpectNear(r->hits[0].tokens, ExpectedMemory(r->hits[0].text, kTexts[1], true), 1e-4f);
  // Same model again: a no-op; exact differs: refused.
  auto again = store_->RegisterInjectionModel("ns", ModelFiles(), true);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->backfilled_chunks, 0u);
  auto other = store_->RegisterInjectionModel("ns", ModelFiles(), false);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.status().message(), HasSubstr("exact"));
}

TEST_F(InjectionStoreTest, AnotherLineageIsRefusedNamingTheField) {
  Register();
  UpsertTexts(1);
  auto other = store_->RegisterInjectionModel(
      "ns", FilesWithConfig("decoder_weights_sha256", std::string(64, 'a')), false);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.status().message(), HasSubstr("decoder_weights_sha256"));
  // The caller's decoder differs from the model's.
  RecallOptions o = TextRecall(kTexts[0], RecallMode::kXrag);
  o.decoder_weights_sha256 = std::string(64, 'b');
  auto r = store_->Recall("ns", o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("decoder_weights_sha256"));
  o.decoder_weights_sha256.clear();
  auto fp = ParseFingerprint(model_->lineage().decoder_fingerprint);
  ASSERT_TRUE(fp.ok()) << fp.status();
  fp->n_layers += 1;
  o.decoder_fingerprint = fp->Canonical();
  r = store_->Recall("ns", o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("n_layers"));
  o.decoder_fingerprint = model_->lineage().decoder_fingerprint;
  o.decoder_weights_sha256 = model_->lineage().decoder_weights_sha256;
  EXPECT_TRUE(store_->Recall("ns", o).ok());
}

TEST_F(InjectionStoreTest, CorruptOrForeignRecordIsRefusedAtRecall) {
  Register();
  UpsertTexts(2);
  // Chunk d0#0 gets a truncated record, d1#0 a record of another model.
  WithInjectCf([&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf));
    std::vector<std::pair<std::string, std::string>> rows;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      rows.emplace_back(it->key().ToString(), it->value().ToString());
    }
    ASSERT_EQ(rows.size(), 2u);
    auto rec = injection::DecodeChunk(rows[1].second);
    ASSERT_TRUE(rec.ok()) << rec.status();
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cf, rows[0].first,
                        rows[0].second.substr(0, rows[0].second.size() / 2))
                    .ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cf, rows[1].first,
                        injection::EncodeChunk("0123456789abcdef", rec->memory_tokens, rec->xrag,
                                               rec->codes, {}))
                    .ok());
  });
  auto r = store_->Recall("ns", TextRecall(kTexts[0], RecallMode::kMemory, 1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("d0#0"));
  r = store_->Recall("ns", TextRecall(kTexts[1], RecallMode::kMemory, 1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("model_sha256"));
}

TEST_F(InjectionStoreTest, BadRegistrationsStoreNothing) {
  UpsertTexts(1);
  NamespaceConfig plain;
  plain.name = "plain";
  plain.dim = 512;
  ASSERT_TRUE(store_->CreateNamespace(plain).ok());
  EXPECT_EQ(store_->RegisterInjectionModel("plain", ModelFiles(), false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->RegisterInjectionModel("nope", ModelFiles(), false).status().code(),
            absl::StatusCode::kNotFound);
  InjectionFiles garbage = ModelFiles();
  garbage["inject.safetensors"] = "not a safetensors file";
  const absl::StatusCode code =
      store_->RegisterInjectionModel("ns", garbage, false).status().code();
  EXPECT_TRUE(code == absl::StatusCode::kDataLoss || code == absl::StatusCode::kInvalidArgument)
      << code;
  InjectionFiles missing = ModelFiles();
  missing.erase("tokenizer.model");
  EXPECT_FALSE(store_->RegisterInjectionModel("ns", missing, false).ok());
  auto other_encoder = store_->RegisterInjectionModel("ns", FilesWithConfig("encoder", "other"),
                                                      false);
  EXPECT_FALSE(other_encoder.ok());
  EXPECT_EQ(store_->GetInjectionModel("ns").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Recall("ns", TextRecall(kTexts[0], RecallMode::kMemory)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A stored chunk without text (a vector only) cannot get memory tokens.
  Chunk bare;
  bare.id = "bare";
  bare.vector.assign(512, 0.0f);
  bare.vector[0] = 1;
  ASSERT_TRUE(store_->Upsert("ns", {}, {bare}).ok());
  auto refused = store_->RegisterInjectionModel("ns", ModelFiles(), false);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("'bare'"));
  EXPECT_EQ(store_->GetInjectionModel("ns").status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->Delete("ns", {"bare"}, {}).ok());
  Register();  // still possible afterwards
  EXPECT_EQ(RecordCount(), 1u);
  // With the model, a chunk without text is refused at upsert.
  auto up = store_->Upsert("ns", {}, {bare});
  EXPECT_EQ(up.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(up.status().message(), HasSubstr("'bare'"));
  EXPECT_EQ(RecordCount(), 1u);
}

TEST_F(InjectionStoreTest, BadRecallInputIsInvalidArgument) {
  Register();
  UpsertTexts(2);
  const uint32_t dim = static_cast<uint32_t>(model_->config().encoder_dim);
  auto code = [&](RecallOptions o) { return store_->Recall("ns", o).status().code(); };
  RecallOptions o = TextRecall(kTexts[0], RecallMode::kMemory);
  o.k = 0;
  EXPECT_EQ(code(o), absl::StatusCode::kInvalidArgument);
  o.k = 1025;
  EXPECT_EQ(code(o), absl::StatusCode::kInvalidArgument);
  o = TextRecall("", RecallMode::kMemory);
  o.query_vector.assign(dim - 1, 0.1f);
  EXPECT_EQ(code(o), absl::StatusCode::kInvalidArgument);
  o.query_vector.assign(dim, 0.1f);
  o.query_vector[3] = std::nanf("");
  EXPECT_EQ(code(o), absl::StatusCode::kInvalidArgument);
  o = TextRecall("   ", RecallMode::kMemory);
  EXPECT_EQ(code(o), absl::StatusCode::kInvalidArgument);
  o = TextRecall(kTexts[0], RecallMode::kMemory);
  o.rerank = RecallRerank{1, 4};  // fewer candidates than kept
  EXPECT_EQ(code(o), absl::StatusCode::kInvalidArgument);
  o.rerank.reset();
  o.exact = true;  // registered without exact
  EXPECT_EQ(code(o), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Recall("nope", TextRecall(kTexts[0], RecallMode::kMemory)).status().code(),
            absl::StatusCode::kNotFound);
  // The data is intact: a good query still finds its chunk.
  auto r = store_->Recall("ns", TextRecall(kTexts[1], RecallMode::kMemory));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->hits[0].chunk_id, "d1#0");
  EXPECT_EQ(RecordCount(), 2u);
}

TEST_F(InjectionStoreTest, RerankScoresCandidatesAndKeepsTheBest) {
  Register();
  UpsertTexts(4);
  RecallOptions o = TextRecall(kTexts[2], RecallMode::kMemory, 2);
  o.rerank = RecallRerank{4, 0};
  auto r = store_->Recall("ns", o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->hits.size(), 2u);
  for (const RecallHit& h : r->hits) {
    ASSERT_TRUE(h.rerank_score.has_value());
    auto score = model_->RerankScore(h.tokens, Embed(kTexts[2]));
    ASSERT_TRUE(score.ok());
    EXPECT_NEAR(*h.rerank_score, *score, 1e-4);
  }
  EXPECT_GE(*r->hits[0].rerank_score, *r->hits[1].rerank_score);
  // Every candidate not kept scores at most the last kept one.
  o.k = 4;
  o.rerank = RecallRerank{4, 4};
  auto all = store_->Recall("ns", o);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->hits.size(), 4u);
  EXPECT_EQ(all->hits[0].chunk_id, r->hits[0].chunk_id);
  EXPECT_EQ(all->hits[1].chunk_id, r->hits[1].chunk_id);
}

}  // namespace
}  // namespace mnemo::db
