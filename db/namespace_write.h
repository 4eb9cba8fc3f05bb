// One write to a namespace on its way to RocksDB: the WriteBatch, and what
// to apply to the in-memory state once it is committed. Upsert, Delete and
// every KV write fill one and hand it to StoreImpl::CommitLocked, the one
// commit/apply routine (db/write_path.cc). Internal to db/.
#ifndef MNEMO_DB_NAMESPACE_WRITE_H_
#define MNEMO_DB_NAMESPACE_WRITE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "db/bm25.h"
#include "db/keys.h"
#include "db/kv_space.h"
#include "db/records.h"
#include "db/token_vectors.h"
#include "index/filter.h"
#include "rocksdb/write_batch.h"

namespace mnemo::db {

struct NamespaceWrite {
  rocksdb::WriteBatch batch;

  // --- Chunk changes (Upsert, Delete). When `chunks_changed`, the commit
  // also stages the token rows of `added` (and the codec when this write
  // trains it), removes the KV of `removed`, stores `counters`, and after
  // the commit updates the dense, BM25 and token indexes, the id maps and
  // the attribute table.
  bool chunks_changed = false;
  // The namespace's counters advanced by this write (next ids, log seq).
  records::NamespaceCounters counters;
  uint64_t log_ops = 0;                // index-log entries in `batch`
  std::vector<int64_t> removed;        // internal ids of chunks removed
  std::vector<int64_t> added;          // internal ids of chunks added
  std::vector<float> vectors;          // their vectors, added.size() * dim
  std::vector<std::pair<int64_t, index::Attributes>> added_attrs;
  std::vector<std::string> added_external;  // their external ids
  int64_t doc_delta = 0;                    // change of the document count
  // Change of the namespace's quota bytes (db/quota.h): encoded documents,
  // chunks and vectors added minus those removed.
  int64_t bytes_delta = 0;
  Bm25Update bm25;
  // Token vectors of `added`, one entry per added chunk (late interaction).
  std::vector<std::optional<PendingTokens>> tokens;
  // Injection records of `added`, one entry per added chunk (namespaces
  // with an injection model; db/injection_store.h).
  std::vector<std::optional<std::string>> inject_records;

  // --- KV changes applied to the namespace's KvSpace after the commit, in
  // this order. The matching rows are staged in `batch` by the caller
  // (StoreImpl::StageKvRemovalLocked for erasures).
  std::vector<std::pair<int64_t, KvSpace::Why>> kv_erased;
  std::vector<std::pair<int64_t, KvEntry>> kv_put;
  std::vector<std::pair<int64_t, KvEntry>> kv_retention;  // pinned, expires_ms

  // Appends the index-log entry `op` (keys::kLogAdd / kLogRemove) for `id`
  // to `batch` in the index-log CF `ilog`, at the next log seq.
  void Log(rocksdb::ColumnFamilyHandle* ilog, uint32_t nsid, char op, int64_t id) {
    std::string value(1, op);
    keys::AppendU64(&value, static_cast<uint64_t>(id));
    batch.Put(ilog, keys::LogKey(nsid, counters.next_log_seq++), value);
    ++log_ops;
  }
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_NAMESPACE_WRITE_H_
