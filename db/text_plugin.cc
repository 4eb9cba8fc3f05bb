// libmnemo_text_plugin.so: the built-in encoders behind db::text::TextEncoder
// (see text.h for why this is a separately loaded module).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "db/text.h"
#include "encoder/chunker.h"
#include "encoder/sentence_encoder.h"

namespace mnemo::db::text {
namespace {

class UseLiteEncoder final : public TextEncoder {
 public:
  explicit UseLiteEncoder(std::unique_ptr<encoder::SentenceEncoder> model)
      : model_(std::move(model)) {}

  int dim() const override { return model_->dim(); }

  absl::StatusOr<std::vector<float>> Encode(absl::Span<const std::string> texts) const override {
    return model_->Encode(texts);
  }

  int token_dim() const override { return model_->state_dim(); }

  absl::StatusOr<std::vector<std::vector<float>>> EncodeTokens(
      absl::Span<const std::string> texts) const override {
    absl::StatusOr<std::vector<encoder::TokenStates>> states = model_->EncodeTokens(texts);
    if (!states.ok()) return states.status();
    std::vector<std::vector<float>> out;
    out.reserve(states->size());
    for (encoder::TokenStates& s : *states) out.push_back(std::move(s.states));
    return out;
  }

  absl::StatusOr<std::pair<std::vector<float>, std::vector<std::vector<float>>>> EncodeWithTokens(
      absl::Span<const std::string> texts) const override {
    absl::StatusOr<encoder::EncodedTexts> both = model_->EncodeWithTokens(texts);
    if (!both.ok()) return both.status();
    std::vector<std::vector<float>> states;
    states.reserve(both->tokens.size());
    for (encoder::TokenStates& s : both->tokens) states.push_back(std::move(s.states));
    return std::make_pair(std::move(both->embeddings), std::move(states));
  }

  absl::StatusOr<std::vector<int>> Tokenize(absl::string_view text) const override {
    return model_->tokenizer().Encode(text);
  }

  absl::StatusOr<std::vector<encoder::TextChunk>> Chunk(
      absl::string_view text, const encoder::ChunkerOptions& options) const override {
    const encoder::Tokenizer& tokenizer = model_->tokenizer();
    encoder::TokenCounter count = [&tokenizer](absl::string_view t) -> absl::StatusOr<int> {
      absl::StatusOr<std::vector<int>> ids = tokenizer.Encode(t);
      if (!ids.ok()) return ids.status();
      return static_cast<int>(ids->size());
    };
    return encoder::ChunkText(text, count, options);
  }

  std::vector<std::pair<size_t, size_t>> SplitSentences(absl::string_view text) const override {
    return encoder::SplitSentences(text);
  }

 private:
  std::unique_ptr<encoder::SentenceEncoder> model_;
};

}  // namespace
}  // namespace mnemo::db::text

extern "C" __attribute__((visibility("default"))) bool MnemoTextPluginLoad(
    const char* name, const char* model_dir,
    std::unique_ptr<mnemo::db::text::TextEncoder>* out, std::string* error) {
  if (name == nullptr || model_dir == nullptr || out == nullptr || error == nullptr) {
    return false;
  }
  if (std::string(name) != "use-lite") {
    *error = std::string("the plugin has no encoder named ") + name;
    return false;
  }
  auto model = mnemo::encoder::SentenceEncoder::Load(model_dir);
  if (!model.ok()) {
    *error = model.status().ToString();
    return false;
  }
  *out = std::make_unique<mnemo::db::text::UseLiteEncoder>(*std::move(model));
  return true;
}
