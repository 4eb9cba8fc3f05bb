// Evaluation of metadata filters (common/filter.h) and the in-memory
// attribute table they are evaluated against. A chunk's metadata is a JSON
// object; its top-level scalar fields (string, number, bool) become
// attributes. Arrays of scalars are attributes
// too: an equality / in condition matches when any element matches. Nested
// objects and nulls are ignored.
#ifndef MNEMO_INDEX_FILTER_H_
#define MNEMO_INDEX_FILTER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/filter.h"

namespace mnemo::index {

// The filter structs and their JSON parser live in common/filter.h (one
// grammar for the index, the server and the SDK); these names are theirs.
using ::mnemo::filter::FieldCondition;
using ::mnemo::filter::Filter;
using ::mnemo::filter::FilterValue;
using ::mnemo::filter::ParseJsonFilter;
using ::mnemo::filter::ValidateFilter;

// Scalar attributes of one record.
using Attributes = absl::flat_hash_map<std::string, std::vector<FilterValue>>;

// Parses a metadata JSON object into attributes. Empty input = no attributes.
// INVALID_ARGUMENT when the text is not a JSON object.
absl::StatusOr<Attributes> ParseAttributes(absl::string_view metadata_json);

// Does `attrs` satisfy `filter`? A missing field fails any condition on it.
bool Matches(const Attributes& attrs, const Filter& filter);

// Predicate over internal ids, evaluated inside the index search (wrapped
// into a FAISS IDSelector), never by post-filtering.
class IdPredicate {
 public:
  virtual ~IdPredicate() = default;
  virtual bool Contains(int64_t id) const = 0;
};

// Attributes of every live record of a namespace, keyed by internal id.
// Not thread-safe: the owner serialises writers against readers.
class AttributeTable {
 public:
  void Set(int64_t id, Attributes attrs);
  void Erase(int64_t id);
  void Clear() { rows_.clear(); }
  size_t size() const { return rows_.size(); }
  // nullptr when the id has no attributes.
  const Attributes* Find(int64_t id) const;

 private:
  absl::flat_hash_map<int64_t, Attributes> rows_;
};

// IdPredicate accepting ids whose attributes match `filter`. Borrows both.
class FilterPredicate final : public IdPredicate {
 public:
  FilterPredicate(const AttributeTable* table, const Filter* filter)
      : table_(table), filter_(filter) {}
  bool Contains(int64_t id) const override;

 private:
  const AttributeTable* table_;
  const Filter* filter_;
};

}  // namespace mnemo::index

#endif  // MNEMO_INDEX_FILTER_H_
