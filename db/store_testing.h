// Test seams of the storage engine. Not for production callers.
#ifndef MNEMO_DB_STORE_TESTING_H_
#define MNEMO_DB_STORE_TESTING_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "db/store.h"
#include "rocksdb/file_system.h"

namespace mnemo::db::testing {

// Closes `store` without saving index snapshots, as a crash would leave the
// indexes: the next Open has to load the older snapshots and replay the index
// log. The store behaves as closed afterwards. INVALID_ARGUMENT when `store`
// was not made by Store::Open.
absl::Status CloseWithoutSnapshotForTesting(Store* store);

// How Open recovered one namespace's index.
struct RecoveryInfo {
  bool loaded_snapshot = false;   // false: built from the dense CF
  uint64_t snapshot_seq = 0;      // log seq the loaded snapshot held
  uint64_t replayed_entries = 0;  // index-log entries applied after it
};
// NOT_FOUND for an unknown namespace; INVALID_ARGUMENT as above.
absl::StatusOr<RecoveryInfo> RecoveryInfoForTesting(Store* store, absl::string_view ns);

// Replaces the clock KV expiry reads (Unix milliseconds); call before other
// threads use the store. INVALID_ARGUMENT as above.
absl::Status SetKvClockForTesting(Store* store, std::function<int64_t()> now_ms);

// Store::Open with every RocksDB file of the store going through `file_system`
// (e.g. a fault-injecting wrapper, tests/db/fault_fs.h) instead of the
// default file system; the store keeps it alive until it is destroyed.
// Index snapshots are written outside RocksDB and do not go through it.
absl::StatusOr<std::unique_ptr<Store>> OpenOnFileSystemForTesting(
    const StoreOptions& options, const std::string& path,
    std::shared_ptr<rocksdb::FileSystem> file_system);

}  // namespace mnemo::db::testing

#endif  // MNEMO_DB_STORE_TESTING_H_
