#ifndef MNEMO_INDEX_METRIC_H_
#define MNEMO_INDEX_METRIC_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mnemo::index {

// Similarity of a namespace's vectors.
enum class Metric {
  kInnerProduct,  // score = <q, x>, higher is better
  kL2,            // score = |q - x|^2, lower is better
  kCosine,        // vectors normalised on write and query, then inner product
};

// "ip", "l2", "cosine".
absl::string_view MetricName(Metric metric);
absl::StatusOr<Metric> ParseMetric(absl::string_view name);

// True when a larger score is a better match.
inline bool HigherIsBetter(Metric m) { return m != Metric::kL2; }

}  // namespace mnemo::index

#endif  // MNEMO_INDEX_METRIC_H_
