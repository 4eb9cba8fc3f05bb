// Integration tests of `mnemo memory ...` and `mnemo block ...` against a
// real mnemod started with --assets-dir: add prints the id, search within a
// scope, --filter, --json, history, forget, block edits, and the exit code
// and message of bad input. Skips without the USE-lite assets.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
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

class CliMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(AssetsDir()) / "use-lite" / "model.json")) {
      GTEST_FAIL() << "USE-lite assets not found (run scripts/fetch_assets)";
    }
    auto server = MnemodProcess::Start({"--assets-dir", AssetsDir()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto dir = testing::MakeTempDir("mnemo-cli-memory");
    ASSERT_TRUE(dir.ok());
    work_dir_ = *dir;
  }
  void TearDown() override {
    if (server_ != nullptr) EXPECT_TRUE(server_->Stop().ok());
    std::error_code ec;
    if (!work_dir_.empty()) fs::remove_all(work_dir_, ec);
  }
  CliResult Mnemo(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_->target(), "--timeout", "60"});
    return RunMnemo(work_dir_, args);
  }

  std::string work_dir_;
  std::unique_ptr<MnemodProcess> server_;
};

TEST_F(CliMemoryTest, MemoryVerbs) {
  CliResult add = Mnemo({"memory", "add", "--ns", "m", "--user", "alice",
                         "Alice is allergic to peanuts", "--metadata", R"({"category": "health"})"});
  ASSERT_EQ(add.exit_code, 0) << add;
  const std::string id(absl::StripAsciiWhitespace(add.out));
  EXPECT_EQ(id.rfind("mem_", 0), 0u) << add;
  ASSERT_EQ(Mnemo({"memory", "add", "--ns", "m", "--user", "alice", "Alice plays the violin"})
                .exit_code,
            0);
  ASSERT_EQ(Mnemo({"memory", "add", "--ns", "m", "--user", "bob", "Bob is allergic to cats"})
                .exit_code,
            0);

  CliResult search = Mnemo({"memory", "search", "--ns", "m", "--user", "alice",
                            "what is the user allergic to?", "--json"});
  ASSERT_EQ(search.exit_code, 0) << search;
  json hits = ParseJson(search)["hits"];
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0]["memory"]["id"], id);
  for (const json& h : hits) EXPECT_EQ(h["memory"]["user_id"], "alice");

  CliResult filtered = Mnemo({"memory", "search", "--ns", "m", "--user", "alice", "music",
                              "--filter", R"({"category": {"icontains": "HEALTH"}})", "--json"});
  ASSERT_EQ(filtered.exit_code, 0) << filtered;
  ASSERT_EQ(ParseJson(filtered)["hits"].size(), 1u);

  ASSERT_EQ(Mnemo({"memory", "update", "--ns", "m", id, "--text",
                   "Alice is allergic to peanuts and almonds", "--actor", "doctor"})
                .exit_code,
            0);
  CliResult history = Mnemo({"memory", "history", "--ns", "m", id, "--json"});
  ASSERT_EQ(history.exit_code, 0) << history;
  json events = ParseJson(history)["events"];
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1]["event"], "UPDATE");
  EXPECT_EQ(events[1]["actor"], "doctor");

  CliResult list = Mnemo({"memory", "list", "--ns", "m", "--user", "alice", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list;
  EXPECT_EQ(ParseJson(list)["memories"].size(), 2u);

  // Bad input: exit code 1 and the server's message.
  CliResult no_scope = Mnemo({"memory", "search", "--ns", "m", "peanuts"});
  EXPECT_EQ(no_scope.exit_code, 1) << no_scope;
  EXPECT_THAT(no_scope.err, HasSubstr("INVALID_ARGUMENT"));
  CliResult bad_filter = Mnemo({"memory", "search", "--ns", "m", "--user", "alice", "x",
                                "--filter", R"({"a": {"between": 1}})"});
  EXPECT_EQ(bad_filter.exit_code, 1);
  EXPECT_THAT(bad_filter.err, HasSubstr("unknown operator 'between'"));
  CliResult unknown = Mnemo({"memory", "get", "--ns", "m", "mem_00000000000000000000"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("NOT_FOUND"));

  CliResult forget = Mnemo({"memory", "forget", "--ns", "m", "--user", "alice", "--json"});
  ASSERT_EQ(forget.exit_code, 0) << forget;
  EXPECT_EQ(ParseJson(forget)["deleted"], 2);
}

TEST_F(CliMemoryTest, BlockVerbs) {
  ASSERT_EQ(Mnemo({"block", "set", "--ns", "m", "--agent", "bot", "--label", "persona",
                   "I am Sam.", "--limit", "60"})
                .exit_code,
            0);
  ASSERT_EQ(Mnemo({"block", "append", "--ns", "m", "--agent", "bot", "--label", "persona",
                   "I like tea."})
                .exit_code,
            0);
  CliResult replaced = Mnemo({"block", "replace", "--ns", "m", "--agent", "bot", "--label",
                              "persona", "--old", "tea", "coffee"});
  ASSERT_EQ(replaced.exit_code, 0) << replaced;
  EXPECT_EQ(replaced.out, "I am Sam.\nI like coffee.\n");
  CliResult twice = Mnemo({"block", "replace", "--ns", "m", "--agent", "bot", "--label",
                           "persona", "--old", "I", "We"});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_THAT(twice.err, HasSubstr("occurs 2 times"));
  CliResult over = Mnemo({"block", "append", "--ns", "m", "--agent", "bot", "--label", "persona",
                          "I also collect very many antique clocks."});
  EXPECT_EQ(over.exit_code, 1);
  EXPECT_THAT(over.err, HasSubstr("limit is 60"));
  CliResult got =
      Mnemo({"block", "get", "--ns", "m", "--agent", "bot", "--label", "persona", "--json"});
  ASSERT_EQ(got.exit_code, 0) << got;
  EXPECT_EQ(ParseJson(got)["value"], "I am Sam.\nI like coffee.");
}

}  // namespace
}  // namespace mnemo
