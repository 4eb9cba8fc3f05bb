// Unit tests of the text-file side of `mnemo ingest` (no server): HTML
// stripping, text detection, the folder walker, JSONL documents, bounded
// line reading and hashing.
#include "client/cli/text_files.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli/commands.h"
#include "client/cli/progress.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mnemo::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(HtmlToTextTest, DropsTagsScriptsStylesAndComments) {
  const std::string html = R"(<!DOCTYPE html>
<html><head><title>The Title</title>
<style>body { color: red; }</style>
<script type="text/javascript">var x = "<p>not text</p>";</script>
</head>
<body><!-- a comment <p>hidden</p> -->
<h1>Heading</h1><p>First <b>bold</b> paragraph.</p>
<noscript>enable javascript</noscript>
<p>Second<br>line</p>
</body></html>)";
  EXPECT_EQ(HtmlToText(html), "The Title\n\nHeading\n\nFirst bold paragraph.\n\nSecond\nline");
}

TEST(HtmlToTextTest, DecodesEntities) {
  EXPECT_EQ(HtmlToText("<p>a &amp; b &lt;c&gt; &quot;q&quot; &#39;s&#39; caf&#233; &#xE9;</p>"),
            "a & b <c> \"q\" 's' caf\xC3\xA9 \xC3\xA9");
  EXPECT_EQ(HtmlToText("x&nbsp;y &mdash; z"), "x y \xE2\x80\x94 z");
  // Unknown or unterminated references stay as written.
  EXPECT_EQ(HtmlToText("AT&T &bogus; &#zz;"), "AT&T &bogus; &#zz;");
}

TEST(HtmlToTextTest, QuotedGreaterThanInAttributesDoesNotEndTheTag) {
  EXPECT_EQ(HtmlToText(R"(<a title="1 > 0" href='x>y'>link</a> text)"), "link text");
}

TEST(HtmlToTextTest, KeepsALiteralLessThanAndCollapsesWhitespace) {
  EXPECT_EQ(HtmlToText("  1 < 2   and\t\t3 <= 4  "), "1 < 2 and 3 <= 4");
  EXPECT_EQ(HtmlToText("<ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td></tr>"
                       "</table>"),
            "one\ntwo\n\na b");
}

TEST(HtmlToTextTest, UnclosedScriptDropsTheRest) {
  EXPECT_EQ(HtmlToText("before<script>never closed"), "before");
  EXPECT_EQ(HtmlToText("<SCRIPT>x</SCRIPT>after"), "after");
}

TEST(CheckUtf8TextTest, AcceptsTextIncludingMultibyte) {
  EXPECT_TRUE(CheckUtf8Text("").ok());
  EXPECT_TRUE(CheckUtf8Text("plain ascii\n").ok());
  EXPECT_TRUE(CheckUtf8Text("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80").ok());
}

TEST(CheckUtf8TextTest, RejectsBinaryAndInvalidUtf8) {
  absl::Status nul = CheckUtf8Text(std::string("ab\0cd", 5));
  EXPECT_EQ(nul.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nul.message(), HasSubstr("binary"));
  EXPECT_THAT(nul.message(), HasSubstr("offset 2"));

  absl::Status latin1 = CheckUtf8Text("caf\xE9 au lait");
  EXPECT_THAT(latin1.message(), HasSubstr("not valid UTF-8"));
  EXPECT_THAT(latin1.message(), HasSubstr("0xe9 at offset 3"));

  EXPECT_FALSE(CheckUtf8Text("\xC0\xAF").ok());          // overlong '/'
  EXPECT_FALSE(CheckUtf8Text("\xED\xA0\x80").ok());      // surrogate
  EXPECT_FALSE(CheckUtf8Text("\xF4\x90\x80\x80").ok());  // above U+10FFFF
  EXPECT_FALSE(CheckUtf8Text("\xE2\x82").ok());          // truncated
  EXPECT_FALSE(CheckUtf8Text("\x80").ok());              // lone continuation
}

TEST(TextHelpersTest, BomBlankAndFormat) {
  EXPECT_EQ(StripBom("\xEF\xBB\xBFhello"), "hello");
  EXPECT_EQ(StripBom("hello"), "hello");
  EXPECT_TRUE(IsBlankText(" \n\t\r "));
  EXPECT_FALSE(IsBlankText(" x "));
  EXPECT_EQ(FormatOf("a/b/Page.HTML"), FileFormat::kHtml);
  EXPECT_EQ(FormatOf("x.htm"), FileFormat::kHtml);
  EXPECT_EQ(FormatOf("docs.jsonl"), FileFormat::kJsonl);
  EXPECT_EQ(FormatOf("notes.md"), FileFormat::kText);
  EXPECT_EQ(FormatOf("README"), FileFormat::kText);
}

TEST(ParseExtensionsTest, NormalizesCaseAndDots) {
  absl::StatusOr<std::vector<std::string>> ext = ParseExtensions(".txt, MD,,html,.txt");
  ASSERT_TRUE(ext.ok()) << ext.status();
  EXPECT_THAT(*ext, ElementsAre(".txt", ".md", ".html"));
  EXPECT_EQ(ParseExtensions(" , ").status().code(), absl::StatusCode::kInvalidArgument);
}

class WalkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            absl::StrCat("mnemo-walker-", ::testing::UnitTest::GetInstance()->random_seed(), "-",
                         getpid());
    fs::remove_all(root_);
    fs::create_directories(root_ / "docs" / "guides" / "deep");
    fs::create_directories(root_ / "docs" / ".hidden");
    Write("docs/b.md", "b");
    Write("docs/a.txt", "a");
    Write("docs/page.HTML", "<p>p</p>");
    Write("docs/data.jsonl", "{}");
    Write("docs/image.png", "png");
    Write("docs/.secret.txt", "hidden file");
    Write("docs/.hidden/inside.txt", "hidden folder");
    Write("docs/guides/setup.md", "setup");
    Write("docs/guides/deep/notes.txt", "notes");
    Write("other/a.txt", "another a");
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& rel, const std::string& data) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel, std::ios::binary) << data;
  }

  static std::vector<std::string> Ids(const std::vector<InputFile>& files) {
    std::vector<std::string> ids;
    for (const InputFile& f : files) ids.push_back(f.id);
    return ids;
  }

  fs::path root_;
};

TEST_F(WalkerTest, WalksRecursivelyWithRelativeIdsFilteredAndSorted) {
  absl::StatusOr<std::vector<InputFile>> files =
      CollectInputFiles({(root_ / "docs").string()}, {".txt", ".md", ".html", ".jsonl"});
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(Ids(*files), ElementsAre("a.txt", "b.md", "data.jsonl", "guides/deep/notes.txt",
                                       "guides/setup.md", "page.HTML"));
  EXPECT_EQ((*files)[0].path, (root_ / "docs" / "a.txt").string());
}

TEST_F(WalkerTest, ExtensionFilterApplies) {
  absl::StatusOr<std::vector<InputFile>> files =
      CollectInputFiles({(root_ / "docs").string()}, {".md"});
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(Ids(*files), ElementsAre("b.md", "guides/setup.md"));
}

TEST_F(WalkerTest, ExplicitFilesAreTakenWhateverTheirExtension) {
  absl::StatusOr<std::vector<InputFile>> files = CollectInputFiles(
      {(root_ / "docs" / "image.png").string(), (root_ / "docs" / "guides").string()}, {".txt"});
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(Ids(*files), ElementsAre("image.png", "deep/notes.txt"));
}

TEST_F(WalkerTest, MissingPathIsNotFoundAndDuplicateIdsAreRefused) {
  EXPECT_EQ(CollectInputFiles({(root_ / "nope").string()}, {".txt"}).status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<std::vector<InputFile>> dup = CollectInputFiles(
      {(root_ / "docs" / "a.txt").string(), (root_ / "other").string()}, {".txt"});
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dup.status().message(), HasSubstr("\"a.txt\""));
}

TEST(ParseDocumentLineTest, ParsesIdTextAndMetadata) {
  absl::StatusOr<Document> doc =
      ParseDocumentLine(R"({"id": "d1", "text": "hello", "metadata": {"year": 1790}})");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->id, "d1");
  EXPECT_EQ(doc->text, "hello");
  EXPECT_EQ(doc->metadata_json, R"({"year":1790})");

  absl::StatusOr<Document> numeric = ParseDocumentLine(R"({"id": 7, "text": "x", "extra": 1})");
  ASSERT_TRUE(numeric.ok()) << numeric.status();
  EXPECT_EQ(numeric->id, "7");
  EXPECT_EQ(numeric->metadata_json, "");
}

TEST(ParseDocumentLineTest, RejectsBadLines) {
  auto message = [](const char* line) {
    return std::string(ParseDocumentLine(line).status().message());
  };
  EXPECT_THAT(message("{not json"), HasSubstr("not valid JSON"));
  EXPECT_THAT(message("[1]"), HasSubstr("expected a JSON object"));
  EXPECT_THAT(message(R"({"text": "x"})"), HasSubstr("missing \"id\""));
  EXPECT_THAT(message(R"({"id": "a"})"), HasSubstr("missing \"text\""));
  EXPECT_THAT(message(R"({"id": "a", "text": "  "})"), HasSubstr("empty"));
  EXPECT_THAT(message(R"({"id": "a", "text": 3})"), HasSubstr("\"text\" must be a string"));
  EXPECT_THAT(message(R"({"id": "a", "text": "x", "metadata": [1]})"),
              HasSubstr("\"metadata\" must be an object"));
  EXPECT_THAT(message(R"({"id": 1.5, "text": "x"})"), HasSubstr("\"id\" must be"));
}

TEST(ReadBoundedLineTest, SplitsLinesAndFlagsLongOnes) {
  std::istringstream in("short\r\n0123456789abc\nlast");
  std::string line;
  bool too_long = false;
  ASSERT_TRUE(ReadBoundedLine(in, 10, line, &too_long));
  EXPECT_EQ(line, "short");
  EXPECT_FALSE(too_long);
  ASSERT_TRUE(ReadBoundedLine(in, 10, line, &too_long));
  EXPECT_TRUE(too_long);
  EXPECT_EQ(line, "0123456789");
  ASSERT_TRUE(ReadBoundedLine(in, 10, line, &too_long));
  EXPECT_EQ(line, "last");
  EXPECT_FALSE(too_long);
  EXPECT_FALSE(ReadBoundedLine(in, 10, line, &too_long));
}

TEST(Sha256HexTest, MatchesKnownDigests) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(SearchModeTest, ParsesTheModesAndListsThemOnError) {
  EXPECT_EQ(*ParseSearchMode("dense"), SearchMode::kDense);
  EXPECT_EQ(*ParseSearchMode("bm25"), SearchMode::kBm25);
  EXPECT_EQ(*ParseSearchMode("hybrid"), SearchMode::kHybridRrf);
  EXPECT_EQ(*ParseSearchMode("weighted"), SearchMode::kHybridWeighted);
  EXPECT_EQ(*ParseSearchMode("late"), SearchMode::kLateInteraction);
  absl::StatusOr<SearchMode> bad = ParseSearchMode("colbert");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("dense, bm25, hybrid, weighted, late"));
}

TEST(ProgressBarTest, UnitAndNoteAreShown) {
  ProgressBar bar(stderr, "ingest", 4);
  bar.SetUnit("files");
  bar.SetNote("120 chunks  12.0 chunks/s");
  const std::string line = bar.Render(2, 1.0);
  EXPECT_THAT(line, HasSubstr("2/4 files"));
  EXPECT_THAT(line, HasSubstr("2 files/s"));
  EXPECT_THAT(line, HasSubstr("120 chunks  12.0 chunks/s"));
  EXPECT_THAT(line, Not(HasSubstr("items")));
  EXPECT_THAT(bar.Render(1, 200.0), HasSubstr("0.01 files/s"));
}

}  // namespace
}  // namespace mnemo::cli
