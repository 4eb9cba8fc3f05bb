#include "decoder/continuation_score.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/status/status.h"

namespace mnemo::decoder {

double ContinuationScore::perplexity() const { return std::exp(mean_nll()); }

absl::StatusOr<ContinuationScore> ScoreContinuation(CpuForward* forward, KvCache* cache,
                                                    const InjectedPrompt& prompt,
                                                    absl::Span<const int32_t> target) {
  if (prompt.tokens.empty()) return absl::InvalidArgumentError("the prompt is empty");
  if (target.empty()) return absl::InvalidArgumentError("the target has no tokens");
  // One forward over prompt + target; the logits of position i predict i + 1.
  std::vector<int32_t> ids = prompt.tokens;
  ids.insert(ids.end(), target.begin(), target.end());
  std::vector<float> logits;
  const std::vector<InputRows> injected = prompt.Injected();
  if (absl::Status s = forward->Forward(ids, injected, cache, LogitsMode::kAll, &logits);
      !s.ok()) {
    return s;
  }
  const int vocab = static_cast<int>(logits.size() / ids.size());
  ContinuationScore out;
  const size_t first = prompt.tokens.size() - 1;
  for (size_t i = 0; i < target.size(); ++i) {
    const float* row = logits.data() + (first + i) * vocab;
    const float* best = std::max_element(row, row + vocab);
    double sum = 0;
    for (int v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v] - *best));
    out.nll += std::log(sum) - static_cast<double>(row[target[i]] - *best);
    if (best - row == target[i]) ++out.greedy_correct;
    ++out.tokens;
  }
  return out;
}

}  // namespace mnemo::decoder
