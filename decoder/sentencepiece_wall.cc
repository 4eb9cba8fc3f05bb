// No Abseil header may be included here: see sentencepiece_wall.h.
#include "decoder/sentencepiece_wall.h"

#include <sentencepiece_processor.h>

namespace mnemo::decoder::internal {
namespace {

class Impl final : public SentencePieceWall {
 public:
  sentencepiece::SentencePieceProcessor sp;

  bool Encode(const std::string& text, std::vector<int>* ids, std::string* error) const override {
    ids->clear();
    const auto status = sp.Encode(text, ids);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }
  bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const override {
    const auto status = sp.Decode(ids, text);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }
  int vocab_size() const override { return sp.GetPieceSize(); }
  int bos_id() const override { return sp.bos_id(); }
  int eos_id() const override { return sp.eos_id(); }
};

}  // namespace

std::unique_ptr<SentencePieceWall> SentencePieceWall::Load(const std::string& path,
                                                           std::string* error) {
  auto impl = std::make_unique<Impl>();
  const auto status = impl->sp.Load(path);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return impl;
}

}  // namespace mnemo::decoder::internal
