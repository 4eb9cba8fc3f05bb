#include "encoder/chunker.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "encoder/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/encoder/test_assets.h"

namespace mnemo::encoder {
namespace {

using ::testing::ElementsAre;

// One token per whitespace-separated word: additive across whitespace, as
// the chunker requires, and easy to reason about.
absl::StatusOr<int> CountWords(absl::string_view text) {
  int words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

// One token per byte: makes a long word longer than any window.
absl::StatusOr<int> CountBytes(absl::string_view text) { return static_cast<int>(text.size()); }

std::vector<std::string> SentenceTexts(absl::string_view text) {
  std::vector<std::string> out;
  for (auto [b, e] : SplitSentences(text)) out.emplace_back(text.substr(b, e - b));
  return out;
}

// The invariants every chunking must keep: offsets map back to the text,
// chunks respect the window, and no non-space byte is left out.
void ExpectWellFormed(absl::string_view text, const std::vector<TextChunk>& chunks,
                      const ChunkerOptions& options) {
  std::vector<bool> covered(text.size(), false);
  size_t previous_begin = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const TextChunk& c = chunks[i];
    ASSERT_LE(c.begin, c.end);
    ASSERT_LE(c.end, text.size());
    EXPECT_EQ(c.text, text.substr(c.begin, c.end - c.begin));
    EXPECT_LE(c.tokens, options.max_tokens) << "chunk " << i;
    if (i > 0) {
      EXPECT_GT(c.begin, previous_begin) << "chunk " << i << " does not advance";
    }
    previous_begin = c.begin;
    for (size_t b = c.begin; b < c.end; ++b) covered[b] = true;
  }
  for (size_t b = 0; b < text.size(); ++b) {
    const char ch = text[b];
    if (ch != ' ' && ch != '\n' && ch != '\t' && ch != '\r') {
      EXPECT_TRUE(covered[b]) << "byte " << b << " ('" << ch << "') is in no chunk";
    }
  }
}

TEST(SplitSentencesTest, EndsAtTerminalPunctuationFollowedBySpace) {
  EXPECT_THAT(SentenceTexts("One. Two!  Three? Four"),
              ElementsAre("One.", "Two!", "Three?", "Four"));
}

TEST(SplitSentencesTest, KeepsDecimalsAndClosingQuotes) {
  EXPECT_THAT(SentenceTexts("Pi is 3.14 or so. \"Really?\" she asked."),
              ElementsAre("Pi is 3.14 or so.", "\"Really?\"", "she asked."));
}

TEST(SplitSentencesTest, BlankLineEndsAParagraphButASingleNewlineDoesNot) {
  EXPECT_THAT(SentenceTexts("a heading\n\nfirst line\nsame sentence"),
              ElementsAre("a heading", "first line\nsame sentence"));
}

TEST(SplitSentencesTest, EmptyAndBlankTextHaveNoSentences) {
  EXPECT_TRUE(SplitSentences("").empty());
  EXPECT_TRUE(SplitSentences(" \n\n\t ").empty());
}

TEST(ChunkTextTest, RejectsBadOptions) {
  ChunkerOptions options;
  options.max_tokens = 0;
  EXPECT_EQ(ChunkText("x", CountWords, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.max_tokens = 10;
  options.overlap_tokens = 6;
  EXPECT_EQ(ChunkText("x", CountWords, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.overlap_tokens = -1;
  EXPECT_EQ(ChunkText("x", CountWords, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ChunkTextTest, EmptyTextHasNoChunks) {
  auto chunks = ChunkText("  \n ", CountWords, ChunkerOptions{});
  ASSERT_TRUE(chunks.ok());
  EXPECT_TRUE(chunks->empty());
}

TEST(ChunkTextTest, ShortTextIsOneChunk) {
  const std::string text = "  Hello there. General Kenobi!\n";
  auto chunks = ChunkText(text, CountWords, ChunkerOptions{});
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->size(), 1u);
  EXPECT_EQ((*chunks)[0].text, "Hello there. General Kenobi!");
  EXPECT_EQ((*chunks)[0].begin, 2u);
  EXPECT_EQ((*chunks)[0].tokens, 4);
}

TEST(ChunkTextTest, PacksWholeSentencesAndOverlapsByWholeSentences) {
  // Ten sentences of three words each.
  std::string text;
  for (int i = 0; i < 10; ++i) absl::StrAppend(&text, "word", i, " is here. ");
  ChunkerOptions options;
  options.max_tokens = 9;     // three sentences per chunk
  options.overlap_tokens = 3;  // one sentence repeated
  auto chunks = ChunkText(text, CountWords, options);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  ExpectWellFormed(text, *chunks, options);
  ASSERT_GE(chunks->size(), 2u);
  EXPECT_EQ((*chunks)[0].text, "word0 is here. word1 is here. word2 is here.");
  EXPECT_EQ((*chunks)[1].text, "word2 is here. word3 is here. word4 is here.");
  // Each chunk starts at a sentence start.
  for (const TextChunk& c : *chunks) EXPECT_EQ(c.text.rfind("word", 0), 0u) << c.text;
}

TEST(ChunkTextTest, NoOverlapWhenBudgetIsZero) {
  std::string text;
  for (int i = 0; i < 6; ++i) absl::StrAppend(&text, "s", i, " a b. ");
  ChunkerOptions options;
  options.max_tokens = 6;
  options.overlap_tokens = 0;
  auto chunks = ChunkText(text, CountWords, options);
  ASSERT_TRUE(chunks.ok());
  ExpectWellFormed(text, *chunks, options);
  ASSERT_EQ(chunks->size(), 3u);
  for (size_t i = 1; i < chunks->size(); ++i) {
    EXPECT_GE((*chunks)[i].begin, (*chunks)[i - 1].end);
  }
}

TEST(ChunkTextTest, SplitsASentenceLongerThanTheWindowAtWords) {
  std::string text = "Intro. ";
  for (int i = 0; i < 50; ++i) absl::StrAppend(&text, "w", i, " ");
  text += "end.";
  ChunkerOptions options;
  options.max_tokens = 8;
  options.overlap_tokens = 2;
  auto chunks = ChunkText(text, CountWords, options);
  ASSERT_TRUE(chunks.ok());
  ExpectWellFormed(text, *chunks, options);
  EXPECT_GE(chunks->size(), 50u / 8);
  for (const TextChunk& c : *chunks) {
    EXPECT_NE(c.text.front(), ' ');
    EXPECT_NE(c.text.back(), ' ');
  }
}

TEST(ChunkTextTest, SplitsAWordLongerThanTheWindowAtCodePoints) {
  // "é" is two bytes; with one token per byte a window of 5 holds two of
  // them, and a cut must never fall inside one.
  std::string text;
  for (int i = 0; i < 20; ++i) text += "\xC3\xA9";
  ChunkerOptions options;
  options.max_tokens = 5;
  options.overlap_tokens = 0;
  auto chunks = ChunkText(text, CountBytes, options);
  ASSERT_TRUE(chunks.ok());
  ExpectWellFormed(text, *chunks, options);
  for (const TextChunk& c : *chunks) {
    EXPECT_EQ(c.text.size() % 2, 0u) << "cut inside a code point";
    EXPECT_EQ(c.tokens, 4);
  }
  EXPECT_EQ(chunks->size(), 10u);
}

TEST(ChunkTextTest, ShrinksAChunkWhoseSeparatorsCostTokens) {
  // Words count one token and so does every newline: the two sentences sum
  // to 6 and look like they fit a window of 6, but together they cost 10.
  auto count = [](absl::string_view text) -> absl::StatusOr<int> {
    auto words = CountWords(text);
    int newlines = 0;
    for (char c : text) newlines += c == '\n';
    return *words + newlines;
  };
  const std::string text = "a b c.\n\n\n\nd e f.";
  ChunkerOptions options;
  options.max_tokens = 6;
  options.overlap_tokens = 0;
  auto chunks = ChunkText(text, count, options);
  ASSERT_TRUE(chunks.ok());
  ExpectWellFormed(text, *chunks, options);
  ASSERT_EQ(chunks->size(), 2u);
  EXPECT_EQ((*chunks)[0].text, "a b c.");
  EXPECT_EQ((*chunks)[1].text, "d e f.");
}

TEST(ChunkTextTest, CounterErrorsPropagate) {
  auto failing = [](absl::string_view) -> absl::StatusOr<int> {
    return absl::InternalError("tokenizer broke");
  };
  EXPECT_EQ(ChunkText("Some text.", failing, ChunkerOptions{}).status().code(),
            absl::StatusCode::kInternal);
}

// With the real USE-lite tokenizer (where a blank line costs tokens of its
// own): every chunk's count is the tokenizer's count of its text, and no
// chunk exceeds the encoder's 128-token input.
TEST(ChunkTextTest, RealTokenizerChunksFitTheEncoderWindow) {
  if (!test::HaveUseLite()) GTEST_FAIL() << test::kMissingAssets;
  auto tokenizer = Tokenizer::LoadVocabJson(test::UseLiteDir() + "/vocab.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto count = [&](absl::string_view piece) -> absl::StatusOr<int> {
    auto ids = (*tokenizer)->Encode(piece);
    if (!ids.ok()) return ids.status();
    return static_cast<int>(ids->size());
  };
  std::string text;
  for (int i = 0; i < 40; ++i) {
    absl::StrAppend(&text, "The committee met on day ", i,
                    " and discussed the budget, the harbour and the schools. ");
    if (i % 7 == 6) text += "\n\nNew section: Über naïve café résumé. ";
  }
  ChunkerOptions options;
  auto chunks = ChunkText(text, count, options);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  ExpectWellFormed(text, *chunks, options);
  EXPECT_GT(chunks->size(), 3u);
  for (const TextChunk& c : *chunks) {
    auto whole = count(c.text);
    ASSERT_TRUE(whole.ok());
    EXPECT_EQ(*whole, c.tokens) << c.text;
  }
}

}  // namespace
}  // namespace mnemo::encoder
