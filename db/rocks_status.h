// RocksDB -> Abseil at the storage engine's boundary: one mapping of
// rocksdb::Status to canonical codes, and Slice -> string_view. Internal to
// db/.
#ifndef MNEMO_DB_ROCKS_STATUS_H_
#define MNEMO_DB_ROCKS_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"

namespace mnemo::db {

// NotFound -> NOT_FOUND, Corruption (a checksum mismatch, a truncated or
// malformed block) -> DATA_LOSS, InvalidArgument -> INVALID_ARGUMENT,
// Busy/TryAgain/TimedOut -> UNAVAILABLE, a held directory LOCK ->
// FAILED_PRECONDITION, an IO error of a full disk (ENOSPC, space limit) ->
// RESOURCE_EXHAUSTED, any other IO error but a missing path (EIO, a failed
// fsync, writes stopped after one) -> UNAVAILABLE, anything else INTERNAL;
// `context` prefixes the message.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context);

// rocksdb::Slice -> absl::string_view (Debian's Abseil does not alias
// std::string_view).
inline absl::string_view View(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace mnemo::db

#endif  // MNEMO_DB_ROCKS_STATUS_H_
