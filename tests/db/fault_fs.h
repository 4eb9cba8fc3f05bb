// A fault-injecting rocksdb::FileSystem for tests: wraps a real file system
// (the default POSIX one unless told otherwise) and makes chosen operations
// on chosen kinds of RocksDB files fail, after a given number of successful
// ones: write errors (EIO or ENOSPC), fsync errors, short reads and EIO on
// reads (e.g. of blob files). Open a store on it with
// db::testing::OpenOnFileSystemForTesting (db/store_testing.h).
//
// A fault fails nothing before it is armed and, once armed, stays armed
// until Clear(): after `after` successful operations of its kind, every
// matching operation fails (or comes back short) without touching the file
// below, so a failed write leaves the file as it was.
//
// Thread safety: every method is thread-safe; RocksDB calls the files from
// its background threads.
#ifndef MNEMO_TESTS_DB_FAULT_FS_H_
#define MNEMO_TESTS_DB_FAULT_FS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "rocksdb/file_system.h"

namespace mnemo::db::test {

// The kinds of files RocksDB keeps in a data directory, as bits of a mask.
enum FileKind : uint32_t {
  kWalFile = 1u << 0,       // NNNNNN.log
  kSstFile = 1u << 1,       // NNNNNN.sst
  kBlobFile = 1u << 2,      // NNNNNN.blob
  kManifestFile = 1u << 3,  // MANIFEST-NNNNNN
  kOtherFile = 1u << 4,     // CURRENT, OPTIONS-*, LOG, IDENTITY, temp files
  kAnyFile = 0x1f,
};

// The kind of the file at `path`, from its name.
FileKind FileKindOf(const std::string& path);

enum class FaultOp {
  kWrite,      // Append / PositionedAppend on a writable file
  kSync,       // Sync / Fsync on a writable file
  kRead,       // Read on a random-access file: IO error (EIO)
  kShortRead,  // Read on a random-access file: OK with half the bytes
};

enum class FaultError {
  kIoError,  // EIO
  kNoSpace,  // ENOSPC (IOStatus::NoSpace)
};

struct Fault {
  FaultOp op = FaultOp::kWrite;
  uint32_t kinds = kAnyFile;  // FileKind bits the fault applies to
  uint64_t after = 0;         // matching operations that still succeed
  FaultError error = FaultError::kIoError;  // kWrite / kSync only
};

class FaultFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultFileSystem(
      std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default());

  const char* Name() const override { return "MnemoFaultFileSystem"; }

  // Adds a fault (several may be armed at once; the first that fires wins).
  void Arm(const Fault& fault);
  // Disarms every fault: from now on every operation goes through.
  void Clear();
  // Operations failed (or shortened) since construction.
  uint64_t injected() const;

  // The decision the wrapped files ask for before each operation: true
  // when the operation must fail (`*error` then says how).
  bool ShouldFail(FaultOp op, FileKind kind, FaultError* error);

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomAccessFile(const std::string& fname,
                                        const rocksdb::FileOptions& opts,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                        rocksdb::IODebugContext* dbg) override;

 private:
  struct Armed {
    Fault fault;
    uint64_t seen = 0;  // matching operations so far
  };

  mutable absl::Mutex mu_;
  std::vector<Armed> faults_ ABSL_GUARDED_BY(mu_);
  uint64_t injected_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mnemo::db::test

#endif  // MNEMO_TESTS_DB_FAULT_FS_H_
