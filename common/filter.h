// The metadata filter: its plain structs and the one parser of its JSON
// syntax, shared by the index (which evaluates filters, index/filter.h), the
// server (which builds them from the wire) and the SDK and CLI (which turn
// the user's JSON into the wire Filter, client/json_filter.h). No FAISS and
// no protobuf here, so the SDK can link it.
//
// JSON syntax:
//   {"field": "value"}                   equality (string, number or bool)
//   {"field": {"in": [v1, v2]}}          membership (one or more scalars)
//   {"field": {"gte": 1, "lt": 5}}       numeric range (gt, gte, lt, lte)
// Several fields are ANDed; "{}" is the empty filter.
#ifndef MNEMO_COMMON_FILTER_H_
#define MNEMO_COMMON_FILTER_H_

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace mnemo::filter {

using FilterValue = std::variant<std::string, double, bool>;

struct FieldCondition {
  enum class Op { kEq, kIn, kRange };
  std::string field;
  Op op = Op::kEq;
  // kEq: exactly one value; kIn: one or more values.
  std::vector<FilterValue> values;
  // kRange: at least one bound; numbers only.
  std::optional<double> lower;
  bool lower_inclusive = true;
  std::optional<double> upper;
  bool upper_inclusive = true;
};

// Conjunction of conditions. An empty filter matches everything.
struct Filter {
  std::vector<FieldCondition> all_of;
  bool empty() const { return all_of.empty(); }
};

// Checks structure: non-empty field names, eq with one value, in with at
// least one value, finite values, range with at least one finite bound and
// lower <= upper. Returns INVALID_ARGUMENT naming the offending condition.
absl::Status ValidateFilter(const Filter& filter);

// Parses and validates the JSON syntax above. INVALID_ARGUMENT on anything
// else: text that is not a JSON object (the empty string included), nulls,
// arrays and objects as values, an empty operator object, "in" combined
// with another operator or without an array of scalars, unknown operators,
// two lower or two upper bounds, non-numeric bounds.
absl::StatusOr<Filter> ParseJsonFilter(absl::string_view json);

// A JSON scalar (string, number, bool) as a FilterValue; nullopt for null,
// arrays and objects. What a filter value or a metadata attribute may be.
std::optional<FilterValue> FilterValueFromJson(const nlohmann::json& value);

}  // namespace mnemo::filter

#endif  // MNEMO_COMMON_FILTER_H_
