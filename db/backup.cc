// Backups of the store with RocksDB's BackupEngine: create (online,
// incremental), list, verify, and restore into a new data directory.
//
// Only RocksDB's files are backed up. The index snapshots under indexes/
// are derived data: a restored store has none, so Open rebuilds every
// index from the stored vectors (recovery.cc), and a backup can never pair
// rows with an index of another moment.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "rocksdb/utilities/backup_engine.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {

namespace fs = std::filesystem;

namespace {

// The backup's app metadata: "mnemo-backup sequence=<n>".
constexpr char kMetadataPrefix[] = "mnemo-backup sequence=";

absl::Status CheckDir(const std::string& backup_dir) {
  if (backup_dir.empty() || !fs::path(backup_dir).is_absolute()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "backup directory '", backup_dir, "' must be an absolute path on the server's host"));
  }
  return absl::OkStatus();
}

BackupInfo InfoOf(const rocksdb::BackupInfo& b) {
  BackupInfo out;
  out.id = b.backup_id;
  out.created_unix_s = b.timestamp;
  out.size_bytes = b.size;
  out.files = b.number_files;
  if (b.app_metadata.rfind(kMetadataPrefix, 0) == 0) {
    uint64_t seq = 0;
    if (absl::SimpleAtoi(b.app_metadata.substr(sizeof(kMetadataPrefix) - 1), &seq)) {
      out.sequence = seq;
    }
  }
  return out;
}

// A read-only engine over an existing backup directory: NOT_FOUND when it
// holds no backup.
absl::StatusOr<std::unique_ptr<rocksdb::BackupEngineReadOnly>> OpenReadOnly(
    const std::string& backup_dir) {
  RETURN_IF_ERROR(CheckDir(backup_dir));
  std::error_code ec;
  if (!fs::is_directory(fs::path(backup_dir) / "meta", ec)) {
    return absl::NotFoundError(absl::StrCat("no backups in '", backup_dir, "'"));
  }
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::BackupEngineReadOnly::Open(
                                rocksdb::BackupEngineOptions(backup_dir), rocksdb::Env::Default(),
                                &raw),
                            absl::StrCat("opening backups in ", backup_dir)));
  return std::unique_ptr<rocksdb::BackupEngineReadOnly>(raw);
}

}  // namespace

absl::StatusOr<BackupInfo> StoreImpl::CreateBackup(const std::string& backup_dir) {
  RETURN_IF_ERROR(CheckDir(backup_dir));
  absl::MutexLock backup_lock(&backup_mu_);
  absl::ReaderMutexLock store_lock(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  std::error_code ec;
  fs::create_directories(backup_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create ", backup_dir, ": ", ec.message()));
  }
  rocksdb::BackupEngine* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::BackupEngine::Open(rocksdb::BackupEngineOptions(backup_dir),
                                                        rocksdb::Env::Default(), &raw),
                            absl::StrCat("opening backups in ", backup_dir)));
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  // Every write acknowledged before this point has a sequence <= it; the
  // flush below puts them all into the files the backup copies.
  const uint64_t sequence = db_->GetLatestSequenceNumber();
  rocksdb::CreateBackupOptions options;
  options.flush_before_backup = true;
  rocksdb::BackupID id = 0;
  RETURN_IF_ERROR(FromRocks(engine->CreateNewBackupWithMetadata(
                                options, db_.get(), absl::StrCat(kMetadataPrefix, sequence), &id),
                            absl::StrCat("backup to ", backup_dir)));
  rocksdb::BackupInfo info;
  RETURN_IF_ERROR(FromRocks(engine->GetBackupInfo(id, &info), "reading the new backup's info"));
  spdlog::info("backup {} of {} written to {} ({} files, {} bytes, sequence {})", id, path_,
               backup_dir, info.number_files, info.size, sequence);
  return InfoOf(info);
}

absl::StatusOr<std::vector<BackupInfo>> StoreImpl::ListBackups(const std::string& backup_dir) {
  ASSIGN_OR_RETURN(auto engine, OpenReadOnly(backup_dir));
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  std::vector<BackupInfo> out;
  for (const rocksdb::BackupInfo& b : infos) out.push_back(InfoOf(b));
  std::sort(out.begin(), out.end(),
            [](const BackupInfo& a, const BackupInfo& b) { return a.id < b.id; });
  return out;
}

absl::StatusOr<std::vector<uint32_t>> StoreImpl::VerifyBackup(const std::string& backup_dir,
                                                              uint32_t id) {
  ASSIGN_OR_RETURN(auto engine, OpenReadOnly(backup_dir));
  std::vector<uint32_t> ids;
  if (id != 0) {
    ids.push_back(id);
  } else {
    std::vector<rocksdb::BackupInfo> infos;
    engine->GetBackupInfo(&infos);
    for (const rocksdb::BackupInfo& b : infos) ids.push_back(b.backup_id);
    std::sort(ids.begin(), ids.end());
  }
  for (uint32_t b : ids) {
    rocksdb::IOStatus s = engine->VerifyBackup(b, /*verify_with_checksum=*/true);
    if (s.IsNotFound() || s.IsInvalidArgument()) {
      return absl::NotFoundError(
          absl::StrCat("backup ", b, " in '", backup_dir, "': ", s.ToString()));
    }
    if (!s.ok()) {
      return absl::DataLossError(
          absl::StrCat("backup ", b, " in '", backup_dir, "' is damaged: ", s.ToString()));
    }
  }
  return ids;
}

absl::Status Store::RestoreBackup(const std::string& backup_dir, uint32_t id,
                                  const std::string& data_dir) {
  std::error_code ec;
  if (fs::exists(data_dir, ec) && !fs::is_empty(data_dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot restore into '", data_dir, "': it is not empty (restore into a new directory)"));
  }
  ASSIGN_OR_RETURN(auto engine, OpenReadOnly(backup_dir));
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  if (infos.empty()) return absl::NotFoundError(absl::StrCat("no backups in '", backup_dir, "'"));
  if (id == 0) {
    for (const rocksdb::BackupInfo& b : infos) id = std::max(id, b.backup_id);
  } else if (std::none_of(infos.begin(), infos.end(),
                          [&](const rocksdb::BackupInfo& b) { return b.backup_id == id; })) {
    return absl::NotFoundError(absl::StrCat("no backup ", id, " in '", backup_dir, "'"));
  }
  // Checksums first, so a damaged backup leaves no half-restored directory.
  rocksdb::IOStatus verified = engine->VerifyBackup(id, /*verify_with_checksum=*/true);
  if (!verified.ok()) {
    return absl::DataLossError(
        absl::StrCat("backup ", id, " in '", backup_dir, "' is damaged: ", verified.ToString()));
  }
  fs::create_directories(data_dir, ec);
  RETURN_IF_ERROR(FromRocks(engine->RestoreDBFromBackup(rocksdb::RestoreOptions(), id, data_dir,
                                                        data_dir),
                            absl::StrCat("restoring backup ", id, " into ", data_dir)));
  spdlog::info("backup {} of {} restored into {}", id, backup_dir, data_dir);
  return absl::OkStatus();
}

}  // namespace mnemo::db
