// The one wrapper around libsentencepiece, used by the encoder's tokenizer
// (encoder/tokenizer.h, a model built in memory) and by the reference
// decoder's tokenizer (decoder/tokenizer.h, a .model file). It is its own
// library, mnemo_sentencepiece, for two reasons:
//
// - Debian's sentencepiece_processor.h declares `namespace absl { using
//   std::string_view; }`, which clashes with Abseil's own absl::string_view
//   class. Only sentencepiece_bridge.cc includes that header, and it
//   includes no Abseil header; this interface uses std types only.
// - Debian's libsentencepiece bundles its own protobuf-lite. Only link
//   mnemo_sentencepiece into code that never shares a process's global
//   symbol scope with libprotobuf: the text plugin the store dlopen()s
//   (db/text.h), the decoder's tokenizer plugin (decoder/tokenizer.h) and
//   the encoder's own tests and benchmark. Never into mnemod, the SDK, the
//   CLI or mnemo-decode.
#ifndef MNEMO_ENCODER_SENTENCEPIECE_BRIDGE_H_
#define MNEMO_ENCODER_SENTENCEPIECE_BRIDGE_H_

#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace mnemo::encoder {

// Owns one SentencePieceProcessor. The const methods are safe to call from
// several threads at once (SentencePieceProcessor's are).
class SentencePieceBridge {
 public:
  // Loads a serialized sentencepiece.ModelProto. Returns nullptr and sets
  // *error when the library refuses it.
  static std::unique_ptr<SentencePieceBridge> Create(const std::string& serialized_model_proto,
                                                     std::string* error);
  // Loads a .model file. Returns nullptr and sets *error when the library
  // cannot read or refuses it.
  static std::unique_ptr<SentencePieceBridge> Load(const std::string& path, std::string* error);
  ~SentencePieceBridge();

  SentencePieceBridge(const SentencePieceBridge&) = delete;
  SentencePieceBridge& operator=(const SentencePieceBridge&) = delete;

  // Segments `text` (already normalized by the caller) into piece ids.
  // Returns false and sets *error on failure.
  bool Encode(const std::string& text, std::vector<int>* ids, std::string* error) const;
  // Detokenizes piece ids. Returns false and sets *error on failure.
  bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const;

  int vocab_size() const;
  // The model's <s> and </s> ids (-1 when it has none).
  int bos_id() const;
  int eos_id() const;

 private:
  SentencePieceBridge();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace mnemo::encoder

#endif  // MNEMO_ENCODER_SENTENCEPIECE_BRIDGE_H_
