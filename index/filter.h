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
#include "absl/container/flat_hash_set.h"
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
  void Clear();
  size_t size() const { return rows_.size(); }
  // nullptr when the id has no attributes.
  const Attributes* Find(int64_t id) const;

  // Keeps an inverted index of the string values of `field` (from the rows
  // already set, then on every Set / Erase), so that IdsWithString answers
  // without a scan: a query planner's way to the few ids of a selective
  // condition (a memory's user or run). Indexing a field twice is a no-op.
  void IndexStringField(absl::string_view field);
  // The ids whose attribute `field` holds the string `value` (any element
  // of an array); nullptr when `field` is not indexed. The set stays valid
  // until the next Set, Erase or Clear.
  const absl::flat_hash_set<int64_t>* IdsWithString(absl::string_view field,
                                                    absl::string_view value) const;

 private:
  using ValueIndex = absl::flat_hash_map<std::string, absl::flat_hash_set<int64_t>>;
  // Adds (add = true) or removes `id` under each indexed string of `attrs`.
  void Reindex(int64_t id, const Attributes& attrs, bool add);

  absl::flat_hash_map<int64_t, Attributes> rows_;
  absl::flat_hash_map<std::string, ValueIndex> string_index_;  // field -> value -> ids
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
