// Checks of caller input shared by the store's operations: ids, metadata,
// text sizes, id lists and StoreOptions, against the configured Limits.
// Each returns INVALID_ARGUMENT (malformed) or RESOURCE_EXHAUSTED (too large
// / too many) with a message naming what is wrong. Internal to db/.
#ifndef MNEMO_DB_VALIDATION_H_
#define MNEMO_DB_VALIDATION_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "db/store.h"
#include "index/filter.h"

namespace mnemo::db {

// An id of 1..limits.max_id_bytes bytes; `kind` names it in the message.
absl::Status ValidateId(absl::string_view id, absl::string_view kind, const Limits& limits);

// Size and JSON-object shape of a metadata field; fills `attrs` (may be
// null) with its filter attributes.
absl::Status ValidateMetadata(absl::string_view json, absl::string_view what,
                              const Limits& limits, index::Attributes* attrs);

// The metadata of an agent memory or message as a JSON object text ("{}"
// when `json` is empty), validated as ValidateMetadata; INVALID_ARGUMENT
// for a key starting with '@' (reserved for the record's own fields).
absl::StatusOr<std::string> NormalizeUserMetadata(absl::string_view json, absl::string_view what,
                                                  const Limits& limits);

// Text of at most limits.max_text_bytes.
absl::Status ValidateText(absl::string_view text, absl::string_view what, const Limits& limits);

// The id lists of a Get or Delete: at most max_write_batch ids in all, each
// a valid id.
absl::Status ValidateIdLists(absl::string_view verb, absl::Span<const std::string> chunk_ids,
                             absl::Span<const std::string> document_ids, const Limits& limits);

// The chunk ids of a KV call: 1..max_write_batch valid ids.
absl::Status ValidateKvIds(absl::string_view verb, absl::Span<const std::string> ids,
                           const Limits& limits);

// The one place StoreOptions are checked (Store::Open).
absl::Status ValidateStoreOptions(const StoreOptions& options);

// True when `text` holds nothing but whitespace.
bool IsBlank(absl::string_view text);

}  // namespace mnemo::db

#endif  // MNEMO_DB_VALIDATION_H_
