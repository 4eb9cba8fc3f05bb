// The SDK's local JSON filter parser (no server needed).
#include "client/json_filter.h"

#include <gtest/gtest.h>

namespace mnemo::client_internal {
namespace {

TEST(JsonFilterTest, EmptyTextAndEmptyObjectMeanNoFilter) {
  for (const char* text : {"", "  ", "{}"}) {
    auto f = JsonFilterToProto(text);
    ASSERT_TRUE(f.ok()) << text;
    EXPECT_EQ(f->all_of_size(), 0) << text;
  }
}

TEST(JsonFilterTest, ScalarsBecomeEquality) {
  auto f = JsonFilterToProto(R"({"lang": "en", "year": 2020, "draft": false})");
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->all_of_size(), 3);
  for (const auto& c : f->all_of()) {
    ASSERT_TRUE(c.has_eq()) << c.field();
    if (c.field() == "lang") {
      EXPECT_EQ(c.eq().string_value(), "en");
    }
    if (c.field() == "year") {
      EXPECT_EQ(c.eq().number_value(), 2020.0);
    }
    if (c.field() == "draft") {
      EXPECT_EQ(c.eq().kind_case(), v1::FilterValue::kBoolValue);
      EXPECT_FALSE(c.eq().bool_value());
    }
  }
}

TEST(JsonFilterTest, InAndRange) {
  auto f = JsonFilterToProto(R"({"tag": {"in": ["a", 1, true]}, "score": {"gt": 0.5, "lte": 9}})");
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->all_of_size(), 2);
  for (const auto& c : f->all_of()) {
    if (c.field() == "tag") {
      ASSERT_TRUE(c.has_in());
      EXPECT_EQ(c.in().values_size(), 3);
    } else {
      ASSERT_TRUE(c.has_range());
      EXPECT_TRUE(c.range().has_gt());
      EXPECT_FALSE(c.range().has_gte());
      EXPECT_DOUBLE_EQ(c.range().gt(), 0.5);
      EXPECT_DOUBLE_EQ(c.range().lte(), 9.0);
    }
  }
}

TEST(JsonFilterTest, MalformedInputIsInvalidArgument) {
  for (const char* text :
       {"{bad", "[1]", "\"x\"", "3", R"({"": 1})", R"({"a": null})", R"({"a": [1, 2]})",
        R"({"a": {}})", R"({"a": {"in": []}})", R"({"a": {"in": 3}})", R"({"a": {"in": [null]}})",
        R"({"a": {"in": [1], "gt": 0}})", R"({"a": {"near": 1}})", R"({"a": {"gt": "x"}})",
        R"({"a": {"gt": 1, "gte": 2}})", R"({"a": {"lt": 1, "lte": 2}})",
        R"({"a": {"gte": 5, "lt": 1}})", R"({"a": {"x": {"y": 1}}})"}) {
    EXPECT_EQ(JsonFilterToProto(text).status().code(), absl::StatusCode::kInvalidArgument)
        << text;
  }
}

}  // namespace
}  // namespace mnemo::client_internal
