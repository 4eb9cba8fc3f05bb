#include "encoder/chunker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace mnemo::encoder {
namespace {

using Range = std::pair<size_t, size_t>;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Length of a closing quote or bracket at text[i] that may follow a
// sentence's final punctuation, or 0: ASCII ", ', ), ] and the UTF-8
// right quotation marks U+2019 and U+201D.
size_t ClosingMarkAt(absl::string_view text, size_t i) {
  const char c = text[i];
  if (c == '"' || c == '\'' || c == ')' || c == ']') return 1;
  if (i + 2 < text.size() && static_cast<unsigned char>(c) == 0xE2 &&
      static_cast<unsigned char>(text[i + 1]) == 0x80) {
    const unsigned char third = static_cast<unsigned char>(text[i + 2]);
    if (third == 0x99 || third == 0x9D) return 3;
  }
  return 0;
}

// Trims ASCII whitespace off [begin, end); empty when nothing is left.
Range Trim(absl::string_view text, size_t begin, size_t end) {
  while (begin < end && IsSpace(text[begin])) ++begin;
  while (end > begin && IsSpace(text[end - 1])) --end;
  return {begin, end};
}

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// A stretch of text that is never split further when packing chunks.
struct Unit {
  size_t begin;
  size_t end;
  int tokens;
};

absl::StatusOr<int> Count(const TokenCounter& count_tokens, absl::string_view text,
                          Range range) {
  ASSIGN_OR_RETURN(int tokens, count_tokens(text.substr(range.first, range.second - range.first)));
  if (tokens < 0) return absl::InternalError("token counter returned a negative count");
  return tokens;
}

// Splits one word (no whitespace) of more than `max_tokens` tokens at
// code-point boundaries into pieces of at most max_tokens (at least one code
// point each, even if that alone is longer).
absl::Status SplitLongWord(absl::string_view text, Range word, const TokenCounter& count_tokens,
                           int max_tokens, std::vector<Unit>* out) {
  std::vector<size_t> cuts;  // code-point boundaries after word.first
  for (size_t i = word.first + 1; i < word.second; ++i) {
    if (!IsContinuationByte(text[i])) cuts.push_back(i);
  }
  cuts.push_back(word.second);
  size_t begin = word.first;
  size_t first_cut = 0;  // index into cuts of the first boundary after begin
  while (begin < word.second) {
    // Largest cut whose prefix fits, by binary search over [first_cut, size).
    size_t lo = first_cut;
    size_t hi = cuts.size() - 1;
    size_t best = first_cut;
    int best_tokens = -1;
    while (lo <= hi) {
      const size_t mid = lo + (hi - lo) / 2;
      ASSIGN_OR_RETURN(int tokens, Count(count_tokens, text, {begin, cuts[mid]}));
      if (tokens <= max_tokens) {
        best = mid;
        best_tokens = tokens;
        lo = mid + 1;
      } else {
        if (mid == 0) break;
        hi = mid - 1;
      }
    }
    if (best_tokens < 0) {  // a single code point over the limit
      ASSIGN_OR_RETURN(best_tokens, Count(count_tokens, text, {begin, cuts[first_cut]}));
      best = first_cut;
    }
    out->push_back(Unit{begin, cuts[best], best_tokens});
    begin = cuts[best];
    first_cut = best + 1;
  }
  return absl::OkStatus();
}

// Splits a sentence of more than max_tokens tokens into units at word
// boundaries, packing whole words greedily.
absl::Status SplitLongSentence(absl::string_view text, Range sentence,
                               const TokenCounter& count_tokens, int max_tokens,
                               std::vector<Unit>* out) {
  std::vector<Unit> words;
  size_t i = sentence.first;
  while (i < sentence.second) {
    while (i < sentence.second && IsSpace(text[i])) ++i;
    const size_t start = i;
    while (i < sentence.second && !IsSpace(text[i])) ++i;
    if (start == i) break;
    ASSIGN_OR_RETURN(int tokens, Count(count_tokens, text, {start, i}));
    if (tokens > max_tokens) {
      RETURN_IF_ERROR(SplitLongWord(text, {start, i}, count_tokens, max_tokens, &words));
    } else {
      words.push_back(Unit{start, i, tokens});
    }
  }
  size_t w = 0;
  while (w < words.size()) {
    Unit unit = words[w++];
    while (w < words.size() && unit.tokens + words[w].tokens <= max_tokens) {
      unit.end = words[w].end;
      unit.tokens += words[w].tokens;
      ++w;
    }
    out->push_back(unit);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateChunkerOptions(const ChunkerOptions& options) {
  if (options.max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunker max_tokens must be >= 1, got ", options.max_tokens));
  }
  if (options.overlap_tokens < 0 || options.overlap_tokens > options.max_tokens / 2) {
    return absl::InvalidArgumentError(absl::StrCat("chunker overlap_tokens must be in [0, ",
                                                   options.max_tokens / 2, "], got ",
                                                   options.overlap_tokens));
  }
  return absl::OkStatus();
}

std::vector<std::pair<size_t, size_t>> SplitSentences(absl::string_view text) {
  std::vector<Range> sentences;
  size_t start = 0;
  auto emit = [&](size_t end) {
    const Range r = Trim(text, start, end);
    if (r.first < r.second) sentences.push_back(r);
    start = end;
  };
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '.' || c == '!' || c == '?') {
      size_t j = i + 1;
      while (j < text.size() && (text[j] == '.' || text[j] == '!' || text[j] == '?')) ++j;
      while (j < text.size()) {
        const size_t mark = ClosingMarkAt(text, j);
        if (mark == 0) break;
        j += mark;
      }
      if (j == text.size() || IsSpace(text[j])) {
        emit(j);
        i = j;
        continue;
      }
      i = j;
      continue;
    }
    if (c == '\n') {
      // A blank line (newline, optional spaces, newline) ends a paragraph.
      size_t j = i + 1;
      while (j < text.size() && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r')) ++j;
      if (j < text.size() && text[j] == '\n') {
        emit(i);
        i = j + 1;
        continue;
      }
    }
    ++i;
  }
  emit(text.size());
  return sentences;
}

absl::StatusOr<std::vector<TextChunk>> ChunkText(absl::string_view text,
                                                 const TokenCounter& count_tokens,
                                                 const ChunkerOptions& options) {
  RETURN_IF_ERROR(ValidateChunkerOptions(options));
  if (!count_tokens) return absl::InvalidArgumentError("chunker needs a token counter");
  const int max_tokens = options.max_tokens;

  std::vector<Unit> units;
  for (const Range& sentence : SplitSentences(text)) {
    ASSIGN_OR_RETURN(int tokens, Count(count_tokens, text, sentence));
    if (tokens <= max_tokens) {
      units.push_back(Unit{sentence.first, sentence.second, tokens});
    } else {
      RETURN_IF_ERROR(SplitLongSentence(text, sentence, count_tokens, max_tokens, &units));
    }
  }

  std::vector<TextChunk> chunks;
  size_t i = 0;
  while (i < units.size()) {
    const size_t first = i;
    int tokens = 0;  // sum of the units' counts
    // Always take one unit, so a unit over the limit (a single code point
    // that is) still makes progress.
    do {
      tokens += units[i].tokens;
      ++i;
    } while (i < units.size() && tokens + units[i].tokens <= max_tokens);
    // The sum is an estimate: separators between units (newlines, for
    // SentencePiece models that only fold spaces into word starts) may cost
    // tokens of their own. The real count decides; drop trailing units until
    // the chunk fits.
    ASSIGN_OR_RETURN(int actual, Count(count_tokens, text, {units[first].begin, units[i - 1].end}));
    while (actual > max_tokens && i - 1 > first) {
      --i;
      ASSIGN_OR_RETURN(actual, Count(count_tokens, text, {units[first].begin, units[i - 1].end}));
    }
    TextChunk chunk;
    chunk.begin = units[first].begin;
    chunk.end = units[i - 1].end;
    chunk.tokens = actual;
    chunk.text = std::string(text.substr(chunk.begin, chunk.end - chunk.begin));
    chunks.push_back(std::move(chunk));
    if (i == units.size()) break;

    // The next chunk repeats the last units of this one, up to the overlap
    // budget, never all of them (so it always moves on) and never so many
    // that the next new unit no longer fits beside them.
    size_t next = i;
    int overlap = 0;
    while (next - 1 > first && overlap + units[next - 1].tokens <= options.overlap_tokens) {
      overlap += units[next - 1].tokens;
      --next;
    }
    while (next < i && overlap + units[i].tokens > max_tokens) {
      overlap -= units[next].tokens;
      ++next;
    }
    i = next;
  }
  return chunks;
}

}  // namespace mnemo::encoder
