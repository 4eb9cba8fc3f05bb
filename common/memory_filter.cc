// The memory filter tree, its validation and its JSON form (see
// memory_filter.h).
#include "common/memory_filter.h"

#include <cmath>
#include <exception>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace mnemo::filter {
namespace {

using Json = nlohmann::json;

constexpr struct {
  MemoryOp op;
  const char* name;
} kOps[] = {{MemoryOp::kEq, "eq"},   {MemoryOp::kNe, "ne"},   {MemoryOp::kIn, "in"},
            {MemoryOp::kNin, "nin"}, {MemoryOp::kGt, "gt"},   {MemoryOp::kGte, "gte"},
            {MemoryOp::kLt, "lt"},   {MemoryOp::kLte, "lte"}, {MemoryOp::kContains, "contains"},
            {MemoryOp::kIContains, "icontains"}};

bool IsList(MemoryOp op) { return op == MemoryOp::kIn || op == MemoryOp::kNin; }
bool IsNumeric(MemoryOp op) {
  return op == MemoryOp::kGt || op == MemoryOp::kGte || op == MemoryOp::kLt ||
         op == MemoryOp::kLte;
}
bool IsText(MemoryOp op) { return op == MemoryOp::kContains || op == MemoryOp::kIContains; }

absl::Status Invalid(absl::string_view path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("filter ", path, ": ", why));
}

absl::Status Validate(const MemoryFilter& f, const std::string& path, int depth) {
  if (depth > kMaxMemoryFilterDepth) {
    return Invalid(path, absl::StrCat("nested deeper than ", kMaxMemoryFilterDepth, " levels"));
  }
  switch (f.kind) {
    case MemoryFilter::Kind::kAll:
      return absl::OkStatus();
    case MemoryFilter::Kind::kAnd:
    case MemoryFilter::Kind::kOr: {
      const char* name = f.kind == MemoryFilter::Kind::kAnd ? "AND" : "OR";
      if (f.children.empty()) return Invalid(path, absl::StrCat(name, " needs sub-filters"));
      for (size_t i = 0; i < f.children.size(); ++i) {
        absl::Status st = Validate(f.children[i], absl::StrCat(path, ".", name, "[", i, "]"),
                                   depth + 1);
        if (!st.ok()) return st;
      }
      return absl::OkStatus();
    }
    case MemoryFilter::Kind::kNot:
      if (f.children.size() != 1) return Invalid(path, "NOT needs exactly one sub-filter");
      return Validate(f.children[0], absl::StrCat(path, ".NOT"), depth + 1);
    case MemoryFilter::Kind::kCondition:
      break;
  }
  const std::string where = absl::StrCat(path, ": '", MemoryOpName(f.op), "' on '", f.field, "'");
  if (f.field.empty()) return Invalid(path, "condition with an empty field name");
  if (IsList(f.op)) {
    if (f.values.empty()) return Invalid(where, "needs at least one value");
  } else if (f.values.size() != 1) {
    return Invalid(where, "needs exactly one value");
  }
  for (const FilterValue& v : f.values) {
    const double* d = std::get_if<double>(&v);
    if (d != nullptr && !std::isfinite(*d)) return Invalid(where, "values must be finite");
    if (IsNumeric(f.op) && d == nullptr) return Invalid(where, "needs a number");
    if (IsText(f.op) && !std::holds_alternative<std::string>(v)) {
      return Invalid(where, "needs a string");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<MemoryFilter> Parse(const Json& doc, const std::string& path, int depth);

absl::StatusOr<MemoryFilter> ParseField(const std::string& field, const Json& spec,
                                        const std::string& path) {
  MemoryFilter cond;
  cond.kind = MemoryFilter::Kind::kCondition;
  cond.field = field;
  if (!spec.is_object()) {
    if (spec.is_array()) {
      return Invalid(path, absl::StrCat("field '", field,
                                        "' has an array; use {\"in\": [...]} for membership"));
    }
    std::optional<FilterValue> v = FilterValueFromJson(spec);
    if (!v) return Invalid(path, absl::StrCat("field '", field, "' needs a string, number or bool"));
    cond.values.push_back(std::move(*v));
    return cond;
  }
  if (spec.empty()) return Invalid(path, absl::StrCat("field '", field, "' has no operator"));
  MemoryFilter all;
  all.kind = MemoryFilter::Kind::kAnd;
  for (const auto& [name, arg] : spec.items()) {
    std::optional<MemoryOp> op = MemoryOpFromName(name);
    if (!op) {
      return Invalid(path, absl::StrCat("unknown operator '", name, "' on field '", field,
                                        "' (expected eq, ne, in, nin, gt, gte, lt, lte, "
                                        "contains, icontains)"));
    }
    MemoryFilter one = cond;
    one.op = *op;
    if (IsList(*op)) {
      if (!arg.is_array()) {
        return Invalid(path, absl::StrCat("'", name, "' on field '", field, "' needs an array"));
      }
      for (const Json& item : arg) {
        std::optional<FilterValue> v = FilterValueFromJson(item);
        if (!v) {
          return Invalid(path,
                         absl::StrCat("'", name, "' on field '", field, "' takes scalars only"));
        }
        one.values.push_back(std::move(*v));
      }
    } else {
      std::optional<FilterValue> v = FilterValueFromJson(arg);
      if (!v) {
        return Invalid(path, absl::StrCat("'", name, "' on field '", field,
                                          "' needs a string, number or bool"));
      }
      one.values.push_back(std::move(*v));
    }
    all.children.push_back(std::move(one));
  }
  if (all.children.size() == 1) return std::move(all.children[0]);
  return all;
}

absl::StatusOr<MemoryFilter> Parse(const Json& doc, const std::string& path, int depth) {
  if (depth > kMaxMemoryFilterDepth) {
    return Invalid(path, absl::StrCat("nested deeper than ", kMaxMemoryFilterDepth, " levels"));
  }
  if (!doc.is_object()) return Invalid(path, "must be a JSON object");
  std::vector<MemoryFilter> parts;
  for (const auto& [key, value] : doc.items()) {
    if (key == "AND" || key == "OR" || key == "and" || key == "or") {
      const bool is_and = key == "AND" || key == "and";
      const std::string sub = absl::StrCat(path, ".", is_and ? "AND" : "OR");
      if (!value.is_array() || value.empty()) {
        return Invalid(sub, "needs a non-empty array of sub-filters");
      }
      MemoryFilter node;
      node.kind = is_and ? MemoryFilter::Kind::kAnd : MemoryFilter::Kind::kOr;
      for (size_t i = 0; i < value.size(); ++i) {
        absl::StatusOr<MemoryFilter> child =
            Parse(value[i], absl::StrCat(sub, "[", i, "]"), depth + 1);
        if (!child.ok()) return child.status();
        node.children.push_back(*std::move(child));
      }
      parts.push_back(std::move(node));
    } else if (key == "NOT" || key == "not") {
      absl::StatusOr<MemoryFilter> child = Parse(value, absl::StrCat(path, ".NOT"), depth + 1);
      if (!child.ok()) return child.status();
      MemoryFilter node;
      node.kind = MemoryFilter::Kind::kNot;
      node.children.push_back(*std::move(child));
      parts.push_back(std::move(node));
    } else {
      absl::StatusOr<MemoryFilter> cond = ParseField(key, value, path);
      if (!cond.ok()) return cond.status();
      parts.push_back(*std::move(cond));
    }
  }
  if (parts.empty()) return MemoryFilter();
  if (parts.size() == 1) return std::move(parts[0]);
  MemoryFilter node;
  node.kind = MemoryFilter::Kind::kAnd;
  node.children = std::move(parts);
  return node;
}

Json ValueToJson(const FilterValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* d = std::get_if<double>(&v)) return *d;
  return std::get<bool>(v);
}

Json ToJson(const MemoryFilter& f) {
  switch (f.kind) {
    case MemoryFilter::Kind::kAll:
      return Json::object();
    case MemoryFilter::Kind::kAnd:
    case MemoryFilter::Kind::kOr: {
      Json list = Json::array();
      for (const MemoryFilter& c : f.children) list.push_back(ToJson(c));
      return Json{{f.kind == MemoryFilter::Kind::kAnd ? "AND" : "OR", std::move(list)}};
    }
    case MemoryFilter::Kind::kNot:
      return Json{{"NOT", f.children.empty() ? Json::object() : ToJson(f.children[0])}};
    case MemoryFilter::Kind::kCondition:
      break;
  }
  Json arg;
  if (IsList(f.op)) {
    arg = Json::array();
    for (const FilterValue& v : f.values) arg.push_back(ValueToJson(v));
  } else if (!f.values.empty()) {
    arg = ValueToJson(f.values[0]);
  }
  return Json{{f.field, Json{{MemoryOpName(f.op), std::move(arg)}}}};
}

}  // namespace

const char* MemoryOpName(MemoryOp op) {
  for (const auto& entry : kOps) {
    if (entry.op == op) return entry.name;
  }
  return "?";
}

std::optional<MemoryOp> MemoryOpFromName(absl::string_view name) {
  for (const auto& entry : kOps) {
    if (name == entry.name) return entry.op;
  }
  return std::nullopt;
}

absl::Status ValidateMemoryFilter(const MemoryFilter& filter) {
  return Validate(filter, "$", 0);
}

absl::StatusOr<MemoryFilter> ParseMemoryFilterJson(absl::string_view json) {
  Json doc;
  try {
    doc = Json::parse(json.begin(), json.end());
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("filter is not valid JSON: ", e.what()));
  }
  absl::StatusOr<MemoryFilter> parsed = Parse(doc, "$", 0);
  if (!parsed.ok()) return parsed.status();
  absl::Status valid = ValidateMemoryFilter(*parsed);
  if (!valid.ok()) return valid;
  return parsed;
}

std::string MemoryFilterToJson(const MemoryFilter& filter) { return ToJson(filter).dump(); }

}  // namespace mnemo::filter
