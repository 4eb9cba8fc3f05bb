// Conversation logs end to end over gRPC (issue 15): a real mnemod with the
// USE-lite assets and the SDK's Convo* calls: append (server and given
// times), list in time order with page tokens, role and time-range
// selection, search by text within a run and time range, delete-run, a
// crash restart keeping every acknowledged message, the log dropped with
// its namespace, and every bad input (no run, unknown role, blank content,
// inverted range, another selection's page token, unknown namespace)
// leaving the log intact. Fails without the assets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mnemo/client.h"
#include "tests/integration/mnemod_process.h"
#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

using ::testing::HasSubstr;

std::string AssetsDir() {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  return (env != nullptr && *env != '\0') ? env : MNEMO_SOURCE_DIR "/.assets";
}

ConvoMessageInput Msg(const std::string& role, const std::string& content,
                      std::optional<int64_t> time_ms = std::nullopt) {
  ConvoMessageInput in;
  in.role = role;
  in.content = content;
  in.time_ms = time_ms;
  return in;
}

class SdkConvoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(std::filesystem::path(AssetsDir()) / "use-lite" / "model.json")) {
      GTEST_FAIL() << "USE-lite assets not found (run scripts/fetch_assets)";
    }
    data_dir_ = ::testing::TempDir() + "/sdk-convo-" + std::to_string(::getpid());
    std::filesystem::remove_all(data_dir_);
    Start();
  }
  void TearDown() override {
    client_.reset();
    if (server_ != nullptr) {
      EXPECT_TRUE(server_->Stop().ok());
    }
    server_.reset();
    std::filesystem::remove_all(data_dir_);
  }
  void Start() {
    auto server = MnemodProcess::Start({"--assets-dir", AssetsDir()}, data_dir_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = ConnectOrDie(server_->target());
    ASSERT_NE(client_, nullptr);
  }
  std::vector<ConvoMessage> ListAll(const ConvoSelection& sel, uint32_t page_size) {
    ConvoListRequest req;
    req.ns = "chat";
    req.selection = sel;
    req.page_size = page_size;
    std::vector<ConvoMessage> out;
    for (int i = 0; i < 100; ++i) {
      auto page = client_->ConvoList(req);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      out.insert(out.end(), page->messages.begin(), page->messages.end());
      if (page->next_page_token.empty()) break;
      req.page_token = page->next_page_token;
    }
    return out;
  }
  static ConvoSelection Run(const std::string& run) {
    ConvoSelection s;
    s.run_id = run;
    return s;
  }

  std::string data_dir_;
  std::unique_ptr<MnemodProcess> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(SdkConvoTest, AppendListSearchDeleteAndRestart) {
  auto first = client_->ConvoAppend(
      "chat", "trip",
      {Msg("user", "Book me a flight to Lisbon in May", 1000),
       Msg("assistant", "Which airport do you leave from?", 2000),
       Msg("user", "Berlin. My dog Pixel travels with me", 3000)});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 3u);
  auto now = client_->ConvoAppend("chat", "trip", {Msg("system", "summary follows")});
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_GT((*now)[0].time_ms, 1'600'000'000'000);  // the server's clock
  ASSERT_TRUE(client_->ConvoAppend("chat", "work", {Msg("user", "flight review at noon", 1500)}).ok());

  std::vector<ConvoMessage> all = ListAll(Run("trip"), 2);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].content, "Book me a flight to Lisbon in May");
  EXPECT_EQ(all[3].id, (*now)[0].id);
  ConvoSelection users = Run("trip");
  users.role = "user";
  users.since_ms = 1500;
  std::vector<ConvoMessage> later_users = ListAll(users, 10);
  ASSERT_EQ(later_users.size(), 1u);
  EXPECT_EQ(later_users[0].time_ms, 3000);

  ConvoSearchRequest q;
  q.ns = "chat";
  q.selection = Run("trip");
  q.query = "what pet comes along";
  q.top_k = 2;
  auto hits = client_->ConvoSearch(q);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_FALSE(hits->empty());
  EXPECT_EQ((*hits)[0].message.content, "Berlin. My dog Pixel travels with me");
  q.query = "flight to Lisbon";
  q.selection.until_ms = 2500;
  q.selection.since_ms = 1001;
  hits = client_->ConvoSearch(q);
  ASSERT_TRUE(hits.ok()) << hits.status();
  for (const ConvoHit& h : *hits) {
    EXPECT_EQ(h.message.time_ms, 2000);  // the only trip message in [1001, 2500]
  }

  // A crash keeps every acknowledged message, and the index selects again.
  server_->Kill();
  Start();
  EXPECT_EQ(ListAll(Run("trip"), 100).size(), 4u);
  q.selection = Run("");
  q.query = "flight review";
  q.top_k = 1;
  hits = client_->ConvoSearch(q);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].message.run_id, "work");

  auto deleted = client_->ConvoDeleteRun("chat", "trip");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 4u);
  EXPECT_TRUE(ListAll(Run("trip"), 10).empty());
  EXPECT_EQ(ListAll(Run("work"), 10).size(), 1u);

  // The log goes with its namespace.
  ASSERT_TRUE(client_->DropNamespace("chat").ok());
  ConvoListRequest gone;
  gone.ns = "chat";
  gone.selection = Run("work");
  EXPECT_EQ(client_->ConvoList(gone).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SdkConvoTest, BadInputGetsAClearStatusAndChangesNothing) {
  ASSERT_TRUE(client_->ConvoAppend("chat", "r", {Msg("user", "kept", 10)}).ok());
  auto no_run = client_->ConvoAppend("chat", "", {Msg("user", "x")});
  EXPECT_EQ(no_run.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_run.status().message(), HasSubstr("run_id"));
  auto role = client_->ConvoAppend("chat", "r", {Msg("user", "fine"), Msg("robot", "x")});
  EXPECT_EQ(role.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(role.status().message(), HasSubstr("robot"));
  EXPECT_EQ(client_->ConvoAppend("chat", "r", {Msg("user", " \n ")}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->ConvoAppend("chat", "r", {}).status().code(),
            absl::StatusCode::kInvalidArgument);

  ConvoListRequest req;
  req.ns = "chat";
  req.selection = Run("r");
  req.selection.since_ms = 20;
  req.selection.until_ms = 10;
  EXPECT_EQ(client_->ConvoList(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.selection = Run("");
  EXPECT_EQ(client_->ConvoList(req).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(client_->ConvoAppend("chat", "r", {Msg("user", "second", 20)}).ok());
  req.selection = Run("r");
  req.page_size = 1;
  auto page = client_->ConvoList(req);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_FALSE(page->next_page_token.empty());
  req.selection.role = "assistant";
  req.page_token = page->next_page_token;
  auto other = client_->ConvoList(req);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(other.status().message(), HasSubstr("another listing"));
  req.ns = "absent";
  req.page_token.clear();
  EXPECT_EQ(client_->ConvoList(req).status().code(), absl::StatusCode::kNotFound);
  ConvoSearchRequest q;
  q.ns = "chat";
  q.selection = Run("r");
  q.query = "  ";
  EXPECT_EQ(client_->ConvoSearch(q).status().code(), absl::StatusCode::kInvalidArgument);

  // Nothing of the refused calls was stored.
  std::vector<ConvoMessage> left = ListAll(Run("r"), 10);
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].content, "kept");
  EXPECT_EQ(left[1].content, "second");
}

}  // namespace
}  // namespace mnemo::testing
