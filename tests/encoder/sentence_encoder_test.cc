#include "encoder/sentence_encoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/encoder/test_assets.h"

namespace mnemo::encoder {
namespace {

namespace fs = std::filesystem;

double Cosine(const float* a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

float MaxAbsDiff(const float* a, const float* b, size_t n) {
  float worst = 0.0f;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

// The encoder is loaded once for the whole suite: loading reads 28 MB.
class SentenceEncoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::HaveUseLite()) return;
    auto loaded = SentenceEncoder::Load(test::UseLiteDir());
    if (loaded.ok()) {
      encoder_ = loaded->release();
    } else {
      load_error_ = new std::string(loaded.status().ToString());
    }
  }
  static void TearDownTestSuite() {
    delete encoder_;
    encoder_ = nullptr;
    delete load_error_;
    load_error_ = nullptr;
  }
  void SetUp() override {
    if (!test::HaveUseLite()) GTEST_FAIL() << test::kMissingAssets;
    ASSERT_EQ(load_error_, nullptr) << *load_error_;
    ASSERT_NE(encoder_, nullptr);
  }

  static const SentenceEncoder* encoder_;
  static std::string* load_error_;
};

const SentenceEncoder* SentenceEncoderTest::encoder_ = nullptr;
std::string* SentenceEncoderTest::load_error_ = nullptr;

TEST_F(SentenceEncoderTest, ShapeOfTheModel) {
  EXPECT_EQ(encoder_->dim(), 512);
  EXPECT_EQ(encoder_->max_tokens(), 128);
}

// Issue 3: cosine >= 0.999 with each reference output of the JS package.
TEST_F(SentenceEncoderTest, MatchesReferenceEmbeddings) {
  const nlohmann::json golden = test::LoadGolden();
  ASSERT_TRUE(golden.is_object()) << "golden fixture missing or malformed";
  std::vector<std::string> texts;
  std::vector<std::vector<float>> want;
  for (const nlohmann::json& c : golden["cases"]) {
    texts.push_back(c["text"].get<std::string>());
    want.push_back(c["embedding"].get<std::vector<float>>());
  }
  ASSERT_GE(texts.size(), 30u);
  auto got = encoder_->Encode(texts);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), texts.size() * 512);
  double worst = 1.0;
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_EQ(want[i].size(), 512u);
    const double cosine = Cosine(got->data() + i * 512, want[i]);
    worst = std::min(worst, cosine);
    EXPECT_GE(cosine, 0.999) << "text: \"" << texts[i] << "\"";
  }
  std::printf("min cosine over %zu golden inputs: %.9f (1 - min = %.3g)\n", texts.size(), worst,
              1.0 - worst);
}

TEST_F(SentenceEncoderTest, RowsHaveUnitNorm) {
  auto got = encoder_->Encode({"one", "", "three words here"});
  ASSERT_TRUE(got.ok()) << got.status();
  for (int r = 0; r < 3; ++r) {
    double norm = 0;
    for (int i = 0; i < 512; ++i) norm += (*got)[r * 512 + i] * (*got)[r * 512 + i];
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-4);
  }
}

TEST_F(SentenceEncoderTest, EmptyBatchGivesNoRows) {
  auto got = encoder_->Encode({});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->empty());
}

TEST_F(SentenceEncoderTest, BatchDoesNotChangeAText) {
  const std::vector<std::string> texts = {
      "a short one", "", "a somewhat longer sentence about vectors and memory", "x"};
  auto batch = encoder_->Encode(texts);
  ASSERT_TRUE(batch.ok()) << batch.status();
  for (size_t i = 0; i < texts.size(); ++i) {
    auto single = encoder_->Encode({texts[i]});
    ASSERT_TRUE(single.ok()) << single.status();
    EXPECT_LT(MaxAbsDiff(batch->data() + i * 512, single->data(), 512), 1e-5f) << texts[i];
  }
}

TEST_F(SentenceEncoderTest, HugeBatchIsSplitIntoPassesWithSameResults) {
  SentenceEncoderOptions options;
  options.max_tokens_per_pass = 64;  // forces many passes
  auto small_passes = SentenceEncoder::Load(test::UseLiteDir(), options);
  ASSERT_TRUE(small_passes.ok()) << small_passes.status();
  std::vector<std::string> texts;
  for (int i = 0; i < 100; ++i)
    texts.push_back(absl::StrCat("memory item number ", i, " of the batch"));
  auto one_pass = encoder_->Encode(texts);
  auto many_passes = (*small_passes)->Encode(texts);
  ASSERT_TRUE(one_pass.ok()) << one_pass.status();
  ASSERT_TRUE(many_passes.ok()) << many_passes.status();
  ASSERT_EQ(one_pass->size(), texts.size() * 512);
  EXPECT_LT(MaxAbsDiff(one_pass->data(), many_passes->data(), one_pass->size()), 1e-5f);
}

// Encode is called from several server threads at once; each call gets its
// own scratch from the pool and the results match a call made alone. The
// batch is large enough to be split over the OpenMP team.
TEST_F(SentenceEncoderTest, ConcurrentCallsGiveTheSameResults) {
  std::vector<std::string> texts;
  for (int i = 0; i < 60; ++i) {
    std::string text = absl::StrCat("concurrent text ", i, ":");
    for (int w = 0; w < i % 17; ++w) absl::StrAppend(&text, " memory retrieval ", w * i);
    texts.push_back(text);
  }
  auto want = encoder_->Encode(texts);
  ASSERT_TRUE(want.ok()) << want.status();
  std::vector<float> worst(3, 0.0f);
  std::vector<absl::Status> status(3);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 2; ++round) {
        auto got = encoder_->Encode(texts);
        if (!got.ok()) {
          status[t] = got.status();
          return;
        }
        worst[t] = std::max(worst[t], MaxAbsDiff(got->data(), want->data(), want->size()));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 3; ++t) {
    EXPECT_TRUE(status[t].ok()) << status[t];
    EXPECT_LT(worst[t], 1e-5f) << "thread " << t;
  }
}

TEST_F(SentenceEncoderTest, TextPastTheTokenLimitIsTruncated) {
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "retrieval memory database ";
  auto ids = encoder_->tokenizer().Encode(long_text);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_GT(ids->size(), 128u);
  auto got = encoder_->Encode({long_text, long_text + " with an extra tail that is never seen"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_LT(MaxAbsDiff(got->data(), got->data() + 512, 512), 1e-6f);
}

// One finite state per token the network saw, independent of the batch.
TEST_F(SentenceEncoderTest, TokenStatesHaveOneRowPerToken) {
  const std::vector<std::string> texts = {"memory for language models", "", "x"};
  auto got = encoder_->EncodeTokens(texts);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto ids = encoder_->tokenizer().Encode(texts[i]);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ((*got)[i].ids, *ids);
    EXPECT_EQ((*got)[i].states.size(), ids->size() * encoder_->state_dim());
    for (float v : (*got)[i].states) ASSERT_TRUE(std::isfinite(v));
  }
  // A text's token states do not depend on the rest of the batch.
  auto alone = encoder_->EncodeTokens({texts[0]});
  ASSERT_TRUE(alone.ok()) << alone.status();
  ASSERT_EQ((*alone)[0].states.size(), (*got)[0].states.size());
  EXPECT_LT(MaxAbsDiff((*alone)[0].states.data(), (*got)[0].states.data(), (*got)[0].states.size()),
            1e-4f);
}

// One pass gives what Encode and EncodeTokens give separately.
TEST_F(SentenceEncoderTest, EncodeWithTokensMatchesEncodeAndEncodeTokens) {
  std::vector<std::string> texts = {"memory for language models", "", "x"};
  for (int i = 0; i < 40; ++i) texts.push_back(absl::StrCat("a longer text number ", i, " about storage"));
  auto both = encoder_->EncodeWithTokens(texts);
  auto embeddings = encoder_->Encode(texts);
  auto tokens = encoder_->EncodeTokens(texts);
  ASSERT_TRUE(both.ok()) << both.status();
  ASSERT_TRUE(embeddings.ok()) << embeddings.status();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(both->embeddings.size(), embeddings->size());
  EXPECT_LT(MaxAbsDiff(both->embeddings.data(), embeddings->data(), embeddings->size()), 1e-5f);
  ASSERT_EQ(both->tokens.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(both->tokens[i].ids, (*tokens)[i].ids);
    ASSERT_EQ(both->tokens[i].states.size(), (*tokens)[i].states.size()) << texts[i];
    EXPECT_LT(MaxAbsDiff(both->tokens[i].states.data(), (*tokens)[i].states.data(),
                         (*tokens)[i].states.size()),
              1e-4f)
        << texts[i];
  }
}

TEST_F(SentenceEncoderTest, InvalidOptionsAreRejected) {
  SentenceEncoderOptions options;
  options.max_tokens_per_pass = 0;
  EXPECT_EQ(SentenceEncoder::Load(test::UseLiteDir(), options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Bad model directories (no assets needed for most) -------------------------

TEST(SentenceEncoderLoadTest, MissingDirectoryIsNotFound) {
  EXPECT_EQ(SentenceEncoder::Load("/nonexistent/use-lite").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(SentenceEncoderLoadTest, EmptyDirectoryIsNotFound) {
  const fs::path dir = fs::path(::testing::TempDir()) / absl::StrCat("use_lite_empty_", getpid());
  fs::create_directories(dir);
  EXPECT_EQ(SentenceEncoder::Load(dir.string()).status().code(), absl::StatusCode::kNotFound);
  fs::remove_all(dir);
}

// A copy of the real assets with one file damaged by `damage`.
class DamagedModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::HaveUseLite()) GTEST_FAIL() << test::kMissingAssets;
    // One folder per test and process: ctest runs the cases in parallel.
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("use_lite_damaged_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
                        getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const auto& entry : fs::directory_iterator(test::UseLiteDir())) {
      if (entry.is_regular_file()) fs::copy_file(entry.path(), dir_ / entry.path().filename());
    }
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Write(const std::string& name, const std::string& content) {
    std::ofstream out(dir_ / name, std::ios::binary | std::ios::trunc);
    out << content;
  }
  fs::path dir_;
};

TEST_F(DamagedModelTest, TruncatedShardIsDataLoss) {
  fs::resize_file(dir_ / "group1-shard7of7", 1000);
  EXPECT_EQ(SentenceEncoder::Load(dir_.string()).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(DamagedModelTest, MissingShardIsNotFound) {
  fs::remove(dir_ / "group1-shard3of7");
  EXPECT_EQ(SentenceEncoder::Load(dir_.string()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DamagedModelTest, GarbageModelJsonIsDataLoss) {
  Write("model.json", "{not json");
  EXPECT_EQ(SentenceEncoder::Load(dir_.string()).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(DamagedModelTest, ModelJsonWithoutWeightsIsDataLoss) {
  Write("model.json", R"({"modelTopology": {}, "weightsManifest": []})");
  EXPECT_EQ(SentenceEncoder::Load(dir_.string()).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(DamagedModelTest, MissingVocabIsNotFound) {
  fs::remove(dir_ / "vocab.json");
  EXPECT_EQ(SentenceEncoder::Load(dir_.string()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DamagedModelTest, GarbageVocabIsDataLoss) {
  Write("vocab.json", "[1, 2, 3]");
  EXPECT_EQ(SentenceEncoder::Load(dir_.string()).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace mnemo::encoder
