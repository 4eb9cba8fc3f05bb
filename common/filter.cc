// The metadata filter structs and the parser of their JSON syntax (see filter.h).
#include "common/filter.h"

#include <cmath>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace mnemo::filter {
namespace {

using Json = nlohmann::json;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("filter condition on '", field, "': ", why));
}

absl::StatusOr<FieldCondition> ParseCondition(const std::string& field, const Json& spec) {
  FieldCondition cond;
  cond.field = field;
  if (!spec.is_object()) {
    std::optional<FilterValue> v = FilterValueFromJson(spec);
    if (!v) return Invalid(field, "value must be a string, number or bool");
    cond.op = FieldCondition::Op::kEq;
    cond.values.push_back(std::move(*v));
    return cond;
  }
  if (spec.empty()) return Invalid(field, "empty operator object");
  if (spec.contains("in")) {
    if (spec.size() != 1) return Invalid(field, "'in' cannot be combined");
    const Json& list = spec.at("in");
    if (!list.is_array()) return Invalid(field, "'in' needs an array");
    cond.op = FieldCondition::Op::kIn;
    for (const Json& item : list) {
      std::optional<FilterValue> v = FilterValueFromJson(item);
      if (!v) return Invalid(field, "'in' values must be scalars");
      cond.values.push_back(std::move(*v));
    }
    return cond;
  }
  cond.op = FieldCondition::Op::kRange;
  for (const auto& [op, bound] : spec.items()) {
    if (!bound.is_number()) {
      return Invalid(field, absl::StrCat("'", op, "' needs a number"));
    }
    const double x = bound.get<double>();
    if (op == "gt" || op == "gte") {
      if (cond.lower.has_value()) return Invalid(field, "two lower bounds");
      cond.lower = x;
      cond.lower_inclusive = (op == "gte");
    } else if (op == "lt" || op == "lte") {
      if (cond.upper.has_value()) return Invalid(field, "two upper bounds");
      cond.upper = x;
      cond.upper_inclusive = (op == "lte");
    } else {
      return Invalid(field, absl::StrCat("unknown operator '", op,
                                         "' (expected in, gt, gte, lt, lte)"));
    }
  }
  return cond;
}

}  // namespace

std::optional<FilterValue> FilterValueFromJson(const Json& value) {
  if (value.is_string()) return FilterValue(value.get<std::string>());
  if (value.is_boolean()) return FilterValue(value.get<bool>());
  if (value.is_number()) return FilterValue(value.get<double>());
  return std::nullopt;
}

absl::Status ValidateFilter(const Filter& filter) {
  for (const FieldCondition& cond : filter.all_of) {
    if (cond.field.empty()) return Invalid(cond.field, "empty field name");
    switch (cond.op) {
      case FieldCondition::Op::kEq:
        if (cond.values.size() != 1) {
          return Invalid(cond.field, "equality needs exactly one value");
        }
        break;
      case FieldCondition::Op::kIn:
        if (cond.values.empty()) {
          return Invalid(cond.field, "'in' needs at least one value");
        }
        break;
      case FieldCondition::Op::kRange:
        if (!cond.lower.has_value() && !cond.upper.has_value()) {
          return Invalid(cond.field, "range needs at least one bound");
        }
        if ((cond.lower && !std::isfinite(*cond.lower)) ||
            (cond.upper && !std::isfinite(*cond.upper))) {
          return Invalid(cond.field, "range bounds must be finite");
        }
        if (cond.lower && cond.upper && *cond.lower > *cond.upper) {
          return Invalid(cond.field, "lower bound exceeds upper bound");
        }
        break;
    }
    for (const FilterValue& v : cond.values) {
      if (const double* d = std::get_if<double>(&v); d && !std::isfinite(*d)) {
        return Invalid(cond.field, "values must be finite");
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Filter> ParseJsonFilter(absl::string_view json) {
  Filter filter;
  try {
    const Json doc = Json::parse(json.begin(), json.end());
    if (!doc.is_object()) {
      return absl::InvalidArgumentError("filter must be a JSON object");
    }
    for (const auto& [field, spec] : doc.items()) {
      absl::StatusOr<FieldCondition> cond = ParseCondition(field, spec);
      if (!cond.ok()) return cond.status();
      filter.all_of.push_back(*std::move(cond));
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("filter is not valid JSON: ", e.what()));
  }
  absl::Status valid = ValidateFilter(filter);
  if (!valid.ok()) return valid;
  return filter;
}

}  // namespace mnemo::filter
