// The store's lifetime token (see store_lifetime.h).
#include "db/store_lifetime.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {

StoreLifetime::StoreLifetime(rocksdb::DB* db) ABSL_NO_THREAD_SAFETY_ANALYSIS
    : db_(db), db_registry_(db) {}

void StoreLifetime::Register(Holder* holder) {
  absl::MutexLock l(&registry_mu_);
  holders_.insert(holder);
}

void StoreLifetime::Close() {
  absl::MutexLock l(&mu_);
  absl::MutexLock r(&registry_mu_);
  if (released_) return;
  if (!holders_.empty()) {
    spdlog::error("store closed while {} handed-out reader(s) are alive; they will fail with "
                  "FAILED_PRECONDITION (destroy readers before Store::Close)",
                  holders_.size());
  }
  for (Holder* holder : holders_) holder->ReleaseDb(db_);
  holders_.clear();
  released_ = true;
  db_ = nullptr;
  db_registry_ = nullptr;
}

absl::Status StoreLifetime::UsedAfterClose(absl::string_view what) {
  const std::string message = absl::StrCat(
      "store closed: a ", what, " must be destroyed before Store::Close() (db/store.h)");
#ifndef NDEBUG
  spdlog::critical("{}", message);
  std::abort();
#endif
  return absl::FailedPreconditionError(message);
}

}  // namespace mnemo::db
