// Integration tests of `mnemo convo ...` against a real mnemod started with
// --assets-dir: append prints the id, --role / --time (Unix ms and RFC
// 3339), list in time order with --page-size / --all and its next-page
// hint, --since / --until / --role selection, search within a run, --json,
// delete-run, and the exit code and message of bad input. Fails without the
// USE-lite assets.
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

class CliConvoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(AssetsDir()) / "use-lite" / "model.json")) {
      GTEST_FAIL() << "USE-lite assets not found (run scripts/fetch_assets)";
    }
    auto server = MnemodProcess::Start({"--assets-dir", AssetsDir()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto dir = testing::MakeTempDir("mnemo-cli-convo");
    ASSERT_TRUE(dir.ok());
    work_dir_ = *dir;
  }
  void TearDown() override {
    if (server_ != nullptr) {
      EXPECT_TRUE(server_->Stop().ok());
    }
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

TEST_F(CliConvoTest, ConvoVerbs) {
  CliResult first = Mnemo({"convo", "append", "--ns", "c", "--run", "r1", "--time",
                           "2026-01-01T10:00:00Z", "I need a vegetarian restaurant in Porto"});
  ASSERT_EQ(first.exit_code, 0) << first;
  const std::string id(absl::StripAsciiWhitespace(first.out));
  EXPECT_EQ(id.rfind("msg_", 0), 0u) << first;
  // 2026-01-01T10:00:00Z = 1767261600000 ms.
  ASSERT_EQ(Mnemo({"convo", "append", "--ns", "c", "--run", "r1", "--role", "assistant",
                   "--time", "1767261660000", "Try Da Terra near the river"})
                .exit_code,
            0);
  CliResult third = Mnemo({"convo", "append", "--ns", "c", "--run", "r1", "--time",
                           "1767261720000", "--metadata", R"({"mood": "happy"})", "--json",
                           "Great, and my sister is allergic to nuts"});
  ASSERT_EQ(third.exit_code, 0) << third;
  json m = ParseJson(third);
  EXPECT_EQ(m["role"], "user");
  EXPECT_EQ(m["time_ms"], 1767261720000);
  EXPECT_EQ(m["metadata"]["mood"], "happy");
  ASSERT_EQ(Mnemo({"convo", "append", "--ns", "c", "--run", "r2", "Book a taxi"}).exit_code, 0);

  CliResult list = Mnemo({"convo", "list", "--ns", "c", "--run", "r1", "--page-size", "2"});
  ASSERT_EQ(list.exit_code, 0) << list;
  EXPECT_THAT(list.out, HasSubstr("2026-01-01T10:00:00.000Z  user       I need a vegetarian"));
  EXPECT_THAT(list.out, HasSubstr("next page: --page-token "));
  CliResult all = Mnemo({"convo", "list", "--ns", "c", "--run", "r1", "--page-size", "2",
                         "--all", "--json"});
  ASSERT_EQ(all.exit_code, 0) << all;
  json messages = ParseJson(all)["messages"];
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0]["id"], id);
  EXPECT_EQ(messages[1]["role"], "assistant");
  EXPECT_EQ(ParseJson(all)["next_page_token"], "");
  CliResult since = Mnemo({"convo", "list", "--ns", "c", "--run", "r1", "--role", "user",
                           "--since", "2026-01-01T10:00:30Z", "--json"});
  ASSERT_EQ(since.exit_code, 0) << since;
  ASSERT_EQ(ParseJson(since)["messages"].size(), 1u);
  EXPECT_EQ(ParseJson(since)["messages"][0]["time_ms"], 1767261720000);

  CliResult search = Mnemo({"convo", "search", "--ns", "c", "--run", "r1",
                            "who has a food allergy", "-k", "1", "--json"});
  ASSERT_EQ(search.exit_code, 0) << search;
  json hits = ParseJson(search)["hits"];
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0]["message"]["content"], "Great, and my sister is allergic to nuts");
  CliResult until = Mnemo({"convo", "search", "--ns", "c", "--run", "r1", "allergic",
                           "--until", "1767261700000", "--json"});
  ASSERT_EQ(until.exit_code, 0) << until;
  for (const json& h : ParseJson(until)["hits"]) {
    EXPECT_LE(h["message"]["time_ms"].get<int64_t>(), 1767261700000);
  }

  CliResult del = Mnemo({"convo", "delete-run", "--ns", "c", "--run", "r1", "--json"});
  ASSERT_EQ(del.exit_code, 0) << del;
  EXPECT_EQ(ParseJson(del)["deleted"], 3);

  // Bad input: exit code 1 and a message naming the problem; nothing stored.
  CliResult role = Mnemo({"convo", "append", "--ns", "c", "--run", "r2", "--role", "robot", "x"});
  EXPECT_EQ(role.exit_code, 1) << role;
  EXPECT_THAT(role.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(role.err, HasSubstr("robot"));
  CliResult time = Mnemo({"convo", "list", "--ns", "c", "--run", "r2", "--since", "yesterday"});
  EXPECT_EQ(time.exit_code, 1) << time;
  EXPECT_THAT(time.err, HasSubstr("--since 'yesterday'"));
  CliResult range = Mnemo({"convo", "list", "--ns", "c", "--run", "r2", "--since", "20",
                           "--until", "10"});
  EXPECT_EQ(range.exit_code, 1) << range;
  EXPECT_THAT(range.err, HasSubstr("ends"));
  CliResult missing = Mnemo({"convo", "list", "--ns", "nope", "--run", "r2"});
  EXPECT_EQ(missing.exit_code, 1) << missing;
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND"));
  CliResult no_run = Mnemo({"convo", "list", "--ns", "c"});
  EXPECT_NE(no_run.exit_code, 0) << no_run;
  CliResult r2 = Mnemo({"convo", "list", "--ns", "c", "--run", "r2", "--json"});
  ASSERT_EQ(r2.exit_code, 0) << r2;
  ASSERT_EQ(ParseJson(r2)["messages"].size(), 1u);
  EXPECT_EQ(ParseJson(r2)["messages"][0]["content"], "Book a taxi");
}

}  // namespace
}  // namespace mnemo
