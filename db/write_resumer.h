// Resuming writes after a file-system error. RocksDB stops taking writes
// once a write of its files fails (a WAL append or fsync, an SST written
// by a flush or compaction: DB::Write then returns that error until
// DB::Resume succeeds, RocksDB's "background error"). The store's writes go
// through WriteResumer::Write, which, when the last write or a background
// job hit such an error, first asks RocksDB to resume (flushing what the
// error left in memory) and so lets writes go on as soon as the fault
// clears; while it lasts each write fails with the resume's error
// (UNAVAILABLE, RESOURCE_EXHAUSTED on a full disk: see rocks_status.h).
// (RocksDB's own automatic recovery is turned off: see write_resumer.cc.)
//
// RocksDB resumes "hard" errors (a full disk, wherever it was hit) but not
// "fatal" ones: an EIO on a write of its files (a WAL append or fsync, an
// SST of a flush), after which it cannot tell what reached the disk. Writes then fail with
// UNAVAILABLE saying so until the store is reopened (mnemod restarted);
// reads go on, and the reopen recovers every acknowledged write.
//
// Known RocksDB 7.8 issue: a resume retried after one that failed on the
// WAL alone (its flush went through) aborts on an assertion in RocksDB's
// file writer (the Debian build keeps assertions; fixed upstream later). A
// full disk fails the resume's flush first and retries safely
// (integration_full_disk_test); an injected fault on the WAL only does not
// (tests/db/fault_test.cc writes nothing while one is armed).
//
// Thread safety: every method is thread-safe; resumes are serialised.
#ifndef MNEMO_DB_WRITE_RESUMER_H_
#define MNEMO_DB_WRITE_RESUMER_H_

#include <atomic>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "rocksdb/db.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace mnemo::db {

class WriteResumer {
 public:
  WriteResumer();
  WriteResumer(const WriteResumer&) = delete;
  WriteResumer& operator=(const WriteResumer&) = delete;

  // The listener to add to the DB's options before opening it: it tells
  // this resumer when RocksDB stops writes after a background error.
  std::shared_ptr<rocksdb::EventListener> listener() const { return listener_; }

  // Resumes writes when they are stopped, then writes `batch`. `what` names
  // the write in errors.
  absl::Status Write(rocksdb::DB* db, const rocksdb::WriteOptions& options,
                     rocksdb::WriteBatch* batch, absl::string_view what);

  // Resumes writes when a write or background job hit a file-system error
  // since the last successful resume; OK when nothing is stopped.
  absl::Status ResumeIfStopped(rocksdb::DB* db) ABSL_LOCKS_EXCLUDED(mu_);

  // Resume attempts while a fault lasts are at most this often.
  static constexpr absl::Duration kRetryInterval = absl::Milliseconds(500);

 private:
  absl::Status ResumeLocked(rocksdb::DB* db) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Shared with the listener, which RocksDB may hold until the DB is gone.
  std::shared_ptr<std::atomic<bool>> stopped_;
  std::shared_ptr<rocksdb::EventListener> listener_;
  absl::Mutex mu_;  // serialises resumes
  absl::Time last_attempt_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status last_failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_WRITE_RESUMER_H_
