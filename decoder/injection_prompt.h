// Prompts that carry injected memory (issue 14, the coordinator's layout
// B): a retrieved chunk reaches the decoder either as its text (text RAG)
// or as rows in the decoder's input-embedding space that take the place of
// token embeddings (xRAG: one projected vector per chunk; memory tokens:
// a few per chunk).
//
//   none      [BOS] A
//   text      [BOS] C "\n" A          (C, "\n" and A tokenized apart)
//   rows      [BOS] <rows> A
//
// For `mnemo-decode generate`, the memory replaces the first "<memory>" in
// the prompt text, or goes right after BOS when there is none. The rows'
// positions hold the model's unk id, which the forward ignores there.
#ifndef MNEMO_DECODER_INJECTION_PROMPT_H_
#define MNEMO_DECODER_INJECTION_PROMPT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "decoder/config.h"
#include "decoder/model.h"
#include "decoder/tokenizer.h"

namespace mnemo::decoder {

// Where generate's prompt text receives the memory.
inline constexpr absl::string_view kMemoryPlaceholder = "<memory>";

// What a prompt receives at the memory's place: token ids (the retrieved
// chunks' text), then input rows ([n, dim] floats), either may be empty.
struct PromptMemory {
  std::vector<int32_t> tokens;
  std::vector<float> rows;
};

// A prompt's ids with one span of positions that runs on input rows.
struct InjectedPrompt {
  std::vector<int32_t> tokens;
  int rows_first = 0;       // position of the first row within `tokens`
  std::vector<float> rows;  // n * dim floats; empty = no rows
  // The span for CpuForward::Forward / DecodeSession::AppendInjected: a
  // view of `rows`, valid while this prompt lives unchanged.
  std::vector<InputRows> Injected() const;
};

// Text memory: each chunk's ids followed by the ids of "\n" (layout B's
// text RAG), chunks in order. INVALID_ARGUMENT for a chunk with no tokens.
absl::StatusOr<std::vector<int32_t>> TextMemoryTokens(const Tokenizer& tokenizer,
                                                      absl::Span<const std::string> chunks);

// [BOS] memory query: the item layout (bench, `mnemo-decode score`). BOS
// only when `bos` and the model has one. INVALID_ARGUMENT when the rows
// are not a multiple of dim or hold a non-finite value, or when the
// prompt would be empty.
absl::StatusOr<InjectedPrompt> ItemPrompt(const ModelConfig& config, const PromptMemory& memory,
                                          absl::Span<const int32_t> query, bool bos = true);

// generate's prompt: the first "<memory>" of `text` is replaced by the
// memory (the text before and after it tokenized apart); without one, the
// memory goes right after BOS and the whole text follows. Errors of
// ItemPrompt and the tokenizer; INVALID_ARGUMENT when there is neither
// text nor memory.
absl::StatusOr<InjectedPrompt> AssemblePrompt(const Tokenizer& tokenizer,
                                              const ModelConfig& config, absl::string_view text,
                                              const PromptMemory& memory, bool bos = true);

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_INJECTION_PROMPT_H_
