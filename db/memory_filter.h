// Evaluating memory filters (common/memory_filter.h) against the attribute
// table of a namespace, inside the index search: MemoryPredicate is the
// IdPredicate the dense and BM25 searches of memories run with, so scope,
// expiry, validity time and the user's filter select candidates during the
// scan, never after it. Internal to db/.
#ifndef MNEMO_DB_MEMORY_FILTER_H_
#define MNEMO_DB_MEMORY_FILTER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "db/memory.h"
#include "index/filter.h"

namespace mnemo::db {

// The attribute a filter field reads: the reserved "@" name of a scope or
// time field (user_id, agent_id, run_id, created_at, updated_at,
// expires_at, valid_at, invalid_at), the key itself for "metadata.<key>",
// else the field as a metadata key.
std::string MemoryAttributeName(absl::string_view field);

// The filter with every field replaced by its attribute name (validated
// first: INVALID_ARGUMENT as ValidateMemoryFilter).
absl::StatusOr<MemoryFilter> CompileMemoryFilter(const MemoryFilter& filter);

// Does `attrs` satisfy a compiled filter (semantics in memory_filter.h)?
bool MatchesMemoryFilter(const index::Attributes& attrs, const MemoryFilter& compiled);

// What a memory search, list or duplicate check selects.
struct MemorySelection {
  MemoryScope scope;
  // true: every scope field must equal the given one, unset ones included
  // (absent); false: only the set fields are compared.
  bool exact_scope = false;
  MemoryFilter filter;  // compiled (CompileMemoryFilter)
  int64_t now_ms = 0;
  bool show_expired = false;
  std::optional<int64_t> valid_from_ms;
  std::optional<int64_t> valid_to_ms;
};

// Accepts the internal ids of live memories the selection selects.
// Borrows the table and the selection.
class MemoryPredicate final : public index::IdPredicate {
 public:
  MemoryPredicate(const index::AttributeTable* table, const MemorySelection* selection)
      : table_(table), selection_(selection) {}
  bool Contains(int64_t id) const override;
  bool Accepts(const index::Attributes& attrs) const;

 private:
  const index::AttributeTable* table_;
  const MemorySelection* selection_;
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_MEMORY_FILTER_H_
