// The message predicate: the IdPredicate the dense and BM25 searches of
// conversation messages run with, so run, role and time range select
// candidates inside the index scan (never after it), reading the reserved
// attributes of convo_records.h. Internal to db/.
#ifndef MNEMO_DB_CONVO_PREDICATE_H_
#define MNEMO_DB_CONVO_PREDICATE_H_

#include <cstdint>

#include "db/convo.h"
#include "index/filter.h"

namespace mnemo::db {

// Accepts the internal ids of messages `selection` selects. Borrows the
// table and the selection.
class MessagePredicate final : public index::IdPredicate {
 public:
  MessagePredicate(const index::AttributeTable* table, const MessageSelection* selection)
      : table_(table), selection_(selection) {}
  bool Contains(int64_t id) const override;
  bool Accepts(const index::Attributes& attrs) const;

 private:
  const index::AttributeTable* table_;
  const MessageSelection* selection_;
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_CONVO_PREDICATE_H_
