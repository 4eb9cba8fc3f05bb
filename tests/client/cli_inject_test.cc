// Integration tests of `mnemo inject register|info|recall` against a real
// mnemod started with --assets-dir: the committed injection model
// decoder/models/mnemo-ref-4m-inject registered on an ingested namespace,
// recall in both modes (text and --json), and the errors of bad input.
// Needs the USE-lite assets (fails without them, saying so).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/client/cli_runner.h"
#include "tests/integration/mnemod_process.h"

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using ::nlohmann::json;
using ::testing::HasSubstr;
using testing::MnemodProcess;

std::string AssetsDir() {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  return (env != nullptr && *env != '\0') ? env : MNEMO_SOURCE_DIR "/.assets";
}

std::string ModelDir() { return MNEMO_SOURCE_DIR "/decoder/models/mnemo-ref-4m-inject"; }

class CliInjectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(fs::path(AssetsDir()) / "use-lite" / "model.json")) return;
    auto server = MnemodProcess::Start({"--assets-dir", AssetsDir()});
    if (server.ok()) server_ = server->release();
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_TRUE(server_->Stop().ok()) << server_->LogTail();
      delete server_;
      server_ = nullptr;
    }
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr) << "mnemod did not start or the USE-lite assets are missing "
                                   "(run scripts/fetch_encoder, or set MNEMO_ASSETS_DIR)";
    absl::StatusOr<std::string> dir = testing::MakeTempDir("mnemo-cli-inject");
    ASSERT_TRUE(dir.ok()) << dir.status();
    work_dir_ = *dir;
    ns_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    CliResult r = Mnemo({"ns", "create", ns_, "--encoder", "use-lite"});
    ASSERT_EQ(r.exit_code, 0) << r;
    const std::string jsonl = absl::StrCat(work_dir_, "/docs.jsonl");
    std::ofstream(jsonl)
        << R"({"id": "quokka", "text": "The quokka is a small marsupial that lives on Rottnest Island."})"
        << "\n"
        << R"({"id": "volcano", "text": "Volcanic eruptions inject sulfur dioxide into the stratosphere."})"
        << "\n";
    r = Mnemo({"upsert", "--ns", ns_, jsonl});
    ASSERT_EQ(r.exit_code, 0) << r;
  }

  void TearDown() override {
    std::error_code ignored;
    if (!work_dir_.empty()) fs::remove_all(work_dir_, ignored);
  }

  CliResult Mnemo(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_->target(), "--timeout", "120"});
    return RunMnemo(work_dir_, args);
  }

  static MnemodProcess* server_;
  std::string work_dir_;
  std::string ns_;
};

MnemodProcess* CliInjectTest::server_ = nullptr;

TEST_F(CliInjectTest, RegisterInfoAndRecallInBothModes) {
  CliResult r = Mnemo({"inject", "register", "--ns", ns_, "--dir", ModelDir()});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("2 chunks backfilled"));

  r = Mnemo({"inject", "info", "--ns", ns_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json info = ParseJson(r);
  EXPECT_EQ(info["chunks"], 2);
  EXPECT_EQ(info["lineage"]["encoder"], "use-lite");
  EXPECT_EQ(info["memory_code_bytes_per_chunk"],
            info["memory_tokens"].get<int>() * info["pq_m"].get<int>());

  r = Mnemo({"inject", "recall", "--ns", ns_, "--mode", "memory", "-k", "2", "--with-tokens",
             "--json", "a marsupial on an island"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json hits = ParseJson(r)["hits"];
  ASSERT_EQ(hits.size(), 2u) << r.out;
  EXPECT_EQ(hits[0]["chunk_id"], "quokka");
  EXPECT_EQ(hits[0]["m"], info["memory_tokens"]);
  EXPECT_EQ(hits[0]["dim"], info["decoder_dim"]);
  EXPECT_EQ(hits[0]["tokens"].size(),
            info["memory_tokens"].get<size_t>() * info["decoder_dim"].get<size_t>());

  r = Mnemo({"inject", "recall", "--ns", ns_, "--mode", "xrag", "-k", "1", "--rerank", "2",
             "volcanic ash"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("rerank"));
  EXPECT_THAT(r.out, HasSubstr("[1 x 256]"));
}

TEST_F(CliInjectTest, BadInputExitsWithTheStatus) {
  CliResult r = Mnemo({"inject", "recall", "--ns", ns_, "-k", "1", "anything"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION"));
  r = Mnemo({"inject", "register", "--ns", "no-such-ns", "--dir", ModelDir()});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
  r = Mnemo({"inject", "register", "--ns", ns_, "--dir", work_dir_});  // no config.json
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("config.json"));
  r = Mnemo({"inject", "register", "--ns", ns_, "--dir", ModelDir()});
  ASSERT_EQ(r.exit_code, 0) << r;
  r = Mnemo({"inject", "recall", "--ns", ns_, "-k", "0", "anything"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
  r = Mnemo({"inject", "recall", "--ns", ns_, "--mode", "kv", "anything"});
  EXPECT_EQ(r.exit_code, 2) << r;  // usage error
  r = Mnemo({"inject", "info", "--ns", ns_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ParseJson(r)["chunks"], 2);
}

}  // namespace
}  // namespace mnemo
