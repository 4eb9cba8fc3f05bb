#include "index/filter.h"

#include <string>

#include "gtest/gtest.h"
#include "index/metric.h"

namespace mnemo::index {
namespace {

Attributes Attrs(const std::string& json) {
  absl::StatusOr<Attributes> attrs = ParseAttributes(json);
  EXPECT_TRUE(attrs.ok()) << attrs.status();
  return attrs.ok() ? *attrs : Attributes{};
}

Filter ParseOk(const std::string& json) {
  absl::StatusOr<Filter> filter = ParseJsonFilter(json);
  EXPECT_TRUE(filter.ok()) << json << ": " << filter.status();
  return filter.ok() ? *filter : Filter{};
}

TEST(MetricTest, RoundTripsNames) {
  for (Metric m : {Metric::kInnerProduct, Metric::kL2, Metric::kCosine}) {
    absl::StatusOr<Metric> parsed = ParseMetric(MetricName(m));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, m);
  }
  EXPECT_EQ(ParseMetric("dot").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseJsonFilterTest, ParsesEquality) {
  Filter f = ParseOk(R"({"lang": "en", "year": 2020, "public": true})");
  ASSERT_EQ(f.all_of.size(), 3u);
  for (const FieldCondition& c : f.all_of) {
    EXPECT_EQ(c.op, FieldCondition::Op::kEq);
    ASSERT_EQ(c.values.size(), 1u);
  }
}

TEST(ParseJsonFilterTest, ParsesIn) {
  Filter f = ParseOk(R"({"tag": {"in": ["a", "b", 3]}})");
  ASSERT_EQ(f.all_of.size(), 1u);
  EXPECT_EQ(f.all_of[0].op, FieldCondition::Op::kIn);
  EXPECT_EQ(f.all_of[0].values.size(), 3u);
}

TEST(ParseJsonFilterTest, ParsesRange) {
  Filter f = ParseOk(R"({"year": {"gte": 1, "lt": 5}})");
  ASSERT_EQ(f.all_of.size(), 1u);
  const FieldCondition& c = f.all_of[0];
  EXPECT_EQ(c.op, FieldCondition::Op::kRange);
  EXPECT_EQ(c.lower, 1.0);
  EXPECT_TRUE(c.lower_inclusive);
  EXPECT_EQ(c.upper, 5.0);
  EXPECT_FALSE(c.upper_inclusive);
}

TEST(ParseJsonFilterTest, EmptyObjectIsEmptyFilter) {
  EXPECT_TRUE(ParseOk("{}").empty());
}

TEST(ParseJsonFilterTest, RejectsMalformedForms) {
  for (const char* bad : {
           "",                                // not JSON
           "{",                               // truncated
           "[1, 2]",                          // not an object
           "\"x\"",                           // scalar
           R"({"a": null})",                  // null value
           R"({"a": [1, 2]})",                // bare array
           R"({"a": {}})",                    // empty operator object
           R"({"a": {"in": []}})",            // empty in
           R"({"a": {"in": "x"}})",           // in without array
           R"({"a": {"in": [{"b": 1}]}})",    // non-scalar in value
           R"({"a": {"in": [1], "gt": 0}})",  // in combined
           R"({"a": {"gt": "x"}})",           // non-numeric bound
           R"({"a": {"gt": 5, "lt": 1}})",    // empty range
           R"({"a": {"gt": 1, "gte": 2}})",   // two lower bounds
           R"({"a": {"lt": 1, "lte": 2}})",   // two upper bounds
           R"({"a": {"near": 1}})",           // unknown operator
           R"({"": 1})",                      // empty field name
       }) {
    EXPECT_EQ(ParseJsonFilter(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(ValidateFilterTest, RejectsEqWithTwoValues) {
  Filter f;
  FieldCondition c;
  c.field = "a";
  c.op = FieldCondition::Op::kEq;
  c.values = {1.0, 2.0};
  f.all_of.push_back(c);
  EXPECT_EQ(ValidateFilter(f).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateFilterTest, RejectsRangeWithoutBounds) {
  Filter f;
  FieldCondition c;
  c.field = "a";
  c.op = FieldCondition::Op::kRange;
  f.all_of.push_back(c);
  EXPECT_EQ(ValidateFilter(f).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseAttributesTest, KeepsScalarsAndArraysDropsNestedAndNull) {
  Attributes a = Attrs(
      R"({"s": "x", "n": 2, "b": false, "arr": [1, "y", {"z": 1}],
          "obj": {"k": 1}, "nul": null})");
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a.at("arr").size(), 2u);
  EXPECT_FALSE(a.contains("obj"));
  EXPECT_FALSE(a.contains("nul"));
}

TEST(ParseAttributesTest, EmptyInputMeansNoAttributes) {
  EXPECT_TRUE(Attrs("").empty());
}

TEST(ParseAttributesTest, RejectsNonObject) {
  EXPECT_EQ(ParseAttributes("[1]").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAttributes("{oops").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MatchesTest, EmptyFilterMatchesEverything) {
  EXPECT_TRUE(Matches(Attributes{}, Filter{}));
}

TEST(MatchesTest, EqualityComparesNumbersAsDouble) {
  EXPECT_TRUE(Matches(Attrs(R"({"n": 2})"), ParseOk(R"({"n": 2.0})")));
  EXPECT_FALSE(Matches(Attrs(R"({"n": 2})"), ParseOk(R"({"n": 3})")));
}

TEST(MatchesTest, StringNeverEqualsNumber) {
  EXPECT_FALSE(Matches(Attrs(R"({"n": "1"})"), ParseOk(R"({"n": 1})")));
  EXPECT_FALSE(Matches(Attrs(R"({"n": 1})"), ParseOk(R"({"n": "1"})")));
}

TEST(MatchesTest, BoolOnlyEqualsBool) {
  EXPECT_TRUE(Matches(Attrs(R"({"b": true})"), ParseOk(R"({"b": true})")));
  EXPECT_FALSE(Matches(Attrs(R"({"b": true})"), ParseOk(R"({"b": 1})")));
  EXPECT_FALSE(Matches(Attrs(R"({"b": 1})"), ParseOk(R"({"b": true})")));
}

TEST(MatchesTest, MissingFieldFails) {
  EXPECT_FALSE(Matches(Attrs(R"({"a": 1})"), ParseOk(R"({"b": 1})")));
  EXPECT_FALSE(Matches(Attrs(R"({"a": 1})"), ParseOk(R"({"b": {"gt": 0}})")));
}

TEST(MatchesTest, ArrayAttributeMatchesAnyElement) {
  Attributes a = Attrs(R"({"tags": ["red", "blue"]})");
  EXPECT_TRUE(Matches(a, ParseOk(R"({"tags": "blue"})")));
  EXPECT_TRUE(Matches(a, ParseOk(R"({"tags": {"in": ["green", "red"]}})")));
  EXPECT_FALSE(Matches(a, ParseOk(R"({"tags": "green"})")));
}

TEST(MatchesTest, InMatchesAnyListedValue) {
  Filter f = ParseOk(R"({"lang": {"in": ["en", "fr"]}})");
  EXPECT_TRUE(Matches(Attrs(R"({"lang": "fr"})"), f));
  EXPECT_FALSE(Matches(Attrs(R"({"lang": "de"})"), f));
}

TEST(MatchesTest, RangeHonoursInclusiveness) {
  Filter f = ParseOk(R"({"y": {"gt": 1, "lte": 3}})");
  EXPECT_FALSE(Matches(Attrs(R"({"y": 1})"), f));
  EXPECT_TRUE(Matches(Attrs(R"({"y": 1.5})"), f));
  EXPECT_TRUE(Matches(Attrs(R"({"y": 3})"), f));
  EXPECT_FALSE(Matches(Attrs(R"({"y": 3.01})"), f));
  EXPECT_FALSE(Matches(Attrs(R"({"y": "2"})"), f));
}

TEST(MatchesTest, ConditionsAreAnded) {
  Filter f = ParseOk(R"({"a": 1, "b": "x"})");
  EXPECT_TRUE(Matches(Attrs(R"({"a": 1, "b": "x"})"), f));
  EXPECT_FALSE(Matches(Attrs(R"({"a": 1, "b": "y"})"), f));
}

TEST(FilterPredicateTest, UsesAttributeTable) {
  AttributeTable table;
  table.Set(1, Attrs(R"({"lang": "en"})"));
  table.Set(2, Attrs(R"({"lang": "fr"})"));
  Filter f = ParseOk(R"({"lang": "en"})");
  FilterPredicate pred(&table, &f);
  EXPECT_TRUE(pred.Contains(1));
  EXPECT_FALSE(pred.Contains(2));
  EXPECT_FALSE(pred.Contains(3));  // no attributes
  table.Erase(1);
  EXPECT_FALSE(pred.Contains(1));
  EXPECT_EQ(table.size(), 1u);
}

}  // namespace
}  // namespace mnemo::index
