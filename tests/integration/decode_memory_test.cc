// `mnemo-decode generate --memory` against a real mnemod, as a user runs
// it: a document prefilled by `mnemo-decode prefill`, uploaded with
// `mnemo kv register` and `mnemo kv put` (the server builds the key
// indexes), then the same prompt answered with --attention full (GetKv),
// retrieval (Attend pushdown) and topk. With the whole budget, retrieval and
// topk must give exactly full attention's tokens; with the default budget
// they must read a small share of the keys. Unknown memory is an error.
//
// Fails when the committed model or a binary is absent.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "mnemo/client.h"
#include "nlohmann/json.hpp"
#include "tests/integration/mnemod_process.h"
#include "tests/integration/shell_run.h"

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr char kModelDir[] = MNEMO_SOURCE_DIR "/decoder/models/mnemo-ref-4m";
constexpr char kDocument[] =
    "Fellow citizens of the Senate and of the House of Representatives: the year that has "
    "passed brought peace to our borders and work to our people. The revenue of the last "
    "session exceeded the estimates, and the debt was reduced by two millions of dollars. "
    "The whale was seen at dawn off the starboard bow, and the captain called all hands to the "
    "boats; the sea was calm and the sky was grey. The Congress shall have power to lay and "
    "collect taxes, duties, imposts and excises, to pay the debts and provide for the common "
    "defence and general welfare of the United States.";
constexpr char kPrompt[] = "The Congress and the whale";

using testing::Shell;
using testing::ShellRun;

class DecodeMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string bin = testing::BinDir();
    decode_ = bin + "/mnemo-decode";
    cli_ = bin + "/mnemo";
    ASSERT_TRUE(fs::exists(fs::path(kModelDir) / "config.json")) << "needs " << kModelDir;
    ASSERT_TRUE(fs::exists(decode_) && fs::exists(cli_)) << "needs " << decode_ << " and " << cli_;
    auto dir = testing::MakeTempDir("mnemo-decode-memory");
    ASSERT_TRUE(dir.ok());
    dir_ = *dir;
    std::ofstream(dir_ + "/doc.txt") << kDocument;
    auto server = testing::MnemodProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    server_flag_ = " --server " + server_->target();

    // Chunks as rows of a namespace (vectors only: no encoder needed).
    ShellRun prefill = Shell(absl::StrCat(decode_, " prefill --model ", kModelDir, " ", dir_,
                                     "/doc.txt --out ", dir_, "/doc --chunk-tokens 16"));
    ASSERT_EQ(prefill.exit_code, 0) << prefill.out;
    std::ifstream in(dir_ + "/doc/manifest.json");
    n_chunks_ = json::parse(in)["chunks"].size();
    ASSERT_GE(n_chunks_, 5u);
    auto client = Client::Connect(server_->target());
    ASSERT_TRUE(client.ok());
    NamespaceConfig ns;
    ns.name = "doc";
    ns.dim = 2;
    ASSERT_TRUE((*client)->CreateNamespace(ns).ok());
    std::vector<Chunk> rows;
    for (size_t i = 0; i < n_chunks_; ++i) {
      Chunk row;
      row.id = absl::StrCat("d#", i);
      row.text = "chunk";
      row.vector = {1.0f, static_cast<float>(i)};
      rows.push_back(row);
      memory_ += absl::StrCat(i == 0 ? "" : ",", row.id);
    }
    ASSERT_TRUE((*client)->Upsert("doc", {}, rows).ok());
    ShellRun reg = Shell(absl::StrCat(cli_, " kv register --ns doc --model-dir ", kModelDir,
                                 " --codec fp32", server_flag_));
    ASSERT_EQ(reg.exit_code, 0) << reg.out;
    ShellRun put = Shell(absl::StrCat(cli_, " kv put --ns doc --from ", dir_, "/doc --id-prefix d#",
                                 server_flag_));
    ASSERT_EQ(put.exit_code, 0) << put.out;
  }

  void TearDown() override {
    if (server_) EXPECT_TRUE(server_->Stop().ok()) << server_->LogTail();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  json Generate(const std::string& flags) {
    ShellRun r = Shell(absl::StrCat(decode_, " generate --model ", kModelDir, server_flag_,
                               " --ns doc --memory '", memory_, "' --max-tokens 12 --json ",
                               flags, " '", kPrompt, "'"));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << r.out;
    return j;
  }

  std::string decode_, cli_, dir_, server_flag_, memory_;
  size_t n_chunks_ = 0;
  std::unique_ptr<testing::MnemodProcess> server_;
};

TEST_F(DecodeMemoryTest, RetrievalAndTopKAtTheWholeBudgetAnswerAsFullAttention) {
  const json full = Generate("--attention full");
  ASSERT_TRUE(full.contains("tokens"));
  ASSERT_EQ(full["tokens"].size(), 12u);
  EXPECT_EQ(full["keys_read_fraction"].get<double>(), 1.0);
  EXPECT_EQ(full["prompt_position"].get<int64_t>(), full["memory_tokens"].get<int64_t>() + 1);

  const json whole = Generate("--attention retrieval --budget 1 --estimated 0");
  EXPECT_EQ(whole["tokens"], full["tokens"]) << whole.dump();
  EXPECT_EQ(whole["keys_read_fraction"].get<double>(), 1.0);
  EXPECT_GT(whole["attend_calls"].get<int>(), 0);

  const json top = Generate("--attention topk --budget 1");
  EXPECT_EQ(top["tokens"], full["tokens"]) << top.dump();

  const json small = Generate("--attention retrieval");
  ASSERT_EQ(small["tokens"].size(), 12u);
  EXPECT_GT(small["keys_read_fraction"].get<double>(), 0.0);
  EXPECT_LT(small["keys_read_fraction"].get<double>(), 0.5);
  EXPECT_EQ(small["step_ms"].size(), 12u);
}

TEST_F(DecodeMemoryTest, UnknownMemoryIsAnError) {
  ShellRun r = Shell(absl::StrCat(decode_, " generate --model ", kModelDir, server_flag_,
                             " --ns doc --memory d#0,nope --attention retrieval 'Hello'"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("NOT_FOUND"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nope"), std::string::npos) << r.out;
  ShellRun no_server = Shell(absl::StrCat(decode_, " generate --model ", kModelDir,
                                     " --memory d#0 'Hello'"));
  EXPECT_EQ(no_server.exit_code, 1) << no_server.out;
  EXPECT_NE(no_server.out.find("--server"), std::string::npos) << no_server.out;
}

}  // namespace
}  // namespace mnemo
