#include "index/filter.h"

#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <variant>

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
  Attributes& row = rows_[id];
  if (!string_index_.empty()) {
    Reindex(id, row, /*add=*/false);
    Reindex(id, attrs, /*add=*/true);
  }
  row = std::move(attrs);
}

void AttributeTable::Erase(int64_t id) {
  auto it = rows_.find(id);
  if (it == rows_.end()) return;
  if (!string_index_.empty()) Reindex(id, it->second, /*add=*/false);
  rows_.erase(it);
}

void AttributeTable::Clear() {
  rows_.clear();
  for (auto& [field, values] : string_index_) values.clear();
}

void AttributeTable::Reindex(int64_t id, const Attributes& attrs, bool add) {
  for (auto& [field, values] : string_index_) {
    auto attr = attrs.find(field);
    if (attr == attrs.end()) continue;
    for (const FilterValue& v : attr->second) {
      const std::string* text = std::get_if<std::string>(&v);
      if (text == nullptr) continue;
      if (add) {
        values[*text].insert(id);
      } else if (auto ids = values.find(*text); ids != values.end()) {
        ids->second.erase(id);
        if (ids->second.empty()) values.erase(ids);
      }
    }
  }
}

void AttributeTable::IndexStringField(absl::string_view field) {
  if (string_index_.contains(field)) return;
  string_index_.emplace(std::string(field), ValueIndex());
  // Only the new field: index every row under it.
  ValueIndex& values = string_index_.find(field)->second;
  for (const auto& [id, attrs] : rows_) {
    auto attr = attrs.find(field);
    if (attr == attrs.end()) continue;
    for (const FilterValue& v : attr->second) {
      if (const std::string* text = std::get_if<std::string>(&v)) values[*text].insert(id);
    }
  }
}

const absl::flat_hash_set<int64_t>* AttributeTable::IdsWithString(absl::string_view field,
                                                                  absl::string_view value) const {
  static const absl::flat_hash_set<int64_t>* const kNone = new absl::flat_hash_set<int64_t>();
  auto f = string_index_.find(field);
  if (f == string_index_.end()) return nullptr;
  auto ids = f->second.find(value);
  return ids == f->second.end() ? kNone : &ids->second;
}

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
