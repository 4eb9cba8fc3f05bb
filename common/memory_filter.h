// The filter algebra of agent memories (db/memory.h): AND / OR / NOT over
// field conditions eq, ne, in, nin, gt, gte, lt, lte, contains, icontains.
// Its plain tree and the one parser of its JSON form, shared by the store
// (which evaluates it inside the index search, db/memory_filter.h), the
// server (which builds it from the wire) and the SDK and CLI (which turn the
// user's JSON into the wire tree). No FAISS and no protobuf here.
//
// JSON form (mem0's):
//   {}                                         matches everything
//   {"field": "v"}                             eq (string, number or bool)
//   {"field": {"ne": 3}}                       one operator
//   {"field": {"gte": 1, "lt": 5}}             several operators, ANDed
//   {"field": {"in": ["a", "b"]}}              in / nin take an array of scalars
//   {"field": {"icontains": "coffee"}}         substring (i: ASCII case ignored)
//   {"AND": [F, F, ...]}  {"OR": [F, ...]}     one or more sub-filters
//   {"NOT": F}                                 one sub-filter
// Several keys in one object are ANDed. Fields: the memory's scope and time
// fields (user_id, agent_id, run_id, created_at, updated_at, expires_at,
// valid_at, invalid_at; times in Unix ms) and its metadata's top-level keys
// (also as "metadata.<key>").
//
// Semantics: a condition on a missing field is false, except ne and nin,
// which are true (they are NOT eq / NOT in). Arrays in metadata match eq /
// in / contains when any element does. gt..lte compare numbers only;
// contains / icontains strings only.
#ifndef MNEMO_COMMON_MEMORY_FILTER_H_
#define MNEMO_COMMON_MEMORY_FILTER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/filter.h"

namespace mnemo::filter {

enum class MemoryOp { kEq, kNe, kIn, kNin, kGt, kGte, kLt, kLte, kContains, kIContains };

struct MemoryFilter {
  enum class Kind { kAll, kAnd, kOr, kNot, kCondition };
  Kind kind = Kind::kAll;
  // kAnd / kOr: one or more; kNot: exactly one.
  std::vector<MemoryFilter> children;
  // kCondition only.
  std::string field;
  MemoryOp op = MemoryOp::kEq;
  // in / nin: one or more scalars; every other operator exactly one (a
  // finite number for gt..lte, a string for contains / icontains).
  std::vector<FilterValue> values;

  bool empty() const { return kind == Kind::kAll; }
};

// Deepest nesting of AND / OR / NOT a filter may have.
inline constexpr int kMaxMemoryFilterDepth = 32;

// "eq", "ne", ... ; and back (nullopt for unknown names).
const char* MemoryOpName(MemoryOp op);
std::optional<MemoryOp> MemoryOpFromName(absl::string_view name);

// Checks the structure (see MemoryFilter): INVALID_ARGUMENT naming the
// offending node by its path, e.g. "filter $.AND[1].NOT: ...".
absl::Status ValidateMemoryFilter(const MemoryFilter& filter);

// Parses and validates the JSON form above. INVALID_ARGUMENT naming the
// problem for anything else ("" included: pass "{}" for no filter).
absl::StatusOr<MemoryFilter> ParseMemoryFilterJson(absl::string_view json);

// The canonical JSON form of a valid filter (explicit AND / OR / NOT and
// one operator object per condition); parses back to the same tree.
std::string MemoryFilterToJson(const MemoryFilter& filter);

}  // namespace mnemo::filter

#endif  // MNEMO_COMMON_MEMORY_FILTER_H_
