// The names of the three similarity metrics, "ip", "l2" and "cosine": as
// stored in namespace configs (index/metric.h) and as typed on the command
// line (client/cli). index::Metric and the SDK's mnemo::Metric are distinct
// enums with the same enumerators (kInnerProduct, kL2, kCosine); both are
// spelled and parsed by these templates.
#ifndef MNEMO_COMMON_METRIC_NAMES_H_
#define MNEMO_COMMON_METRIC_NAMES_H_

#include <optional>

#include "absl/strings/string_view.h"

namespace mnemo {

// What a parse error lists.
inline constexpr char kMetricNamesExpected[] = "expected ip, l2 or cosine";

// "ip", "l2" or "cosine"; "unknown" for a value outside the enum.
template <typename MetricEnum>
constexpr const char* MetricNameOf(MetricEnum metric) {
  switch (metric) {
    case MetricEnum::kInnerProduct:
      return "ip";
    case MetricEnum::kL2:
      return "l2";
    case MetricEnum::kCosine:
      return "cosine";
  }
  return "unknown";
}

// The metric named `name` (exactly as MetricNameOf spells it); nullopt for
// any other text.
template <typename MetricEnum>
std::optional<MetricEnum> MetricFromName(absl::string_view name) {
  for (MetricEnum m : {MetricEnum::kInnerProduct, MetricEnum::kL2, MetricEnum::kCosine}) {
    if (name == MetricNameOf(m)) return m;
  }
  return std::nullopt;
}

}  // namespace mnemo

#endif  // MNEMO_COMMON_METRIC_NAMES_H_
