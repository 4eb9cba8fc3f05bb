// The memory filter algebra: its JSON form (common/memory_filter.h) and its
// evaluation against a memory's attributes (db/memory_filter.h).
#include "db/memory_filter.h"

#include <string>

#include "common/memory_filter.h"
#include "db/memory.h"
#include "db/memory_records.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/filter.h"

namespace mnemo::db {
namespace {

using ::testing::HasSubstr;

// The attributes a memory's chunk gets (as the store parses them).
index::Attributes AttrsOf(const Memory& m) {
  auto attrs = index::ParseAttributes(memrecords::EncodeMemoryMetadata(m));
  EXPECT_TRUE(attrs.ok()) << attrs.status();
  return *attrs;
}

Memory Sample() {
  Memory m;
  m.id = "mem_0000000000010000abcd";
  m.text = "likes espresso";
  m.metadata_json = R"({"category": "Food", "stars": 4, "tags": ["coffee", "morning"]})";
  m.scope.user_id = "alice";
  m.scope.agent_id = "chef";
  m.created_at_ms = 1000;
  m.updated_at_ms = 2000;
  m.valid_at_ms = 1000;
  m.hash = "00";
  return m;
}

bool Eval(const std::string& json, const index::Attributes& attrs) {
  auto parsed = filter::ParseMemoryFilterJson(json);
  EXPECT_TRUE(parsed.ok()) << json << ": " << parsed.status();
  auto compiled = CompileMemoryFilter(*parsed);
  EXPECT_TRUE(compiled.ok()) << compiled.status();
  return MatchesMemoryFilter(attrs, *compiled);
}

TEST(MemoryFilterTest, OperatorsOnMetadataAndScope) {
  const index::Attributes a = AttrsOf(Sample());
  EXPECT_TRUE(Eval(R"({})", a));
  EXPECT_TRUE(Eval(R"({"category": "Food"})", a));
  EXPECT_FALSE(Eval(R"({"category": "food"})", a));
  EXPECT_TRUE(Eval(R"({"metadata.category": {"eq": "Food"}})", a));
  EXPECT_TRUE(Eval(R"({"category": {"ne": "Travel"}})", a));
  EXPECT_TRUE(Eval(R"({"missing": {"ne": 1}})", a));  // ne on a missing field
  EXPECT_FALSE(Eval(R"({"missing": {"eq": 1}})", a));
  EXPECT_TRUE(Eval(R"({"category": {"in": ["Travel", "Food"]}})", a));
  EXPECT_FALSE(Eval(R"({"category": {"nin": ["Travel", "Food"]}})", a));
  EXPECT_TRUE(Eval(R"({"stars": {"gt": 3, "lte": 4}})", a));
  EXPECT_FALSE(Eval(R"({"stars": {"gt": 4}})", a));
  EXPECT_TRUE(Eval(R"({"stars": {"gte": 4}})", a));
  EXPECT_FALSE(Eval(R"({"stars": {"lt": 4}})", a));
  EXPECT_TRUE(Eval(R"({"category": {"contains": "oo"}})", a));
  EXPECT_FALSE(Eval(R"({"category": {"contains": "FOOD"}})", a));
  EXPECT_TRUE(Eval(R"({"category": {"icontains": "FOOD"}})", a));
  EXPECT_TRUE(Eval(R"({"tags": "coffee"})", a));  // any array element
  EXPECT_TRUE(Eval(R"({"tags": {"icontains": "MORN"}})", a));
  // Scope and time fields read the memory's own attributes.
  EXPECT_TRUE(Eval(R"({"user_id": "alice", "agent_id": "chef"})", a));
  EXPECT_FALSE(Eval(R"({"user_id": "bob"})", a));
  EXPECT_FALSE(Eval(R"({"run_id": "r1"})", a));
  EXPECT_TRUE(Eval(R"({"created_at": {"gte": 1000, "lt": 1500}})", a));
  EXPECT_FALSE(Eval(R"({"updated_at": {"lt": 2000}})", a));
}

TEST(MemoryFilterTest, AndOrNot) {
  const index::Attributes a = AttrsOf(Sample());
  EXPECT_TRUE(Eval(R"({"OR": [{"category": "Travel"}, {"stars": {"gte": 4}}]})", a));
  EXPECT_FALSE(Eval(R"({"OR": [{"category": "Travel"}, {"stars": {"gt": 4}}]})", a));
  EXPECT_FALSE(Eval(R"({"AND": [{"category": "Food"}, {"stars": {"gt": 4}}]})", a));
  EXPECT_TRUE(Eval(R"({"NOT": {"category": "Travel"}})", a));
  EXPECT_FALSE(Eval(R"({"NOT": {"OR": [{"user_id": "alice"}, {"user_id": "bob"}]}})", a));
  EXPECT_TRUE(Eval(
      R"({"AND": [{"NOT": {"tags": {"in": ["evening"]}}}, {"OR": [{"stars": 1}, {"category": {"icontains": "fo"}}]}]})",
      a));
}

TEST(MemoryFilterTest, CanonicalJsonParsesBackToTheSameFilter) {
  const std::string json =
      R"({"AND": [{"category": {"in": ["a", "b"]}}, {"NOT": {"stars": {"lt": 2}}}, {"OR": [{"x": true}, {"y": {"icontains": "q"}}]}]})";
  auto parsed = filter::ParseMemoryFilterJson(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const std::string canon = filter::MemoryFilterToJson(*parsed);
  auto again = filter::ParseMemoryFilterJson(canon);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(filter::MemoryFilterToJson(*again), canon);
}

TEST(MemoryFilterTest, MalformedFiltersNameTheProblem) {
  struct Case {
    const char* json;
    const char* message;
  } cases[] = {
      {"", "not valid JSON"},
      {"[1]", "must be a JSON object"},
      {R"({"a": {"between": 1}})", "unknown operator 'between'"},
      {R"({"a": {"gt": "x"}})", "needs a number"},
      {R"({"a": {"contains": 3}})", "needs a string"},
      {R"({"a": {"in": 3}})", "needs an array"},
      {R"({"a": {"in": []}})", "at least one value"},
      {R"({"a": [1, 2]})", "use {\"in\""},
      {R"({"a": null})", "string, number or bool"},
      {R"({"a": {}})", "no operator"},
      {R"({"AND": []})", "non-empty array"},
      {R"({"OR": {"a": 1}})", "non-empty array"},
      {R"({"AND": [{"b": {"lt": []}}]})", "$.AND[0]"},
      {R"({"NOT": [1]})", "$.NOT"},
  };
  for (const Case& c : cases) {
    auto parsed = filter::ParseMemoryFilterJson(c.json);
    ASSERT_FALSE(parsed.ok()) << c.json;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.message)) << c.json;
  }
  // Too deep.
  std::string deep = R"({"a": 1})";
  for (int i = 0; i < filter::kMaxMemoryFilterDepth + 2; ++i) deep = "{\"NOT\": " + deep + "}";
  auto parsed = filter::ParseMemoryFilterJson(deep);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("nested deeper"));
}

TEST(MemoryFilterTest, PredicateSelectsScopeExpiryAndValidity) {
  Memory m = Sample();
  m.expires_at_ms = 5000;
  m.invalid_at_ms = 3000;
  index::AttributeTable table;
  table.Set(7, AttrsOf(m));
  MemorySelection s;
  s.scope.user_id = "alice";
  s.now_ms = 4000;
  MemoryPredicate p(&table, &s);
  EXPECT_TRUE(p.Contains(7));
  EXPECT_FALSE(p.Contains(8));  // no attributes: not a memory
  s.scope.user_id = "bob";
  EXPECT_FALSE(p.Contains(7));
  s.scope.user_id = "alice";
  s.exact_scope = true;  // agent "chef" is set on the memory, not in the selection
  EXPECT_FALSE(p.Contains(7));
  s.scope.agent_id = "chef";
  EXPECT_TRUE(p.Contains(7));
  s.now_ms = 5000;  // expired
  EXPECT_FALSE(p.Contains(7));
  s.show_expired = true;
  EXPECT_TRUE(p.Contains(7));
  s.valid_from_ms = 3000;  // invalid from 3000 on
  EXPECT_FALSE(p.Contains(7));
  s.valid_from_ms = 2000;
  s.valid_to_ms = 2500;
  EXPECT_TRUE(p.Contains(7));
  s.valid_from_ms = 0;
  s.valid_to_ms = 900;  // before it became valid
  EXPECT_FALSE(p.Contains(7));
  // A chunk that is not a memory never matches.
  index::Attributes plain;
  plain["@user_id"].emplace_back(std::in_place_type<std::string>, "alice");
  table.Set(9, plain);
  s.valid_to_ms.reset();
  s.scope.agent_id.clear();
  s.exact_scope = false;
  EXPECT_FALSE(p.Contains(9));
}

}  // namespace
}  // namespace mnemo::db
