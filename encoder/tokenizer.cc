#include "encoder/tokenizer.h"

#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "common/varint.h"
#include "encoder/sentencepiece_bridge.h"
#include "nlohmann/json.hpp"

namespace mnemo::encoder {
namespace {

// U+2581, SentencePiece's visible word boundary.
constexpr absl::string_view kWordBoundary = "\u2581";

// --- Minimal protobuf wire-format writer ------------------------------------
// Debian ships libsentencepiece without sentencepiece_model.pb.h, so the few
// ModelProto fields needed are written by hand (field numbers from
// sentencepiece_model.proto).

enum WireType : uint32_t { kVarint = 0, kLengthDelimited = 2, kFixed32 = 5 };

void PutTag(uint32_t field, WireType type, std::string* out) {
  PutVarint(out, (static_cast<uint64_t>(field) << 3) | type);
}

void PutVarintField(uint32_t field, uint64_t value, std::string* out) {
  PutTag(field, kVarint, out);
  PutVarint(out, value);
}

void PutBytesField(uint32_t field, absl::string_view bytes, std::string* out) {
  PutTag(field, kLengthDelimited, out);
  PutVarint(out, bytes.size());
  out->append(bytes.data(), bytes.size());
}

void PutFloatField(uint32_t field, float value, std::string* out) {
  PutTag(field, kFixed32, out);
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

// sentencepiece.ModelProto.SentencePiece.Type
enum PieceType : uint64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUnused = 5 };

PieceType TypeOf(int id) {
  if (id == Tokenizer::kUnknownId) return kUnknown;
  if (id == 1 || id == 2) return kControl;               // <s>, </s>
  if (id < Tokenizer::kReservedSymbols) return kUnused;  // extra_token_id_*
  return kNormal;
}

// NFKC, as JavaScript's String.prototype.normalize("NFKC") (ICU in node).
absl::StatusOr<std::string> Nfkc(absl::string_view text) {
  UErrorCode error = U_ZERO_ERROR;
  const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(error);
  if (U_FAILURE(error) || nfkc == nullptr) {
    return absl::InternalError(absl::StrCat("ICU NFKC unavailable: ", u_errorName(error)));
  }
  const icu::UnicodeString source = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  const icu::UnicodeString normalized = nfkc->normalize(source, error);
  if (U_FAILURE(error)) {
    return absl::InternalError(absl::StrCat("ICU NFKC failed: ", u_errorName(error)));
  }
  std::string out;
  normalized.toUTF8String(out);
  return out;
}

}  // namespace

std::string BuildUnigramModelProto(const std::vector<VocabEntry>& vocab, bool add_dummy_prefix) {
  // USE-lite's vocabulary lists a few pieces twice; the reference tokenizer
  // keeps the last id of each (later trie inserts overwrite earlier ones).
  // SentencePiece refuses duplicates, so earlier copies get a placeholder
  // text that cannot occur in input and the UNUSED type.
  absl::flat_hash_map<absl::string_view, size_t> last_id;
  for (size_t id = 0; id < vocab.size(); ++id) last_id[vocab[id].piece] = id;

  std::string model;
  std::string piece;
  for (size_t id = 0; id < vocab.size(); ++id) {
    const bool shadowed = last_id[vocab[id].piece] != id;
    piece.clear();
    PutBytesField(1, shadowed ? absl::StrCat("\x01<shadowed:", id, ">") : vocab[id].piece,
                  &piece);                                                         // piece
    PutFloatField(2, vocab[id].score, &piece);                                     // score
    PutVarintField(3, shadowed ? kUnused : TypeOf(static_cast<int>(id)), &piece);  // type
    PutBytesField(1, piece, &model);  // ModelProto.pieces
  }
  std::string trainer;
  PutVarintField(3, 1, &trainer);             // model_type = UNIGRAM
  PutVarintField(4, vocab.size(), &trainer);  // vocab_size
  PutBytesField(2, trainer, &model);          // ModelProto.trainer_spec

  std::string normalizer;
  PutBytesField(1, "identity", &normalizer);                 // name: NFKC is done with ICU
  PutVarintField(3, add_dummy_prefix ? 1 : 0, &normalizer);  // add_dummy_prefix
  PutVarintField(4, 0, &normalizer);                         // remove_extra_whitespaces
  PutVarintField(5, 1, &normalizer);                         // escape_whitespaces
  PutBytesField(3, normalizer, &model);                      // ModelProto.normalizer_spec
  return model;
}

Tokenizer::Tokenizer(std::vector<VocabEntry> vocab,
                     std::unique_ptr<SentencePieceBridge> bridge,
                     std::unique_ptr<SentencePieceBridge> bridge_without_prefix)
    : vocab_(std::move(vocab)),
      bridge_(std::move(bridge)),
      bridge_without_prefix_(std::move(bridge_without_prefix)) {
  absl::flat_hash_map<absl::string_view, int> last_id;
  for (size_t id = 0; id < vocab_.size(); ++id) last_id[vocab_[id].piece] = static_cast<int>(id);
  for (int id = kReservedSymbols; id < vocab_size(); ++id) {
    const VocabEntry& entry = vocab_[static_cast<size_t>(id)];
    if (absl::string_view(entry.piece).find(kWordBoundary, 1) != absl::string_view::npos) {
      spaces_are_boundaries_ = false;
    }
    if (!entry.score_missing && last_id[entry.piece] == id &&
        absl::StartsWith(entry.piece, kWordBoundary)) {
      first_piece_candidates_.push_back(id);
    }
  }
}

Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromVocab(std::vector<VocabEntry> vocab) {
  if (vocab.size() <= static_cast<size_t>(kReservedSymbols)) {
    return absl::InvalidArgumentError(absl::StrCat("vocabulary has ", vocab.size(),
                                                   " entries; needs more than the ",
                                                   kReservedSymbols, " reserved symbols"));
  }
  std::string error;
  std::unique_ptr<SentencePieceBridge> bridge =
      SentencePieceBridge::Create(BuildUnigramModelProto(vocab, true), &error);
  std::unique_ptr<SentencePieceBridge> bridge_without_prefix;
  if (bridge != nullptr) {
    bridge_without_prefix =
        SentencePieceBridge::Create(BuildUnigramModelProto(vocab, false), &error);
  }
  if (bridge == nullptr || bridge_without_prefix == nullptr) {
    return absl::InternalError(absl::StrCat("SentencePiece refused the vocabulary: ", error));
  }
  return std::unique_ptr<Tokenizer>(
      new Tokenizer(std::move(vocab), std::move(bridge), std::move(bridge_without_prefix)));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::LoadVocabJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open vocabulary ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const nlohmann::json json =
      nlohmann::json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_array()) {
    return absl::DataLossError(absl::StrCat(path, ": not a JSON list"));
  }
  std::vector<VocabEntry> vocab;
  vocab.reserve(json.size());
  for (const nlohmann::json& entry : json) {
    // A null score (USE-lite's vocabulary has seven, all pieces with ':')
    // is kept as a missing score: see VocabEntry::score_missing.
    if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() ||
        !(entry[1].is_number() || entry[1].is_null())) {
      return absl::DataLossError(
          absl::StrCat(path, ": entry ", vocab.size(), " is not [piece, score]"));
    }
    vocab.push_back({entry[0].get<std::string>(), entry[1].is_null() ? 0.0f : entry[1].get<float>(),
                     entry[1].is_null()});
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = FromVocab(std::move(vocab));
  if (tokenizer.status().code() == absl::StatusCode::kInvalidArgument) {
    return absl::DataLossError(absl::StrCat(path, ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

absl::StatusOr<std::vector<int>> Tokenizer::Encode(absl::string_view text) const {
  std::vector<int> ids;
  if (text.empty()) return ids;
  ASSIGN_OR_RETURN(const std::string normalized, Nfkc(text));
  std::string error;
  if (!bridge_->Encode(normalized, &ids, &error)) {
    return absl::InternalError(absl::StrCat("SentencePiece encode failed: ", error));
  }
  if (!ids.empty() && ids[0] >= 0 && ids[0] < vocab_size() &&
      vocab_[static_cast<size_t>(ids[0])].score_missing) {
    return EncodeWithoutMissingScoreFirst(normalized);
  }
  return ids;
}

absl::StatusOr<std::vector<int>> Tokenizer::EncodePrefix(absl::string_view text,
                                                         int max_tokens) const {
  const size_t limit = static_cast<size_t>(std::max(max_tokens, 0));
  // Pieces are at most a few characters, so a few bytes per token is
  // usually enough; the budget doubles until the prefix has `limit` ids.
  size_t budget = std::max<size_t>(1024, 16 * limit);
  while (spaces_are_boundaries_ && budget < text.size()) {
    const size_t cut = text.find(' ', budget);
    if (cut == absl::string_view::npos) break;
    ASSIGN_OR_RETURN(std::vector<int> ids, Encode(text.substr(0, cut)));
    if (ids.size() >= limit) {
      ids.resize(limit);
      return ids;
    }
    budget *= 2;
  }
  ASSIGN_OR_RETURN(std::vector<int> ids, Encode(text));
  if (ids.size() > limit) ids.resize(limit);
  return ids;
}

double Tokenizer::ReferenceScore(const std::vector<int>& ids) const {
  double score = 0.0;
  for (int id : ids) {
    if (id > kUnknownId && id < vocab_size()) score += vocab_[static_cast<size_t>(id)].score;
  }
  return score;
}

absl::StatusOr<std::vector<int>> Tokenizer::EncodeWithoutMissingScoreFirst(
    const std::string& normalized) const {
  // The reference's view of the text: "▁" first, and for every space.
  const std::string escaped =
      absl::StrCat(kWordBoundary, absl::StrReplaceAll(normalized, {{" ", kWordBoundary}}));
  std::vector<int> best;
  double best_score = 0.0;
  std::vector<int> rest;
  std::string error;
  for (int id : first_piece_candidates_) {
    const std::string& piece = vocab_[static_cast<size_t>(id)].piece;
    if (!absl::StartsWith(escaped, piece)) continue;
    // The rest, with word boundaries as spaces again for SentencePiece
    // (which escapes them back; a literal "▁" in the text is a space to
    // both tokenizers).
    const std::string rest_text =
        absl::StrReplaceAll(escaped.substr(piece.size()), {{kWordBoundary, " "}});
    if (!bridge_without_prefix_->Encode(rest_text, &rest, &error)) {
      return absl::InternalError(absl::StrCat("SentencePiece encode failed: ", error));
    }
    const double score = vocab_[static_cast<size_t>(id)].score + ReferenceScore(rest);
    if (best.empty() || score >= best_score) {
      best.assign(1, id);
      best.insert(best.end(), rest.begin(), rest.end());
      best_score = score;
    }
  }
  if (best.empty()) return absl::InternalError("no piece can start this text");
  return best;
}

const std::string& Tokenizer::Piece(int id) const {
  static const std::string* const kEmpty = new std::string();
  if (id < 0 || id >= vocab_size()) return *kEmpty;
  return vocab_[static_cast<size_t>(id)].piece;
}

}  // namespace mnemo::encoder
