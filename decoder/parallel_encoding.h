// APE-style parallel encoding of a context from stored chunks (Yang et
// al., "APE: Faster and Longer Context-Augmented Generation via Adaptive
// Parallel Encoding"): chunks are still encoded independently, but
//   - after a shared prefix (e.g. the BOS token): every chunk is encoded
//     as prefix + chunk from position 0 and stores only its own tokens'
//     K/V, so no chunk's first token becomes an attention sink of its own;
//     the prefix's K/V appear once, at the start of the context;
//   - at query time the context chunks' attention logits are divided by a
//     temperature and their share of the softmax is multiplied by a
//     scaling factor, realigning the attention of independently encoded
//     chunks with a sequential prefill's. Per query head:
//       out = merge(P_prefix+query, P_chunks with scale / temperature and
//                   lse + log(context_scale))       (log-sum-exp merge)
// The chunk part is served as ExternalAttention (decoder/model.h) to a
// session whose cache holds the query from the context's end on, so the
// session, its forward and its decoding stay unchanged. No compute at
// query time beyond the prefix (one forward of its tokens).
#ifndef MNEMO_DECODER_PARALLEL_ENCODING_H_
#define MNEMO_DECODER_PARALLEL_ENCODING_H_

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "decoder/chunk_kv.h"
#include "decoder/model.h"
#include "decoder/session.h"

namespace mnemo::decoder {

struct ParallelEncodingOptions {
  // Tokens every chunk is encoded after (may be empty: plain chunks).
  std::vector<int32_t> prefix;
  // > 0; divides the chunks' attention logits (APE's T; 1 leaves them).
  float temperature = 1.0f;
  // > 0; multiplies the chunks' share of the softmax (APE's S).
  float context_scale = 1.0f;
};

// INVALID_ARGUMENT for a non-positive or non-finite temperature or scale, or
// a prefix token outside the vocabulary.
[[nodiscard]] absl::Status ValidateParallelEncodingOptions(const ModelConfig& config,
                                                           const ParallelEncodingOptions& options);

// `tokens` encoded after `prefix` from position 0 (prefix + tokens in one
// prefill); only the chunk's own K/V are returned (what is stored).
// Errors as EncodeChunk, for the prefix and tokens together.
absl::StatusOr<ChunkKv> EncodeChunkAfterPrefix(const Model& model,
                                               absl::Span<const int32_t> prefix,
                                               absl::Span<const int32_t> tokens);

// The prefix at position 0 and the chunks after it, one after another,
// attended with APE's temperature and scaling. Borrows the model.
class ParallelContext final : public ExternalAttention {
 public:
  // Encodes the prefix (one forward) and places `chunks` (encoded with
  // EncodeChunkAfterPrefix, same prefix) after it. Errors of
  // ValidateParallelEncodingOptions and PlaceChunk; OUT_OF_RANGE past the
  // model's max_seq_len.
  static absl::StatusOr<std::unique_ptr<ParallelContext>> Build(
      const Model& model, const ParallelEncodingOptions& options,
      const std::vector<ChunkKv>& chunks);

  // Where the query goes: prefix and chunks end here.
  int end_position() const { return end_position_; }

  // Points `session` at this context: resets it at end_position() and
  // sets this as its external attention (it must outlive the session's
  // use). Then Append the query as usual.
  [[nodiscard]] absl::Status Attach(DecodeSession* session);

  absl::Status Attend(int layer, const float* q_pre_rope, const float* q_post_rope, int n_tokens,
                      int first_position, attention::PartialResult* result) override;

 private:
  ParallelContext(const Model& model, ParallelEncodingOptions options)
      : model_(model), options_(std::move(options)) {}

  const Model& model_;
  ParallelEncodingOptions options_;
  int prefix_tokens_ = 0, chunk_tokens_ = 0, end_position_ = 0;
  // Per layer, [n_kv_heads, n, head_dim] after RoPE: the prefix's, and the
  // chunks' one after another.
  std::vector<std::vector<float>> prefix_k_, prefix_v_, chunk_k_, chunk_v_;
};

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_PARALLEL_ENCODING_H_
