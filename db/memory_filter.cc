// Memory filter evaluation and the memory predicate (see memory_filter.h).
#include "db/memory_filter.h"

#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "db/memory_records.h"

namespace mnemo::db {
namespace {

using filter::FilterValue;
using filter::MemoryOp;

constexpr std::pair<absl::string_view, absl::string_view> kReserved[] = {
    {"user_id", memrecords::kAttrUser},         {"agent_id", memrecords::kAttrAgent},
    {"run_id", memrecords::kAttrRun},           {"created_at", memrecords::kAttrCreated},
    {"updated_at", memrecords::kAttrUpdated},   {"expires_at", memrecords::kAttrExpires},
    {"valid_at", memrecords::kAttrValid},       {"invalid_at", memrecords::kAttrInvalid},
};

const std::vector<FilterValue>* Find(const index::Attributes& attrs, absl::string_view name) {
  auto it = attrs.find(name);
  return it == attrs.end() ? nullptr : &it->second;
}

std::optional<double> Number(const index::Attributes& attrs, absl::string_view name) {
  const std::vector<FilterValue>* v = Find(attrs, name);
  if (v == nullptr || v->empty()) return std::nullopt;
  const double* d = std::get_if<double>(&v->front());
  if (d == nullptr) return std::nullopt;
  return *d;
}

bool StringIs(const index::Attributes& attrs, absl::string_view name, absl::string_view want) {
  const std::vector<FilterValue>* v = Find(attrs, name);
  if (v == nullptr || v->size() != 1) return false;
  const std::string* s = std::get_if<std::string>(&v->front());
  return s != nullptr && *s == want;
}

bool AnyEquals(const std::vector<FilterValue>& have, const FilterValue& want) {
  for (const FilterValue& v : have) {
    if (v == want) return true;
  }
  return false;
}

bool Condition(const index::Attributes& attrs, const MemoryFilter& f) {
  const std::vector<FilterValue>* have = Find(attrs, f.field);
  switch (f.op) {
    case MemoryOp::kEq:
      return have != nullptr && AnyEquals(*have, f.values[0]);
    case MemoryOp::kNe:
      return have == nullptr || !AnyEquals(*have, f.values[0]);
    case MemoryOp::kIn:
    case MemoryOp::kNin: {
      bool any = false;
      if (have != nullptr) {
        for (const FilterValue& want : f.values) {
          if (AnyEquals(*have, want)) {
            any = true;
            break;
          }
        }
      }
      return f.op == MemoryOp::kIn ? any : !any;
    }
    case MemoryOp::kGt:
    case MemoryOp::kGte:
    case MemoryOp::kLt:
    case MemoryOp::kLte: {
      if (have == nullptr) return false;
      const double bound = std::get<double>(f.values[0]);
      for (const FilterValue& v : *have) {
        const double* d = std::get_if<double>(&v);
        if (d == nullptr) continue;
        if ((f.op == MemoryOp::kGt && *d > bound) || (f.op == MemoryOp::kGte && *d >= bound) ||
            (f.op == MemoryOp::kLt && *d < bound) || (f.op == MemoryOp::kLte && *d <= bound)) {
          return true;
        }
      }
      return false;
    }
    case MemoryOp::kContains:
    case MemoryOp::kIContains: {
      if (have == nullptr) return false;
      const std::string& needle = std::get<std::string>(f.values[0]);
      for (const FilterValue& v : *have) {
        const std::string* s = std::get_if<std::string>(&v);
        if (s == nullptr) continue;
        if (f.op == MemoryOp::kContains ? absl::StrContains(*s, needle)
                                        : absl::StrContains(absl::AsciiStrToLower(*s),
                                                             absl::AsciiStrToLower(needle))) {
          return true;
        }
      }
      return false;
    }
  }
  return false;
}

void Rename(MemoryFilter* f) {
  if (f->kind == MemoryFilter::Kind::kCondition) f->field = MemoryAttributeName(f->field);
  for (MemoryFilter& c : f->children) Rename(&c);
}

}  // namespace

std::string MemoryAttributeName(absl::string_view field) {
  for (const auto& [name, attr] : kReserved) {
    if (field == name) return std::string(attr);
  }
  if (absl::StartsWith(field, "metadata.")) return std::string(field.substr(9));
  return std::string(field);
}

absl::StatusOr<MemoryFilter> CompileMemoryFilter(const MemoryFilter& filter) {
  absl::Status valid = filter::ValidateMemoryFilter(filter);
  if (!valid.ok()) return valid;
  MemoryFilter out = filter;
  Rename(&out);
  return out;
}

bool MatchesMemoryFilter(const index::Attributes& attrs, const MemoryFilter& f) {
  switch (f.kind) {
    case MemoryFilter::Kind::kAll:
      return true;
    case MemoryFilter::Kind::kAnd:
      for (const MemoryFilter& c : f.children) {
        if (!MatchesMemoryFilter(attrs, c)) return false;
      }
      return true;
    case MemoryFilter::Kind::kOr:
      for (const MemoryFilter& c : f.children) {
        if (MatchesMemoryFilter(attrs, c)) return true;
      }
      return false;
    case MemoryFilter::Kind::kNot:
      return !MatchesMemoryFilter(attrs, f.children[0]);
    case MemoryFilter::Kind::kCondition:
      return Condition(attrs, f);
  }
  return false;
}

bool MemoryPredicate::Contains(int64_t id) const {
  const index::Attributes* attrs = table_ == nullptr ? nullptr : table_->Find(id);
  return attrs != nullptr && Accepts(*attrs);
}

bool MemoryPredicate::Accepts(const index::Attributes& attrs) const {
  const MemorySelection& s = *selection_;
  const std::pair<const std::string*, absl::string_view> scope[] = {
      {&s.scope.user_id, memrecords::kAttrUser},
      {&s.scope.agent_id, memrecords::kAttrAgent},
      {&s.scope.run_id, memrecords::kAttrRun}};
  for (const auto& [want, name] : scope) {
    if (!want->empty()) {
      if (!StringIs(attrs, name, *want)) return false;
    } else if (s.exact_scope && Find(attrs, name) != nullptr) {
      return false;
    }
  }
  if (Find(attrs, memrecords::kAttrMemory) == nullptr) return false;
  if (!s.show_expired) {
    std::optional<double> expires = Number(attrs, memrecords::kAttrExpires);
    if (expires.has_value() && *expires <= static_cast<double>(s.now_ms)) return false;
  }
  if (s.valid_to_ms.has_value()) {
    std::optional<double> valid = Number(attrs, memrecords::kAttrValid);
    if (valid.has_value() && *valid > static_cast<double>(*s.valid_to_ms)) return false;
  }
  if (s.valid_from_ms.has_value()) {
    std::optional<double> invalid = Number(attrs, memrecords::kAttrInvalid);
    if (invalid.has_value() && *invalid <= static_cast<double>(*s.valid_from_ms)) return false;
  }
  return MatchesMemoryFilter(attrs, s.filter);
}

}  // namespace mnemo::db
