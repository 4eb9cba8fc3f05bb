// The SDK's JSON filter to wire Filter conversion (see json_filter.h).
#include "client/json_filter.h"

#include <string>
#include <variant>

#include "absl/strings/ascii.h"
#include "common/filter.h"

namespace mnemo::client_internal {
namespace {

void ValueToProto(const filter::FilterValue& value, v1::FilterValue* out) {
  if (const auto* s = std::get_if<std::string>(&value)) {
    out->set_string_value(*s);
  } else if (const auto* d = std::get_if<double>(&value)) {
    out->set_number_value(*d);
  } else {
    out->set_bool_value(std::get<bool>(value));
  }
}

void ConditionToProto(const filter::FieldCondition& cond, v1::FieldCondition* out) {
  out->set_field(cond.field);
  switch (cond.op) {
    case filter::FieldCondition::Op::kEq:
      ValueToProto(cond.values.front(), out->mutable_eq());
      break;
    case filter::FieldCondition::Op::kIn: {
      v1::FilterValues* values = out->mutable_in();
      for (const filter::FilterValue& v : cond.values) ValueToProto(v, values->add_values());
      break;
    }
    case filter::FieldCondition::Op::kRange: {
      v1::Range* range = out->mutable_range();
      if (cond.lower.has_value() && cond.lower_inclusive) range->set_gte(*cond.lower);
      if (cond.lower.has_value() && !cond.lower_inclusive) range->set_gt(*cond.lower);
      if (cond.upper.has_value() && cond.upper_inclusive) range->set_lte(*cond.upper);
      if (cond.upper.has_value() && !cond.upper_inclusive) range->set_lt(*cond.upper);
      break;
    }
  }
}

}  // namespace

absl::StatusOr<v1::Filter> JsonFilterToProto(absl::string_view text) {
  v1::Filter out;
  if (absl::StripAsciiWhitespace(text).empty()) return out;
  absl::StatusOr<filter::Filter> parsed = filter::ParseJsonFilter(text);
  if (!parsed.ok()) return parsed.status();
  for (const filter::FieldCondition& cond : parsed->all_of) {
    ConditionToProto(cond, out.add_all_of());
  }
  return out;
}

}  // namespace mnemo::client_internal
