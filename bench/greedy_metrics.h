// Scoring a decoder's logits in the decoder benchmarks (bench_kv_codec,
// bench_kv_reuse): negative log-likelihood of the targets and the greedy
// token.
#ifndef MNEMO_BENCH_GREEDY_METRICS_H_
#define MNEMO_BENCH_GREEDY_METRICS_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mnemo::bench {

// Sum of -log p(targets[r]) over the first `rows` rows of `logits`
// ([rows, vocab], row r predicting targets[r]).
inline double Nll(const std::vector<float>& logits, int vocab,
                  const std::vector<int32_t>& targets, size_t rows) {
  double nll = 0;
  for (size_t r = 0; r < rows; ++r) {
    const float* row = logits.data() + r * vocab;
    const float m = *std::max_element(row, row + vocab);
    double sum = 0;
    for (int i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(row[i] - m));
    nll += -(static_cast<double>(row[targets[r]] - m) - std::log(sum));
  }
  return nll;
}

// The index of the largest logit (the first on ties).
inline int32_t Argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

}  // namespace mnemo::bench

#endif  // MNEMO_BENCH_GREEDY_METRICS_H_
