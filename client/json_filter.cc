#include "client/json_filter.h"

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace mnemo::client_internal {
namespace {

using json = nlohmann::json;

absl::Status Invalid(const std::string& field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("filter field \"", field, "\": ", what));
}

// A scalar (string, finite number, bool) as a wire FilterValue.
absl::Status ScalarToProto(const std::string& field, const json& value, v1::FilterValue* out) {
  if (value.is_string()) {
    out->set_string_value(value.get<std::string>());
  } else if (value.is_boolean()) {
    out->set_bool_value(value.get<bool>());
  } else if (value.is_number()) {
    double d = value.get<double>();
    if (!std::isfinite(d)) return Invalid(field, "number is not finite");
    out->set_number_value(d);
  } else {
    return Invalid(field, "value must be a string, number or bool");
  }
  return absl::OkStatus();
}

absl::Status OperatorsToProto(const std::string& field, const json& ops,
                              v1::FieldCondition* out) {
  if (ops.empty()) return Invalid(field, "empty operator object");
  if (ops.contains("in")) {
    if (ops.size() != 1) return Invalid(field, "\"in\" cannot be combined with other operators");
    const json& list = ops["in"];
    if (!list.is_array() || list.empty()) {
      return Invalid(field, "\"in\" needs a non-empty array");
    }
    v1::FilterValues* values = out->mutable_in();
    for (const json& v : list) {
      absl::Status s = ScalarToProto(field, v, values->add_values());
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  v1::Range* range = out->mutable_range();
  for (const auto& [op, bound] : ops.items()) {
    if (!bound.is_number()) return Invalid(field, absl::StrCat("\"", op, "\" needs a number"));
    double d = bound.get<double>();
    if (!std::isfinite(d)) return Invalid(field, "bound is not finite");
    if (op == "gt") {
      range->set_gt(d);
    } else if (op == "gte") {
      range->set_gte(d);
    } else if (op == "lt") {
      range->set_lt(d);
    } else if (op == "lte") {
      range->set_lte(d);
    } else {
      return Invalid(field, absl::StrCat("unknown operator \"", op,
                                         "\" (expected in, gt, gte, lt, lte)"));
    }
  }
  if (range->has_gt() && range->has_gte()) return Invalid(field, "both gt and gte");
  if (range->has_lt() && range->has_lte()) return Invalid(field, "both lt and lte");
  const bool has_lower = range->has_gt() || range->has_gte();
  const bool has_upper = range->has_lt() || range->has_lte();
  if (has_lower && has_upper) {
    double lo = range->has_gt() ? range->gt() : range->gte();
    double hi = range->has_lt() ? range->lt() : range->lte();
    if (lo > hi) return Invalid(field, "lower bound above upper bound");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Filter> JsonFilterToProto(absl::string_view text) {
  v1::Filter filter;
  if (absl::StripAsciiWhitespace(text).empty()) return filter;
  json root = json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return absl::InvalidArgumentError("filter is not valid JSON");
  if (!root.is_object()) return absl::InvalidArgumentError("filter must be a JSON object");
  for (const auto& [field, value] : root.items()) {
    if (field.empty()) return absl::InvalidArgumentError("filter has an empty field name");
    v1::FieldCondition* cond = filter.add_all_of();
    cond->set_field(field);
    absl::Status s = value.is_object() ? OperatorsToProto(field, value, cond)
                                       : ScalarToProto(field, value, cond->mutable_eq());
    if (!s.ok()) return s;
  }
  return filter;
}

}  // namespace mnemo::client_internal
