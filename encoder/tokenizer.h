// Tokenizer of the built-in sentence encoder (Universal Sentence Encoder-lite).
//
// USE-lite ships its SentencePiece unigram vocabulary as a JSON list of
// [piece, log-probability] pairs (vocab.json), not as a .model file. This
// class builds the equivalent sentencepiece.ModelProto from that list and
// runs Debian's libsentencepiece on it, reproducing the ids of the reference
// JavaScript tokenizer (@energetic-ai/embeddings, after tfjs-models):
//   1. NFKC normalization (ICU, as String.prototype.normalize("NFKC")),
//   2. "▁" (U+2581) prepended to non-empty text and substituted for every
//      ASCII space; no case folding, no whitespace collapsing,
//   3. unigram Viterbi segmentation over the vocabulary; a character no
//      piece covers becomes id 0 (the unknown piece), runs of unknowns merge.
// The first six entries (unknown, <s>, </s>, three extra ids) are reserved
// and never produced from text, except id 0 for unknown characters.
//
// Thread safety: a loaded Tokenizer is immutable; Encode may be called from
// any number of threads at once.
#ifndef MNEMO_ENCODER_TOKENIZER_H_
#define MNEMO_ENCODER_TOKENIZER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mnemo::encoder {

class SentencePieceBridge;  // encoder/sentencepiece_bridge.h

// One vocabulary entry: the piece text (UTF-8, "▁" marks a word start) and
// its unigram log-probability.
struct VocabEntry {
  std::string piece;
  float score = 0.0f;
  // The score was missing (null in vocab.json; USE-lite has seven such
  // pieces, all with ':'). The reference adds null as 0, and also takes a
  // running total of exactly 0 for "no path yet", so such a piece is never
  // chosen as the first piece of a text. Encode reproduces both.
  bool score_missing = false;
};

class Tokenizer {
 public:
  // Number of leading vocabulary entries that are reserved symbols.
  static constexpr int kReservedSymbols = 6;
  // Id of the unknown piece.
  static constexpr int kUnknownId = 0;

  // Reads a vocab.json ([[piece, score], ...]). NOT_FOUND when the file is
  // missing, DATA_LOSS when it is not such a list or has fewer entries than
  // the reserved symbols, INTERNAL if SentencePiece refuses the model.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Tokenizer>> LoadVocabJson(
      const std::string& path);

  // Same from entries already in memory (INVALID_ARGUMENT when too few).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Tokenizer>> FromVocab(
      std::vector<VocabEntry> vocab);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text` (UTF-8; malformed bytes count as U+FFFD). Empty
  // text gives no ids. Never truncates: the encoder applies its own limit.
  [[nodiscard]] absl::StatusOr<std::vector<int>> Encode(absl::string_view text) const;

  // The first `max_tokens` ids of Encode(text), tokenizing only as much of
  // a long text as needed: the text is cut before an ASCII space, where
  // every segmentation must start a new piece, provided no piece has "▁"
  // past its first character (checked at load; otherwise, and for a text
  // without such a cut point, the whole text is tokenized). Same ids as
  // Encode followed by truncation.
  [[nodiscard]] absl::StatusOr<std::vector<int>> EncodePrefix(absl::string_view text,
                                                              int max_tokens) const;

  int vocab_size() const { return static_cast<int>(vocab_.size()); }
  // The piece of `id`, or "" when out of range.
  const std::string& Piece(int id) const;

 private:
  Tokenizer(std::vector<VocabEntry> vocab, std::unique_ptr<SentencePieceBridge> bridge,
            std::unique_ptr<SentencePieceBridge> bridge_without_prefix);

  // Segmentation of `normalized` whose first piece is not a score-missing
  // one (see VocabEntry::score_missing): the best first piece followed by
  // the best segmentation of the rest.
  absl::StatusOr<std::vector<int>> EncodeWithoutMissingScoreFirst(
      const std::string& normalized) const;
  // Score of a segmentation as the reference sums it (unknown and missing
  // scores count as 0).
  double ReferenceScore(const std::vector<int>& ids) const;

  std::vector<VocabEntry> vocab_;
  // With the dummy "▁" prefix (the normal case) and without (used to
  // segment the rest of a text after a chosen first piece).
  std::unique_ptr<SentencePieceBridge> bridge_;
  std::unique_ptr<SentencePieceBridge> bridge_without_prefix_;
  // Ids of pieces that start with "▁", may begin a text, and have a score.
  std::vector<int> first_piece_candidates_;
  // No piece has "▁" after its first character, so each space of the text
  // is a piece boundary in every segmentation (EncodePrefix may cut there).
  bool spaces_are_boundaries_ = true;
};

// The serialized sentencepiece.ModelProto (unigram, identity normalizer,
// whitespace escaped but not collapsed, optionally a dummy "▁" prefix) for
// `vocab`. Exposed for tests.
std::string BuildUnigramModelProto(const std::vector<VocabEntry>& vocab,
                                   bool add_dummy_prefix = true);

}  // namespace mnemo::encoder

#endif  // MNEMO_ENCODER_TOKENIZER_H_
