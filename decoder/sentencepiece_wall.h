// Internal: a std-only wall around libsentencepiece. Debian's
// sentencepiece_processor.h declares `namespace absl { using
// std::string_view; }`, which clashes with Abseil, so only
// sentencepiece_wall.cc includes it and that file includes no Abseil header.
#ifndef MNEMO_DECODER_SENTENCEPIECE_WALL_H_
#define MNEMO_DECODER_SENTENCEPIECE_WALL_H_

#include <memory>
#include <string>
#include <vector>

namespace mnemo::decoder::internal {

class SentencePieceWall {
 public:
  virtual ~SentencePieceWall() = default;
  // nullptr and *error set when the file cannot be loaded.
  static std::unique_ptr<SentencePieceWall> Load(const std::string& path, std::string* error);
  virtual bool Encode(const std::string& text, std::vector<int>* ids, std::string* error) const = 0;
  virtual bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const = 0;
  virtual int vocab_size() const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
};

}  // namespace mnemo::decoder::internal

#endif  // MNEMO_DECODER_SENTENCEPIECE_WALL_H_
