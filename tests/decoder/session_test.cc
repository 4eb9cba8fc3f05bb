// Model loading errors, the KV-cache forward pass and generation on a small
// random-weight model, and the GPU session against the CPU one (skips
// without CUDA or a device).
#include "decoder/session.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "decoder/model.h"
#include "gtest/gtest.h"
#include "tests/decoder/test_model.h"

namespace mnemo::decoder {
namespace {

// GPU (cuBLAS + our kernels, fp32) vs CPU (OpenBLAS) logits.
constexpr float kGpuTolerance = 1e-3f;

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

class TinyModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteRandomModel(dir_.path(), testing::TinyConfigJson());
    auto m = Model::Load(dir_.path());
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = *std::move(m);
  }
  std::vector<int32_t> Tokens(int n) {
    std::vector<int32_t> t;
    for (int i = 0; i < n; ++i) t.push_back((i * 37 + 5) % model_->config().vocab_size);
    return t;
  }
  testing::TempDir dir_;
  std::unique_ptr<Model> model_;
};

TEST_F(TinyModelTest, LoadCountsParameters) {
  // 97*48 + 48 + 2 * (48 + 48*48 + 2*16*48 + 48*48 + 48 + 3*64*48)
  EXPECT_EQ(model_->num_params(), 97 * 48 + 48 + 2 * (48 + 48 * 48 + 2 * 16 * 48 + 48 * 48 + 48 +
                                                      3 * 64 * 48));
}

TEST_F(TinyModelTest, PrefillInPiecesEqualsAtOnce) {
  const std::vector<int32_t> tokens = Tokens(23);
  CpuForward f(*model_);
  KvCache a(model_->config(), 64), b(model_->config(), 64);
  std::vector<float> once, pieces, part;
  ASSERT_TRUE(f.Forward(tokens, &a, LogitsMode::kAll, &once).ok());
  for (size_t s = 0; s < tokens.size(); s += 5) {
    const size_t n = std::min<size_t>(5, tokens.size() - s);
    ASSERT_TRUE(f.Forward(absl::MakeConstSpan(tokens).subspan(s, n), &b, LogitsMode::kAll, &part)
                    .ok());
    pieces.insert(pieces.end(), part.begin(), part.end());
  }
  EXPECT_EQ(b.length(), 23);
  EXPECT_LE(MaxAbsDiff(once, pieces), 1e-4f);
  // kLast is the last row of kAll.
  KvCache c(model_->config(), 64);
  std::vector<float> last;
  ASSERT_TRUE(f.Forward(tokens, &c, LogitsMode::kLast, &last).ok());
  const int V = model_->config().vocab_size;
  EXPECT_LE(MaxAbsDiff(last, std::vector<float>(once.end() - V, once.end())), 1e-5f);
}

TEST_F(TinyModelTest, ForwardRejectsBadInputAndKeepsTheCache) {
  CpuForward f(*model_);
  KvCache cache(model_->config(), 8);
  std::vector<float> logits;
  ASSERT_TRUE(f.Forward(Tokens(3), &cache, LogitsMode::kLast, &logits).ok());
  const std::vector<int32_t> bad = {1, 97};
  EXPECT_EQ(f.Forward(bad, &cache, LogitsMode::kLast, &logits).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.Forward({}, &cache, LogitsMode::kLast, &logits).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.Forward(Tokens(6), &cache, LogitsMode::kLast, &logits).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(cache.length(), 3);
}

TEST_F(TinyModelTest, GenerateIsDeterministicPerSeed) {
  auto session = NewDecodeSession(*model_, Device::kCpu);
  ASSERT_TRUE(session.ok());
  GenerateOptions o;
  o.max_tokens = 20;
  o.stop_at_eos = false;
  o.sampling = SamplingOptions{1.5f, 0, 1.0f, 42};
  auto a = Generate(session->get(), Tokens(4), o);
  auto b = Generate(session->get(), Tokens(4), o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 20u);
  EXPECT_EQ(*a, *b);
  o.sampling.seed = 43;
  auto c = Generate(session->get(), Tokens(4), o);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*a, *c);
  // Greedy through the cache equals greedy by full recompute.
  o.sampling = SamplingOptions{};
  auto g = Generate(session->get(), Tokens(4), o);
  ASSERT_TRUE(g.ok());
  std::vector<int32_t> seq = Tokens(4);
  CpuForward f(*model_);
  for (int i = 0; i < 20; ++i) {
    KvCache cache(model_->config(), 64);
    std::vector<float> logits;
    ASSERT_TRUE(f.Forward(seq, &cache, LogitsMode::kLast, &logits).ok());
    seq.push_back(ArgMax(logits));
  }
  EXPECT_EQ(*g, std::vector<int32_t>(seq.begin() + 4, seq.end()));
}

TEST_F(TinyModelTest, GenerateStopsAtTheContextAndAtEos) {
  auto session = NewDecodeSession(*model_, Device::kCpu, 10);
  ASSERT_TRUE(session.ok());
  GenerateOptions o;
  o.max_tokens = 100;
  o.stop_at_eos = false;
  auto out = Generate(session->get(), Tokens(4), o);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->size(), 7u);  // 6 decoded into the cache + the last sampled
  EXPECT_EQ(Generate(session->get(), Tokens(11), o).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Generate(session->get(), {}, o).status().code(), absl::StatusCode::kInvalidArgument);
  o.stop_at_eos = true;
  o.max_tokens = 5;
  o.eos_id = (*out)[0];  // the first greedy token plays EOS
  auto stopped = Generate(session->get(), Tokens(4), o);
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->size(), 1u);
}

TEST(ModelLoadTest, MissingTensorAndWrongShapeAreNamed) {
  testing::TempDir dir;
  nlohmann::json cfg = testing::TinyConfigJson();
  testing::WriteRandomModel(dir.path(), cfg);
  // The same weights under a config with a larger FFN: shapes disagree.
  cfg["ffn_dim"] = 65;
  std::ofstream(dir.path() + "/config.json") << cfg.dump();
  auto m = Model::Load(dir.path());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("ffn.w1.weight"), std::string::npos) << m.status();
  cfg["ffn_dim"] = 64;
  cfg["n_layers"] = 3;
  std::ofstream(dir.path() + "/config.json") << cfg.dump();
  m = Model::Load(dir.path());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(m.status().message().find("layers.2."), std::string::npos) << m.status();
  EXPECT_EQ(Model::Load(dir.path() + "/nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(DeviceTest, ParseDevice) {
  EXPECT_EQ(*ParseDevice("cpu"), Device::kCpu);
  EXPECT_EQ(*ParseDevice("cuda"), Device::kCuda);
  EXPECT_FALSE(ParseDevice("tpu").ok());
}

// The GPU decode path against the CPU one: prefill logits of every
// position, then 8 decode steps, on the reference model when present, else
// on the random one.
TEST(CudaSessionTest, GpuLogitsMatchCpu) {
  testing::TempDir dir;
  std::string model_dir = testing::ReferenceModelDir();
  if (!testing::ReferenceModelPresent()) {
    model_dir = dir.path();
    testing::WriteRandomModel(model_dir, testing::TinyConfigJson());
  }
  auto model = Model::Load(model_dir);
  ASSERT_TRUE(model.ok()) << model.status();
  auto gpu = NewDecodeSession(**model, Device::kCuda);
  if (!gpu.ok()) {
    ASSERT_EQ(gpu.status().code(), absl::StatusCode::kUnavailable) << gpu.status();
    GTEST_SKIP() << gpu.status();
  }
  auto cpu = NewDecodeSession(**model, Device::kCpu);
  ASSERT_TRUE(cpu.ok());
  std::vector<int32_t> prompt;
  for (int i = 0; i < 19; ++i) prompt.push_back((i * 131 + 7) % (*model)->config().vocab_size);
  std::vector<float> lc, lg;
  ASSERT_TRUE((*cpu)->Append(prompt, LogitsMode::kAll, &lc).ok());
  ASSERT_TRUE((*gpu)->Append(prompt, LogitsMode::kAll, &lg).ok());
  float worst = MaxAbsDiff(lc, lg);
  EXPECT_LE(worst, kGpuTolerance) << "prefill";
  for (int step = 0; step < 8; ++step) {
    const int32_t next = ArgMax(absl::MakeConstSpan(lc).last((*model)->config().vocab_size));
    ASSERT_TRUE((*cpu)->Append({&next, 1}, LogitsMode::kLast, &lc).ok());
    ASSERT_TRUE((*gpu)->Append({&next, 1}, LogitsMode::kLast, &lg).ok());
    const float d = MaxAbsDiff(lc, lg);
    EXPECT_LE(d, kGpuTolerance) << "decode step " << step;
    worst = std::max(worst, d);
  }
  std::cout << "[ cuda ] GPU vs CPU logits max abs diff: " << worst << "\n";
}

}  // namespace
}  // namespace mnemo::decoder
