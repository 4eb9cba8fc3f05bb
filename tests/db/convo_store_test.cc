// Conversation logs in the store (db/convo.h): append with server and given
// times, listing a run in time order with page tokens bound to their
// selection, role and time-range selection, hybrid search by text inside a
// run and time range, isolation from memories, delete-run, reopen, drop
// with the namespace, backups, and every bad input. Needs the USE-lite
// assets.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "db/convo.h"
#include "db/memory.h"
#include "db/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/db/test_util.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string AssetsDir() {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  return (env != nullptr && *env != '\0') ? env : MNEMO_SOURCE_DIR "/.assets";
}

MessageInput Msg(const std::string& role, const std::string& content,
                 std::optional<int64_t> time_ms = std::nullopt, const std::string& meta = "") {
  MessageInput in;
  in.role = role;
  in.content = content;
  in.time_ms = time_ms;
  in.metadata_json = meta;
  return in;
}

class ConvoStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(AssetsDir()) / "use-lite" / "model.json")) {
      GTEST_FAIL() << "USE-lite assets not found (run scripts/fetch_assets)";
    }
    dir_ = test::MakeTempDir("convo-store");
    options_.encoder_dir = AssetsDir();
    options_.memory_expiry_interval_ms = 0;
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  void Open() {
    auto store = Store::Open(options_, dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  ConvoStore& convo() { return store_->conversations(); }

  std::vector<Message> Append(const std::string& run, const std::vector<MessageInput>& in) {
    auto r = convo().Append("chat", run, in);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<Message>();
  }
  // Every message of the selection, paging `page` at a time.
  std::vector<Message> ListAll(const MessageSelection& sel, uint32_t page, int* pages = nullptr) {
    std::vector<Message> out;
    MessageListOptions o;
    o.selection = sel;
    o.page_size = page;
    for (int n = 0; n < 100; ++n) {
      auto p = convo().List("chat", o);
      EXPECT_TRUE(p.ok()) << p.status();
      if (!p.ok()) break;
      out.insert(out.end(), p->messages.begin(), p->messages.end());
      if (pages != nullptr) *pages = n + 1;
      if (p->next_page_token.empty()) break;
      o.page_token = p->next_page_token;
    }
    return out;
  }
  std::vector<MessageHit> Find(const std::string& run, const std::string& query,
                               std::optional<int64_t> since = std::nullopt,
                               std::optional<int64_t> until = std::nullopt) {
    MessageSearchOptions o;
    o.selection.run_id = run;
    o.selection.since_ms = since;
    o.selection.until_ms = until;
    o.query = query;
    o.top_k = 3;
    auto r = convo().Search("chat", o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<MessageHit>();
  }
  static MessageSelection Run(const std::string& run) {
    MessageSelection s;
    s.run_id = run;
    return s;
  }

  std::string dir_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
};

TEST_F(ConvoStoreTest, AppendSetsIdsAndServerTime) {
  const int64_t before = absl::ToUnixMillis(absl::Now());
  std::vector<Message> got = Append(
      "r1", {Msg("user", "hello there", std::nullopt, R"({"lang":"en"})"),
             Msg("assistant", "hi, how can I help?", 1234)});
  const int64_t after = absl::ToUnixMillis(absl::Now());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_THAT(got[0].id, ::testing::StartsWith("msg_"));
  EXPECT_LT(got[0].id, got[1].id);
  EXPECT_GE(got[0].time_ms, before);
  EXPECT_LE(got[0].time_ms, after);
  EXPECT_EQ(got[1].time_ms, 1234);
  EXPECT_EQ(got[0].run_id, "r1");
  EXPECT_EQ(got[0].metadata_json, R"({"lang":"en"})");
  std::vector<Message> listed = ListAll(Run("r1"), 10);
  ASSERT_EQ(listed.size(), 2u);
  // Time order: the message given time 1234 comes first.
  EXPECT_EQ(listed[0].id, got[1].id);
  EXPECT_EQ(listed[0].role, "assistant");
  EXPECT_EQ(listed[1].content, "hello there");
  EXPECT_EQ(listed[1].metadata_json, R"({"lang":"en"})");
}

TEST_F(ConvoStoreTest, ListPagesInTimeOrderWithTokensBoundToTheSelection) {
  std::vector<MessageInput> in;
  for (int i = 0; i < 25; ++i) {
    // Times out of order, with ties (two messages per ms), roles alternating.
    in.push_back(Msg(i % 2 == 0 ? "user" : "assistant", "message " + std::to_string(i),
                     1000 + (24 - i) / 2));
  }
  std::vector<Message> appended = Append("r", in);
  Append("other", {Msg("user", "not in run r", 1005)});
  int pages = 0;
  std::vector<Message> all = ListAll(Run("r"), 4, &pages);
  ASSERT_EQ(all.size(), 25u);
  EXPECT_EQ(pages, 7);
  for (size_t i = 1; i < all.size(); ++i) {
    ASSERT_LE(all[i - 1].time_ms, all[i].time_ms);
    // Within one ms, append order.
    if (all[i - 1].time_ms == all[i].time_ms) {
      EXPECT_LT(all[i - 1].id, all[i].id);
    }
    EXPECT_EQ(all[i].run_id, "r");
  }
  // Role and time range select, on every page.
  MessageSelection users = Run("r");
  users.role = "user";
  users.since_ms = 1003;
  users.until_ms = 1008;
  std::vector<Message> some = ListAll(users, 2);
  ASSERT_FALSE(some.empty());
  size_t expect = 0;
  for (const Message& m : appended) {
    if (m.role == "user" && m.time_ms >= 1003 && m.time_ms <= 1008) ++expect;
  }
  EXPECT_EQ(some.size(), expect);
  for (const Message& m : some) {
    EXPECT_EQ(m.role, "user");
    EXPECT_GE(m.time_ms, 1003);
    EXPECT_LE(m.time_ms, 1008);
  }
  // A token of another selection, and a malformed one.
  MessageListOptions o;
  o.selection = Run("r");
  o.page_size = 4;
  auto first = convo().List("chat", o);
  ASSERT_TRUE(first.ok());
  MessageListOptions other = o;
  other.selection.role = "user";
  other.page_token = first->next_page_token;
  auto bad = convo().List("chat", other);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("another listing"));
  other.page_token = "garbage";
  EXPECT_EQ(convo().List("chat", other).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ConvoStoreTest, SearchFindsByTextWithinRunAndTimeRange) {
  Append("trip", {Msg("user", "I want to book a flight to Lisbon in May", 100),
                  Msg("assistant", "Sure, which airport do you fly from?", 200),
                  Msg("user", "My cat is called Miso and likes tuna", 300),
                  Msg("user", "Also find me a hotel near the beach", 400)});
  Append("work", {Msg("user", "Schedule a flight review meeting", 150)});
  std::vector<MessageHit> hits = Find("trip", "flight to Lisbon");
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0].message.content, "I want to book a flight to Lisbon in May");
  EXPECT_GT(hits[0].similarity, 0.3f);
  for (const MessageHit& h : hits) EXPECT_EQ(h.message.run_id, "trip");
  // The time range excludes the best match.
  std::vector<MessageHit> later = Find("trip", "flight to Lisbon", 250, std::nullopt);
  for (const MessageHit& h : later) {
    EXPECT_GE(h.message.time_ms, 250);
    EXPECT_NE(h.message.content, "I want to book a flight to Lisbon in May");
  }
  std::vector<MessageHit> pets = Find("trip", "what is the name of my cat", 0, 350);
  ASSERT_FALSE(pets.empty());
  EXPECT_EQ(pets[0].message.content, "My cat is called Miso and likes tuna");
  // Every run of the namespace when no run is given.
  std::vector<MessageHit> any = Find("", "flight review meeting");
  ASSERT_FALSE(any.empty());
  EXPECT_EQ(any[0].message.run_id, "work");
}

TEST_F(ConvoStoreTest, MessagesAndMemoriesDoNotMix) {
  MemoryAddOptions mo;
  mo.scope.run_id = "trip";
  MemoryInput mi;
  mi.text = "The user is flying to Lisbon";
  ASSERT_TRUE(store_->memories().Add("chat", {mi}, mo).ok());
  Append("trip", {Msg("user", "I am flying to Lisbon", 100)});
  MemorySearchOptions ms;
  ms.scope.run_id = "trip";
  ms.query = "Lisbon";
  auto mem_hits = store_->memories().Search("chat", ms);
  ASSERT_TRUE(mem_hits.ok()) << mem_hits.status();
  ASSERT_EQ(mem_hits->size(), 1u);
  EXPECT_EQ((*mem_hits)[0].memory.text, "The user is flying to Lisbon");
  std::vector<MessageHit> hits = Find("trip", "Lisbon");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].message.content, "I am flying to Lisbon");
  // A memory reset leaves the conversation.
  ASSERT_TRUE(store_->memories().Reset("chat").ok());
  EXPECT_EQ(ListAll(Run("trip"), 10).size(), 1u);
}

TEST_F(ConvoStoreTest, DeleteRunReopenAndDropNamespace) {
  Append("a", {Msg("user", "alpha one", 1), Msg("assistant", "alpha two", 2)});
  Append("b", {Msg("user", "beta one", 1)});
  auto n = convo().DeleteRun("chat", "a");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2u);
  EXPECT_TRUE(ListAll(Run("a"), 10).empty());
  EXPECT_TRUE(Find("a", "alpha").empty());
  EXPECT_EQ(*convo().DeleteRun("chat", "never"), 0u);
  // Attributes and the time index come back after a restart.
  store_.reset();
  Open();
  std::vector<Message> b = ListAll(Run("b"), 10);
  ASSERT_EQ(b.size(), 1u);
  std::vector<MessageHit> hits = Find("b", "beta");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].message.id, b[0].id);
  // Dropping the namespace drops the log: a new namespace of the same name
  // starts empty.
  ASSERT_TRUE(store_->DropNamespace("chat").ok());
  EXPECT_EQ(convo().List("chat", MessageListOptions{Run("b"), 10, ""}).status().code(),
            absl::StatusCode::kNotFound);
  Append("c", {Msg("user", "gamma", 5)});
  EXPECT_TRUE(ListAll(Run("b"), 10).empty());
}

TEST_F(ConvoStoreTest, BackupsIncludeTheLog) {
  std::vector<Message> kept = Append("r", {Msg("user", "remember the blue door", 10)});
  const std::string backups = dir_ + "-backups";
  const std::string restored = dir_ + "-restored";
  ASSERT_TRUE(store_->CreateBackup(backups).ok());
  Append("r", {Msg("user", "after the backup", 20)});
  ASSERT_TRUE(Store::RestoreBackup(backups, 0, restored).ok());
  auto copy = Store::Open(options_, restored);
  ASSERT_TRUE(copy.ok()) << copy.status();
  MessageListOptions o{Run("r"), 10, ""};
  auto page = (*copy)->conversations().List("chat", o);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->messages.size(), 1u);
  EXPECT_EQ(page->messages[0].id, kept[0].id);
  MessageSearchOptions s;
  s.selection.run_id = "r";
  s.query = "blue door";
  auto hits = (*copy)->conversations().Search("chat", s);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 1u);
  copy->reset();
  std::error_code ec;
  fs::remove_all(backups, ec);
  fs::remove_all(restored, ec);
}

TEST_F(ConvoStoreTest, BadInputIsRefusedAndChangesNothing) {
  Append("r", {Msg("user", "kept", 1)});
  auto code = [&](const std::string& run, const std::vector<MessageInput>& in) {
    return convo().Append("chat", run, in).status();
  };
  EXPECT_EQ(code("", {Msg("user", "x")}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(std::string(300, 'r'), {Msg("user", "x")}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("r", {}).code(), absl::StatusCode::kInvalidArgument);
  absl::Status role = code("r", {Msg("user", "ok"), Msg("robot", "x")});
  EXPECT_EQ(role.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(role.message(), HasSubstr("robot"));
  EXPECT_EQ(code("r", {Msg("user", "  ")}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("r", {Msg("user", "x", -5)}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("r", {Msg("user", "x", std::nullopt, "[1]")}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("r", {Msg("user", "x", std::nullopt, R"({"@role":"x"})")}).code(),
            absl::StatusCode::kInvalidArgument);
  // Nothing of a refused batch was written.
  std::vector<Message> left = ListAll(Run("r"), 10);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].content, "kept");

  MessageListOptions lo{Run(""), 10, ""};
  EXPECT_EQ(convo().List("chat", lo).status().code(), absl::StatusCode::kInvalidArgument);
  lo.selection = Run("r");
  lo.page_size = 0;
  EXPECT_EQ(convo().List("chat", lo).status().code(), absl::StatusCode::kInvalidArgument);
  lo.page_size = 10;
  lo.selection.since_ms = 10;
  lo.selection.until_ms = 5;
  EXPECT_EQ(convo().List("chat", lo).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(convo().List("nope", MessageListOptions{Run("r"), 10, ""}).status().code(),
            absl::StatusCode::kNotFound);
  MessageSearchOptions so;
  so.selection.run_id = "r";
  so.query = "";
  EXPECT_EQ(convo().Search("chat", so).status().code(), absl::StatusCode::kInvalidArgument);
  so.query = "kept";
  so.top_k = 0;
  EXPECT_EQ(convo().Search("chat", so).status().code(), absl::StatusCode::kInvalidArgument);
  so.top_k = 5;
  so.selection.role = "nobody";
  EXPECT_EQ(convo().Search("chat", so).status().code(), absl::StatusCode::kInvalidArgument);
  // A namespace without an encoder.
  NamespaceConfig plain;
  plain.name = "plain";
  plain.dim = 4;
  ASSERT_TRUE(store_->CreateNamespace(plain).ok());
  EXPECT_EQ(convo().Append("plain", "r", {Msg("user", "x")}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace mnemo::db
