// The reference decoder answering from chunk KV stored in mnemo: a
// document's chunks are prefilled by the real `mnemo-decode prefill` (each
// on its own from position 0), put into a real mnemod through the SDK, read
// back with GetKv rotated for new positions (in another order than the
// document's), appended to a decode session, and a question is decoded
// greedily on top. With the fp16 codec this gives the same greedy tokens
// as encoding those chunks afresh the same way (each on its own, at the
// same positions) in process; int8 and int4 are measured and printed, as is
// the agreement with a full sequential prefill (the gap chunk-independent
// contexts have; not asserted). The same stored chunks blended by selective
// recompute (decoder/selective_recompute.h) agree with the full prefill at
// least as well as plain reuse (asserted for fp32 and fp16).
//
// Fails when the committed model or the mnemo-decode binary is absent.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "decoder/chunk_kv.h"
#include "decoder/model.h"
#include "decoder/safetensors.h"
#include "decoder/session.h"
#include "gtest/gtest.h"
#include "mnemo/client.h"
#include "nlohmann/json.hpp"
#include "tests/integration/mnemod_process.h"

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr char kModelDir[] = MNEMO_SOURCE_DIR "/decoder/models/mnemo-ref-4m";
constexpr char kDocument[] =
    "The Congress shall have power to lay and collect taxes, duties, imposts and excises, to pay "
    "the debts and provide for the common defence and general welfare of the United States. The "
    "whale was seen at dawn off the starboard bow, and the captain called all hands to the boats. "
    "Fellow citizens, the state of the Union is strong, and the year that has passed brought "
    "peace to our borders and work to our people. Subject: your order has shipped and will "
    "arrive within three business days.";
constexpr char kQuestion[] = "In the year that has passed, the Congress and the whale";
constexpr int kChunkTokens = 24;
constexpr int kGreedy = 24;

int32_t Argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Greedy tokens after `question` on top of what the session holds, and the
// logits right after the question.
std::vector<int32_t> Answer(decoder::DecodeSession* session, const std::vector<int32_t>& question,
                            std::vector<float>* first_logits) {
  std::vector<float> logits;
  EXPECT_TRUE(session->Append(question, decoder::LogitsMode::kLast, &logits).ok());
  *first_logits = logits;
  std::vector<int32_t> out;
  for (int i = 0; i < kGreedy && !logits.empty(); ++i) {
    const int32_t t = Argmax(logits);
    out.push_back(t);
    if (i + 1 < kGreedy) {
      EXPECT_TRUE(session->Append({&t, 1}, decoder::LogitsMode::kLast, &logits).ok());
    }
  }
  return out;
}

size_t Agreement(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t same = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) same += a[i] == b[i];
  return same;
}

class KvDecoderTest : public ::testing::TestWithParam<KvCodec> {
 protected:
  static void SetUpTestSuite() {
    missing_ = new std::string();
    const std::string decode = testing::BinDir() + "/mnemo-decode";
    if (!fs::exists(fs::path(kModelDir) / "config.json") || !fs::exists(decode)) {
      *missing_ = absl::StrCat("needs ", kModelDir, "/config.json and ", decode);
      return;
    }
    auto dir = testing::MakeTempDir("mnemo-kv-decoder");
    ASSERT_TRUE(dir.ok());
    dir_ = new std::string(*dir);
    std::ofstream(*dir_ + "/doc.txt") << kDocument;
    std::ofstream(*dir_ + "/question.txt") << kQuestion;
    for (const auto& [file, out, tokens] :
         {std::tuple{"doc.txt", "doc", kChunkTokens}, std::tuple{"question.txt", "q", 256}}) {
      const std::string cmd =
          absl::StrCat(decode, " prefill --model ", kModelDir, " ", *dir_, "/", file, " --out ",
                       *dir_, "/", out, " --chunk-tokens ", tokens, " > ", *dir_, "/", out,
                       ".log 2>&1");
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
    auto model = decoder::Model::Load(kModelDir);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = model->release();
  }

  static void TearDownTestSuite() {
    if (dir_ != nullptr) {
      std::error_code ec;
      fs::remove_all(*dir_, ec);
    }
    delete dir_;
    delete model_;
    delete missing_;
    dir_ = nullptr;
    model_ = nullptr;
    missing_ = nullptr;
  }

  void SetUp() override {
    if (!missing_->empty()) GTEST_FAIL() << *missing_;
    ASSERT_NE(model_, nullptr);
    std::ifstream in(*dir_ + "/doc/manifest.json");
    const json manifest = json::parse(in);
    for (const json& c : manifest["chunks"]) {
      auto file = decoder::SafetensorsFile::Open(*dir_ + "/doc/" + c["file"].get<std::string>());
      ASSERT_TRUE(file.ok()) << file.status();
      decoder::ChunkKv kv;
      auto tokens = (*file)->I32("tokens");
      ASSERT_TRUE(tokens.ok());
      kv.tokens.assign(tokens->begin(), tokens->end());
      for (int l = 0; l < model_->config().n_layers; ++l) {
        auto k = (*file)->F32(absl::StrCat("layer", l, ".k_pre_rope"));
        auto v = (*file)->F32(absl::StrCat("layer", l, ".v"));
        ASSERT_TRUE(k.ok() && v.ok());
        kv.k_pre_rope.emplace_back(k->begin(), k->end());
        kv.v.emplace_back(v->begin(), v->end());
      }
      chunks_.push_back(std::move(kv));
      texts_.push_back(c.value("text", std::string("chunk")));
    }
    ASSERT_GE(chunks_.size(), 4u) << "the document should make at least 4 chunks";
    auto q = decoder::SafetensorsFile::Open(*dir_ + "/q/chunk-00000.safetensors");
    ASSERT_TRUE(q.ok()) << q.status();
    auto qt = (*q)->I32("tokens");
    ASSERT_TRUE(qt.ok());
    question_.assign(qt->begin(), qt->end());

    auto server = testing::MnemodProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto client = Client::Connect(server_->target());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  void TearDown() override {
    if (server_) {
      EXPECT_TRUE(server_->Stop().ok()) << server_->LogTail();
    }
  }

  static std::string* missing_;
  static std::string* dir_;
  static decoder::Model* model_;
  std::vector<decoder::ChunkKv> chunks_;
  std::vector<std::string> texts_;
  std::vector<int32_t> question_;
  std::unique_ptr<testing::MnemodProcess> server_;
  std::unique_ptr<Client> client_;
};

std::string* KvDecoderTest::missing_ = nullptr;
std::string* KvDecoderTest::dir_ = nullptr;
decoder::Model* KvDecoderTest::model_ = nullptr;

TEST_P(KvDecoderTest, AnswersFromStoredChunksAsFromChunksEncodedAfresh) {
  const decoder::ModelConfig& cfg = model_->config();
  const ModelFingerprint fingerprint = model_->fingerprint();

  // Ingest: the chunks as rows of a namespace, then their KV through the SDK.
  NamespaceConfig ns;
  ns.name = "doc";
  ns.dim = 4;
  ASSERT_TRUE(client_->CreateNamespace(ns).ok());
  std::vector<Chunk> rows;
  for (size_t i = 0; i < chunks_.size(); ++i) {
    Chunk row;
    row.id = absl::StrCat("doc#", i);
    row.text = texts_[i];
    row.vector = {1.0f, static_cast<float>(i), 0.0f, 0.0f};
    rows.push_back(row);
  }
  ASSERT_TRUE(client_->Upsert("doc", {}, rows).ok());
  KvConfig config;
  config.model = fingerprint;
  config.codec = GetParam();
  ASSERT_TRUE(client_->RegisterKvModel("doc", config).ok());
  for (size_t i = 0; i < chunks_.size(); ++i) {
    KvPut put;
    put.chunk_id = rows[i].id;
    put.model = fingerprint;
    put.tokens = chunks_[i].tokens;
    put.k = chunks_[i].k_pre_rope;
    put.v = chunks_[i].v;
    auto stored = client_->PutKv("doc", put);
    ASSERT_TRUE(stored.ok()) << stored.status();
  }

  // A prompt whose context is the chunks in another order: 2, 0, 3, 1.
  const std::vector<size_t> order = {2, 0, 3, 1};
  KvGetRequest get;
  get.model = fingerprint;
  int64_t pos = 0;
  for (size_t c : order) {
    get.chunk_ids.push_back(rows[c].id);
    get.positions.push_back(pos);
    pos += chunks_[c].n_tokens();
  }
  get.shared_memory = GetParam() == KvCodec::kInt8;  // one codec goes the same-host way
  auto blocks = client_->GetKv("doc", get);
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  ASSERT_EQ(blocks->size(), order.size() * cfg.n_layers);
  // Layer-major: regroup per chunk.
  std::vector<std::vector<const KvBlock*>> per_chunk(order.size());
  for (const KvBlock& b : *blocks) per_chunk[b.chunk_index].push_back(&b);

  auto session = decoder::NewDecodeSession(*model_, decoder::Device::kCpu);
  ASSERT_TRUE(session.ok());
  for (size_t j = 0; j < order.size(); ++j) {
    decoder::PositionedKv kv;
    kv.first_position = static_cast<int>(get.positions[j]);
    kv.n_tokens = chunks_[order[j]].n_tokens();
    for (const KvBlock* b : per_chunk[j]) {
      ASSERT_EQ(b->position, get.positions[j]);
      kv.keys.emplace_back(b->k);
      kv.values.emplace_back(b->v);
    }
    ASSERT_TRUE((*session)->AppendKv(kv).ok());
  }
  std::vector<float> stored_logits;
  const std::vector<int32_t> from_store = Answer(session->get(), question_, &stored_logits);

  // The same chunks encoded afresh on their own at the same positions.
  auto fresh = decoder::NewDecodeSession(*model_, decoder::Device::kCpu);
  ASSERT_TRUE(fresh.ok());
  for (size_t c : order) {
    auto kv = decoder::EncodeChunk(*model_, chunks_[c].tokens);
    ASSERT_TRUE(kv.ok());
    ASSERT_TRUE(decoder::AppendChunk(cfg, *kv, fresh->get()).ok());
  }
  std::vector<float> fresh_logits;
  const std::vector<int32_t> from_fresh = Answer(fresh->get(), question_, &fresh_logits);

  // A full sequential prefill of the same context tokens.
  auto full = decoder::NewDecodeSession(*model_, decoder::Device::kCpu);
  ASSERT_TRUE(full.ok());
  std::vector<int32_t> context;
  for (size_t c : order) {
    context.insert(context.end(), chunks_[c].tokens.begin(), chunks_[c].tokens.end());
  }
  std::vector<float> ignored;
  ASSERT_TRUE((*full)->Append(context, decoder::LogitsMode::kNone, &ignored).ok());
  std::vector<float> full_logits;
  const std::vector<int32_t> from_full = Answer(full->get(), question_, &full_logits);

  // The stored chunks blended (decoder/selective_recompute.h): the same
  // stored KV appended to another session, then a share of the context
  // recomputed with attention over all of it.
  std::vector<int> lengths;
  for (size_t c : order) lengths.push_back(chunks_[c].n_tokens());
  auto blended_answer = [&](decoder::BlendSelector selector, double fraction,
                            decoder::BlendStats* stats) {
    auto blended = decoder::NewDecodeSession(*model_, decoder::Device::kCpu);
    EXPECT_TRUE(blended.ok());
    for (size_t j = 0; j < order.size(); ++j) {
      decoder::PositionedKv kv;
      kv.first_position = static_cast<int>(get.positions[j]);
      kv.n_tokens = chunks_[order[j]].n_tokens();
      for (const KvBlock* b : per_chunk[j]) {
        kv.keys.emplace_back(b->k);
        kv.values.emplace_back(b->v);
      }
      EXPECT_TRUE((*blended)->AppendKv(kv).ok());
    }
    decoder::BlendOptions options;
    options.selector = selector;
    options.recompute_fraction = fraction;
    auto s = (*blended)->BlendStoredContext(context, lengths, options);
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) *stats = *s;
    std::vector<float> logits;
    return Answer(blended->get(), question_, &logits);
  };
  decoder::BlendStats recent_stats, kv_stats;
  const std::vector<int32_t> from_recent =
      blended_answer(decoder::BlendSelector::kRecent, 0.15, &recent_stats);
  const std::vector<int32_t> from_kv =
      blended_answer(decoder::BlendSelector::kKvDeviation, 0.15, &kv_stats);
  std::printf("[ kv-decoder ] codec %s: blended (15%% recomputed) greedy tokens equal to a full "
              "sequential prefill: most recent tokens %zu/%d at %.3f of its compute, largest "
              "layer-1 K/V deviation %zu/%d at %.3f; plain %zu/%d\n",
              std::string(KvCodecName(GetParam())).c_str(), Agreement(from_recent, from_full),
              kGreedy, recent_stats.compute_fraction(), Agreement(from_kv, from_full), kGreedy,
              kv_stats.compute_fraction(), Agreement(from_store, from_full), kGreedy);
  if (GetParam() == KvCodec::kFp16 || GetParam() == KvCodec::kFp32) {
    EXPECT_GE(Agreement(from_recent, from_full), Agreement(from_store, from_full));
    EXPECT_GE(Agreement(from_kv, from_full), Agreement(from_store, from_full));
  }

  float max_diff = 0;
  for (size_t i = 0; i < stored_logits.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(stored_logits[i] - fresh_logits[i]));
  }
  std::printf("[ kv-decoder ] codec %s: %zu chunks, %lld context tokens; logits after the "
              "question vs chunks encoded afresh: max abs diff %.3g; greedy tokens equal to "
              "afresh %zu/%d, to a full sequential prefill %zu/%d (afresh vs full %zu/%d)\n",
              std::string(KvCodecName(GetParam())).c_str(), order.size(), static_cast<long long>(pos), max_diff,
              Agreement(from_store, from_fresh), kGreedy, Agreement(from_store, from_full),
              kGreedy, Agreement(from_fresh, from_full), kGreedy);
  if (GetParam() == KvCodec::kFp16 || GetParam() == KvCodec::kFp32) {
    EXPECT_EQ(from_store, from_fresh);
    EXPECT_LT(max_diff, 0.05f);
  }
  if (GetParam() == KvCodec::kFp32) {
    EXPECT_LT(max_diff, 1e-3f);
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, KvDecoderTest,
                         ::testing::Values(KvCodec::kFp32, KvCodec::kFp16, KvCodec::kInt8,
                                           KvCodec::kInt4),
                         [](const auto& info) { return std::string(KvCodecName(info.param)); });

}  // namespace
}  // namespace mnemo
