#include "decoder/injection_prompt.h"

#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mnemo::decoder {
namespace {

absl::Status ValidateRows(const ModelConfig& config, absl::Span<const float> rows) {
  if (rows.size() % config.dim != 0) {
    return absl::InvalidArgumentError(absl::StrCat("injected rows hold ", rows.size(),
                                                   " floats, not a multiple of the decoder's dim ",
                                                   config.dim));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!std::isfinite(rows[i])) {
      return absl::InvalidArgumentError(absl::StrCat("injected row ", i / config.dim,
                                                     " holds a non-finite value at column ",
                                                     i % config.dim));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> Ids(const Tokenizer& tokenizer, absl::string_view text) {
  absl::StatusOr<std::vector<int>> ids = tokenizer.Encode(text);
  if (!ids.ok()) return ids.status();
  return std::vector<int32_t>(ids->begin(), ids->end());
}

// [BOS] before memory after.
absl::StatusOr<InjectedPrompt> Join(const ModelConfig& config, absl::Span<const int32_t> before,
                                    const PromptMemory& memory, absl::Span<const int32_t> after,
                                    bool bos) {
  if (absl::Status s = ValidateRows(config, memory.rows); !s.ok()) return s;
  InjectedPrompt p;
  if (bos && config.bos_id >= 0) p.tokens.push_back(config.bos_id);
  p.tokens.insert(p.tokens.end(), before.begin(), before.end());
  p.tokens.insert(p.tokens.end(), memory.tokens.begin(), memory.tokens.end());
  p.rows_first = static_cast<int>(p.tokens.size());
  const size_t n_rows = memory.rows.size() / config.dim;
  p.tokens.insert(p.tokens.end(), n_rows, config.unk_id >= 0 ? config.unk_id : 0);
  p.rows = memory.rows;
  p.tokens.insert(p.tokens.end(), after.begin(), after.end());
  if (p.tokens.empty()) return absl::InvalidArgumentError("the prompt is empty");
  return p;
}

}  // namespace

std::vector<InputRows> InjectedPrompt::Injected() const {
  if (rows.empty()) return {};
  return {InputRows{rows_first, rows}};
}

absl::StatusOr<std::vector<int32_t>> TextMemoryTokens(const Tokenizer& tokenizer,
                                                      absl::Span<const std::string> chunks) {
  absl::StatusOr<std::vector<int32_t>> newline = Ids(tokenizer, "\n");
  if (!newline.ok()) return newline.status();
  std::vector<int32_t> out;
  for (size_t i = 0; i < chunks.size(); ++i) {
    absl::StatusOr<std::vector<int32_t>> ids = Ids(tokenizer, chunks[i]);
    if (!ids.ok()) return ids.status();
    if (ids->empty()) {
      return absl::InvalidArgumentError(absl::StrCat("memory chunk ", i, " has no tokens"));
    }
    out.insert(out.end(), ids->begin(), ids->end());
    out.insert(out.end(), newline->begin(), newline->end());
  }
  return out;
}

absl::StatusOr<InjectedPrompt> ItemPrompt(const ModelConfig& config, const PromptMemory& memory,
                                          absl::Span<const int32_t> query, bool bos) {
  return Join(config, {}, memory, query, bos);
}

absl::StatusOr<InjectedPrompt> AssemblePrompt(const Tokenizer& tokenizer,
                                              const ModelConfig& config, absl::string_view text,
                                              const PromptMemory& memory, bool bos) {
  const size_t at = text.find(kMemoryPlaceholder);
  absl::string_view before_text = at == absl::string_view::npos ? "" : text.substr(0, at);
  absl::string_view after_text =
      at == absl::string_view::npos ? text : text.substr(at + kMemoryPlaceholder.size());
  absl::StatusOr<std::vector<int32_t>> before = Ids(tokenizer, before_text);
  if (!before.ok()) return before.status();
  absl::StatusOr<std::vector<int32_t>> after = Ids(tokenizer, after_text);
  if (!after.ok()) return after.status();
  if (before->empty() && after->empty() && memory.tokens.empty() && memory.rows.empty()) {
    return absl::InvalidArgumentError("the prompt is empty (no text and no memory)");
  }
  return Join(config, *before, memory, *after, bos);
}

}  // namespace mnemo::decoder
