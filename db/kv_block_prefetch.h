// Read-ahead of KV blocks: reads a fixed list of keys of one column family
// from one snapshot on its own threads, in an issue order of the caller's
// choosing, at most `depth` values ahead of the consumer, and hands the
// values back in list order.
//
// Why: a KV read is layer-major (every chunk's block of layer l, then of
// l + 1), but a chunk's blocks lie back to back in a blob file, chunk after
// chunk. Read in consumer order, the disk sees strided 1-block reads. The
// KV reader (kv_streams.cc) issues a group of layers chunk by chunk
// instead, so the disk (and the kernel's readahead) sees long sequential
// runs, while the consumer still gets layer-major order. (This RocksDB has
// no io_uring, so MultiGet would issue its blob reads one by one too.)
//
// The values are exactly what DB::Get with the same ReadOptions returns, in
// the same order: read-ahead changes when a block is read, never which
// bytes are handed out (all reads see the one snapshot in ReadOptions).
//
// Not thread-safe for callers (one consumer); internally synchronized.
// Stop() (or the destructor) waits for the reads in flight: after it the
// prefetcher never touches the DB again, so its owner calls it before the
// DB or the snapshot goes away (KvReaderImpl::ReleaseDb).
#ifndef MNEMO_DB_KV_BLOCK_PREFETCH_H_
#define MNEMO_DB_KV_BLOCK_PREFETCH_H_

#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"

namespace mnemo::db {

class KvBlockPrefetcher {
 public:
  // Reads keys[issue_order[0]], keys[issue_order[1]], ... (issue_order a
  // permutation of 0..keys.size()-1; empty = list order), a key only once
  // it is within `depth` (>= 1) of the next one Next() hands out, on
  // min(depth, kMaxThreads) threads. Every key issued before key i must be
  // within `depth` of i (issue order may only shuffle within such windows),
  // else Next() would wait forever. Borrows db, cf and the snapshot in
  // `read_options` until Stop().
  KvBlockPrefetcher(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                    rocksdb::ReadOptions read_options, std::vector<std::string> keys,
                    std::vector<size_t> issue_order, size_t depth);
  ~KvBlockPrefetcher();
  KvBlockPrefetcher(const KvBlockPrefetcher&) = delete;
  KvBlockPrefetcher& operator=(const KvBlockPrefetcher&) = delete;

  static constexpr size_t kMaxThreads = 2;

  // The next key's Get: waits until it is read, then moves its value into
  // *value. Past the last key, or after Stop(): Aborted.
  rocksdb::Status Next(rocksdb::PinnableSlice* value);

  // Cancels the reads not started, waits for those in flight. Idempotent.
  void Stop();

 private:
  struct Slot {
    bool ready = false;
    rocksdb::Status status;
    rocksdb::PinnableSlice value;
  };

  void Work();

  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const cf_;
  const rocksdb::ReadOptions read_options_;
  const std::vector<std::string> keys_;
  const std::vector<size_t> issue_order_;
  const size_t depth_;

  absl::Mutex mu_;
  // Slot i % depth_ holds key i from its issue until Next() takes it.
  std::vector<std::unique_ptr<Slot>> slots_ ABSL_GUARDED_BY(mu_);
  size_t issued_ ABSL_GUARDED_BY(mu_) = 0;  // entries of issue_order_ handed to a worker
  size_t taken_ ABSL_GUARDED_BY(mu_) = 0;   // keys handed to the consumer
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_KV_BLOCK_PREFETCH_H_
