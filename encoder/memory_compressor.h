// The LUMEN-style memory encoder of the injection model: one chunk's token
// ids -> memory_tokens rows of the decoder's input space (pre-live).
//
//   X = tok_emb[ids] + pos_emb[0..n)
//   per layer:  h = X + wo · MHA(rms(X) · norm1) + bo        (q,k,v = rows
//               [0,D), [D,2D), [2D,3D) of wqkv · y + bqkv; no mask, no RoPE)
//               X = h + w2 · gelu(w1 · (rms(h) · norm2) + b1) + b2
//   slots:      s = slots + wo · MHA(q = wq · (rms(slots) · xnorm_q) + bq,
//                                    kv = wk|wv · (rms(X) · xnorm_kv) + bk|bv) + bo
//   memory = out.w · (rms(s) · out_norm) + out.b           -> [S, D]
//
// rms(v) = v / sqrt(mean(v^2) + norm_eps); heads = compressor_heads.
#ifndef MNEMO_ENCODER_MEMORY_COMPRESSOR_H_
#define MNEMO_ENCODER_MEMORY_COMPRESSOR_H_

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "encoder/injection_config.h"
#include "encoder/injection_weights.h"

namespace mnemo::encoder {

// Writes the memory of `ids` (1..compressor_max_tokens ids, each in
// [0, weights.vocab_size)) into `out` (memory_tokens * decoder_dim floats).
// INVALID_ARGUMENT for a bad id count or id. Thread-safe (no shared state).
absl::Status CompressChunk(const InjectionConfig& config, const InjectionWeights& weights,
                           absl::Span<const int> ids, absl::Span<float> out);

}  // namespace mnemo::encoder

#endif  // MNEMO_ENCODER_MEMORY_COMPRESSOR_H_
