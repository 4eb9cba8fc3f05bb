// The in-memory state of one namespace (its indexes, id maps, counters and
// KV space) and the index options derived from its config. Internal to
// db/; its locks take part in the store's lock order, documented once at
// the top of db/store_impl.h.
#ifndef MNEMO_DB_NAMESPACE_H_
#define MNEMO_DB_NAMESPACE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "db/bm25.h"
#include "db/kv_space.h"
#include "db/records.h"
#include "db/store.h"
#include "db/store_testing.h"
#include "index/dense_index.h"
#include "index/filter.h"
#include "index/multivec.h"

namespace mnemo::db {

struct InjectionState;  // db/injection_store.h

// Why a namespace object no longer serves requests. kDamaged: Open could
// not load it (its rows, vectors or index hit unreadable data, see
// `damage`); it stays listed, answers every other call with `damage` and
// can be dropped.
enum class Gone { kNo, kDropped, kClosed, kDamaged };

// In-memory state of one namespace. `config`, `nsid` and `created_unix_ms`
// are immutable after construction.
struct Namespace {
  NamespaceConfig config;
  uint32_t nsid = 0;
  int64_t created_unix_ms = 0;

  // Held for the whole of a snapshot write so that snapshot files of a
  // namespace only move forward in log sequence.
  absl::Mutex snapshot_mu ABSL_ACQUIRED_BEFORE(mu);

  // Readers: Search/Get/Stats/snapshot serialisation/KV reads. Writer:
  // Upsert/Delete/Drop/rebuild/KV writes.
  mutable absl::Mutex mu;
  Gone gone ABSL_GUARDED_BY(mu) = Gone::kNo;
  // When gone == kDamaged: the DATA_LOSS every call answers, naming what
  // was damaged (RocksDB's message names the file) and what to do.
  absl::Status damage ABSL_GUARDED_BY(mu);
  std::unique_ptr<index::DenseIndex> index ABSL_GUARDED_BY(mu);
  // BM25 over the chunks' text, encoder namespaces only (null otherwise).
  // Its updates are staged and applied under the writer lock.
  std::unique_ptr<Bm25Index> bm25 ABSL_GUARDED_BY(mu);
  // Token vectors of every chunk, late-interaction namespaces only (null
  // otherwise). Mirrors the multivec CF: rebuilt from it on open, updated
  // after each committed write. Its codec, once trained, is the one stored
  // under meta MultiVecCodecKey.
  std::unique_ptr<index::MultiVectorIndex> multivec ABSL_GUARDED_BY(mu);
  index::AttributeTable attrs ABSL_GUARDED_BY(mu);
  // Chunk KV caches, once a model is registered (null before). The pointer
  // is guarded by `mu`; the space locks its own state (kv_space.h).
  std::unique_ptr<KvSpace> kv ABSL_GUARDED_BY(mu);
  // Memory injection, once a model is registered (null before; see
  // db/injection_store.h). Replaced, never mutated.
  std::shared_ptr<const InjectionState> injection ABSL_GUARDED_BY(mu);
  // internal id -> external chunk id of every live chunk.
  absl::flat_hash_map<int64_t, std::string> external_ids ABSL_GUARDED_BY(mu);
  uint64_t document_count ABSL_GUARDED_BY(mu) = 0;
  // Quota limits (meta NsQuotaKey) and the bytes they count (db/quota.h):
  // recomputed from the rows on open, moved by every committed write.
  NamespaceQuota quota ABSL_GUARDED_BY(mu);
  uint64_t stored_bytes ABSL_GUARDED_BY(mu) = 0;
  // Persistent counters as of the last committed write; the index reflects
  // every log entry up to counters.next_log_seq - 1.
  records::NamespaceCounters counters ABSL_GUARDED_BY(mu);
  // Log seq the newest snapshot file holds, when that file matches the
  // in-memory index exactly (no rebuild since).
  std::optional<uint64_t> snapshot_seq ABSL_GUARDED_BY(mu);
  // Bumped on every index rebuild; a snapshot serialised before a rebuild is
  // not recorded as current.
  uint64_t index_generation ABSL_GUARDED_BY(mu) = 0;
  // Removed ids may still sit in the index as dead entries (HNSW).
  bool may_have_dead_entries ABSL_GUARDED_BY(mu) = false;
  // How Open recovered the index (for tests and logs).
  testing::RecoveryInfo recovery ABSL_GUARDED_BY(mu);
  // Logged index changes since the last snapshot; drives background
  // snapshots.
  std::atomic<uint64_t> ops_since_snapshot{0};

  // Indexes the scope attributes of memories and messages (user, agent,
  // run) in `attrs`, for the scoped searches' candidate plan.
  Namespace();

  absl::Status GoneStatus() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    if (gone == Gone::kClosed) return absl::FailedPreconditionError("store is closed");
    if (gone == Gone::kDropped) {
      return absl::NotFoundError(absl::StrCat("namespace '", config.name, "' was dropped"));
    }
    if (gone == Gone::kDamaged) return damage;
    return absl::OkStatus();
  }
};

using NamespacePtr = std::shared_ptr<Namespace>;

// A fresh, damaged copy of `loaded` (same config, id and creation time,
// no data): `error` is the DATA_LOSS its loading met. Its `damage` says
// which namespace, what failed (RocksDB names the file) and what to do:
// restore from a backup or drop the namespace.
NamespacePtr DamagedNamespace(const Namespace& loaded, const absl::Status& error);

// The dense index of a namespace with this config.
index::DenseIndexOptions IndexOptionsFor(const NamespaceConfig& config);

// The multi-vector index of a late-interaction namespace. The store trains
// the codec itself (so that it can persist it in the same write), never the
// index.
index::MultiVectorIndexOptions MultiVecOptionsFor(const NamespaceConfig& config);

// Graph indexes only mark removed ids dead; Compact rebuilds them.
bool KeepsDeadEntries(absl::string_view factory);

}  // namespace mnemo::db

#endif  // MNEMO_DB_NAMESPACE_H_
