// How well a decoder predicts a target continuation after a prompt (which
// may carry injected memory, decoder/injection_prompt.h): the target's
// negative log-likelihood under teacher forcing and whether greedy decoding
// reproduces it exactly. `mnemo-decode score` and the injection fidelity
// benchmark (bench/bench_inject_fidelity.cc) score with this.
#ifndef MNEMO_DECODER_CONTINUATION_SCORE_H_
#define MNEMO_DECODER_CONTINUATION_SCORE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "decoder/injection_prompt.h"
#include "decoder/model.h"

namespace mnemo::decoder {

struct ContinuationScore {
  double nll = 0;   // sum over the target's tokens of -log p(token), nats
  int tokens = 0;   // target tokens scored
  // Target tokens that are the argmax of their position's logits. When all
  // are (greedy_exact), greedy decoding after the prompt produces exactly
  // the target.
  int greedy_correct = 0;
  bool greedy_exact() const { return tokens > 0 && greedy_correct == tokens; }
  double mean_nll() const { return tokens > 0 ? nll / tokens : 0.0; }
  double perplexity() const;
};

// Runs `prompt` (with its rows) and then `target` through `forward` on top
// of what `cache` holds (e.g. stored chunk KV; cleared by the caller) and
// scores `target`. INVALID_ARGUMENT for an empty prompt or target, or the
// forward's errors (bad rows, ids outside the vocabulary, no room).
absl::StatusOr<ContinuationScore> ScoreContinuation(CpuForward* forward, KvCache* cache,
                                                    const InjectedPrompt& prompt,
                                                    absl::Span<const int32_t> target);

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_CONTINUATION_SCORE_H_
