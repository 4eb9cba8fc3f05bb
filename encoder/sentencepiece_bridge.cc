// No Abseil header may be included here: see sentencepiece_bridge.h.
#include "encoder/sentencepiece_bridge.h"

#include <sentencepiece_processor.h>

namespace mnemo::encoder {

SentencePieceBridge::SentencePieceBridge()
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}

SentencePieceBridge::~SentencePieceBridge() = default;

std::unique_ptr<SentencePieceBridge> SentencePieceBridge::Create(
    const std::string& serialized_model_proto, std::string* error) {
  std::unique_ptr<SentencePieceBridge> bridge(new SentencePieceBridge());
  const sentencepiece::util::Status status =
      bridge->processor_->LoadFromSerializedProto(serialized_model_proto);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return bridge;
}

std::unique_ptr<SentencePieceBridge> SentencePieceBridge::Load(const std::string& path,
                                                               std::string* error) {
  std::unique_ptr<SentencePieceBridge> bridge(new SentencePieceBridge());
  const sentencepiece::util::Status status = bridge->processor_->Load(path);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return bridge;
}

bool SentencePieceBridge::Encode(const std::string& text, std::vector<int>* ids,
                                 std::string* error) const {
  ids->clear();
  const sentencepiece::util::Status status = processor_->Encode(text, ids);
  if (!status.ok()) {
    *error = status.ToString();
    return false;
  }
  return true;
}

bool SentencePieceBridge::Decode(const std::vector<int>& ids, std::string* text,
                                 std::string* error) const {
  const sentencepiece::util::Status status = processor_->Decode(ids, text);
  if (!status.ok()) {
    *error = status.ToString();
    return false;
  }
  return true;
}

int SentencePieceBridge::vocab_size() const { return processor_->GetPieceSize(); }

int SentencePieceBridge::bos_id() const { return processor_->bos_id(); }

int SentencePieceBridge::eos_id() const { return processor_->eos_id(); }

}  // namespace mnemo::encoder
