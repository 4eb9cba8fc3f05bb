// The injection model of a namespace (issue 14): everything that turns a
// retrieved chunk into rows of the reference decoder's input-embedding
// space, loaded from a model directory (decoder/models/mnemo-ref-4m-inject:
// config.json, inject.safetensors, tokenizer.model).
//
//   Project      xRAG: the encoder's unit-norm embedding of a chunk -> one
//                decoder-space row, w2 · gelu(w1 · e + b1) + b2.
//   Compress     LUMEN memory: the chunk's text (decoder tokenizer, no BOS,
//                first compressor_max_tokens ids) through a small
//                bidirectional transformer, then memory_tokens learned slots
//                cross-attend to it -> [memory_tokens, decoder_dim]. Run once
//                per chunk at ingest; the store keeps it as PQ codes (pq()).
//   Condition    the live part at recall: each memory row gets a residual
//                MLP of [row ; wq · query + bq].
//   RerankScore  GLIMMER: a scalar from the mean conditioned row and the
//                query (higher = keep).
//
// The tensors and their shapes are listed in encoder/injection_weights.h,
// the compressor's math in encoder/memory_compressor.h, the building blocks
// (Linear by sgemm, GELU, RMS norm, attention) in encoder/injection_ops.h;
// config.json and the lineage (the encoder, decoder and weights this model
// was trained for) in encoder/injection_config.h.
//
// Thread safety: immutable after Load/FromFiles; every const method may be
// called from several threads at once.
//
// Tokenization goes through the decoder's dlopen()ed SentencePiece plugin
// (decoder/tokenizer.h), so a process linking libprotobuf (mnemod) may use
// this class.
#ifndef MNEMO_ENCODER_INJECTION_MODEL_H_
#define MNEMO_ENCODER_INJECTION_MODEL_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "encoder/injection_config.h"
#include "index/pq_codec.h"

namespace mnemo::decoder {
class Tokenizer;
}  // namespace mnemo::decoder

namespace mnemo::encoder {

struct InjectionWeights;

class InjectionModel {
 public:
  // Directory (config.json, inject.safetensors, tokenizer.model) or the same
  // files as bytes (name -> contents, as the CLI sends them at
  // registration). NOT_FOUND for a missing file, DATA_LOSS for a hash/shape
  // mismatch or malformed file (weights, or a tokenizer SentencePiece
  // refuses or whose vocabulary differs from comp.tok_emb), INVALID_ARGUMENT
  // for bad config (naming the field), FAILED_PRECONDITION when the
  // decoder's tokenizer plugin cannot be loaded.
  static absl::StatusOr<std::unique_ptr<InjectionModel>> Load(const std::string& dir);
  static absl::StatusOr<std::unique_ptr<InjectionModel>> FromFiles(
      const std::map<std::string, std::string>& files);
  // {"config.json", "inject.safetensors", "tokenizer.model"}
  static const std::vector<std::string>& FileNames();

  ~InjectionModel();
  InjectionModel(const InjectionModel&) = delete;
  InjectionModel& operator=(const InjectionModel&) = delete;

  const InjectionConfig& config() const;
  const InjectionLineage& lineage() const;

  // Floats of one chunk's memory: memory_tokens * decoder_dim.
  size_t memory_size() const;

  // xRAG: n unit-norm encoder embeddings [n*encoder_dim] -> [n*decoder_dim].
  // INVALID_ARGUMENT when the size is not a positive multiple of
  // encoder_dim or a value is NaN/infinite.
  absl::StatusOr<std::vector<float>> Project(absl::Span<const float> embeddings) const;

  // Memory tokens of each chunk text (pre-live) -> [n*memory_tokens*decoder_dim].
  // Texts are tokenized with the model's tokenizer.model (no BOS), truncated
  // to compressor_max_tokens ids; an empty text (no ids) is INVALID_ARGUMENT.
  absl::StatusOr<std::vector<float>> Compress(absl::Span<const std::string> texts) const;
  // The same from token ids (one vector per chunk, 1..compressor_max_tokens
  // ids each, every id in [0, vocab)): INVALID_ARGUMENT otherwise.
  absl::StatusOr<std::vector<float>> CompressIds(absl::Span<const std::vector<int>> ids) const;
  // The ids Compress feeds the compressor for `text` (truncated).
  absl::StatusOr<std::vector<int>> Tokenize(const std::string& text) const;

  // Live conditioning of one chunk's memory [memory_tokens*decoder_dim] on a
  // query embedding [encoder_dim]. INVALID_ARGUMENT for a wrong size or a
  // NaN/infinite value.
  absl::StatusOr<std::vector<float>> Condition(absl::Span<const float> memory,
                                               absl::Span<const float> query_embedding) const;

  // GLIMMER score of a conditioned memory for the query (higher = better).
  // Same errors as Condition.
  absl::StatusOr<float> RerankScore(absl::Span<const float> conditioned_memory,
                                    absl::Span<const float> query_embedding) const;

  // PQ of memory tokens: the model's codebooks as an index::PqCodec
  // (dim = decoder_dim, m = pq_m, nbits = pq_nbits), one code per memory row.
  const index::PqCodec& pq() const;

 private:
  InjectionModel();

  InjectionConfig config_;
  InjectionLineage lineage_;
  std::unique_ptr<InjectionWeights> weights_;
  std::unique_ptr<decoder::Tokenizer> tokenizer_;
  std::optional<index::PqCodec> pq_;
};

}  // namespace mnemo::encoder

#endif  // MNEMO_ENCODER_INJECTION_MODEL_H_
