// The tensors of an injection model's inject.safetensors (F32, torch Linear
// convention W [out, in]), checked against its config: every tensor present
// with its exact shape and finite values, and the file's sha256 equal to
// config.json's weights_sha256. D = decoder_dim, E = encoder_dim,
// F = compressor_ffn, V = vocabulary, T = compressor_max_tokens,
// S = memory_tokens.
#ifndef MNEMO_ENCODER_INJECTION_WEIGHTS_H_
#define MNEMO_ENCODER_INJECTION_WEIGHTS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "encoder/injection_config.h"

namespace mnemo::decoder {
class SafetensorsFile;
}  // namespace mnemo::decoder

namespace mnemo::encoder {

using Tensor = absl::Span<const float>;

// comp.layers.{l}.*: a pre-norm bidirectional transformer layer.
struct CompressorLayerWeights {
  Tensor norm1, wqkv, bqkv, wo, bo;  // [D], [3D, D], [3D], [D, D], [D]
  Tensor norm2, w1, b1, w2, b2;      // [D], [F, D], [F], [D, F], [D]
};

struct InjectionWeights {
  // xRAG projector: proj.w1 [D, E], proj.b1 [D], proj.w2 [D, D], proj.b2 [D].
  Tensor proj_w1, proj_b1, proj_w2, proj_b2;
  // Compressor: comp.tok_emb [V, D], comp.pos_emb [T, D], layers, slots
  // [S, D], xnorm_q/xnorm_kv [D], xattn.w{q,k,v,o} [D, D] and b* [D],
  // out_norm [D], out.w [D, D], out.b [D].
  Tensor tok_emb, pos_emb;
  int vocab_size = 0;
  std::vector<CompressorLayerWeights> layers;
  Tensor slots, xnorm_q, xnorm_kv;
  Tensor xattn_wq, xattn_wk, xattn_wv, xattn_wo, xattn_bq, xattn_bk, xattn_bv, xattn_bo;
  Tensor out_norm, out_w, out_b;
  // Live conditioning: live.wq [D, E], live.bq [D], live.w1 [D, 2D],
  // live.b1 [D], live.w2 [D, D], live.b2 [D].
  Tensor live_wq, live_bq, live_w1, live_b1, live_w2, live_b2;
  // GLIMMER reranker: rerank.w1 [D, 3D], rerank.b1 [D], rerank.w2 [1, D],
  // rerank.b2 [1].
  Tensor rerank_w1, rerank_b1, rerank_w2, rerank_b2;
  // pq.centroids [pq_m, 2^pq_nbits, D / pq_m].
  Tensor pq_centroids;

  // The file the spans point into.
  std::shared_ptr<const decoder::SafetensorsFile> file;

  // Parses `bytes` (named `source` in errors). DATA_LOSS when their sha256
  // is not `config`'s weights_sha256 (`expected_sha256`), the file is
  // malformed, or a tensor is missing, not F32, misshapen or not finite.
  static absl::StatusOr<std::unique_ptr<InjectionWeights>> Parse(
      std::string bytes, const InjectionConfig& config, const std::string& expected_sha256,
      const std::string& source);
};

// Lowercase hex sha256 of `bytes` (OpenSSL).
std::string Sha256Hex(const std::string& bytes);

}  // namespace mnemo::encoder

#endif  // MNEMO_ENCODER_INJECTION_WEIGHTS_H_
