// Choosing the next token from logits: greedy, or sampled with temperature,
// top-k and top-p (nucleus), reproducible with a seed.
#ifndef MNEMO_DECODER_SAMPLING_H_
#define MNEMO_DECODER_SAMPLING_H_

#include <cstdint>
#include <random>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace mnemo::decoder {

struct SamplingOptions {
  // 0 picks the argmax (greedy; top_k, top_p and seed are ignored). Larger
  // flattens the distribution: p ~ exp(logit / temperature).
  float temperature = 0.0f;
  // Keep only the k most likely tokens; 0 keeps all.
  int top_k = 0;
  // Keep the smallest set of most likely tokens whose probability reaches
  // top_p (after top_k); 1 keeps all. In (0, 1].
  float top_p = 1.0f;
  // Seed of the sampler's generator: equal seeds and logits give equal tokens.
  uint64_t seed = 0;
};

// INVALID_ARGUMENT naming the bad field: temperature negative or not
// finite, top_k negative, top_p outside (0, 1].
absl::Status ValidateSamplingOptions(const SamplingOptions& options);

// Index of the largest logit (the lowest index on ties).
int ArgMax(absl::Span<const float> logits);

// Not thread-safe (owns a random generator).
class Sampler {
 public:
  // `options` must be valid (ValidateSamplingOptions).
  explicit Sampler(const SamplingOptions& options);
  // The next token given the logits of the last position.
  int Sample(absl::Span<const float> logits);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_SAMPLING_H_
