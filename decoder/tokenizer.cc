#include "decoder/tokenizer.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "encoder/sentencepiece_bridge.h"

namespace mnemo::decoder {
namespace {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(std::unique_ptr<encoder::SentencePieceBridge> sp)
      : sp_(std::move(sp)) {}

  absl::StatusOr<std::vector<int>> Encode(absl::string_view text) const override {
    std::vector<int> ids;
    std::string error;
    if (!sp_->Encode(std::string(text), &ids, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer: ", error));
    }
    return ids;
  }

  absl::StatusOr<std::string> Decode(absl::Span<const int> ids) const override {
    for (int id : ids) {
      if (id < 0 || id >= vocab_size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("token id ", id, " is outside the vocabulary of ", vocab_size()));
      }
    }
    std::string text, error;
    if (!sp_->Decode(std::vector<int>(ids.begin(), ids.end()), &text, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer: ", error));
    }
    return text;
  }

  int vocab_size() const override { return sp_->vocab_size(); }
  int bos_id() const override { return sp_->bos_id(); }
  int eos_id() const override { return sp_->eos_id(); }

 private:
  std::unique_ptr<encoder::SentencePieceBridge> sp_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSentencePieceTokenizer(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("tokenizer model ", path, " does not exist"));
  }
  std::string error;
  std::unique_ptr<encoder::SentencePieceBridge> sp = encoder::SentencePieceBridge::Load(path, &error);
  if (sp == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot load tokenizer ", path, ": ", error));
  }
  return std::make_unique<SentencePieceTokenizer>(std::move(sp));
}

}  // namespace mnemo::decoder
