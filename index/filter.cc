#include "index/filter.h"

#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace mnemo::index {
namespace {

using Json = nlohmann::json;

// Values of different kinds never compare equal: a string "1" is not the
// number 1 and true is not 1. Numbers compare as doubles.
bool ValueEquals(const FilterValue& a, const FilterValue& b) {
  if (a.index() != b.index()) return false;
  return a == b;
}

bool InRange(const FieldCondition& cond, double x) {
  if (cond.lower.has_value()) {
    if (cond.lower_inclusive ? x < *cond.lower : x <= *cond.lower) return false;
  }
  if (cond.upper.has_value()) {
    if (cond.upper_inclusive ? x > *cond.upper : x >= *cond.upper) return false;
  }
  return true;
}

bool ConditionHolds(const std::vector<FilterValue>& attr_values,
                    const FieldCondition& cond) {
  for (const FilterValue& v : attr_values) {
    switch (cond.op) {
      case FieldCondition::Op::kEq:
      case FieldCondition::Op::kIn:
        for (const FilterValue& want : cond.values) {
          if (ValueEquals(v, want)) return true;
        }
        break;
      case FieldCondition::Op::kRange:
        if (const double* d = std::get_if<double>(&v); d && InRange(cond, *d)) {
          return true;
        }
        break;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<Attributes> ParseAttributes(absl::string_view metadata_json) {
  Attributes attrs;
  if (metadata_json.empty()) return attrs;
  try {
    const Json doc = Json::parse(metadata_json.begin(), metadata_json.end());
    if (!doc.is_object()) {
      return absl::InvalidArgumentError("metadata must be a JSON object");
    }
    for (const auto& [field, value] : doc.items()) {
      std::vector<FilterValue> values;
      if (value.is_array()) {
        for (const Json& item : value) {
          if (std::optional<FilterValue> v = ::mnemo::filter::FilterValueFromJson(item)) {
            values.push_back(std::move(*v));
          }
        }
      } else if (std::optional<FilterValue> v = ::mnemo::filter::FilterValueFromJson(value)) {
        values.push_back(std::move(*v));
      }
      if (!values.empty()) attrs[field] = std::move(values);
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata is not valid JSON: ", e.what()));
  }
  return attrs;
}

bool Matches(const Attributes& attrs, const Filter& filter) {
  for (const FieldCondition& cond : filter.all_of) {
    auto it = attrs.find(cond.field);
    if (it == attrs.end()) return false;
    if (!ConditionHolds(it->second, cond)) return false;
  }
  return true;
}

void AttributeTable::Set(int64_t id, Attributes attrs) {
  rows_[id] = std::move(attrs);
}

void AttributeTable::Erase(int64_t id) { rows_.erase(id); }

const Attributes* AttributeTable::Find(int64_t id) const {
  auto it = rows_.find(id);
  return it == rows_.end() ? nullptr : &it->second;
}

bool FilterPredicate::Contains(int64_t id) const {
  if (filter_ == nullptr || filter_->empty()) return true;
  const Attributes* attrs = table_ == nullptr ? nullptr : table_->Find(id);
  if (attrs == nullptr) return false;
  return Matches(*attrs, *filter_);
}

}  // namespace mnemo::index
