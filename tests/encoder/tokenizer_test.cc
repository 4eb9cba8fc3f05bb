#include "encoder/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "tests/encoder/test_assets.h"

namespace mnemo::encoder {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Six reserved symbols, then a few pieces.
std::vector<VocabEntry> TinyVocab() {
  return {{"<unk>", 0},        {"<s>", 0},     {"</s>", 0},       {"x1", 0},
          {"x2", 0},           {"x3", 0},      {"\u2581", -2.0f}, {"\u2581hello", -1.0f},
          {"h", -3.0f},        {"e", -3.0f},   {"l", -3.0f},      {"o", -3.0f},
          {"\u2581he", -2.5f}, {"llo", -2.5f}, {"w", -3.0f}};
}

TEST(TokenizerTest, SegmentsWithTheBestScoringPieces) {
  auto tokenizer = Tokenizer::FromVocab(TinyVocab());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto ids = (*tokenizer)->Encode("hello");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(7));
}

TEST(TokenizerTest, SpacesBecomeWordBoundariesWithoutCollapsing) {
  auto tokenizer = Tokenizer::FromVocab(TinyVocab());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto ids = (*tokenizer)->Encode("hello  hello");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(7, 6, 7));
}

TEST(TokenizerTest, UnknownCharactersMergeIntoOneUnknownId) {
  auto tokenizer = Tokenizer::FromVocab(TinyVocab());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto ids = (*tokenizer)->Encode("hello zzz");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(7, 6, Tokenizer::kUnknownId));
}

TEST(TokenizerTest, EmptyTextHasNoTokens) {
  auto tokenizer = Tokenizer::FromVocab(TinyVocab());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto ids = (*tokenizer)->Encode("");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, IsEmpty());
}

TEST(TokenizerTest, NfkcFoldsCompatibilityCharacters) {
  auto tokenizer = Tokenizer::FromVocab(TinyVocab());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  // Full-width "ｈｅｌｌｏ" is "hello" after NFKC.
  auto ids = (*tokenizer)->Encode("\uff48\uff45\uff4c\uff4c\uff4f");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(7));
}

TEST(TokenizerTest, MalformedUtf8DoesNotFail) {
  auto tokenizer = Tokenizer::FromVocab(TinyVocab());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto ids = (*tokenizer)->Encode(std::string("he\xff\xfello", 7));
  EXPECT_TRUE(ids.ok()) << ids.status();
}

TEST(TokenizerTest, DuplicatePiecesKeepTheLastId) {
  std::vector<VocabEntry> vocab = TinyVocab();
  vocab.push_back({"\u2581hello", -0.5f});
  auto tokenizer = Tokenizer::FromVocab(vocab);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto ids = (*tokenizer)->Encode("hello");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(static_cast<int>(vocab.size()) - 1));
}

// Like the reference, a piece whose score is missing counts 0 but never
// starts a text.
TEST(TokenizerTest, MissingScorePieceNeverStartsAText) {
  std::vector<VocabEntry> vocab = TinyVocab();
  const int boundary_colon = static_cast<int>(vocab.size());
  vocab.push_back({"\u2581:", 0.0f, /*score_missing=*/true});
  const int colon = static_cast<int>(vocab.size());
  vocab.push_back({":", 0.0f, /*score_missing=*/true});
  auto tokenizer = Tokenizer::FromVocab(vocab);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto first = (*tokenizer)->Encode(":hello");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(*first, ElementsAre(6, colon, 8, 9, 13));  // ▁ : h e llo
  auto inside = (*tokenizer)->Encode("hello :");
  ASSERT_TRUE(inside.ok()) << inside.status();
  EXPECT_THAT(*inside, ElementsAre(7, boundary_colon));
}

TEST(TokenizerTest, EncodePrefixEqualsTruncatedEncode) {
  auto tokenizer = Tokenizer::FromVocab(TinyVocab());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  std::string text;
  for (int i = 0; i < 3000; ++i) text += (i % 7 == 0) ? "hello  " : "helloworld ";
  auto all = (*tokenizer)->Encode(text);
  ASSERT_TRUE(all.ok()) << all.status();
  for (int limit : {0, 1, 5, 128, 1000, 100000}) {
    auto prefix = (*tokenizer)->EncodePrefix(text, limit);
    ASSERT_TRUE(prefix.ok()) << prefix.status();
    std::vector<int> want(all->begin(), all->begin() + std::min<size_t>(limit, all->size()));
    EXPECT_EQ(*prefix, want) << "limit " << limit;
  }
}

TEST(TokenizerTest, TooSmallVocabularyIsInvalid) {
  auto tokenizer = Tokenizer::FromVocab({{"<unk>", 0}, {"a", -1}});
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TokenizerTest, MissingVocabFileIsNotFound) {
  auto tokenizer = Tokenizer::LoadVocabJson("/nonexistent/vocab.json");
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kNotFound);
}

TEST(TokenizerTest, MalformedVocabFileIsDataLoss) {
  const std::string path = ::testing::TempDir() + "/bad_vocab.json";
  {
    std::ofstream out(path);
    out << "[[\"a\", 1], {\"not\": \"a pair\"}]";
  }
  auto tokenizer = Tokenizer::LoadVocabJson(path);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kDataLoss);
}

// The ids of the reference JS tokenizer, recorded in the golden fixture.
TEST(TokenizerTest, MatchesReferenceIdsOnGoldenInputs) {
  if (!test::HaveUseLite()) GTEST_FAIL() << test::kMissingAssets;
  auto tokenizer = Tokenizer::LoadVocabJson(test::UseLiteDir() + "/vocab.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const nlohmann::json golden = test::LoadGolden();
  ASSERT_TRUE(golden.is_object()) << "golden fixture missing or malformed";
  int checked = 0;
  for (const nlohmann::json& c : golden["cases"]) {
    const std::string text = c["text"].get<std::string>();
    auto ids = (*tokenizer)->Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, c["ids"].get<std::vector<int>>()) << "text: \"" << text << "\"";
    auto prefix = (*tokenizer)->EncodePrefix(text, 128);
    ASSERT_TRUE(prefix.ok()) << prefix.status();
    EXPECT_EQ(*prefix,
              std::vector<int>(ids->begin(), ids->begin() + std::min<size_t>(128, ids->size())));
    ++checked;
  }
  EXPECT_GE(checked, 30);
}

}  // namespace
}  // namespace mnemo::encoder
