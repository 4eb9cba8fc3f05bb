// CacheBlend-style selective recompute of a context built from stored
// chunks (decoder/chunk_kv.h): closes most of the gap between chunks
// encoded independently (each misses attention to the chunks before it)
// and a full sequential prefill, at a fraction of the prefill's compute.
//
// The stored chunks' KV sits in a KV cache at its positions (plain reuse).
// The first chunk is exact (nothing precedes it); every later token is a
// candidate. A few tokens are selected and only those are recomputed,
// through every layer from the selection on, with attention over the whole
// context (the stored KV of the others, the recomputed KV of the selected);
// their new K/V replace the stored ones in the cache. Two selectors:
//   kKvDeviation  CacheBlend: the first `selection_layer` layers are
//                 recomputed for every candidate; at `selection_layer` the
//                 candidates' K/V are recomputed and the tokens whose K/V
//                 deviate most from the stored ones are kept. Layer 0's
//                 K/V depend on the token alone, so selection_layer >= 1.
//   kMissedAttention  cheaper: at layer 0 (whose K/V are exact), each
//                 candidate's query measures the attention mass it puts on
//                 the tokens before its own chunk (what independent
//                 encoding missed; mean over heads); the tokens missing the
//                 most are recomputed from layer 0 on. Costs one query
//                 projection and one attention per candidate.
//   kRecent       the last tokens of the context (those a continuation
//                 attends to most), recomputed from layer 0; no selection
//                 cost.
//   kQueryAttention  the tokens the query (`query`, the question that
//                 follows) attends to most at layer 0 (exact there),
//                 recomputed from layer 0; one query projection and one
//                 attention per query token.
// Compute is counted in multiply-accumulates (projections, SwiGLU and the
// attention's score and value products) against a full causal prefill of
// the same context.
#ifndef MNEMO_DECODER_SELECTIVE_RECOMPUTE_H_
#define MNEMO_DECODER_SELECTIVE_RECOMPUTE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "decoder/model.h"

namespace mnemo::decoder {

enum class BlendSelector { kKvDeviation, kMissedAttention, kRecent, kQueryAttention };

struct BlendOptions {
  // Share of the context's tokens recomputed through the remaining layers,
  // in [0, 1]; 1 recomputes every candidate (a full prefill's KV up to
  // rounding), 0 none (plain reuse up to rounding).
  double recompute_fraction = 0.15;
  BlendSelector selector = BlendSelector::kKvDeviation;
  // kKvDeviation only: the layer whose K/V deviation selects, in
  // [1, n_layers).
  int selection_layer = 1;
  // kQueryAttention only: the tokens that follow the context (the
  // question), at least one.
  std::vector<int32_t> query;
};

struct BlendStats {
  int context_tokens = 0;
  int candidates = 0;  // tokens after the first chunk
  // Cache slots recomputed after the selection, ascending.
  std::vector<int> selected;
  // Per candidate (slot - first chunk's length): its selection score (K/V
  // deviation or missed attention mass).
  std::vector<double> scores;
  int64_t macs = 0;               // spent here
  int64_t full_prefill_macs = 0;  // a full causal prefill of the context
  double compute_fraction() const {
    return full_prefill_macs > 0 ? static_cast<double>(macs) / full_prefill_macs : 0.0;
  }
};

// Multiply-accumulates of a full causal prefill of `n_tokens` tokens from
// an empty cache (every layer's projections, SwiGLU, attention).
int64_t FullPrefillMacs(const ModelConfig& config, int n_tokens);

// Blends the context in `cache`: its slots [0, length()) must hold exactly
// the chunks of `chunk_lengths` in order (each appended with AppendChunk /
// AppendKv, tokens `tokens`, all chunks' tokens concatenated). Rewrites the
// selected tokens' K/V in place and returns what it did.
// INVALID_ARGUMENT for a fraction outside [0, 1], a selection layer outside
// [1, n_layers), lengths that do not sum to the cache's length or to the
// tokens' count, an empty chunk, or a token outside the vocabulary; the
// cache is unchanged on error.
absl::StatusOr<BlendStats> BlendContext(const Model& model, absl::Span<const int32_t> tokens,
                                        absl::Span<const int> chunk_lengths,
                                        const BlendOptions& options, KvCache* cache);

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_SELECTIVE_RECOMPUTE_H_
