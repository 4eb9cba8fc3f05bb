// A std-only wall around libsentencepiece.
//
// Debian's sentencepiece_processor.h declares `namespace absl { using
// std::string_view; }`, which clashes with Abseil's own absl::string_view
// class. Only sentencepiece_bridge.cc includes that header, and it includes
// no Abseil header; everything else in mnemo talks to SentencePiece through
// this class, whose interface uses std types only.
#ifndef MNEMO_ENCODER_SENTENCEPIECE_BRIDGE_H_
#define MNEMO_ENCODER_SENTENCEPIECE_BRIDGE_H_

#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace mnemo::encoder::internal {

// Owns one SentencePieceProcessor. Encode is const and safe to call from
// several threads at once (SentencePieceProcessor::Encode is).
class SentencePieceBridge {
 public:
  // Loads a serialized sentencepiece.ModelProto. Returns nullptr and sets
  // *error when the library refuses it.
  static std::unique_ptr<SentencePieceBridge> Create(const std::string& serialized_model_proto,
                                                     std::string* error);
  ~SentencePieceBridge();

  SentencePieceBridge(const SentencePieceBridge&) = delete;
  SentencePieceBridge& operator=(const SentencePieceBridge&) = delete;

  // Segments `text` (already normalized by the caller) into piece ids.
  // Returns false and sets *error on failure.
  bool Encode(const std::string& text, std::vector<int>* ids, std::string* error) const;

  int vocab_size() const;

 private:
  SentencePieceBridge();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace mnemo::encoder::internal

#endif  // MNEMO_ENCODER_SENTENCEPIECE_BRIDGE_H_
