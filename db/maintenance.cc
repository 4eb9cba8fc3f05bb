// Maintenance: index snapshots (on demand, in the background after
// snapshot_every_ops logged changes, on Close) with the index-log trim they
// allow, Checkpoint (snapshots + flush, optionally a consistent copy of
// the store) and Compact (key ranges, dead index entries, expired KV).
#include <algorithm>
#include <filesystem>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/file_io.h"
#include "db/keys.h"
#include "db/records.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "rocksdb/utilities/checkpoint.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;

// Holds snapshot_mu and a reader lock on every namespace so that no write
// or snapshot lands while a checkpoint copies the store.
class FreezeAll {
 public:
  explicit FreezeAll(std::vector<NamespacePtr> all) ABSL_NO_THREAD_SAFETY_ANALYSIS
      : all_(std::move(all)) {
    for (const NamespacePtr& ns : all_) {
      ns->snapshot_mu.Lock();
      ns->mu.ReaderLock();
    }
  }
  ~FreezeAll() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (auto it = all_.rbegin(); it != all_.rend(); ++it) {
      (*it)->mu.ReaderUnlock();
      (*it)->snapshot_mu.Unlock();
    }
  }

 private:
  std::vector<NamespacePtr> all_;
};

}  // namespace

absl::Status StoreImpl::SnapshotNamespace(Namespace* ns) {
  absl::MutexLock snapshot_lock(&ns->snapshot_mu);
  std::vector<uint8_t> bytes;
  uint64_t seq = 0;
  uint64_t generation = 0;
  {
    absl::ReaderMutexLock l(&ns->mu);
    if (ns->gone != Gone::kNo) return absl::OkStatus();
    seq = ns->counters.next_log_seq - 1;
    if (ns->snapshot_seq == seq) return absl::OkStatus();
    ASSIGN_OR_RETURN(bytes, ns->index->Serialize());
    generation = ns->index_generation;
    ns->ops_since_snapshot.store(0);
  }
  RETURN_IF_ERROR(WriteFileAtomically(SnapshotPath(ns->nsid),
                                      records::EncodeSnapshot(ns->nsid, seq, bytes)));
  {
    absl::MutexLock l(&ns->mu);
    if (ns->index_generation == generation) ns->snapshot_seq = seq;
  }
  // Entries up to `seq` are in a durable snapshot now. A crash before this
  // trim only leaves entries that replay skips.
  RETURN_IF_ERROR(FromRocks(db_->DeleteRange(rocksdb::WriteOptions(), ilog_,
                                             keys::LogKey(ns->nsid, 0),
                                             keys::LogKey(ns->nsid, seq + 1)),
                            "trimming index log"));
  spdlog::debug("namespace '{}': index snapshot at log seq {} ({} bytes)", ns->config.name, seq,
                bytes.size());
  return absl::OkStatus();
}

void StoreImpl::RequestSnapshot() {
  absl::MutexLock l(&bg_mu_);
  bg_wakeup_ = true;
  bg_cv_.Signal();
}

void StoreImpl::BackgroundLoop() {
  while (true) {
    {
      absl::MutexLock l(&bg_mu_);
      while (!bg_stop_ && !bg_wakeup_) bg_cv_.Wait(&bg_mu_);
      if (bg_stop_) return;
      bg_wakeup_ = false;
    }
    for (const NamespacePtr& ns : AllNamespaces()) {
      if (ns->ops_since_snapshot.load() < options_.snapshot_every_ops) continue;
      absl::Status st = SnapshotNamespace(ns.get());
      if (!st.ok()) {
        spdlog::warn("namespace '{}': background snapshot failed: {}", ns->config.name,
                     st.ToString());
      }
    }
  }
}

absl::StatusOr<uint64_t> StoreImpl::Checkpoint(const std::string& target_dir) {
  absl::ReaderMutexLock store_lock(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  std::vector<NamespacePtr> all;
  for (const auto& [name, ns] : namespaces_) all.push_back(ns);
  std::sort(all.begin(), all.end(),
            [](const NamespacePtr& a, const NamespacePtr& b) { return a->nsid < b->nsid; });

  for (const NamespacePtr& ns : all) {
    RETURN_IF_ERROR(Annotate(SnapshotNamespace(ns.get()),
                             absl::StrCat("snapshot of namespace '", ns->config.name, "'")));
  }
  rocksdb::FlushOptions flush;
  flush.wait = true;
  RETURN_IF_ERROR(write_resumer_.ResumeIfStopped(db_.get()));
  RETURN_IF_ERROR(FromRocks(db_->Flush(flush, handles_), "flushing"));
  if (target_dir.empty()) return db_->GetLatestSequenceNumber();

  std::error_code ec;
  if (fs::exists(target_dir, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat("checkpoint target ", target_dir, " already exists"));
  }
  // Writes are blocked from here on, so the RocksDB checkpoint and the
  // copied snapshot files describe the same state (the log replay on open
  // would reconcile an older snapshot anyway; a newer one must not happen).
  FreezeAll freeze(all);
  rocksdb::Checkpoint* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  uint64_t sequence = 0;
  RETURN_IF_ERROR(FromRocks(checkpoint->CreateCheckpoint(target_dir, 0, &sequence),
                            absl::StrCat("checkpoint to ", target_dir)));
  const std::string target_indexes = (fs::path(target_dir) / "indexes").string();
  fs::create_directories(target_indexes, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", target_indexes, ": ", ec.message()));
  }
  for (const NamespacePtr& ns : all) {
    const std::string from = SnapshotPath(ns->nsid);
    if (!fs::exists(from, ec)) continue;
    ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(from));
    RETURN_IF_ERROR(WriteFileAtomically(
        (fs::path(target_indexes) / fs::path(from).filename()).string(), bytes));
  }
  spdlog::info("checkpoint of {} written to {} at sequence {}", path_, target_dir, sequence);
  return sequence;
}

absl::Status StoreImpl::Compact(absl::string_view ns_name) {
  absl::ReaderMutexLock store_lock(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  RETURN_IF_ERROR(write_resumer_.ResumeIfStopped(db_.get()));
  // A compaction reading a damaged namespace's files would fail on them
  // and stop the store's writes (RocksDB's background error), so damaged
  // namespaces are left out: compacting one is its DATA_LOSS, and while
  // one exists "everything" means each healthy namespace's key range.
  std::vector<NamespacePtr> targets;
  bool any_damaged = false;
  for (const auto& [name, ns] : namespaces_) {
    if (!ns_name.empty() && name != ns_name) continue;
    absl::ReaderMutexLock l(&ns->mu);
    if (ns->gone == Gone::kDamaged) {
      if (!ns_name.empty()) return ns->damage;
      any_damaged = true;
      continue;
    }
    targets.push_back(ns);
  }
  if (!ns_name.empty() && targets.empty()) {
    return absl::NotFoundError(absl::StrCat("namespace '", ns_name, "' does not exist"));
  }
  if (ns_name.empty() && !any_damaged) {
    for (rocksdb::ColumnFamilyHandle* cf : handles_) {
      RETURN_IF_ERROR(FromRocks(
          db_->CompactRange(rocksdb::CompactRangeOptions(), cf, nullptr, nullptr), "compacting"));
    }
  } else {
    for (const NamespacePtr& ns : targets) {
      const std::string begin = keys::NsPrefix(ns->nsid);
      const std::string end = keys::NsEnd(ns->nsid);
      rocksdb::Slice b(begin), e(end);
      for (rocksdb::ColumnFamilyHandle* cf : DataCfs()) {
        RETURN_IF_ERROR(FromRocks(
            db_->CompactRange(rocksdb::CompactRangeOptions(), cf, &b, &e), "compacting"));
      }
    }
  }
  for (const NamespacePtr& ns : targets) {
    absl::MutexLock l(&ns->mu);
    if (ns->gone != Gone::kNo) continue;
    RETURN_IF_ERROR(kv_store_.RemoveExpiredLocked(ns.get()));
    if (!ns->may_have_dead_entries) continue;
    RETURN_IF_ERROR(Annotate(RebuildIndexLocked(ns.get()),
                             absl::StrCat("rebuilding index of '", ns->config.name, "'")));
    spdlog::info("namespace '{}': index rebuilt without dead entries", ns->config.name);
  }
  return absl::OkStatus();
}

}  // namespace mnemo::db
