// Splits a document's text into chunks for embedding and retrieval.
//
// Chunks are windows of at most `max_tokens` tokens (as counted by the
// namespace's tokenizer) made of whole sentences where possible: sentences
// are packed greedily, and a sentence longer than the window is cut at word
// boundaries (or, for a run without spaces, at code-point boundaries). Each
// chunk after the first repeats the tail of the previous one, up to
// `overlap_tokens`, so an answer that straddles a boundary appears whole in
// one chunk. Every chunk records its byte range in the original text, so a
// hit maps back to the source: text.substr(begin, end - begin) == chunk.text.
//
// Thread safety: Chunk is a pure function of its inputs; the token counter is
// called from the calling thread only.
#ifndef MNEMO_ENCODER_CHUNKER_H_
#define MNEMO_ENCODER_CHUNKER_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mnemo::encoder {

struct ChunkerOptions {
  // Largest chunk in tokens (default 128, USE-lite's input limit: a longer
  // chunk would be truncated by the encoder). Must be >= 1.
  int max_tokens = 128;
  // Tokens of the previous chunk repeated at the start of the next one
  // (default 16). Must be in [0, max_tokens / 2]: more would make chunks
  // advance by less than half a window.
  int overlap_tokens = 16;
};

// One chunk: byte range [begin, end) of the source text, its text (the same
// bytes, with surrounding whitespace trimmed) and its token count.
struct TextChunk {
  size_t begin = 0;
  size_t end = 0;
  int tokens = 0;
  std::string text;
};

// Counts the tokens of a piece of text. Sentences are packed by the sum of
// their counts, then each chunk is counted whole (separators such as
// newlines may cost tokens of their own) and shrunk until it fits, so a
// chunk's `tokens` is always the counter's count of its text.
using TokenCounter = std::function<absl::StatusOr<int>(absl::string_view)>;

// Validates the options (INVALID_ARGUMENT naming the field).
absl::Status ValidateChunkerOptions(const ChunkerOptions& options);

// Byte ranges [begin, end) of the sentences of `text`, whitespace trimmed.
// A sentence ends after '.', '!' or '?' (and any closing quotes or brackets)
// followed by whitespace, or at a blank line; a single newline does not end
// one. Empty or all-whitespace text gives no sentences.
std::vector<std::pair<size_t, size_t>> SplitSentences(absl::string_view text);

// Chunks `text`. Empty or all-whitespace text gives no chunks. Errors from
// the counter are returned as they are.
absl::StatusOr<std::vector<TextChunk>> ChunkText(absl::string_view text,
                                                 const TokenCounter& count_tokens,
                                                 const ChunkerOptions& options);

}  // namespace mnemo::encoder

#endif  // MNEMO_ENCODER_CHUNKER_H_
