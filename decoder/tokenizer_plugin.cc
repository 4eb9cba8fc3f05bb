// libmnemo_decoder_tokenizer_plugin.so: the SentencePiece implementation of
// decoder::Tokenizer (see tokenizer.h for why this is a separately loaded
// module). Its one entry point is MnemoDecoderTokenizerPluginLoad.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "decoder/tokenizer.h"
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
}  // namespace mnemo::decoder

// Loads the SentencePiece model file `path` into *out. Returns false and
// sets *error when SentencePiece cannot read or refuses it.
extern "C" __attribute__((visibility("default"))) bool MnemoDecoderTokenizerPluginLoad(
    const char* path, std::unique_ptr<mnemo::decoder::Tokenizer>* out, std::string* error) {
  if (path == nullptr || out == nullptr || error == nullptr) return false;
  std::unique_ptr<mnemo::encoder::SentencePieceBridge> sp =
      mnemo::encoder::SentencePieceBridge::Load(path, error);
  if (sp == nullptr) return false;
  *out = std::make_unique<mnemo::decoder::SentencePieceTokenizer>(std::move(sp));
  return true;
}
