#include "index/metric.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mnemo::index {

absl::string_view MetricName(Metric metric) {
  switch (metric) {
    case Metric::kInnerProduct:
      return "ip";
    case Metric::kL2:
      return "l2";
    case Metric::kCosine:
      return "cosine";
  }
  return "unknown";
}

absl::StatusOr<Metric> ParseMetric(absl::string_view name) {
  if (name == "ip") return Metric::kInnerProduct;
  if (name == "l2") return Metric::kL2;
  if (name == "cosine") return Metric::kCosine;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown metric '", name, "' (expected ip, l2 or cosine)"));
}

}  // namespace mnemo::index
