// Server records kept outside every namespace: mnemod's API keys
// (server/api_keys.h), opaque bytes here, in the meta column family under
// "ak/" + id (next to the layout of db/keys.h). Each change is one synced
// write whatever StoreOptions::sync_writes says, so an acknowledged key
// change survives a crash; backups carry the records like all of meta.
//
// `store` must be one made by Store::Open (INVALID_ARGUMENT otherwise).
// FAILED_PRECONDITION after Close. Thread-safe, like the store.
#ifndef MNEMO_DB_AUTH_RECORDS_H_
#define MNEMO_DB_AUTH_RECORDS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "db/store.h"

namespace mnemo::db {

// Meta key prefix of the records.
inline constexpr char kAuthRecordPrefix[] = "ak/";

// Writes (or replaces) the record of `id` (non-empty).
absl::Status PutAuthRecord(Store* store, absl::string_view id, absl::string_view record);
// NOT_FOUND when `id` has no record.
absl::Status DeleteAuthRecord(Store* store, absl::string_view id);
// Every (id, record), by id.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListAuthRecords(Store* store);

}  // namespace mnemo::db

#endif  // MNEMO_DB_AUTH_RECORDS_H_
