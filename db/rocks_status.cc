// Mapping of rocksdb::Status to canonical codes (see rocks_status.h).
#include "db/rocks_status.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mnemo::db {

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(context, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return absl::UnavailableError(msg);
  // RocksDB reports a held directory lock as an IO error on "<dir>/LOCK"
  // ("While lock file: ..." from another process, "lock hold by current
  // process" from this one).
  if (s.IsIOError() && absl::StrContains(s.ToString(), "/LOCK")) {
    return absl::FailedPreconditionError(absl::StrCat(
        context, ": the data directory is in use by another Store (RocksDB LOCK held): ",
        s.ToString()));
  }
  // A full disk (ENOSPC, or an SstFileManager space limit): the caller may
  // retry once space returns.
  if (s.IsNoSpace() || s.subcode() == rocksdb::Status::kSpaceLimit) {
    return absl::ResourceExhaustedError(absl::StrCat(context, ": out of disk space: ", s.ToString()));
  }
  // Any other failing read or write of a file (EIO, a failed fsync) and the
  // writes RocksDB refuses after one until the store resumes them (see
  // StoreImpl::CommitLocked): the store is there but cannot do this now.
  if (s.IsIOError() && !s.IsPathNotFound()) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

}  // namespace mnemo::db
