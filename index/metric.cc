#include "index/metric.h"

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/metric_names.h"

namespace mnemo::index {

absl::string_view MetricName(Metric metric) { return MetricNameOf(metric); }

absl::StatusOr<Metric> ParseMetric(absl::string_view name) {
  if (std::optional<Metric> metric = MetricFromName<Metric>(name)) return *metric;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown metric '", name, "' (", kMetricNamesExpected, ")"));
}

}  // namespace mnemo::index
