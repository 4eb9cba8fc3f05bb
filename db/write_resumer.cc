// Resuming writes after a file-system error (see write_resumer.h).
#include "db/write_resumer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "db/rocks_status.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {
namespace {

// Marks writes stopped whenever RocksDB records a background error, and
// clears the mark when RocksDB recovers on its own (e.g. a full disk that
// has room again).
class StopListener : public rocksdb::EventListener {
 public:
  explicit StopListener(std::shared_ptr<std::atomic<bool>> stopped)
      : stopped_(std::move(stopped)) {}

  void OnBackgroundError(rocksdb::BackgroundErrorReason /*reason*/,
                         rocksdb::Status* bg_error) override {
    if (bg_error != nullptr && !bg_error->ok()) {
      spdlog::warn("store: writes stopped after a file-system error: {}", bg_error->ToString());
      stopped_->store(true);
    }
  }
  // The store resumes by itself, on the next write (ResumeIfStopped), and
  // turns RocksDB's automatic recovery off: that one (for a full disk)
  // waits for free space of a whole write buffer (64 MiB) before it tries,
  // and refuses manual resumes (Busy) while it waits, so on a small disk
  // writes would never resume.
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/, rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    bg_error.PermitUncheckedError();
    if (auto_recovery != nullptr) *auto_recovery = false;
  }
  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override {
    if (info.new_bg_error.ok()) {
      spdlog::info("store: writes resumed after: {}", info.old_bg_error.ToString());
      stopped_->store(false);
    }
  }

 private:
  const std::shared_ptr<std::atomic<bool>> stopped_;
};

}  // namespace

WriteResumer::WriteResumer()
    : stopped_(std::make_shared<std::atomic<bool>>(false)),
      listener_(std::make_shared<StopListener>(stopped_)) {}

absl::Status WriteResumer::Write(rocksdb::DB* db, const rocksdb::WriteOptions& options,
                                 rocksdb::WriteBatch* batch, absl::string_view what) {
  absl::Status resumed = ResumeIfStopped(db);
  if (!resumed.ok()) {
    return absl::Status(resumed.code(), absl::StrCat(what, ": ", resumed.message()));
  }
  rocksdb::Status s = db->Write(options, batch);
  // A failed write of the WAL stops writes (RocksDB's background error)
  // whether or not the listener was told: the next write resumes first.
  if (s.IsIOError()) stopped_->store(true);
  return FromRocks(s, what);
}

absl::Status WriteResumer::ResumeIfStopped(rocksdb::DB* db) {
  if (!stopped_->load()) return absl::OkStatus();
  absl::MutexLock l(&mu_);
  if (!stopped_->load()) return absl::OkStatus();
  // A resume flushes every memtable: while the fault lasts, try at most
  // once per kRetryInterval and answer with the last failure in between.
  const absl::Time now = absl::Now();
  if (!last_failure_.ok() && now - last_attempt_ < kRetryInterval) return last_failure_;
  last_attempt_ = now;
  last_failure_ = ResumeLocked(db);
  return last_failure_;
}

absl::Status WriteResumer::ResumeLocked(rocksdb::DB* db) {
  rocksdb::Status s = db->Resume();
  if (!s.ok() && s.severity() >= rocksdb::Status::Severity::kFatalError) {
    // RocksDB cannot tell what of a failed WAL write reached the disk and
    // refuses to resume; reopening the store replays the WAL as far as it
    // is whole, which holds every acknowledged write.
    return absl::UnavailableError(absl::StrCat(
        "writes stopped after an unrecoverable file-system error (", s.ToString(),
        "); reads go on; restart mnemod (reopen the store) to write again"));
  }
  if (!s.ok()) return FromRocks(s, "writes stopped after a file-system error; resuming failed");
  stopped_->store(false);
  spdlog::info("store: writes resumed");
  return absl::OkStatus();
}

}  // namespace mnemo::db
