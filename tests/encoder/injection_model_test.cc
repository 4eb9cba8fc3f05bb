#include "encoder/injection_model.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "decoder/safetensors.h"
#include "decoder/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/encoder/tiny_injection_model.h"

namespace mnemo::encoder {
namespace {

using testing::TinyDims;
using testing::TinyModelFiles;

// Parity tolerance against the PyTorch outputs of parity.safetensors:
// |ours - torch| <= kAbsTol + kRelTol * |torch| per value (float32 sums in
// a different order; the compressor's two layers and attention add up).
constexpr float kAbsTol = 1e-4f;
constexpr float kRelTol = 1e-4f;

// $MNEMO_INJECT_MODEL_DIR, else the committed decoder/models/mnemo-ref-4m-inject.
std::string CommittedModelDir() {
  if (const char* env = std::getenv("MNEMO_INJECT_MODEL_DIR"); env != nullptr && *env) return env;
  return std::string(MNEMO_SOURCE_DIR) + "/decoder/models/mnemo-ref-4m-inject";
}

std::string TempDirPath() {
  char tmpl[] = "/tmp/mnemo-inject-test-XXXXXX";
  return mkdtemp(tmpl) != nullptr ? tmpl : "";
}

void ExpectClose(absl::Span<const float> ours, absl::Span<const float> ref, const char* what) {
  ASSERT_EQ(ours.size(), ref.size()) << what;
  float worst = 0.0f, max_abs = 0.0f;
  size_t worst_i = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(ours[i] - ref[i]));
    const float excess = std::fabs(ours[i] - ref[i]) - kRelTol * std::fabs(ref[i]);
    if (excess > worst) {
      worst = excess;
      worst_i = i;
    }
  }
  std::cout << what << ": max |ours - torch| = " << max_abs << " over " << ours.size()
            << " values\n";
  EXPECT_LE(worst, kAbsTol) << what << " value " << worst_i << ": " << ours[worst_i] << " vs "
                            << ref[worst_i];
}

TEST(InjectionModelParityTest, MatchesPyTorch) {
  const std::string dir = CommittedModelDir();
  if (!std::filesystem::exists(dir + "/parity.safetensors")) {
    GTEST_SKIP() << "no injection model at " << dir;
  }
  absl::StatusOr<std::unique_ptr<InjectionModel>> model = InjectionModel::Load(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  const InjectionModel& m = **model;
  const InjectionConfig& c = m.config();
  absl::StatusOr<std::unique_ptr<decoder::SafetensorsFile>> parity =
      decoder::SafetensorsFile::Open(dir + "/parity.safetensors");
  ASSERT_TRUE(parity.ok()) << parity.status();
  const decoder::SafetensorsFile& p = **parity;

  // xRAG projector.
  absl::StatusOr<absl::Span<const float>> embedding = p.F32("in.embedding");
  ASSERT_TRUE(embedding.ok()) << embedding.status();
  absl::StatusOr<std::vector<float>> projected = m.Project(*embedding);
  ASSERT_TRUE(projected.ok()) << projected.status();
  ExpectClose(*projected, *p.F32("out.projected"), "projected");

  // Compressor, from the fixture's token ids.
  absl::StatusOr<absl::Span<const int32_t>> tokens = p.I32("in.tokens");
  absl::StatusOr<absl::Span<const int32_t>> lengths = p.I32("in.lengths");
  ASSERT_TRUE(tokens.ok() && lengths.ok());
  const size_t chunks = lengths->size();
  ASSERT_EQ(tokens->size(), chunks * c.compressor_max_tokens);
  std::vector<std::vector<int>> ids(chunks);
  for (size_t i = 0; i < chunks; ++i) {
    const int32_t* row = tokens->data() + i * c.compressor_max_tokens;
    ids[i].assign(row, row + (*lengths)[i]);
  }
  absl::StatusOr<std::vector<float>> memory = m.CompressIds(ids);
  ASSERT_TRUE(memory.ok()) << memory.status();
  absl::Span<const float> ref_memory = *p.F32("out.memory");
  ExpectClose(*memory, ref_memory, "memory");

  // The texts behind those ids (metadata "texts"): our tokenization gives
  // the same ids, and Compress the same memory.
  auto texts_entry = p.metadata().find("texts");
  if (texts_entry != p.metadata().end()) {
    const nlohmann::json texts = nlohmann::json::parse(texts_entry->second, nullptr, false);
    ASSERT_TRUE(texts.is_array() && texts.size() == chunks) << texts_entry->second;
    std::vector<std::string> text_list;
    for (size_t i = 0; i < chunks; ++i) {
      text_list.push_back(texts[i].get<std::string>());
      absl::StatusOr<std::vector<int>> tokenized = m.Tokenize(text_list.back());
      ASSERT_TRUE(tokenized.ok()) << tokenized.status();
      EXPECT_EQ(*tokenized, ids[i]) << "text " << i;
    }
    absl::StatusOr<std::vector<float>> from_text = m.Compress(text_list);
    ASSERT_TRUE(from_text.ok()) << from_text.status();
    ExpectClose(*from_text, ref_memory, "memory from text");
  }

  // Live conditioning and reranker on the reference memory of chunk 0.
  absl::Span<const float> query = *p.F32("in.query");
  absl::Span<const float> memory0 = ref_memory.subspan(0, m.memory_size());
  absl::StatusOr<std::vector<float>> conditioned = m.Condition(memory0, query);
  ASSERT_TRUE(conditioned.ok()) << conditioned.status();
  ExpectClose(*conditioned, *p.F32("out.conditioned"), "conditioned");
  absl::StatusOr<float> score = m.RerankScore(*p.F32("out.conditioned"), query);
  ASSERT_TRUE(score.ok()) << score.status();
  ExpectClose({*score}, *p.F32("out.rerank"), "rerank");

  // PQ: faiss's codes of the same memory, exactly, and their decoding.
  absl::StatusOr<std::vector<uint8_t>> codes = m.pq().EncodeChecked(memory0);
  ASSERT_TRUE(codes.ok()) << codes.status();
  absl::Span<const int32_t> ref_codes = *p.I32("out.pq_codes");
  ASSERT_EQ(codes->size(), ref_codes.size());
  for (size_t i = 0; i < codes->size(); ++i) {
    EXPECT_EQ((*codes)[i], ref_codes[i]) << "code " << i;
  }
  absl::StatusOr<std::vector<float>> decoded = m.pq().DecodeToVector(*codes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectClose(*decoded, *p.F32("out.pq_decoded"), "pq_decoded");
}

class InjectionModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    files_ = TinyModelFiles(dims_);
    ASSERT_FALSE(files_["inject.safetensors"].empty());
    absl::StatusOr<std::unique_ptr<InjectionModel>> model = InjectionModel::FromFiles(files_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
  }

  std::vector<float> Embedding(unsigned seed) const {
    std::vector<float> e(dims_.encoder_dim);
    float norm = 0.0f;
    for (int i = 0; i < dims_.encoder_dim; ++i) {
      e[i] = std::sin(1.7f * static_cast<float>(seed) + 0.9f * static_cast<float>(i));
      norm += e[i] * e[i];
    }
    for (float& x : e) x /= std::sqrt(norm);
    return e;
  }

  TinyDims dims_;
  std::map<std::string, std::string> files_;
  std::unique_ptr<InjectionModel> model_;
};

TEST_F(InjectionModelTest, ConfigLineageAndFileNames) {
  EXPECT_EQ(InjectionModel::FileNames(),
            (std::vector<std::string>{"config.json", "inject.safetensors", "tokenizer.model"}));
  const InjectionConfig& c = model_->config();
  EXPECT_EQ(c.name, "tiny-inject");
  EXPECT_EQ(c.encoder_dim, dims_.encoder_dim);
  EXPECT_EQ(c.decoder_dim, dims_.decoder_dim);
  EXPECT_EQ(c.memory_tokens, dims_.memory_tokens);
  EXPECT_EQ(c.compressor_max_tokens, dims_.max_tokens);
  EXPECT_EQ(c.pq_m, dims_.pq_m);
  EXPECT_EQ(c.pq_nbits, dims_.pq_nbits);
  const InjectionLineage& l = model_->lineage();
  EXPECT_EQ(l.encoder, "use-lite");
  EXPECT_EQ(l.encoder_sha256, std::string(64, 'a'));
  EXPECT_EQ(l.decoder_fingerprint, "tiny-decoder-fingerprint");
  EXPECT_EQ(l.decoder_weights_sha256, std::string(64, 'b'));
  EXPECT_EQ(l.model_sha256, Sha256Hex(files_["inject.safetensors"]));
  InjectionLineage other = l;
  EXPECT_EQ(DiffLineage(l, other), "");
  other.decoder_fingerprint = "x";
  EXPECT_EQ(DiffLineage(l, other), "decoder_fingerprint");
  EXPECT_EQ(model_->pq().dim(), dims_.decoder_dim);
  EXPECT_EQ(model_->pq().m(), dims_.pq_m);
  EXPECT_EQ(model_->pq().code_size(), 2u);  // 4 sub-vectors of 4 bits
  EXPECT_EQ(model_->memory_size(), static_cast<size_t>(dims_.memory_tokens * dims_.decoder_dim));
}

TEST_F(InjectionModelTest, DirectoryAndBytesLoadTheSameModel) {
  const std::string dir = TempDirPath();
  ASSERT_FALSE(dir.empty());
  testing::WriteFiles(dir, files_);
  absl::StatusOr<std::unique_ptr<InjectionModel>> loaded = InjectionModel::Load(dir);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const std::vector<float> e = Embedding(1);
  EXPECT_EQ(*(*loaded)->Project(e), *model_->Project(e));
  const std::vector<std::string> texts = {"Memory tokens for a chunk."};
  EXPECT_EQ(*(*loaded)->Compress(texts), *model_->Compress(texts));
  EXPECT_EQ((*loaded)->lineage(), model_->lineage());
}

TEST_F(InjectionModelTest, OutputsHaveTheirShapesAndDependOnTheirInputs) {
  std::vector<float> two = Embedding(1);
  const std::vector<float> e2 = Embedding(2);
  two.insert(two.end(), e2.begin(), e2.end());
  absl::StatusOr<std::vector<float>> projected = model_->Project(two);
  ASSERT_TRUE(projected.ok()) << projected.status();
  ASSERT_EQ(projected->size(), 2u * dims_.decoder_dim);
  // Row by row equals the batch.
  absl::StatusOr<std::vector<float>> second = model_->Project(e2);
  ASSERT_TRUE(second.ok());
  for (int j = 0; j < dims_.decoder_dim; ++j) {
    EXPECT_NEAR((*projected)[dims_.decoder_dim + j], (*second)[j], 1e-5f);
  }
  absl::StatusOr<std::vector<float>> memory =
      model_->Compress(std::vector<std::string>{"The first chunk.", "A different second chunk."});
  ASSERT_TRUE(memory.ok()) << memory.status();
  ASSERT_EQ(memory->size(), 2 * model_->memory_size());
  const absl::Span<const float> m0 = absl::MakeConstSpan(*memory).subspan(0, model_->memory_size());
  const absl::Span<const float> m1 = absl::MakeConstSpan(*memory).subspan(model_->memory_size());
  EXPECT_NE(std::vector<float>(m0.begin(), m0.end()), std::vector<float>(m1.begin(), m1.end()));
  absl::StatusOr<std::vector<float>> c1 = model_->Condition(m0, Embedding(1));
  absl::StatusOr<std::vector<float>> c2 = model_->Condition(m0, Embedding(2));
  ASSERT_TRUE(c1.ok() && c2.ok());
  ASSERT_EQ(c1->size(), model_->memory_size());
  EXPECT_NE(*c1, *c2);
  absl::StatusOr<float> s1 = model_->RerankScore(*c1, Embedding(1));
  absl::StatusOr<float> s2 = model_->RerankScore(*c2, Embedding(2));
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_TRUE(std::isfinite(*s1));
  EXPECT_NE(*s1, *s2);
}

TEST_F(InjectionModelTest, CompressTokenizesWithoutBosAndTruncates) {
  absl::StatusOr<std::unique_ptr<decoder::Tokenizer>> tokenizer =
      decoder::LoadSentencePieceTokenizer(testing::DecoderTokenizerPath());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::string text = "Product quantization stores memory tokens in a few bytes each.";
  absl::StatusOr<std::vector<int>> expected = (*tokenizer)->Encode(text);
  ASSERT_TRUE(expected.ok());
  ASSERT_GT(expected->size(), static_cast<size_t>(dims_.max_tokens));
  ASSERT_NE(expected->front(), (*tokenizer)->bos_id());
  expected->resize(dims_.max_tokens);
  absl::StatusOr<std::vector<int>> ids = model_->Tokenize(text);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, *expected);
  absl::StatusOr<std::vector<float>> from_text = model_->Compress(std::vector<std::string>{text});
  absl::StatusOr<std::vector<float>> from_ids =
      model_->CompressIds(std::vector<std::vector<int>>{*expected});
  ASSERT_TRUE(from_text.ok() && from_ids.ok());
  EXPECT_EQ(*from_text, *from_ids);
  // Text past the first max_tokens ids changes nothing.
  absl::StatusOr<std::vector<float>> longer =
      model_->Compress(std::vector<std::string>{text + " And a tail the compressor never sees."});
  ASSERT_TRUE(longer.ok());
  EXPECT_EQ(*longer, *from_text);
}

TEST_F(InjectionModelTest, ConstMethodsAreSafeFromSeveralThreads) {
  const std::vector<std::string> texts = {"Threads share one model.", "Each gets the same answer."};
  const std::vector<float> expected = *model_->Compress(texts);
  const std::vector<float> query = Embedding(3);
  const std::vector<float> expected_cond =
      *model_->Condition(absl::MakeConstSpan(expected).subspan(0, model_->memory_size()), query);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        absl::StatusOr<std::vector<float>> memory = model_->Compress(texts);
        if (!memory.ok() || *memory != expected) ++mismatches[t];
        absl::StatusOr<std::vector<float>> cond = model_->Condition(
            absl::MakeConstSpan(*memory).subspan(0, model_->memory_size()), query);
        if (!cond.ok() || *cond != expected_cond) ++mismatches[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST_F(InjectionModelTest, MissingFileIsNotFound) {
  EXPECT_EQ(InjectionModel::Load("/nonexistent/inject-model").status().code(),
            absl::StatusCode::kNotFound);
  for (const std::string& name : InjectionModel::FileNames()) {
    std::map<std::string, std::string> files = files_;
    files.erase(name);
    absl::Status s = InjectionModel::FromFiles(files).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << name << ": " << s;
    EXPECT_NE(s.message().find(name), std::string::npos) << s;
    const std::string dir = TempDirPath();
    testing::WriteFiles(dir, files);
    s = InjectionModel::Load(dir).status();
    std::filesystem::remove_all(dir);
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << name << ": " << s;
    EXPECT_NE(s.message().find(name), std::string::npos) << s;
  }
}

TEST_F(InjectionModelTest, FlippedWeightByteIsDataLoss) {
  std::map<std::string, std::string> files = files_;
  std::string& w = files["inject.safetensors"];
  w[w.size() - 100] ^= 0x01;
  absl::Status s = InjectionModel::FromFiles(files).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("sha256"), std::string::npos) << s;
}

TEST_F(InjectionModelTest, MisshapenOrMissingTensorIsDataLoss) {
  for (const auto& [skip, reshape] : std::vector<std::pair<std::string, std::string>>{
           {"", "comp.layers.1.wqkv"}, {"live.w1", ""}, {"", "pq.centroids"}}) {
    std::map<std::string, std::string> files = files_;
    files["inject.safetensors"] = testing::TinyWeights(dims_, 7, skip, reshape);
    files["config.json"] = testing::TinyConfig(dims_, files["inject.safetensors"]).dump();
    absl::Status s = InjectionModel::FromFiles(files).status();
    const std::string& name = skip.empty() ? reshape : skip;
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << name << ": " << s;
    EXPECT_NE(s.message().find(name), std::string::npos) << s;
  }
  // Garbage with a matching hash: malformed.
  std::map<std::string, std::string> files = files_;
  files["inject.safetensors"] = "not a safetensors file";
  files["config.json"] = testing::TinyConfig(dims_, files["inject.safetensors"]).dump();
  EXPECT_EQ(InjectionModel::FromFiles(files).status().code(), absl::StatusCode::kDataLoss);
  // A tokenizer SentencePiece refuses.
  files = files_;
  files["tokenizer.model"] = "garbage";
  EXPECT_EQ(InjectionModel::FromFiles(files).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(InjectionModelTest, BadConfigIsInvalidArgument) {
  const nlohmann::json good = testing::TinyConfig(dims_, files_["inject.safetensors"]);
  std::vector<std::pair<std::string, nlohmann::json>> cases = {
      {"format", 2},        {"decoder_dim", 0},         {"encoder_dim", "512"},
      {"pq_m", 5},          {"weights_sha256", "abc"},  {"weights", "../inject.safetensors"},
      {"norm_eps", -1.0},   {"compressor_heads", 3}};
  for (const auto& [field, value] : cases) {
    nlohmann::json bad = good;
    bad[field] = value;
    std::map<std::string, std::string> files = files_;
    files["config.json"] = bad.dump();
    absl::Status s = InjectionModel::FromFiles(files).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field << ": " << s;
    EXPECT_NE(s.message().find(field), std::string::npos) << s;
  }
  nlohmann::json missing = good;
  missing.erase("memory_tokens");
  std::map<std::string, std::string> files = files_;
  files["config.json"] = missing.dump();
  absl::Status s = InjectionModel::FromFiles(files).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("memory_tokens"), std::string::npos) << s;
  files["config.json"] = "{not json";
  EXPECT_EQ(InjectionModel::FromFiles(files).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(InjectionModelTest, WrongDimensionsAndNanAreInvalidArgument) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> e = Embedding(1);
  EXPECT_EQ(model_->Project({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->Project(absl::MakeConstSpan(e).subspan(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<float> e_nan = e;
  e_nan[3] = nan;
  EXPECT_EQ(model_->Project(e_nan).status().code(), absl::StatusCode::kInvalidArgument);

  const std::vector<float> memory = *model_->Compress(std::vector<std::string>{"A chunk."});
  EXPECT_EQ(model_->Condition(absl::MakeConstSpan(memory).subspan(1), e).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->Condition(memory, absl::MakeConstSpan(e).subspan(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->Condition(memory, e_nan).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<float> memory_nan = memory;
  memory_nan[5] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(model_->Condition(memory_nan, e).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->RerankScore(memory_nan, e).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->RerankScore(absl::MakeConstSpan(memory).subspan(2), e).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->RerankScore(memory, e_nan).status().code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(model_->Compress(std::vector<std::string>{"fine", ""}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->CompressIds(std::vector<std::vector<int>>{{}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->CompressIds(std::vector<std::vector<int>>{{5, 4096}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->CompressIds(std::vector<std::vector<int>>{{-1}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->CompressIds(std::vector<std::vector<int>>{std::vector<int>(11, 5)})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->pq().EncodeChecked(memory_nan).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mnemo::encoder
