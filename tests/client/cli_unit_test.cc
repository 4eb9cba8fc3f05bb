// Unit tests of the CLI's JSONL parsing and progress rendering (no server).
#include <cstdio>
#include <string>
#include <variant>

#include "client/cli/commands.h"
#include "client/cli/jsonl.h"
#include "client/cli/progress.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mnemo::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseRecordLineTest, ParsesChunkWithAllFields) {
  absl::StatusOr<Record> record = ParseRecordLine(
      R"({"id":"c1","document_id":"d1","text":"hello","metadata":{"a":1},"vector":[1,2.5,-3]})",
      3);
  ASSERT_TRUE(record.ok()) << record.status();
  const Chunk* chunk = std::get_if<Chunk>(&*record);
  ASSERT_NE(chunk, nullptr);
  EXPECT_EQ(chunk->id, "c1");
  EXPECT_EQ(chunk->document_id, "d1");
  EXPECT_EQ(chunk->text, "hello");
  EXPECT_EQ(chunk->metadata_json, R"({"a":1})");
  EXPECT_THAT(chunk->vector, ElementsAre(1.0f, 2.5f, -3.0f));
}

TEST(ParseRecordLineTest, ParsesDocument) {
  absl::StatusOr<Record> record =
      ParseRecordLine(R"({"type":"document","id":"d1","text":"body","metadata":{"k":"v"}})", 8);
  ASSERT_TRUE(record.ok()) << record.status();
  const Document* doc = std::get_if<Document>(&*record);
  ASSERT_NE(doc, nullptr);
  EXPECT_EQ(doc->id, "d1");
  EXPECT_EQ(doc->text, "body");
  EXPECT_EQ(doc->metadata_json, R"({"k":"v"})");
}

TEST(ParseRecordLineTest, AcceptsIntegerIds) {
  absl::StatusOr<Record> record = ParseRecordLine(R"({"id":42,"vector":[1]})", 1);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(std::get<Chunk>(*record).id, "42");
}

TEST(ParseRecordLineTest, RejectsInvalidJson) {
  absl::StatusOr<Record> record = ParseRecordLine("{not json", 0);
  EXPECT_EQ(record.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseRecordLineTest, RejectsMissingId) {
  absl::StatusOr<Record> record = ParseRecordLine(R"({"vector":[1,2]})", 0);
  EXPECT_EQ(record.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(record.status().message(), HasSubstr("id"));
}

TEST(ParseRecordLineTest, RejectsWrongDimension) {
  absl::StatusOr<Record> record = ParseRecordLine(R"({"id":"a","vector":[1,2]})", 3);
  EXPECT_EQ(record.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(record.status().message(), HasSubstr("2 dimensions"));
}

TEST(ParseRecordLineTest, RejectsNonNumericVector) {
  absl::StatusOr<Record> record = ParseRecordLine(R"({"id":"a","vector":[1,"x"]})", 0);
  EXPECT_EQ(record.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(record.status().message(), HasSubstr("vector[1]"));
}

TEST(ParseRecordLineTest, RejectsNonObjectMetadata) {
  absl::StatusOr<Record> record = ParseRecordLine(R"({"id":"a","metadata":[1]})", 0);
  EXPECT_EQ(record.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseRecordLineTest, RejectsUnknownType) {
  absl::StatusOr<Record> record = ParseRecordLine(R"({"type":"blob","id":"a"})", 0);
  EXPECT_EQ(record.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseVectorJsonTest, ParsesArrayAndRejectsOthers) {
  absl::StatusOr<std::vector<float>> v = ParseVectorJson("[0.5, 1, -2e-1]");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(*v, ElementsAre(0.5f, 1.0f, -0.2f));
  EXPECT_FALSE(ParseVectorJson("[]").ok());
  EXPECT_FALSE(ParseVectorJson("{\"a\":1}").ok());
  EXPECT_FALSE(ParseVectorJson("[1,").ok());
}

TEST(IsBlankLineTest, DetectsWhitespaceOnly) {
  EXPECT_TRUE(IsBlankLine(""));
  EXPECT_TRUE(IsBlankLine(" \t "));
  EXPECT_FALSE(IsBlankLine(" {} "));
}

TEST(ParseMetricTest, KnowsTheThreeMetrics) {
  EXPECT_EQ(*ParseMetric("ip"), Metric::kInnerProduct);
  EXPECT_EQ(*ParseMetric("l2"), Metric::kL2);
  EXPECT_EQ(*ParseMetric("cosine"), Metric::kCosine);
  EXPECT_EQ(ParseMetric("hamming").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_STREQ(MetricName(Metric::kCosine), "cosine");
}

TEST(ProgressBarTest, RendersCountRateAndEta) {
  ProgressBar bar(stderr, "up", 100);
  std::string line = bar.Render(50, 10.0);
  EXPECT_THAT(line, HasSubstr("50/100"));
  EXPECT_THAT(line, HasSubstr("50.0%"));
  EXPECT_THAT(line, HasSubstr("5 items/s"));
  EXPECT_THAT(line, HasSubstr("ETA 10s"));
  EXPECT_THAT(line, HasSubstr("[###############...............]"));
}

TEST(ProgressBarTest, UnknownTotalShowsNoBar) {
  ProgressBar bar(stderr, "", 0);
  std::string line = bar.Render(30, 3.0);
  EXPECT_THAT(line, HasSubstr("30 items"));
  EXPECT_THAT(line, HasSubstr("10 items/s"));
  EXPECT_THAT(line, ::testing::Not(HasSubstr("ETA")));
}

TEST(FormatDurationTest, PicksUnits) {
  EXPECT_EQ(FormatDuration(5), "5s");
  EXPECT_EQ(FormatDuration(65), "1m05s");
  EXPECT_EQ(FormatDuration(7380), "2h03m");
  EXPECT_EQ(FormatDuration(-1), "?");
}

}  // namespace
}  // namespace mnemo::cli
