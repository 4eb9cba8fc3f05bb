// Runs the real mnemo-decode binary (from $MNEMO_BIN_DIR): help, usage and
// input errors, and, with the reference model, generate / prefill /
// attn-stats outputs checked against the library in this process.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "decoder/continuation_score.h"
#include "decoder/injection_prompt.h"
#include "decoder/model.h"
#include "decoder/safetensors.h"
#include "decoder/session.h"
#include "decoder/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/decoder/test_model.h"

extern char** environ;

namespace mnemo::decoder {
namespace {

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

std::ostream& operator<<(std::ostream& os, const CliRun& r) {
  return os << "exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string BinDir() {
  const char* env = std::getenv("MNEMO_BIN_DIR");
  return env != nullptr && *env ? env : MNEMO_TEST_BIN_DIR;
}

CliRun RunDecode(const std::string& work, std::vector<std::string> args,
              const std::string& stdin_path = "/dev/null") {
  const std::string binary = BinDir() + "/mnemo-decode";
  args.insert(args.begin(), binary);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string out = work + "/stdout", err = work + "/stderr";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CliRun r;
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, binary.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r.err = absl::StrCat("posix_spawn ", binary, ": ", std::strerror(rc));
    return r;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

class DecodeCliTest : public ::testing::Test {
 protected:
  testing::TempDir work_;
};

TEST_F(DecodeCliTest, HelpListsTheVerbs) {
  CliRun r = RunDecode(work_.path(), {"--help"});
  ASSERT_EQ(r.exit_code, 0) << r;
  for (const char* verb : {"generate", "score", "prefill", "attn-stats"}) {
    EXPECT_NE(r.out.find(verb), std::string::npos) << verb << "\n" << r;
  }
  for (const char* verb : {"generate", "score", "prefill", "attn-stats"}) {
    CliRun v = RunDecode(work_.path(), {verb, "--help"});
    EXPECT_EQ(v.exit_code, 0) << v;
    EXPECT_NE(v.out.find("--model"), std::string::npos) << v;
  }
}

TEST_F(DecodeCliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunDecode(work_.path(), {}).exit_code, 2);
  EXPECT_EQ(RunDecode(work_.path(), {"generate", "--model", "x", "p", "--bogus"}).exit_code, 2);
  EXPECT_EQ(RunDecode(work_.path(), {"generate", "p"}).exit_code, 2);  // no --model
  EXPECT_EQ(RunDecode(work_.path(), {"generate", "--model", "x", "p", "--top-p", "1.5"}).exit_code,
            2);
  EXPECT_EQ(RunDecode(work_.path(), {"generate", "--model", "x", "p", "--device", "tpu"}).exit_code,
            2);
  EXPECT_EQ(RunDecode(work_.path(), {"prefill", "--model", "x", "-"}).exit_code, 2);  // no --out
}

TEST_F(DecodeCliTest, MissingModelDirectoryIsAClearError) {
  CliRun r = RunDecode(work_.path(), {"generate", "--model", work_.path() + "/none", "hello"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("error: NOT_FOUND"), std::string::npos) << r;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r;
}

TEST_F(DecodeCliTest, MissingInputFileIsAClearError) {
  CliRun r = RunDecode(work_.path(), {"prefill", "--model", testing::ReferenceModelDir(),
                                   work_.path() + "/no.txt", "--out", work_.path() + "/o"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r;
}

class DecodeCliModelTest : public DecodeCliTest {
 protected:
  void SetUp() override {
    if (!testing::ReferenceModelPresent()) {
      GTEST_FAIL() << "reference model directory " << testing::ReferenceModelDir() << " is absent";
    }
    dir_ = testing::ReferenceModelDir();
    auto m = Model::Load(dir_);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = *std::move(m);
    auto t = LoadSentencePieceTokenizer(dir_ + "/" + model_->config().tokenizer);
    ASSERT_TRUE(t.ok()) << t.status();
    tok_ = *std::move(t);
  }
  std::string dir_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(DecodeCliModelTest, EmptyTextIsRejected) {
  CliRun g = RunDecode(work_.path(), {"generate", "--model", dir_, "  "});
  EXPECT_EQ(g.exit_code, 1) << g;
  EXPECT_NE(g.err.find("INVALID_ARGUMENT"), std::string::npos) << g;
  std::ofstream(work_.path() + "/empty.txt") << "\n";
  CliRun p = RunDecode(work_.path(), {"prefill", "--model", dir_, work_.path() + "/empty.txt",
                                   "--out", work_.path() + "/o"});
  EXPECT_EQ(p.exit_code, 1) << p;
  EXPECT_NE(p.err.find("empty"), std::string::npos) << p;
  CliRun s = RunDecode(work_.path(), {"prefill", "--model", dir_, "-", "--out", work_.path() + "/o"});
  EXPECT_EQ(s.exit_code, 1) << s;  // empty stdin
}

TEST_F(DecodeCliModelTest, GreedyGenerateMatchesTheLibrary) {
  const std::string prompt = "Call me Ishmael. Some years ago";
  CliRun r = RunDecode(work_.path(), {"generate", "--model", dir_, prompt, "--max-tokens", "12",
                                   "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  auto ids = tok_->Encode(prompt);
  ASSERT_TRUE(ids.ok());
  std::vector<int32_t> p = {model_->config().bos_id};
  p.insert(p.end(), ids->begin(), ids->end());
  EXPECT_EQ(j["prompt_tokens"].get<std::vector<int32_t>>(), p);
  auto session = NewDecodeSession(*model_, Device::kCpu);
  ASSERT_TRUE(session.ok());
  GenerateOptions o;
  o.max_tokens = 12;
  o.eos_id = model_->config().eos_id;
  auto want = Generate(session->get(), p, o);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), *want);
  EXPECT_EQ(j["fingerprint"], model_->fingerprint().Canonical());
  // Plain output is the decoded text.
  CliRun plain = RunDecode(work_.path(), {"generate", "--model", dir_, prompt, "--max-tokens", "12"});
  ASSERT_EQ(plain.exit_code, 0) << plain;
  EXPECT_EQ(plain.out, j["text"].get<std::string>() + "\n");
}

// Without a server: --inject none is the plain prompt, and score's
// perplexity is the library's (decoder/continuation_score.h).
TEST_F(DecodeCliModelTest, InjectNoneIsThePlainPromptAndScoreMatchesTheLibrary) {
  const std::string prompt = "Call me Ishmael. Some years ago";
  CliRun plain = RunDecode(work_.path(), {"generate", "--model", dir_, prompt, "--max-tokens", "8",
                                          "--json"});
  CliRun none = RunDecode(work_.path(), {"generate", "--model", dir_, prompt, "--max-tokens", "8",
                                         "--json", "--inject", "none"});
  ASSERT_EQ(plain.exit_code, 0) << plain;
  ASSERT_EQ(none.exit_code, 0) << none;
  const nlohmann::json a = nlohmann::json::parse(plain.out), b = nlohmann::json::parse(none.out);
  EXPECT_EQ(a["prompt_tokens"], b["prompt_tokens"]);
  EXPECT_EQ(a["tokens"], b["tokens"]);
  EXPECT_EQ(b["injected_rows"], 0);

  const std::string text = " I thought I would sail about a little";
  std::ofstream(work_.path() + "/t.txt") << text;
  CliRun score = RunDecode(work_.path(), {"score", "--model", dir_, "--inject", "none", "--query",
                                          prompt, "--text", work_.path() + "/t.txt", "--json"});
  ASSERT_EQ(score.exit_code, 0) << score;
  const nlohmann::json j = nlohmann::json::parse(score.out);
  auto query = tok_->Encode(prompt);
  auto target = tok_->Encode(text);
  ASSERT_TRUE(query.ok() && target.ok());
  auto p = ItemPrompt(model_->config(), {}, std::vector<int32_t>(query->begin(), query->end()));
  ASSERT_TRUE(p.ok()) << p.status();
  CpuForward forward(*model_);
  KvCache cache(model_->config(), 128);
  auto want = ScoreContinuation(&forward, &cache, *p,
                                std::vector<int32_t>(target->begin(), target->end()));
  ASSERT_TRUE(want.ok()) << want.status();
  EXPECT_EQ(j["tokens"].get<int>(), want->tokens);
  EXPECT_NEAR(j["perplexity"].get<double>(), want->perplexity(), 1e-6 * want->perplexity());
  EXPECT_EQ(j["mode"], "none");
  CliRun bare = RunDecode(work_.path(), {"score", "--model", dir_, "--inject", "none", "--query",
                                         prompt, "--text", work_.path() + "/t.txt"});
  ASSERT_EQ(bare.exit_code, 0) << bare;
  EXPECT_NEAR(std::stod(bare.out), want->perplexity(), 1e-4 * want->perplexity());

  // Retrieval modes need a server; score needs --inject and --query.
  CliRun no_server = RunDecode(work_.path(), {"generate", "--model", dir_, prompt, "--inject",
                                              "memory"});
  EXPECT_EQ(no_server.exit_code, 1) << no_server;
  EXPECT_NE(no_server.err.find("--server"), std::string::npos) << no_server;
  EXPECT_EQ(RunDecode(work_.path(), {"score", "--model", dir_, "--inject", "none", "--text",
                                     work_.path() + "/t.txt"})
                .exit_code,
            2);
  EXPECT_EQ(RunDecode(work_.path(), {"score", "--model", dir_, "--query", "q", "--text",
                                     work_.path() + "/t.txt"})
                .exit_code,
            2);
  std::ofstream(work_.path() + "/blank.txt") << " \n";
  CliRun blank = RunDecode(work_.path(), {"score", "--model", dir_, "--inject", "none", "--query",
                                          prompt, "--text", work_.path() + "/blank.txt"});
  EXPECT_EQ(blank.exit_code, 1) << blank;
  EXPECT_NE(blank.err.find("INVALID_ARGUMENT"), std::string::npos) << blank;
}

TEST_F(DecodeCliModelTest, TokenizerOtherThanTheConfigsIsRefused) {
  // A copy of the model whose tokenizer file differs by one appended byte
  // from the one config.json's tokenizer_sha256 names.
  const std::string copy = work_.path() + "/model-copy";
  std::filesystem::create_directories(copy);
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    std::filesystem::copy_file(entry.path(), copy + "/" + entry.path().filename().string());
  }
  CliRun ok = RunDecode(work_.path(), {"generate", "--model", copy, "Hello", "--max-tokens", "2"});
  ASSERT_EQ(ok.exit_code, 0) << ok;
  std::ofstream(copy + "/" + model_->config().tokenizer, std::ios::app | std::ios::binary) << '\n';
  CliRun r = RunDecode(work_.path(), {"generate", "--model", copy, "Hello", "--max-tokens", "2"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("FAILED_PRECONDITION"), std::string::npos) << r;
  EXPECT_NE(r.err.find("tokenizer_sha256"), std::string::npos) << r;
}

TEST_F(DecodeCliModelTest, SampledGenerateIsReproducibleWithASeed) {
  auto run = [&](const std::string& seed) {
    return RunDecode(work_.path(), {"generate", "--model", dir_, "Dear friend,", "--max-tokens",
                                    "24", "--temperature", "1.0", "--top-k", "50", "--top-p",
                                    "0.95", "--seed", seed, "--json"});
  };
  CliRun a = run("7"), b = run("7");
  ASSERT_EQ(a.exit_code, 0) << a;
  EXPECT_EQ(a.out, b.out);
}

TEST_F(DecodeCliModelTest, PrefillWritesChunksWithKvAndFingerprint) {
  const std::string text =
      "The State of the Union is strong. We will build roads, bridges and schools, and we "
      "will defend our liberty. Call me Ishmael. Some years ago, never mind how long "
      "precisely, having little or no money in my purse, I thought I would sail about.";
  std::ofstream(work_.path() + "/in.txt") << text;
  const std::string out = work_.path() + "/kv";
  CliRun r = RunDecode(work_.path(), {"prefill", "--model", dir_, "-", "--out", out,
                                   "--chunk-tokens", "16"},
                    work_.path() + "/in.txt");
  ASSERT_EQ(r.exit_code, 0) << r;
  const nlohmann::json man = nlohmann::json::parse(Slurp(out + "/manifest.json"));
  EXPECT_EQ(man["fingerprint"], model_->fingerprint().Canonical());
  EXPECT_EQ(man["fingerprint_hash"], model_->fingerprint().HashHex());
  auto ids = tok_->Encode(text);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(man["text_tokens"], ids->size());
  ASSERT_EQ(man["chunks"].size(), (ids->size() + 15) / 16);
  const ModelConfig& c = model_->config();
  std::vector<int32_t> all;
  CpuForward forward(*model_);
  for (const auto& chunk : man["chunks"]) {
    auto f = SafetensorsFile::Open(out + "/" + chunk["file"].get<std::string>());
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->metadata().at("fingerprint"), model_->fingerprint().Canonical());
    auto tokens = (*f)->I32("tokens");
    ASSERT_TRUE(tokens.ok());
    const int64_t T = static_cast<int64_t>(tokens->size());
    EXPECT_EQ(chunk["n_tokens"], T);
    all.insert(all.end(), tokens->begin(), tokens->end());
    // Each chunk on its own from position 0: the same K/V as this process.
    KvCache cache(c, static_cast<int>(T));
    ForwardTrace trace;
    trace.want_kv = true;
    ASSERT_TRUE(forward.Forward(*tokens, &cache, LogitsMode::kNone, nullptr, &trace).ok());
    for (int l = 0; l < c.n_layers; ++l) {
      const std::vector<int64_t> shape = {c.n_kv_heads, T, c.head_dim};
      auto kpre = (*f)->F32(absl::StrCat("layer", l, ".k_pre_rope"), shape);
      auto k = (*f)->F32(absl::StrCat("layer", l, ".k"), shape);
      auto v = (*f)->F32(absl::StrCat("layer", l, ".v"), shape);
      ASSERT_TRUE(kpre.ok() && k.ok() && v.ok()) << kpre.status() << k.status() << v.status();
      EXPECT_EQ(std::vector<float>(k->begin(), k->end()), trace.k[l]);
      EXPECT_EQ(std::vector<float>(v->begin(), v->end()), trace.v[l]);
      // K after RoPE is K before RoPE rotated to positions 0..T-1.
      std::vector<float> rotated;
      std::vector<double> cs, sn;
      RopeTables(c.head_dim, c.rope_theta, 0, static_cast<int>(T), &cs, &sn);
      for (int g = 0; g < c.n_kv_heads; ++g) {
        std::vector<float> head(kpre->begin() + g * T * c.head_dim,
                                kpre->begin() + (g + 1) * T * c.head_dim);
        ApplyRope(head.data(), static_cast<int>(T), 1, c.head_dim, cs, sn);
        rotated.insert(rotated.end(), head.begin(), head.end());
      }
      for (size_t i = 0; i < rotated.size(); ++i) ASSERT_NEAR(rotated[i], (*k)[i], 1e-5f);
    }
  }
  EXPECT_EQ(all, std::vector<int32_t>(ids->begin(), ids->end()));
}

TEST_F(DecodeCliModelTest, AttnStatsWritesQueriesAndCausalWeights) {
  const std::string out = work_.path() + "/attn.safetensors";
  CliRun r = RunDecode(work_.path(), {"attn-stats", "--model", dir_, "We will build roads", "--out",
                                   out});
  ASSERT_EQ(r.exit_code, 0) << r;
  auto f = SafetensorsFile::Open(out);
  ASSERT_TRUE(f.ok()) << f.status();
  auto tokens = (*f)->I32("tokens");
  ASSERT_TRUE(tokens.ok());
  const int64_t T = static_cast<int64_t>(tokens->size());
  const ModelConfig& c = model_->config();
  for (int l = 0; l < c.n_layers; ++l) {
    EXPECT_TRUE((*f)->F32(absl::StrCat("layer", l, ".q"), {c.n_heads, T, c.head_dim}).ok());
    auto a = (*f)->F32(absl::StrCat("layer", l, ".attn"), {c.n_heads, T, T});
    ASSERT_TRUE(a.ok()) << a.status();
    for (int64_t h = 0; h < c.n_heads; ++h) {
      for (int64_t i = 0; i < T; ++i) {
        double sum = 0;
        for (int64_t j = 0; j < T; ++j) {
          const float p = (*a)[(h * T + i) * T + j];
          if (j > i) {
            EXPECT_EQ(p, 0.0f);
          }
          sum += p;
        }
        EXPECT_NEAR(sum, 1.0, 1e-4);
      }
    }
  }
}

}  // namespace
}  // namespace mnemo::decoder
