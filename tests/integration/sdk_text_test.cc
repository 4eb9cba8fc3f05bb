// Text end to end over gRPC: an encoder namespace created through the SDK
// on a real mnemod started with --assets-dir, documents upserted as text,
// text search in every mode with highlighted snippets, and the bad-input
// cases of issue 3. Fails when the USE-lite assets are absent.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include "mnemo/client.h"
#include "mnemo/v1/mnemo.grpc.pb.h"
#include "tests/integration/mnemod_process.h"
#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

using ::testing::HasSubstr;

std::string AssetsDir() {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  return (env != nullptr && *env != '\0') ? env : MNEMO_SOURCE_DIR "/.assets";
}

bool HaveUseLite() {
  const std::filesystem::path dir = std::filesystem::path(AssetsDir()) / "use-lite";
  return std::filesystem::exists(dir / "model.json") &&
         std::filesystem::exists(dir / "vocab.json");
}

class SdkTextTest : public ::testing::Test {
 protected:
  // mnemod runs either way: the bad-input cases that need no encoder run
  // without the assets too.
  static void SetUpTestSuite() {
    std::vector<std::string> flags;
    if (HaveUseLite()) flags = {"--assets-dir", AssetsDir()};
    auto server = MnemodProcess::Start(flags);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value().release();
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_TRUE(server_->Stop().ok());
      delete server_;
      server_ = nullptr;
    }
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr) << "mnemod did not start";
    client_ = ConnectOrDie(server_->target());
    ASSERT_NE(client_, nullptr);
    ns_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  void CreateTextNamespace() {
    if (!HaveUseLite()) {
      GTEST_FAIL() << "USE-lite assets not found (run scripts/fetch_encoder, or set "
                      "MNEMO_ASSETS_DIR)";
    }
    NamespaceConfig config;
    config.name = ns_;
    config.encoder = "use-lite";
    config.chunk_max_tokens = 32;
    config.chunk_overlap_tokens = 4;
    auto info = client_->CreateNamespace(config);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->config.dim, 512u);
    EXPECT_EQ(info->config.encoder, "use-lite");
    EXPECT_EQ(info->config.chunk_max_tokens, 32u);
    EXPECT_EQ(info->config.chunk_overlap_tokens, 4u);
  }

  void UpsertCorpus() {
    std::vector<Document> docs = {
        {"pasta", "Boil the spaghetti in salted water for ten minutes. Drain it and add sauce.",
         R"({"topic": "food"})"},
        {"stocks", "The stock market fell sharply after the interest rate decision.",
         R"({"topic": "finance"})"},
        {"quokka",
         "The quokka is a small marsupial that lives on Rottnest Island near Perth. Sailors once "
         "mistook the animals for giant rats.",
         R"({"topic": "animals"})"},
    };
    auto r = client_->Upsert(ns_, docs, {});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->documents_written, 3u);
    EXPECT_GE(r->chunks_written, 3u);
  }

  std::unique_ptr<v1::Mnemo::Stub> RawStub() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
    return v1::Mnemo::NewStub(grpc::CreateCustomChannel(
        server_->target(), grpc::InsecureChannelCredentials(), args));
  }

  static MnemodProcess* server_;
  std::unique_ptr<Client> client_;
  std::string ns_;
};

MnemodProcess* SdkTextTest::server_ = nullptr;

TEST_F(SdkTextTest, TextSearchInEveryModeWithHighlight) {
  CreateTextNamespace();
  if (HasFatalFailure()) return;
  UpsertCorpus();
  for (SearchMode mode : {SearchMode::kDense, SearchMode::kBm25, SearchMode::kHybridRrf,
                          SearchMode::kHybridWeighted, SearchMode::kLateInteraction}) {
    SearchRequest req;
    req.ns = ns_;
    req.text_queries = {"Rottnest Island marsupial"};
    req.mode = mode;
    req.k = 3;
    req.highlight = true;
    req.include_payload = true;
    auto hits = client_->Search(req);
    ASSERT_TRUE(hits.ok()) << hits.status() << " mode " << static_cast<int>(mode);
    ASSERT_EQ(hits->size(), 1u);
    ASSERT_FALSE((*hits)[0].empty());
    const Hit& top = (*hits)[0][0];
    EXPECT_EQ(top.id, "quokka#0") << static_cast<int>(mode);
    EXPECT_THAT(top.snippet, HasSubstr("[[Rottnest]]")) << static_cast<int>(mode);
    ASSERT_TRUE(top.chunk.has_value());
    EXPECT_EQ(top.chunk->document_id, "quokka");
    EXPECT_LT(top.chunk->source_begin, top.chunk->source_end);
  }
}

TEST_F(SdkTextTest, DenseTextSearchFindsParaphrase) {
  CreateTextNamespace();
  if (HasFatalFailure()) return;
  UpsertCorpus();
  SearchRequest req;
  req.ns = ns_;
  req.text_queries = {"how long do I cook noodles", "shares dropped on wall street"};
  req.k = 1;
  auto hits = client_->Search(req);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 2u);
  ASSERT_EQ((*hits)[0].size(), 1u);
  ASSERT_EQ((*hits)[1].size(), 1u);
  EXPECT_EQ((*hits)[0][0].id, "pasta#0");
  EXPECT_EQ((*hits)[1][0].id, "stocks#0");
}

TEST_F(SdkTextTest, FilterAppliesToTextSearch) {
  CreateTextNamespace();
  if (HasFatalFailure()) return;
  UpsertCorpus();
  SearchRequest req;
  req.ns = ns_;
  req.text_queries = {"Rottnest Island marsupial"};
  req.mode = SearchMode::kHybridRrf;
  req.filter_json = R"({"topic": "food"})";
  req.k = 3;
  auto hits = client_->Search(req);
  ASSERT_TRUE(hits.ok()) << hits.status();
  for (const Hit& h : (*hits)[0]) EXPECT_EQ(h.id.rfind("pasta#", 0), 0u) << h.id;
}

TEST_F(SdkTextTest, TextInNamespaceWithoutEncoderIsFailedPrecondition) {
  NamespaceConfig config;
  config.name = ns_;
  config.dim = 4;
  ASSERT_TRUE(client_->CreateNamespace(config).ok());
  Chunk chunk;
  chunk.id = "c";
  chunk.text = "text without a vector";
  EXPECT_EQ(client_->Upsert(ns_, {}, {chunk}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  SearchRequest req;
  req.ns = ns_;
  req.text_queries = {"hello"};
  EXPECT_EQ(client_->Search(req).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SdkTextTest, EmptyDocumentTextIsInvalidArgument) {
  CreateTextNamespace();
  if (HasFatalFailure()) return;
  std::vector<Document> docs = {{"d", "  \n ", ""}};
  EXPECT_EQ(client_->Upsert(ns_, docs, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SdkTextTest, UnknownEncoderIsInvalidArgument) {
  NamespaceConfig config;
  config.name = ns_;
  config.encoder = "no-such-encoder";
  EXPECT_EQ(client_->CreateNamespace(config).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SdkTextTest, TextAndVectorQueriesTogetherIsInvalidArgument) {
  CreateTextNamespace();
  if (HasFatalFailure()) return;
  SearchRequest req;
  req.ns = ns_;
  req.text_queries = {"hello"};
  req.dim = 512;
  req.queries.assign(512, 0.1f);
  EXPECT_EQ(client_->Search(req).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SdkTextTest, UnknownModeOverGrpcIsInvalidArgument) {
  // Refused while converting the request: no namespace or assets needed.
  v1::SearchRequest request;
  request.set_namespace_(ns_);
  request.mutable_texts()->add_texts("hello");
  request.set_k(3);
  request.set_mode(static_cast<v1::SearchMode>(99));
  v1::SearchResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status status = RawStub()->Search(&ctx, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("mode"));
}

// --- late interaction (multi-vector MaxSim) -------------------------------------

TEST_F(SdkTextTest, LateInteractionIsOnByDefaultAndReported) {
  CreateTextNamespace();
  if (HasFatalFailure()) return;
  UpsertCorpus();
  auto info = client_->GetNamespace(ns_);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->config.late_interaction, true);
  EXPECT_EQ(info->config.late_interaction_nbits, 2u);
  EXPECT_EQ(info->config.late_interaction_train_tokens, 32768u);
  EXPECT_GT(info->late_interaction_tokens, 20u);
  EXPECT_FALSE(info->late_interaction_trained);
  EXPECT_THAT(info->late_interaction_description, HasSubstr("MultiVector"));
}

TEST_F(SdkTextTest, LateInteractionSearchWithFilterAndTrainedCodec) {
  if (!HaveUseLite()) GTEST_FAIL() << "USE-lite assets not found";
  NamespaceConfig config;
  config.name = ns_;
  config.encoder = "use-lite";
  config.chunk_max_tokens = 32;
  config.chunk_overlap_tokens = 4;
  config.late_interaction_nbits = 1;
  config.late_interaction_train_tokens = 40;  // trained by the corpus upsert
  ASSERT_TRUE(client_->CreateNamespace(config).ok());
  UpsertCorpus();
  auto info = client_->GetNamespace(ns_);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->late_interaction_trained);
  EXPECT_THAT(info->late_interaction_description, HasSubstr("1-bit"));

  SearchRequest req;
  req.ns = ns_;
  req.text_queries = {"how long do I cook noodles", "a marsupial on an island near Perth"};
  req.mode = SearchMode::kLateInteraction;
  req.k = 1;
  req.late_nprobe = 8;
  req.late_max_candidates = 64;
  auto hits = client_->Search(req);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 2u);
  ASSERT_EQ((*hits)[0].size(), 1u);
  ASSERT_EQ((*hits)[1].size(), 1u);
  EXPECT_EQ((*hits)[0][0].id, "pasta#0");
  EXPECT_EQ((*hits)[1][0].id, "quokka#0");
  EXPECT_GT((*hits)[1][0].score, 0.0f);

  req.text_queries = {"a marsupial on an island near Perth"};
  req.filter_json = R"({"topic": "finance"})";
  req.k = 3;
  hits = client_->Search(req);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_FALSE((*hits)[0].empty());
  for (const Hit& h : (*hits)[0]) EXPECT_EQ(h.id.rfind("stocks#", 0), 0u) << h.id;
}

TEST_F(SdkTextTest, VectorQueryInLateModeIsInvalidArgument) {
  CreateTextNamespace();
  if (HasFatalFailure()) return;
  SearchRequest req;
  req.ns = ns_;
  req.dim = 512;
  req.queries.assign(512, 0.1f);
  req.mode = SearchMode::kLateInteraction;
  auto hits = client_->Search(req);
  EXPECT_EQ(hits.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(hits.status().message()), HasSubstr("text queries"));
}

TEST_F(SdkTextTest, LateModeWithoutEncoderIsFailedPrecondition) {
  NamespaceConfig config;
  config.name = ns_;
  config.dim = 4;
  ASSERT_TRUE(client_->CreateNamespace(config).ok());
  SearchRequest req;
  req.ns = ns_;
  req.text_queries = {"hello"};
  req.mode = SearchMode::kLateInteraction;
  EXPECT_EQ(client_->Search(req).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SdkTextTest, LateInteractionWithoutEncoderIsInvalidArgument) {
  NamespaceConfig config;
  config.name = ns_;
  config.dim = 4;
  config.late_interaction = true;
  auto info = client_->CreateNamespace(config);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(info.status().message()), HasSubstr("encoder"));
}

TEST_F(SdkTextTest, LateModeWithLateInteractionOffIsFailedPrecondition) {
  if (!HaveUseLite()) GTEST_FAIL() << "USE-lite assets not found";
  NamespaceConfig config;
  config.name = ns_;
  config.encoder = "use-lite";
  config.late_interaction = false;
  auto info = client_->CreateNamespace(config);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->config.late_interaction, false);
  UpsertCorpus();
  SearchRequest req;
  req.ns = ns_;
  req.text_queries = {"hello"};
  req.mode = SearchMode::kLateInteraction;
  auto hits = client_->Search(req);
  EXPECT_EQ(hits.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(hits.status().message()), HasSubstr("late_interaction"));
}

TEST_F(SdkTextTest, ReupsertReplacesDocumentChunks) {
  CreateTextNamespace();
  if (HasFatalFailure()) return;
  UpsertCorpus();
  std::vector<Document> docs = {{"quokka", "Hedgehogs eat beetles at night.", ""}};
  ASSERT_TRUE(client_->Upsert(ns_, docs, {}).ok());
  SearchRequest req;
  req.ns = ns_;
  req.text_queries = {"Rottnest"};
  req.mode = SearchMode::kBm25;
  auto hits = client_->Search(req);
  ASSERT_TRUE(hits.ok()) << hits.status();
  EXPECT_TRUE((*hits)[0].empty());
}

}  // namespace
}  // namespace mnemo::testing
