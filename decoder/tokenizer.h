// The decoder's tokenizer, behind an interface. Debian's libsentencepiece
// bundles its own protobuf-lite and must not share a process's global symbol
// scope with libprotobuf (see db/text.h), which mnemo-decode links through the
// gRPC client SDK. So the SentencePiece implementation lives in a module,
// libmnemo_decoder_tokenizer_plugin.so (tokenizer_plugin.cc), which
// LoadSentencePieceTokenizer dlopen()s on first use with RTLD_LOCAL |
// RTLD_DEEPBIND (common/plugin_loader.h) and never unloads. It looks for the
// module at $MNEMO_DECODER_TOKENIZER_PLUGIN, at its build-tree path, next to
// the executable, then in ../lib from it. The model library (decoder/model.h)
// does not depend on the tokenizer.
#ifndef MNEMO_DECODER_TOKENIZER_H_
#define MNEMO_DECODER_TOKENIZER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mnemo::decoder {

// Immutable once loaded; Encode and Decode are safe from several threads.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Piece ids of `text`, without BOS/EOS.
  virtual absl::StatusOr<std::vector<int>> Encode(absl::string_view text) const = 0;
  // Text of `ids` (special ids produce no text). INVALID_ARGUMENT for an id
  // outside the vocabulary.
  virtual absl::StatusOr<std::string> Decode(absl::Span<const int> ids) const = 0;
  virtual int vocab_size() const = 0;
  virtual int bos_id() const = 0;  // -1 when the model has none
  virtual int eos_id() const = 0;
};

// Loads a SentencePiece model file. NOT_FOUND when missing, INVALID_ARGUMENT
// when SentencePiece refuses it, FAILED_PRECONDITION naming every path tried
// when the plugin cannot be found or loaded.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSentencePieceTokenizer(const std::string& path);

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_TOKENIZER_H_
