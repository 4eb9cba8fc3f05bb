// Text support of the store: the built-in encoders and the snippet
// highlighter. Used by the write path and search; exposed for tests.
//
// Why a plugin: Debian's libsentencepiece bundles its own copy of
// protobuf-lite and exports those symbols. A process that also links
// libprotobuf (mnemod, through gRPC) crashes at start-up when both share
// the global symbol scope. The encoder (USE-lite, its SentencePiece
// tokenizer and the chunker) is therefore built as a separate module,
// libmnemo_text_plugin.so, which the store loads on first use with
// dlopen(RTLD_LOCAL | RTLD_DEEPBIND): the module and libsentencepiece
// resolve their symbols among themselves first and add none to the global
// scope. The store talks to it only through the TextEncoder interface.
#ifndef MNEMO_DB_TEXT_H_
#define MNEMO_DB_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "encoder/chunker.h"

namespace mnemo::db::text {

// A loaded built-in encoder. Immutable; every method is safe to call from
// several threads at once.
class TextEncoder {
 public:
  virtual ~TextEncoder() = default;
  // Output dimension.
  virtual int dim() const = 0;
  // Unit-norm embeddings, texts.size() * dim() floats, row-major.
  virtual absl::StatusOr<std::vector<float>> Encode(absl::Span<const std::string> texts) const = 0;
  // Width of one token state of EncodeTokens.
  virtual int token_dim() const = 0;
  // The final token states of each text (the network's last hidden layer
  // before pooling; the same network and truncation as Encode, so at most
  // the encoder's input limit of tokens): one vector per text holding
  // tokens * token_dim() floats, row-major, not normalised. A text without
  // tokens gives an empty vector. For late-interaction (MaxSim) search.
  virtual absl::StatusOr<std::vector<std::vector<float>>> EncodeTokens(
      absl::Span<const std::string> texts) const = 0;
  // Encode and EncodeTokens from one run of the network: the embeddings
  // (texts.size() * dim() floats) and each text's token states.
  virtual absl::StatusOr<std::pair<std::vector<float>, std::vector<std::vector<float>>>>
  EncodeWithTokens(absl::Span<const std::string> texts) const = 0;
  // Token ids of `text` (the BM25 terms), untruncated.
  virtual absl::StatusOr<std::vector<int>> Tokenize(absl::string_view text) const = 0;
  // encoder::ChunkText with this encoder's tokenizer as the token counter.
  virtual absl::StatusOr<std::vector<encoder::TextChunk>> Chunk(
      absl::string_view text, const encoder::ChunkerOptions& options) const = 0;
  // encoder::SplitSentences.
  virtual std::vector<std::pair<size_t, size_t>> SplitSentences(absl::string_view text) const = 0;
};

// Output dimension of the built-in encoder `name`; INVALID_ARGUMENT naming
// the accepted values when the name is unknown. Needs no assets.
absl::StatusOr<uint32_t> EncoderDim(absl::string_view name);

// The loaded encoder `name` from <encoder_dir>/<name>. Loads the plugin and
// the model on the first call for a (directory, name) pair and returns the
// same object afterwards, for the life of the process (thread-safe;
// concurrent first calls load once). FAILED_PRECONDITION "encoder <name> is
// not available: ..." when encoder_dir is empty, the assets are missing or
// unreadable, or the plugin cannot be loaded (a failure is not remembered:
// a later call tries again). INVALID_ARGUMENT for an unknown name.
//
// The plugin is looked up at $MNEMO_TEXT_PLUGIN, then at the path the
// build produced it, then next to the running executable and in ../lib.
absl::StatusOr<const TextEncoder*> GetEncoder(const std::string& encoder_dir,
                                              absl::string_view name);

// The snippet of SearchOptions::highlight: of the sentences [begin, end) of
// `chunk_text`, the one with the most occurrences of the query's words
// (ties and no occurrence: the earliest), every occurrence wrapped as
// [[word]]. Query words are runs of ASCII letters and digits in `query`;
// they match whole such runs of the text, ignoring ASCII case. No
// sentences gives "".
std::string MakeSnippet(absl::string_view chunk_text, absl::string_view query,
                        const std::vector<std::pair<size_t, size_t>>& sentences);

}  // namespace mnemo::db::text

// Entry point of libmnemo_text_plugin.so: loads the encoder `name` from
// `model_dir` into *out. Returns true on success; on failure fills *error.
extern "C" bool MnemoTextPluginLoad(const char* name, const char* model_dir,
                                    std::unique_ptr<mnemo::db::text::TextEncoder>* out,
                                    std::string* error);

#endif  // MNEMO_DB_TEXT_H_
