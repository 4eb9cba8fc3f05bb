// Agent memories end to end over gRPC (issue 15): a real mnemod with the
// USE-lite assets, the SDK's Memory* calls (add, duplicates, search within
// a scope with the filter algebra, list with page tokens, update, history,
// delete, delete-all, reset, expiry) and every bad input: no scope, an
// unknown memory id, a malformed filter (as JSON in the SDK, and as a
// malformed tree on the wire), a page token of another query, an expired
// memory updated. Skips without the assets.
#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mnemo/client.h"
#include "mnemo/v1/memory.grpc.pb.h"
#include "tests/integration/mnemod_process.h"
#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

using ::testing::HasSubstr;

std::string AssetsDir() {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  return (env != nullptr && *env != '\0') ? env : MNEMO_SOURCE_DIR "/.assets";
}

bool HaveUseLite() {
  const std::filesystem::path dir = std::filesystem::path(AssetsDir()) / "use-lite";
  return std::filesystem::exists(dir / "model.json") &&
         std::filesystem::exists(dir / "vocab.json");
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

MemoryScope User(const std::string& user) {
  MemoryScope s;
  s.user_id = user;
  return s;
}

class SdkMemoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HaveUseLite()) return;
    // Expired memories are kept 1 s, and the timer runs every second.
    auto server = MnemodProcess::Start({"--assets-dir", AssetsDir(),
                                        "--memory-expiry-interval-seconds", "1",
                                        "--memory-expired-keep-seconds", "1"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value().release();
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_TRUE(server_->Stop().ok());
      delete server_;
      server_ = nullptr;
    }
  }

  void SetUp() override {
    if (!HaveUseLite()) GTEST_FAIL() << "USE-lite assets not found (run scripts/fetch_assets)";
    ASSERT_NE(server_, nullptr) << "mnemod did not start";
    client_ = ConnectOrDie(server_->target());
    ASSERT_NE(client_, nullptr);
    ns_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  Memory Add(const std::string& user, const std::string& text, const std::string& meta = "",
             std::optional<int64_t> expires = std::nullopt,
             std::optional<float> near_duplicate = std::nullopt) {
    MemoryInput in;
    in.text = text;
    in.metadata_json = meta;
    in.expires_at_ms = expires;
    MemoryAddOptions o;
    o.scope = User(user);
    o.actor = "sdk-test";
    o.near_duplicate_threshold = near_duplicate;
    auto r = client_->MemoryAdd(ns_, {in}, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && !r->empty() ? (*r)[0].memory : Memory();
  }

  std::vector<MemoryHit> Search(const std::string& user, const std::string& query,
                                const std::string& filter = "") {
    MemorySearchRequest req;
    req.ns = ns_;
    req.scope = User(user);
    req.query = query;
    req.top_k = 5;
    req.filter_json = filter;
    auto r = client_->MemorySearch(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<MemoryHit>();
  }

  static MnemodProcess* server_;
  std::unique_ptr<Client> client_;
  std::string ns_;
};

MnemodProcess* SdkMemoryTest::server_ = nullptr;

TEST_F(SdkMemoryTest, LifecycleWithHistory) {
  Memory m = Add("alice", "Alice prefers aisle seats", R"({"topic": "travel"})");
  ASSERT_FALSE(m.id.empty());
  auto got = client_->MemoryGet(ns_, m.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->text, "Alice prefers aisle seats");
  EXPECT_EQ(got->scope.user_id, "alice");
  EXPECT_EQ(got->metadata_json, R"({"topic":"travel"})");

  // An exact duplicate is dropped.
  MemoryAddOptions o;
  o.scope = User("alice");
  MemoryInput same;
  same.text = "Alice prefers aisle seats";
  auto dup = client_->MemoryAdd(ns_, {same}, o);
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ((*dup)[0].outcome, MemoryAddOutcome::kNoop);
  EXPECT_EQ((*dup)[0].memory.id, m.id);

  MemoryChanges changes;
  changes.text = "Alice prefers window seats";
  changes.actor = "planner";
  auto updated = client_->MemoryUpdate(ns_, m.id, changes);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->text, "Alice prefers window seats");
  ASSERT_TRUE(client_->MemoryDelete(ns_, m.id, "planner").ok());
  EXPECT_EQ(client_->MemoryGet(ns_, m.id).status().code(), absl::StatusCode::kNotFound);
  auto history = client_->MemoryHistory(ns_, m.id);
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].kind, MemoryEventKind::kAdd);
  EXPECT_EQ((*history)[1].kind, MemoryEventKind::kUpdate);
  EXPECT_EQ((*history)[1].old_text, "Alice prefers aisle seats");
  EXPECT_EQ((*history)[1].new_text, "Alice prefers window seats");
  EXPECT_EQ((*history)[1].actor, "planner");
  EXPECT_EQ((*history)[2].kind, MemoryEventKind::kDelete);
}

TEST_F(SdkMemoryTest, ScopeFilterChangesTheAnswer) {
  Add("alice", "Allergic to peanuts and tree nuts");
  Add("alice", "Favourite sport is tennis");
  Add("bob", "Allergic to shellfish such as shrimp");
  Add("bob", "Favourite sport is rugby");
  auto alice = Search("alice", "what is the user allergic to?");
  auto bob = Search("bob", "what is the user allergic to?");
  ASSERT_FALSE(alice.empty());
  ASSERT_FALSE(bob.empty());
  EXPECT_EQ(alice[0].memory.text, "Allergic to peanuts and tree nuts");
  EXPECT_EQ(bob[0].memory.text, "Allergic to shellfish such as shrimp");
  for (const MemoryHit& h : bob) EXPECT_EQ(h.memory.scope.user_id, "bob");
}

TEST_F(SdkMemoryTest, FilterAlgebraAndPaging) {
  // These texts are near duplicates of each other: merging is off here.
  for (int i = 0; i < 5; ++i) {
    Add("carol", "Carol note number " + std::to_string(i),
        "{\"n\": " + std::to_string(i) + ", \"kind\": \"" + (i % 2 ? "odd" : "even") + "\"}",
        std::nullopt, 2.0f);
  }
  auto hits = Search("carol", "Carol note",
                     R"({"AND": [{"kind": "even"}, {"NOT": {"n": {"gte": 4}}}]})");
  std::set<std::string> texts;
  for (const MemoryHit& h : hits) texts.insert(h.memory.text);
  EXPECT_EQ(texts, std::set<std::string>({"Carol note number 0", "Carol note number 2"}));

  MemoryListRequest req;
  req.ns = ns_;
  req.scope = User("carol");
  req.filter_json = R"({"n": {"in": [1, 2, 3, 4]}})";
  req.page_size = 3;
  auto first = client_->MemoryList(req);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->memories.size(), 3u);
  ASSERT_FALSE(first->next_page_token.empty());
  req.page_token = first->next_page_token;
  auto second = client_->MemoryList(req);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->memories.size(), 1u);
  EXPECT_TRUE(second->next_page_token.empty());
  EXPECT_LT(first->memories.back().id, second->memories[0].id);
  EXPECT_EQ(second->memories[0].text, "Carol note number 4");

  // The token of that query in another query.
  req.filter_json = R"({"n": {"in": [1, 2]}})";
  auto bad = client_->MemoryList(req);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("another query"));

  auto n = client_->MemoryDeleteAll(ns_, User("carol"), "cleanup");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 5u);
}

TEST_F(SdkMemoryTest, ExpiredMemoryIsRefusedThenPurgedByTheTimer) {
  Memory m = Add("dave", "Gate code is 1234", "", NowMs() - 10);
  ASSERT_FALSE(m.id.empty());
  EXPECT_TRUE(Search("dave", "gate code").empty());
  MemoryChanges changes;
  changes.text = "Gate code is 9999";
  auto refused = client_->MemoryUpdate(ns_, m.id, changes);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  // The stored memory is untouched, then the timer removes it.
  absl::Status st;
  for (int i = 0; i < 100; ++i) {
    st = client_->MemoryGet(ns_, m.id).status();
    if (absl::IsNotFound(st)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  auto history = client_->MemoryHistory(ns_, m.id);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->back().actor, "ttl");
}

TEST_F(SdkMemoryTest, BadInput) {
  Memory kept = Add("erin", "Erin studies marine biology");
  // No scope.
  MemoryInput in;
  in.text = "orphan";
  auto r = client_->MemoryAdd(ns_, {in}, MemoryAddOptions());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("user_id"));
  MemorySearchRequest req;
  req.ns = ns_;
  req.query = "biology";
  EXPECT_EQ(client_->MemorySearch(req).status().code(), absl::StatusCode::kInvalidArgument);
  // Unknown memory id.
  EXPECT_EQ(client_->MemoryGet(ns_, "mem_00000000000000000000").status().code(),
            absl::StatusCode::kNotFound);
  MemoryChanges changes;
  changes.text = "x";
  EXPECT_EQ(client_->MemoryUpdate(ns_, "mem_nope", changes).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->MemoryDelete(ns_, "mem_nope").code(), absl::StatusCode::kNotFound);
  // Malformed filter: refused by the SDK's parser...
  req.scope = User("erin");
  req.filter_json = R"({"n": {"between": [1, 2]}})";
  auto local = client_->MemorySearch(req);
  EXPECT_EQ(local.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(local.status().message()), HasSubstr("unknown operator 'between'"));
  // ...and by the server, for a malformed tree on the wire.
  auto channel = grpc::CreateChannel(server_->target(), grpc::InsecureChannelCredentials());
  auto stub = v1::MnemoMemory::NewStub(channel);
  v1::MemorySearchRequest wire;
  wire.set_namespace_(ns_);
  wire.mutable_scope()->set_user_id("erin");
  wire.set_query("biology");
  v1::MemoryCondition* cond =
      wire.mutable_filter()->mutable_all_of()->add_filters()->mutable_condition();
  cond->set_field("n");
  cond->set_op(v1::MEMORY_FILTER_OP_GT);
  cond->add_values()->set_string_value("many");
  v1::MemorySearchResponse response;
  grpc::ClientContext ctx;
  grpc::Status status = stub->MemorySearch(&ctx, wire, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("$.AND[0]"));
  EXPECT_THAT(status.error_message(), HasSubstr("needs a number"));
  v1::MemorySearchRequest no_op = wire;
  no_op.mutable_filter()->mutable_all_of()->mutable_filters(0)->mutable_condition()->set_op(
      v1::MEMORY_FILTER_OP_UNSPECIFIED);
  grpc::ClientContext ctx2;
  status = stub->MemorySearch(&ctx2, no_op, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("operator"));
  // Page token of another query (and garbage).
  MemoryListRequest list;
  list.ns = ns_;
  list.scope = User("erin");
  list.page_token = "0123456789abcdef:mem_00000000000000000000";
  EXPECT_EQ(client_->MemoryList(list).status().code(), absl::StatusCode::kInvalidArgument);
  list.page_token = "not a token";
  EXPECT_EQ(client_->MemoryList(list).status().code(), absl::StatusCode::kInvalidArgument);
  // Stored data intact.
  auto hits = Search("erin", "biology");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].memory.id, kept.id);
  auto reset = client_->MemoryReset(ns_);
  ASSERT_TRUE(reset.ok());
  EXPECT_EQ(*reset, 1u);
}

TEST_F(SdkMemoryTest, CoreMemoryBlocks) {
  BlockChange set;
  set.kind = BlockEditKind::kSet;
  set.text = "Name: Sam";
  set.limit_bytes = 40;
  set.actor = "agent";
  auto b = client_->BlockEdit(ns_, "bot", "persona", set);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->limit_bytes, 40u);
  BlockChange append;
  append.kind = BlockEditKind::kAppend;
  append.text = "Likes: tea";
  ASSERT_TRUE(client_->BlockEdit(ns_, "bot", "persona", append).ok());
  BlockChange insert;
  insert.kind = BlockEditKind::kInsert;
  insert.text = "Role: helper";
  insert.line = 1;
  ASSERT_TRUE(client_->BlockEdit(ns_, "bot", "persona", insert).ok());
  BlockChange replace;
  replace.kind = BlockEditKind::kReplace;
  replace.old_text = "tea";
  replace.text = "coffee";
  ASSERT_TRUE(client_->BlockEdit(ns_, "bot", "persona", replace).ok());
  auto got = client_->BlockGet(ns_, "bot", "persona");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value, "Name: Sam\nRole: helper\nLikes: coffee");

  // Bad input: zero and two matches, over the limit, unknown block.
  replace.old_text = "tea";
  auto zero = client_->BlockEdit(ns_, "bot", "persona", replace);
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(zero.status().message()), HasSubstr("occurs 0 times"));
  replace.old_text = "e";
  auto many = client_->BlockEdit(ns_, "bot", "persona", replace);
  EXPECT_EQ(many.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(many.status().message()), HasSubstr("times"));
  append.text = "Hobby: competitive birdwatching";
  auto over = client_->BlockEdit(ns_, "bot", "persona", append);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(over.status().message()), HasSubstr("limit is 40"));
  EXPECT_EQ(client_->BlockGet(ns_, "bot", "human").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->BlockGet(ns_, "bot", "persona")->value,
            "Name: Sam\nRole: helper\nLikes: coffee");
  auto history = client_->BlockHistory(ns_, "bot", "persona");
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 4u);
  EXPECT_EQ((*history)[3].kind, BlockEditKind::kReplace);
  EXPECT_EQ((*history)[3].old_value, "Name: Sam\nRole: helper\nLikes: tea");
  EXPECT_EQ((*history)[0].actor, "agent");
}

}  // namespace
}  // namespace mnemo::testing
