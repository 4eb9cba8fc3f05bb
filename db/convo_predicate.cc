// The message predicate (see convo_predicate.h).
#include "db/convo_predicate.h"

#include <string>
#include <variant>
#include <vector>

#include "db/convo_records.h"

namespace mnemo::db {
namespace {

const std::vector<filter::FilterValue>* Find(const index::Attributes& attrs,
                                             absl::string_view name) {
  auto it = attrs.find(name);
  return it == attrs.end() || it->second.size() != 1 ? nullptr : &it->second;
}

bool StringIs(const index::Attributes& attrs, absl::string_view name, absl::string_view want) {
  const std::vector<filter::FilterValue>* v = Find(attrs, name);
  const std::string* s = v == nullptr ? nullptr : std::get_if<std::string>(&v->front());
  return s != nullptr && *s == want;
}

}  // namespace

bool MessagePredicate::Contains(int64_t id) const {
  const index::Attributes* attrs = table_ == nullptr ? nullptr : table_->Find(id);
  return attrs != nullptr && Accepts(*attrs);
}

bool MessagePredicate::Accepts(const index::Attributes& attrs) const {
  const MessageSelection& s = *selection_;
  if (attrs.find(convorecords::kAttrMessage) == attrs.end()) return false;
  if (!s.run_id.empty() && !StringIs(attrs, convorecords::kAttrRun, s.run_id)) return false;
  if (!s.role.empty() && !StringIs(attrs, convorecords::kAttrRole, s.role)) return false;
  if (s.since_ms.has_value() || s.until_ms.has_value()) {
    const std::vector<filter::FilterValue>* v = Find(attrs, convorecords::kAttrTime);
    const double* t = v == nullptr ? nullptr : std::get_if<double>(&v->front());
    if (t == nullptr) return false;
    if (s.since_ms.has_value() && *t < static_cast<double>(*s.since_ms)) return false;
    if (s.until_ms.has_value() && *t > static_cast<double>(*s.until_ms)) return false;
  }
  return true;
}

}  // namespace mnemo::db
