// Agent memories in the store (db/memory.h): add with exact- and
// near-duplicate handling, history, hybrid search inside a scope with the
// filter algebra, listing with page tokens, expiry, delete-all and reset,
// and every bad input. Needs the USE-lite assets (skips without them).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/memory_filter.h"
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

bool HaveUseLite() {
  const fs::path dir = fs::path(AssetsDir()) / "use-lite";
  return fs::exists(dir / "model.json") && fs::exists(dir / "vocab.json");
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

MemoryScope User(const std::string& user) {
  MemoryScope s;
  s.user_id = user;
  return s;
}

MemoryInput Input(const std::string& text, const std::string& metadata = "") {
  MemoryInput in;
  in.text = text;
  in.metadata_json = metadata;
  return in;
}

MemoryFilter Filter(const std::string& json) {
  auto f = filter::ParseMemoryFilterJson(json);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *f : MemoryFilter();
}

class MemoryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveUseLite()) GTEST_FAIL() << "USE-lite assets not found (run scripts/fetch_assets)";
    dir_ = test::MakeTempDir("memory-store");
    options_.snapshot_every_ops = 0;
    options_.encoder_dir = AssetsDir();
    options_.memory_expiry_interval_ms = 0;  // PurgeExpired by hand
    options_.memory_expired_keep_ms = 0;
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

  MemoryStore& mem() { return store_->memories(); }

  // Adds one memory for `user`; returns the result.
  MemoryAddResult AddOne(const std::string& user, const MemoryInput& in,
                         std::optional<float> near = 2.0f) {
    MemoryAddOptions o;
    o.scope = User(user);
    o.actor = "test";
    o.near_duplicate_threshold = near;
    auto r = mem().Add("mem", {in}, o);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->size() != 1) return MemoryAddResult();
    return (*r)[0];
  }

  std::vector<MemoryHit> Find(const std::string& user, const std::string& query,
                              const std::string& filter_json = "{}") {
    MemorySearchOptions o;
    o.scope = User(user);
    o.query = query;
    o.top_k = 5;
    o.filter = Filter(filter_json);
    auto r = mem().Search("mem", o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<MemoryHit>();
  }

  std::string dir_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
};

TEST_F(MemoryStoreTest, AddGetAndHistory) {
  const int64_t before = NowMs();
  MemoryAddResult r = AddOne("alice", Input("Alice is vegetarian", R"({"category": "diet"})"));
  EXPECT_EQ(r.outcome, MemoryAddOutcome::kAdded);
  EXPECT_EQ(r.memory.id.rfind("mem_", 0), 0u);
  auto got = mem().Get("mem", r.memory.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->text, "Alice is vegetarian");
  EXPECT_EQ(got->scope.user_id, "alice");
  EXPECT_EQ(got->metadata_json, R"({"category":"diet"})");
  EXPECT_GE(got->created_at_ms, before);
  EXPECT_EQ(got->valid_at_ms, got->created_at_ms);
  EXPECT_FALSE(got->expires_at_ms.has_value());
  EXPECT_EQ(got->hash.size(), 16u);

  MemoryUpdate up;
  up.text = "Alice is vegan";
  up.actor = "agent-7";
  auto updated = mem().Update("mem", r.memory.id, up);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->text, "Alice is vegan");
  EXPECT_EQ(updated->created_at_ms, got->created_at_ms);
  ASSERT_TRUE(mem().Delete("mem", r.memory.id, "agent-8").ok());
  EXPECT_EQ(mem().Get("mem", r.memory.id).status().code(), absl::StatusCode::kNotFound);

  auto history = mem().History("mem", r.memory.id);
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].kind, MemoryEventKind::kAdd);
  EXPECT_EQ((*history)[0].new_text, "Alice is vegetarian");
  EXPECT_EQ((*history)[0].actor, "test");
  EXPECT_EQ((*history)[1].kind, MemoryEventKind::kUpdate);
  EXPECT_EQ((*history)[1].old_text, "Alice is vegetarian");
  EXPECT_EQ((*history)[1].new_text, "Alice is vegan");
  EXPECT_EQ((*history)[1].actor, "agent-7");
  EXPECT_EQ((*history)[2].kind, MemoryEventKind::kDelete);
  EXPECT_EQ((*history)[2].old_text, "Alice is vegan");
  EXPECT_EQ((*history)[2].actor, "agent-8");
}

TEST_F(MemoryStoreTest, ExactDuplicatesAreDroppedWithinTheirScope) {
  MemoryAddResult a = AddOne("alice", Input("Prefers window seats on flights"));
  MemoryAddResult again = AddOne("alice", Input("Prefers window seats on flights"));
  EXPECT_EQ(again.outcome, MemoryAddOutcome::kNoop);
  EXPECT_EQ(again.memory.id, a.memory.id);
  MemoryAddResult bob = AddOne("bob", Input("Prefers window seats on flights"));
  EXPECT_EQ(bob.outcome, MemoryAddOutcome::kAdded);
  EXPECT_NE(bob.memory.id, a.memory.id);
  // Within one add, too.
  MemoryAddOptions o;
  o.scope = User("carol");
  auto r = mem().Add("mem", {Input("Has a cat named Miso"), Input("Has a cat named Miso")}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].outcome, MemoryAddOutcome::kAdded);
  EXPECT_EQ((*r)[1].outcome, MemoryAddOutcome::kNoop);
  EXPECT_EQ((*r)[1].memory.id, (*r)[0].memory.id);
  auto history = mem().History("mem", a.memory.id);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 1u);  // the duplicate wrote nothing
}

TEST_F(MemoryStoreTest, NearDuplicateUpdatesInsteadOfAdding) {
  MemoryAddResult first =
      AddOne("alice", Input("Alice lives in Berlin", R"({"source": "chat"})"), 0.8f);
  MemoryAddResult near =
      AddOne("alice", Input("Alice lives in Berlin, Germany", R"({"confidence": 2})"), 0.8f);
  EXPECT_EQ(near.outcome, MemoryAddOutcome::kUpdated);
  EXPECT_EQ(near.memory.id, first.memory.id);
  EXPECT_GE(near.similarity, 0.8f);
  EXPECT_EQ(near.memory.text, "Alice lives in Berlin, Germany");
  EXPECT_EQ(near.memory.metadata_json, R"({"confidence":2,"source":"chat"})");
  // Another scope is not a near duplicate; neither is an unrelated fact.
  EXPECT_EQ(AddOne("bob", Input("Alice lives in Berlin, Germany"), 0.8f).outcome,
            MemoryAddOutcome::kAdded);
  EXPECT_EQ(AddOne("alice", Input("Alice plays the cello in an orchestra"), 0.8f).outcome,
            MemoryAddOutcome::kAdded);
  auto history = mem().History("mem", first.memory.id);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[1].kind, MemoryEventKind::kUpdate);
  EXPECT_EQ((*history)[1].old_text, "Alice lives in Berlin");
  // The old text is gone from the hash index: adding it again adds it.
  EXPECT_NE(AddOne("alice", Input("Alice lives in Berlin"), 2.0f).outcome,
            MemoryAddOutcome::kNoop);
}

TEST_F(MemoryStoreTest, ScopeFilterChangesTheAnswer) {
  AddOne("alice", Input("Allergic to peanuts and tree nuts"));
  AddOne("alice", Input("Enjoys hiking in the Alps"));
  AddOne("bob", Input("Allergic to shellfish such as shrimp"));
  AddOne("bob", Input("Collects vintage vinyl records"));
  std::vector<MemoryHit> alice = Find("alice", "which food allergy does the user have?");
  std::vector<MemoryHit> bob = Find("bob", "which food allergy does the user have?");
  ASSERT_FALSE(alice.empty());
  ASSERT_FALSE(bob.empty());
  EXPECT_EQ(alice[0].memory.text, "Allergic to peanuts and tree nuts");
  EXPECT_EQ(bob[0].memory.text, "Allergic to shellfish such as shrimp");
  for (const MemoryHit& h : alice) EXPECT_EQ(h.memory.scope.user_id, "alice");
  for (const MemoryHit& h : bob) EXPECT_EQ(h.memory.scope.user_id, "bob");
  EXPECT_GE(alice[0].score, alice.back().score);
  // Threshold on similarity.
  MemorySearchOptions o;
  o.scope = User("alice");
  o.query = "which food allergy does the user have?";
  o.threshold = alice[0].similarity + 0.001f;
  auto none = mem().Search("mem", o);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(MemoryStoreTest, TheScopePlanFindsWhatTheIndexesFind) {
  // A few memories of a user are searched exactly over them (the scope
  // index); the answer must be the indexes' answer, hit for hit, including
  // BM25's whole-namespace statistics after replaces, deletes and a reopen.
  const char* texts[] = {
      "Allergic to peanuts and tree nuts",       "Enjoys hiking in the Alps every summer",
      "Drinks black coffee in the morning",      "Has a cat named Miso",
      "Works as a nurse at the city hospital",   "Prefers window seats on long flights",
      "Is learning Portuguese for a trip",       "Allergic to shellfish such as shrimp",
      "Plays the cello in a community orchestra", "Runs a marathon every spring",
      "Keeps a vegetable garden with tomatoes",  "Reads science fiction before sleeping"};
  std::vector<MemoryAddResult> added;
  for (int i = 0; i < 36; ++i) {
    const std::string user = absl::StrCat("user", i % 3);
    added.push_back(AddOne(user, Input(absl::StrCat(texts[i % 12], " (", i, ")"),
                                       absl::StrCat(R"({"n": )", i, "}"))));
  }
  // A replace and a delete move the BM25 statistics.
  MemoryUpdate update;
  update.text = "Allergic to penicillin and to peanuts";
  update.actor = "test";
  ASSERT_TRUE(mem().Update("mem", added[3].memory.id, update).ok());
  ASSERT_TRUE(mem().Delete("mem", added[6].memory.id, "test").ok());

  auto compare = [&](const std::string& user, const std::string& query,
                     const std::string& filter_json) {
    SCOPED_TRACE(user + " / " + query + " / " + filter_json);
    MemorySearchOptions o;
    o.scope = User(user);
    o.query = query;
    o.top_k = 8;
    o.filter = Filter(filter_json);
    o.plan = MemorySearchPlan::kIndexes;
    auto indexes = mem().Search("mem", o);
    o.plan = MemorySearchPlan::kScope;
    auto scope = mem().Search("mem", o);
    o.plan = MemorySearchPlan::kAuto;  // a scope of 12: the scope plan
    auto automatic = mem().Search("mem", o);
    ASSERT_TRUE(indexes.ok()) << indexes.status();
    ASSERT_TRUE(scope.ok()) << scope.status();
    ASSERT_TRUE(automatic.ok()) << automatic.status();
    ASSERT_FALSE(indexes->empty());
    ASSERT_EQ(scope->size(), indexes->size());
    ASSERT_EQ(automatic->size(), indexes->size());
    for (size_t i = 0; i < indexes->size(); ++i) {
      EXPECT_EQ((*scope)[i].memory.id, (*indexes)[i].memory.id) << i;
      EXPECT_NEAR((*scope)[i].score, (*indexes)[i].score, 1e-5) << i;
      EXPECT_NEAR((*scope)[i].similarity, (*indexes)[i].similarity, 1e-4) << i;
      EXPECT_EQ((*automatic)[i].memory.id, (*indexes)[i].memory.id) << i;
      EXPECT_EQ((*scope)[i].memory.scope.user_id, user);
    }
  };
  auto compare_all = [&] {
    compare("user0", "which food allergy does the user have?", "{}");
    compare("user1", "morning coffee and a cat", "{}");
    compare("user2", "music and sports", R"({"n": {"gte": 20}})");
    compare("user0", "peanuts", R"({"NOT": {"n": 0}})");
  };
  compare_all();
  store_.reset();
  Open();
  compare_all();
}

TEST_F(MemoryStoreTest, FilterAlgebraSelectsInsideTheSearch) {
  AddOne("u", Input("Booked a flight to Lisbon", R"({"kind": "travel", "priority": 3})"));
  AddOne("u", Input("Booked a table at a Lisbon restaurant", R"({"kind": "food", "priority": 1})"));
  AddOne("u", Input("Booked a hotel in Lisbon", R"({"kind": "travel", "priority": 1})"));
  auto ids = [](const std::vector<MemoryHit>& hits) {
    std::set<std::string> texts;
    for (const MemoryHit& h : hits) texts.insert(h.memory.text);
    return texts;
  };
  EXPECT_EQ(ids(Find("u", "Lisbon booking", R"({"kind": "food"})")),
            std::set<std::string>({"Booked a table at a Lisbon restaurant"}));
  EXPECT_EQ(ids(Find("u", "Lisbon booking",
                     R"({"AND": [{"kind": "travel"}, {"NOT": {"priority": {"gte": 2}}}]})")),
            std::set<std::string>({"Booked a hotel in Lisbon"}));
  EXPECT_EQ(Find("u", "Lisbon booking", R"({"OR": [{"priority": 3}, {"kind": {"icontains": "FOO"}}]})")
                .size(),
            2u);
  EXPECT_TRUE(Find("u", "Lisbon booking", R"({"kind": {"nin": ["food", "travel"]}})").empty());
}

TEST_F(MemoryStoreTest, ListPagesInIdOrderWithTokensBoundToTheQuery) {
  std::vector<std::string> added;
  for (int i = 0; i < 5; ++i) {
    added.push_back(
        AddOne("pager", Input("Fact number " + std::to_string(i) + " about the pager user"))
            .memory.id);
  }
  AddOne("other", Input("Not the pager user"));
  MemoryListOptions o;
  o.scope = User("pager");
  o.page_size = 2;
  std::vector<std::string> seen;
  std::string first_token;
  for (int page = 0; page < 10; ++page) {
    auto p = mem().List("mem", o);
    ASSERT_TRUE(p.ok()) << p.status();
    for (const Memory& m : p->memories) seen.push_back(m.id);
    if (page == 0) first_token = p->next_page_token;
    if (p->next_page_token.empty()) break;
    o.page_token = p->next_page_token;
  }
  std::vector<std::string> sorted = added;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(seen, sorted);
  // A token of another query.
  MemoryListOptions other;
  other.scope = User("other");
  other.page_size = 2;
  other.page_token = first_token;
  auto bad = mem().List("mem", other);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("another query"));
  other.page_token = "garbage";
  EXPECT_EQ(mem().List("mem", other).status().code(), absl::StatusCode::kInvalidArgument);
  // With a filter: the same scope and another filter is another query too.
  o.filter = Filter(R"({"created_at": {"gte": 0}})");
  o.page_token = first_token;
  EXPECT_EQ(mem().List("mem", o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MemoryStoreTest, ExpiredMemoriesAreHiddenRefusedAndPurged) {
  MemoryInput in = Input("Temporary parking spot is P3");
  in.expires_at_ms = NowMs() - 1000;
  MemoryAddResult r = AddOne("dora", in);
  MemoryInput live = Input("Permanent address is 5 Main Street");
  live.expires_at_ms = NowMs() + 3600 * 1000;
  AddOne("dora", live);
  EXPECT_EQ(Find("dora", "parking spot").size(), 1u);  // only the live one
  MemorySearchOptions o;
  o.scope = User("dora");
  o.query = "parking spot";
  o.show_expired = true;
  auto all = mem().Search("mem", o);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);

  MemoryUpdate up;
  up.text = "Parking spot is P4";
  auto refused = mem().Update("mem", r.memory.id, up);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("expired"));
  EXPECT_EQ(mem().Get("mem", r.memory.id)->text, "Temporary parking spot is P3");

  auto purged = mem().PurgeExpired("mem");
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1u);
  EXPECT_EQ(mem().Get("mem", r.memory.id).status().code(), absl::StatusCode::kNotFound);
  auto history = mem().History("mem", r.memory.id);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->back().kind, MemoryEventKind::kDelete);
  EXPECT_EQ(history->back().actor, "ttl");
  EXPECT_EQ(Find("dora", "address").size(), 1u);
}

TEST_F(MemoryStoreTest, TheExpiryTimerPurges) {
  TearDown();
  options_.memory_expiry_interval_ms = 20;
  dir_ = test::MakeTempDir("memory-timer");
  Open();
  MemoryInput in = Input("Meeting room code is 4411");
  in.expires_at_ms = NowMs() - 1;
  MemoryAddResult r = AddOne("eve", in);
  absl::Status st;
  for (int i = 0; i < 500; ++i) {
    st = mem().Get("mem", r.memory.id).status();
    if (absl::IsNotFound(st)) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
}

TEST_F(MemoryStoreTest, BiTemporalRange) {
  MemoryInput old = Input("Works at Initech");
  old.valid_at_ms = 1000;
  MemoryAddResult r = AddOne("fay", old);
  MemoryUpdate up;
  up.invalid_at_ms = 5000;
  ASSERT_TRUE(mem().Update("mem", r.memory.id, up).ok());
  MemoryInput now = Input("Works at Globex");
  now.valid_at_ms = 5000;
  AddOne("fay", now);
  MemorySearchOptions o;
  o.scope = User("fay");
  o.query = "employer";
  o.valid_from_ms = 2000;
  o.valid_to_ms = 3000;
  auto then = mem().Search("mem", o);
  ASSERT_TRUE(then.ok());
  ASSERT_EQ(then->size(), 1u);
  EXPECT_EQ((*then)[0].memory.text, "Works at Initech");
  o.valid_from_ms = 6000;
  o.valid_to_ms = 7000;
  auto later = mem().Search("mem", o);
  ASSERT_TRUE(later.ok());
  ASSERT_EQ(later->size(), 1u);
  EXPECT_EQ((*later)[0].memory.text, "Works at Globex");
}

TEST_F(MemoryStoreTest, DeleteAllResetAndReopen) {
  AddOne("gus", Input("Gus drinks tea"));
  AddOne("gus", Input("Gus owns a bicycle"));
  MemoryAddResult hal = AddOne("hal", Input("Hal drinks coffee"));
  auto n = mem().DeleteAll("mem", User("gus"), "cleanup");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2u);
  EXPECT_TRUE(Find("gus", "drinks").empty());
  // Scope attributes come back from the stored chunks after a restart.
  store_.reset();
  Open();
  std::vector<MemoryHit> hits = Find("hal", "drinks");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].memory.id, hal.memory.id);
  auto reset = mem().Reset("mem");
  ASSERT_TRUE(reset.ok());
  EXPECT_EQ(*reset, 1u);
  EXPECT_TRUE(Find("hal", "drinks").empty());
  EXPECT_EQ(mem().History("mem", hal.memory.id).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MemoryStoreTest, BadInput) {
  AddOne("ivy", Input("Ivy speaks Portuguese"));
  MemoryAddOptions no_scope;
  auto r = mem().Add("mem", {Input("orphan fact")}, no_scope);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("user_id, agent_id and run_id"));
  MemorySearchOptions s;
  s.query = "x";
  EXPECT_EQ(mem().Search("mem", s).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mem().DeleteAll("mem", MemoryScope(), "").status().code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(mem().Get("mem", "mem_000000000000deadbeef").status().code(),
            absl::StatusCode::kNotFound);
  MemoryUpdate up;
  up.text = "new";
  EXPECT_EQ(mem().Update("mem", "mem_unknown", up).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(mem().Delete("mem", "nope", "").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(mem().History("mem", "nope").status().code(), absl::StatusCode::kNotFound);

  MemoryAddOptions o;
  o.scope = User("ivy");
  EXPECT_EQ(mem().Add("mem", {Input("   ")}, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mem().Add("mem", {Input("x", "[1]")}, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto reserved = mem().Add("mem", {Input("x", R"({"@user_id": "mallory"})")}, o);
  EXPECT_THAT(std::string(reserved.status().message()), HasSubstr("reserved"));
  MemoryInput negative = Input("x");
  negative.expires_at_ms = -5;
  EXPECT_EQ(mem().Add("mem", {negative}, o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mem().Update("mem", "mem_000000000000deadbeef", MemoryUpdate()).status().code(),
            absl::StatusCode::kInvalidArgument);

  // A malformed filter tree (built by hand, as the server builds it).
  MemoryFilter bad;
  bad.kind = MemoryFilter::Kind::kCondition;
  bad.field = "stars";
  bad.op = filter::MemoryOp::kGt;
  bad.values.emplace_back(std::in_place_type<std::string>, "many");
  s.scope = User("ivy");
  s.query = "language";
  s.filter = bad;
  auto filtered = mem().Search("mem", s);
  EXPECT_EQ(filtered.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(filtered.status().message()), HasSubstr("needs a number"));
  s.filter = MemoryFilter();
  s.top_k = 0;
  EXPECT_EQ(mem().Search("mem", s).status().code(), absl::StatusCode::kInvalidArgument);

  // A namespace without an encoder.
  NamespaceConfig vec;
  vec.name = "vectors";
  vec.dim = 4;
  ASSERT_TRUE(store_->CreateNamespace(vec).ok());
  EXPECT_EQ(mem().Add("vectors", {Input("x")}, o).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mem().Get("absent", "mem_x").status().code(), absl::StatusCode::kNotFound);

  // Nothing above changed the stored memory.
  std::vector<MemoryHit> hits = Find("ivy", "language");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].memory.text, "Ivy speaks Portuguese");
}

}  // namespace
}  // namespace mnemo::db
