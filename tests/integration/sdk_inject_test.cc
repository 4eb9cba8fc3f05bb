// Memory injection end to end over gRPC (issue 14): a real mnemod started
// with --assets-dir, an encoder namespace that registers the committed
// injection model decoder/models/mnemo-ref-4m-inject through the SDK,
// Recall in both modes compared with the model's own C++ outputs, every
// class of bad input (with the data intact afterwards), and a restart.
// Fails when the USE-lite assets are absent.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "encoder/injection_model.h"
#include "mnemo/client.h"
#include "mnemo/v1/inject.grpc.pb.h"
#include "tests/integration/mnemod_process.h"
#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string AssetsDir() {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  return (env != nullptr && *env != '\0') ? env : MNEMO_SOURCE_DIR "/.assets";
}

std::string ModelDir() { return MNEMO_SOURCE_DIR "/decoder/models/mnemo-ref-4m-inject"; }

constexpr const char* kTexts[] = {
    "The quokka is a small marsupial that lives on Rottnest Island near Perth.",
    "Volcanic eruptions can inject sulfur dioxide high into the stratosphere.",
    "Sourdough bread rises because wild yeast and lactobacilli ferment the dough.",
    "The Treaty of Westphalia ended the Thirty Years War in 1648.",
    "Honeybees communicate the direction of flowers with a waggle dance.",
};

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]));
  }
  return worst;
}

class SdkInjectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(fs::path(AssetsDir()) / "use-lite" / "model.json")) return;
    auto dir = MakeTempDir("mnemo-inject-data");
    ASSERT_TRUE(dir.ok()) << dir.status();
    data_dir_ = new std::string(*dir);
    auto server = MnemodProcess::Start({"--assets-dir", AssetsDir()}, *data_dir_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value().release();
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_TRUE(server_->Stop().ok());
      delete server_;
      server_ = nullptr;
    }
    if (data_dir_ != nullptr) {
      std::error_code ec;
      fs::remove_all(*data_dir_, ec);
      delete data_dir_;
      data_dir_ = nullptr;
    }
  }

  void SetUp() override {
    if (server_ == nullptr) {
      GTEST_FAIL() << "USE-lite assets not found (run scripts/fetch_encoder, or set "
                      "MNEMO_ASSETS_DIR)";
    }
    client_ = ConnectOrDie(server_->target());
    ASSERT_NE(client_, nullptr);
    ns_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto model = encoder::InjectionModel::Load(ModelDir());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
  }

  void CreateNamespace(const std::string& ns, size_t n_docs) {
    NamespaceConfig config;
    config.name = ns;
    config.encoder = "use-lite";
    config.late_interaction = false;
    ASSERT_TRUE(client_->CreateNamespace(config).ok());
    std::vector<Document> docs;
    for (size_t i = 0; i < n_docs; ++i) docs.push_back({absl::StrCat("d", i), kTexts[i], ""});
    auto up = client_->Upsert(ns, docs, {});
    ASSERT_TRUE(up.ok()) << up.status();
  }

  // The chunk's stored embedding (a valid query vector of the encoder).
  std::vector<float> StoredVector(const std::string& ns, const std::string& chunk_id) {
    auto got = client_->Get(ns, {chunk_id}, {}, /*include_vectors=*/true);
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok() || got->chunks.empty()) return {};
    return got->chunks[0].vector;
  }

  RecallRequest Request(const std::string& ns, const std::string& text, RecallMode mode,
                        int k = 2) {
    RecallRequest r;
    r.ns = ns;
    r.query_text = text;
    r.mode = mode;
    r.k = k;
    return r;
  }

  static MnemodProcess* server_;
  static std::string* data_dir_;
  std::unique_ptr<Client> client_;
  std::string ns_;
  std::unique_ptr<encoder::InjectionModel> model_;
};

MnemodProcess* SdkInjectTest::server_ = nullptr;
std::string* SdkInjectTest::data_dir_ = nullptr;

TEST_F(SdkInjectTest, RecallReturnsTheOwnChunkFirstWithTheModelsTokens) {
  CreateNamespace(ns_, 3);
  auto info = client_->RegisterInjectionModel(ns_, ModelDir(), /*exact=*/false);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->backfilled_chunks, 3u);
  EXPECT_EQ(info->lineage.model_sha256, model_->lineage().model_sha256);
  EXPECT_EQ(info->lineage.decoder_fingerprint, model_->lineage().decoder_fingerprint);
  // Chunks written after registration get their records at upsert.
  ASSERT_TRUE(client_->Upsert(ns_, {{"d3", kTexts[3], ""}, {"d4", kTexts[4], ""}}, {}).ok());
  auto got = client_->GetInjectionModel(ns_);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->chunks, 5u);

  const size_t m = static_cast<size_t>(model_->config().memory_tokens);
  const size_t ddim = static_cast<size_t>(model_->config().decoder_dim);
  for (int i = 0; i < 5; ++i) {
    auto r = client_->Recall(Request(ns_, kTexts[i], RecallMode::kMemory));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_FALSE(r->hits.empty());
    EXPECT_EQ(r->hits[0].chunk_id, absl::StrCat("d", i, "#0"));
    EXPECT_EQ(r->hits[0].m, m);
    EXPECT_EQ(r->hits[0].dim, ddim);
    EXPECT_EQ(r->hits[0].tokens.size(), m * ddim);
  }

  // The tokens equal the model's own Compress + PQ + Condition on the query
  // embedding (the chunk's own vector as the query).
  const std::string id = "d1#0";
  std::vector<float> query = StoredVector(ns_, id);
  ASSERT_EQ(query.size(), static_cast<size_t>(model_->config().encoder_dim));
  RecallRequest vr;
  vr.ns = ns_;
  vr.query_vector = query;
  vr.k = 1;
  vr.mode = RecallMode::kMemory;
  auto r = client_->Recall(vr);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->hits.size(), 1u);
  ASSERT_EQ(r->hits[0].chunk_id, id);
  auto memory = model_->Compress({r->hits[0].text});
  ASSERT_TRUE(memory.ok()) << memory.status();
  auto decoded = model_->pq().DecodeToVector(model_->pq().Encode(*memory));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  auto expected = model_->Condition(*decoded, query);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_LE(MaxAbsDiff(r->hits[0].tokens, *expected), 1e-3f);

  // fp16 on the wire: the same tokens within half precision.
  vr.dtype = InjectDtype::kFp16;
  auto half = client_->Recall(vr);
  ASSERT_TRUE(half.ok()) << half.status();
  float scale = 0;
  for (float v : *expected) scale = std::max(scale, std::abs(v));
  EXPECT_LE(MaxAbsDiff(half->hits[0].tokens, *expected), 2e-3f * std::max(1.0f, scale));

  // xRAG: the projected stored embedding.
  vr.dtype = InjectDtype::kFp32;
  vr.mode = RecallMode::kXrag;
  auto x = client_->Recall(vr);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->hits[0].m, 1u);
  auto projected = model_->Project(query);
  ASSERT_TRUE(projected.ok());
  EXPECT_LE(MaxAbsDiff(x->hits[0].tokens, *projected), 1e-3f);

  // Rerank: scores present, best first, at most keep.
  RecallRequest rr = Request(ns_, kTexts[2], RecallMode::kMemory, 2);
  rr.rerank = RecallRerank{5, 0};
  auto ranked = client_->Recall(rr);
  ASSERT_TRUE(ranked.ok()) << ranked.status();
  ASSERT_EQ(ranked->hits.size(), 2u);
  ASSERT_TRUE(ranked->hits[0].rerank_score.has_value());
  EXPECT_GE(*ranked->hits[0].rerank_score, *ranked->hits[1].rerank_score);

  // Deleting a document takes its record along.
  ASSERT_TRUE(client_->Delete(ns_, {}, {"d4"}).ok());
  got = client_->GetInjectionModel(ns_);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->chunks, 4u);
}

TEST_F(SdkInjectTest, BadInputGetsItsStatusAndLeavesTheDataIntact) {
  CreateNamespace(ns_, 2);
  // Namespace without an injection model.
  EXPECT_EQ(client_->Recall(Request(ns_, kTexts[0], RecallMode::kMemory)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client_->GetInjectionModel(ns_).status().code(), absl::StatusCode::kFailedPrecondition);
  // Unknown namespace.
  EXPECT_EQ(client_->Recall(Request("no-such-ns", kTexts[0], RecallMode::kMemory)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->RegisterInjectionModel("no-such-ns", ModelDir(), false).status().code(),
            absl::StatusCode::kNotFound);
  // A namespace without an encoder.
  NamespaceConfig plain;
  plain.name = ns_ + "-plain";
  plain.dim = 512;
  ASSERT_TRUE(client_->CreateNamespace(plain).ok());
  EXPECT_EQ(client_->RegisterInjectionModel(plain.name, ModelDir(), false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Garbage model files: refused, nothing stored.
  auto bad_dir = MakeTempDir("mnemo-bad-inject");
  ASSERT_TRUE(bad_dir.ok());
  fs::copy(ModelDir(), *bad_dir,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  { std::ofstream(fs::path(*bad_dir) / "inject.safetensors", std::ios::trunc) << "garbage"; }
  auto bad = client_->RegisterInjectionModel(ns_, *bad_dir, false);
  EXPECT_TRUE(bad.status().code() == absl::StatusCode::kInvalidArgument ||
              bad.status().code() == absl::StatusCode::kDataLoss)
      << bad.status();
  { std::ofstream(fs::path(*bad_dir) / "config.json", std::ios::trunc) << "{not json"; }
  EXPECT_EQ(client_->RegisterInjectionModel(ns_, *bad_dir, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  fs::remove_all(*bad_dir);
  EXPECT_EQ(client_->GetInjectionModel(ns_).status().code(), absl::StatusCode::kFailedPrecondition);

  auto info = client_->RegisterInjectionModel(ns_, ModelDir(), false);
  ASSERT_TRUE(info.ok()) << info.status();
  auto code = [&](const RecallRequest& r) { return client_->Recall(r).status().code(); };
  RecallRequest r = Request(ns_, kTexts[0], RecallMode::kMemory);
  r.k = 0;
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r.k = 1025;
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = Request(ns_, "", RecallMode::kXrag);
  r.query_vector.assign(100, 0.5f);  // wrong dimension
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r.query_vector.assign(512, 0.5f);
  r.query_vector[7] = std::nanf("");
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  // Mismatched caller lineage names the field.
  r = Request(ns_, kTexts[0], RecallMode::kMemory);
  auto fp = ParseFingerprint(model_->lineage().decoder_fingerprint);
  ASSERT_TRUE(fp.ok()) << fp.status();
  fp->dim *= 2;
  r.decoder = *fp;
  auto mismatch = client_->Recall(r);
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(mismatch.status().message(), HasSubstr("decoder_fingerprint"));
  r.decoder.reset();
  r.decoder_weights_sha256 = std::string(64, 'f');
  mismatch = client_->Recall(r);
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(mismatch.status().message(), HasSubstr("decoder_weights_sha256"));
  // Another model (a different lineage) for the same namespace.
  auto other_dir = MakeTempDir("mnemo-other-inject");
  ASSERT_TRUE(other_dir.ok());
  fs::copy(ModelDir(), *other_dir,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  {
    std::ifstream in(fs::path(ModelDir()) / "config.json");
    std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string key = "\"decoder_weights_sha256\": \"";
    const size_t at = config.find(key);
    ASSERT_NE(at, std::string::npos);
    config.replace(at + key.size(), 64, std::string(64, '0'));
    std::ofstream(fs::path(*other_dir) / "config.json", std::ios::trunc) << config;
  }
  auto other = client_->RegisterInjectionModel(ns_, *other_dir, false);
  fs::remove_all(*other_dir);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition) << other.status();
  EXPECT_THAT(other.status().message(), HasSubstr("decoder_weights_sha256"));
  // An unknown mode or dtype on the wire.
  auto channel = grpc::CreateChannel(server_->target(), grpc::InsecureChannelCredentials());
  auto stub = v1::MnemoInject::NewStub(channel);
  v1::RecallRequest raw;
  raw.set_namespace_(ns_);
  raw.set_text(kTexts[0]);
  raw.set_k(1);
  raw.set_mode(static_cast<v1::RecallMode>(42));
  v1::RecallResponse resp;
  grpc::ClientContext ctx1;
  EXPECT_EQ(stub->Recall(&ctx1, raw, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  raw.set_mode(v1::RECALL_MODE_XRAG);
  raw.set_dtype(static_cast<v1::InjectDtype>(9));
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub->Recall(&ctx2, raw, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // The data is intact.
  auto after = client_->GetInjectionModel(ns_);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->chunks, 2u);
  EXPECT_EQ(after->lineage.model_sha256, model_->lineage().model_sha256);
  auto good = client_->Recall(Request(ns_, kTexts[1], RecallMode::kXrag));
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->hits[0].chunk_id, "d1#0");
}

TEST_F(SdkInjectTest, RestartKeepsTheModelAndTheRecords) {
  CreateNamespace(ns_, 3);
  ASSERT_TRUE(client_->RegisterInjectionModel(ns_, ModelDir(), /*exact=*/true).ok());
  auto before = client_->Recall(Request(ns_, kTexts[2], RecallMode::kMemory, 1));
  ASSERT_TRUE(before.ok()) << before.status();
  client_.reset();
  ASSERT_TRUE(server_->Stop().ok());
  delete server_;
  server_ = nullptr;
  auto server = MnemodProcess::Start({"--assets-dir", AssetsDir()}, *data_dir_);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = std::move(server).value().release();
  client_ = ConnectOrDie(server_->target());
  ASSERT_NE(client_, nullptr);

  auto info = client_->GetInjectionModel(ns_);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->chunks, 3u);
  EXPECT_TRUE(info->exact);
  auto after = client_->Recall(Request(ns_, kTexts[2], RecallMode::kMemory, 1));
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->hits.size(), 1u);
  EXPECT_EQ(after->hits[0].chunk_id, before->hits[0].chunk_id);
  EXPECT_EQ(after->hits[0].tokens, before->hits[0].tokens);
  RecallRequest exact = Request(ns_, kTexts[2], RecallMode::kMemory, 1);
  exact.exact = true;
  EXPECT_TRUE(client_->Recall(exact).ok());
  // A new upsert after the restart gets its record too.
  ASSERT_TRUE(client_->Upsert(ns_, {{"d3", kTexts[3], ""}}, {}).ok());
  info = client_->GetInjectionModel(ns_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->chunks, 4u);
}

}  // namespace
}  // namespace mnemo::testing
