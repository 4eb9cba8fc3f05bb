// The fault-injecting file system (see fault_fs.h).
#include "tests/db/fault_fs.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace mnemo::db::test {
namespace {

rocksdb::IOStatus Injected(FaultError error, const char* what) {
  if (error == FaultError::kNoSpace) {
    return rocksdb::IOStatus::NoSpace("injected fault", what);
  }
  return rocksdb::IOStatus::IOError("injected fault", what);
}

// A writable file whose appends and syncs ask the file system first.
class FaultWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file, FaultFileSystem* fs,
                    FileKind kind)
      : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs), kind_(kind) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    FaultError error;
    if (fs_->ShouldFail(FaultOp::kWrite, kind_, &error)) return Injected(error, "append");
    return FSWritableFileOwnerWrapper::Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    FaultError error;
    if (fs_->ShouldFail(FaultOp::kWrite, kind_, &error)) return Injected(error, "append");
    return FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    FaultError error;
    if (fs_->ShouldFail(FaultOp::kWrite, kind_, &error)) return Injected(error, "append");
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    FaultError error;
    if (fs_->ShouldFail(FaultOp::kWrite, kind_, &error)) return Injected(error, "append");
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, info, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                         rocksdb::IODebugContext* dbg) override {
    FaultError error;
    if (fs_->ShouldFail(FaultOp::kSync, kind_, &error)) return Injected(error, "sync");
    return FSWritableFileOwnerWrapper::Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    FaultError error;
    if (fs_->ShouldFail(FaultOp::kSync, kind_, &error)) return Injected(error, "fsync");
    return FSWritableFileOwnerWrapper::Fsync(options, dbg);
  }

 private:
  FaultFileSystem* const fs_;
  const FileKind kind_;
};

// A random-access file whose reads ask the file system first. MultiRead
// goes through Read so that batched reads see the faults too.
class FaultRandomAccessFile : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  FaultRandomAccessFile(std::unique_ptr<rocksdb::FSRandomAccessFile> file, FaultFileSystem* fs,
                        FileKind kind)
      : FSRandomAccessFileOwnerWrapper(std::move(file)), fs_(fs), kind_(kind) {}

  rocksdb::IOStatus Read(uint64_t offset, size_t n, const rocksdb::IOOptions& options,
                         rocksdb::Slice* result, char* scratch,
                         rocksdb::IODebugContext* dbg) const override {
    FaultError error;
    if (fs_->ShouldFail(FaultOp::kRead, kind_, &error)) {
      *result = rocksdb::Slice();
      return rocksdb::IOStatus::IOError("injected fault", "read");
    }
    rocksdb::IOStatus s =
        FSRandomAccessFileOwnerWrapper::Read(offset, n, options, result, scratch, dbg);
    if (s.ok() && result->size() > 0 && fs_->ShouldFail(FaultOp::kShortRead, kind_, &error)) {
      *result = rocksdb::Slice(result->data(), result->size() / 2);
    }
    return s;
  }
  rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs,
                              const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    for (size_t i = 0; i < num_reqs; ++i) {
      reqs[i].status =
          Read(reqs[i].offset, reqs[i].len, options, &reqs[i].result, reqs[i].scratch, dbg);
    }
    return rocksdb::IOStatus::OK();
  }

 private:
  FaultFileSystem* const fs_;
  const FileKind kind_;
};

}  // namespace

FileKind FileKindOf(const std::string& path) {
  absl::string_view name = path;
  const size_t slash = name.rfind('/');
  if (slash != absl::string_view::npos) name.remove_prefix(slash + 1);
  if (absl::EndsWith(name, ".log")) return kWalFile;
  if (absl::EndsWith(name, ".sst")) return kSstFile;
  if (absl::EndsWith(name, ".blob")) return kBlobFile;
  if (absl::StartsWith(name, "MANIFEST-")) return kManifestFile;
  return kOtherFile;
}

FaultFileSystem::FaultFileSystem(std::shared_ptr<rocksdb::FileSystem> base)
    : FileSystemWrapper(std::move(base)) {}

void FaultFileSystem::Arm(const Fault& fault) {
  absl::MutexLock l(&mu_);
  faults_.push_back(Armed{fault, 0});
}

void FaultFileSystem::Clear() {
  absl::MutexLock l(&mu_);
  faults_.clear();
}

uint64_t FaultFileSystem::injected() const {
  absl::MutexLock l(&mu_);
  return injected_;
}

bool FaultFileSystem::ShouldFail(FaultOp op, FileKind kind, FaultError* error) {
  absl::MutexLock l(&mu_);
  for (Armed& armed : faults_) {
    if (armed.fault.op != op || (armed.fault.kinds & kind) == 0) continue;
    if (armed.seen++ < armed.fault.after) continue;
    *error = armed.fault.error;
    ++injected_;
    return true;
  }
  return false;
}

rocksdb::IOStatus FaultFileSystem::NewWritableFile(
    const std::string& fname, const rocksdb::FileOptions& opts,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->NewWritableFile(fname, opts, &file, dbg);
  if (s.ok()) {
    *result = std::make_unique<FaultWritableFile>(std::move(file), this, FileKindOf(fname));
  }
  return s;
}

rocksdb::IOStatus FaultFileSystem::ReopenWritableFile(
    const std::string& fname, const rocksdb::FileOptions& opts,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->ReopenWritableFile(fname, opts, &file, dbg);
  if (s.ok()) {
    *result = std::make_unique<FaultWritableFile>(std::move(file), this, FileKindOf(fname));
  }
  return s;
}

rocksdb::IOStatus FaultFileSystem::ReuseWritableFile(
    const std::string& fname, const std::string& old_fname, const rocksdb::FileOptions& opts,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->ReuseWritableFile(fname, old_fname, opts, &file, dbg);
  if (s.ok()) {
    *result = std::make_unique<FaultWritableFile>(std::move(file), this, FileKindOf(fname));
  }
  return s;
}

rocksdb::IOStatus FaultFileSystem::NewRandomAccessFile(
    const std::string& fname, const rocksdb::FileOptions& opts,
    std::unique_ptr<rocksdb::FSRandomAccessFile>* result, rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSRandomAccessFile> file;
  rocksdb::IOStatus s = target()->NewRandomAccessFile(fname, opts, &file, dbg);
  if (s.ok()) {
    *result = std::make_unique<FaultRandomAccessFile>(std::move(file), this, FileKindOf(fname));
  }
  return s;
}

}  // namespace mnemo::db::test
