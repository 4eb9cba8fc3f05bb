// KvStore: the chunk KV caches of a store (the KV half of db::Store, whose
// contracts are in store.h and kv.h): model registration, puts through a
// KvChunkWriter, reads through a KvReader, existence, deletes, prefix
// lookup, retention and stats. It owns no data of its own: a namespace's
// KvSpace lives in its Namespace, rows in the store's `kv` CF, and every
// write goes through the owner's one commit routine (StoreImpl::
// CommitLocked). Internal to db/; StoreImpl forwards its KV methods here.
//
// Thread safety: as db::Store. Lock order: db/store_impl.h.
#ifndef MNEMO_DB_KV_STORE_H_
#define MNEMO_DB_KV_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "db/kv.h"
#include "db/kv_records.h"
#include "db/kv_space.h"
#include "db/namespace.h"

namespace mnemo::db {

class StoreImpl;

class KvStore {
 public:
  // `owner` outlives this object (it is a member of it).
  explicit KvStore(StoreImpl* owner) : owner_(owner) {}
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  absl::StatusOr<KvStats> RegisterKvModel(absl::string_view ns, const KvConfig& config);
  absl::StatusOr<std::unique_ptr<KvChunkWriter>> BeginPutKv(absl::string_view ns,
                                                            KvPutHeader header);
  absl::StatusOr<std::unique_ptr<KvReader>> ReadKv(absl::string_view ns,
                                                   const KvReadOptions& options);
  absl::StatusOr<std::vector<uint32_t>> ExistsKv(absl::string_view ns,
                                                 absl::Span<const std::string> chunk_ids,
                                                 const ModelFingerprint& model);
  absl::StatusOr<uint64_t> DeleteKv(absl::string_view ns,
                                    absl::Span<const std::string> chunk_ids);
  absl::StatusOr<KvPrefixMatch> LookupPrefix(absl::string_view ns, const ModelFingerprint& model,
                                             absl::Span<const int32_t> tokens);
  absl::StatusOr<uint64_t> SetKvRetention(absl::string_view ns,
                                          absl::Span<const std::string> chunk_ids,
                                          std::optional<bool> pin,
                                          std::optional<int64_t> ttl_seconds);
  absl::StatusOr<KvStats> GetKvStats(absl::string_view ns);

  // Loads the namespace's KV config and chunk records (recovery).
  absl::Status LoadLocked(Namespace* ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);
  // Commits and removes the KV of chunks whose TTL ran out (Compact, the
  // expiry timer).
  absl::Status RemoveExpiredLocked(Namespace* ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);

  // --- Background retention (kv_retention.cc), run by the store's timers
  // and at Close, one call at a time per store (the timers are stopped
  // before Close's final flush).
  // Writes the recency stamps of the chunks read since the last flush in
  // one WriteBatch (unsynced: a lost batch only leaves older stamps), under
  // the namespace's reader lock so no removal of those chunks interleaves.
  // Returns the number of stamps written.
  absl::StatusOr<size_t> FlushRecency(Namespace* ns) ABSL_LOCKS_EXCLUDED(ns->mu);
  // RemoveExpiredLocked when anything expired (checked under the reader
  // lock first, so a pass with nothing to do never blocks readers).
  // Returns the number of chunks whose KV was removed.
  absl::StatusOr<size_t> RemoveExpired(Namespace* ns) ABSL_LOCKS_EXCLUDED(ns->mu);
  // Commits a finished put (KvChunkWriter::Commit).
  absl::StatusOr<KvPutResult> CommitPut(const NamespacePtr& ns, const KvPutHeader& header,
                                        const std::vector<std::string>& blocks,
                                        const std::vector<std::string>& index_blocks,
                                        const KvPutResult& encoded, uint64_t fp16_bytes,
                                        uint64_t fingerprint_hash) ABSL_LOCKS_EXCLUDED(ns->mu);

  // Wall clock of KV expiry, Unix ms (a test seam can replace it).
  int64_t NowMs() const;
  void SetClockForTesting(std::function<int64_t()> now_ms) { clock_ = std::move(now_ms); }

 private:
  // The namespace's KV space after checking `model` against it
  // (FAILED_PRECONDITION when none is registered or the model differs).
  absl::StatusOr<KvSpace*> SpaceFor(const Namespace& ns, const ModelFingerprint* model)
      ABSL_SHARED_LOCKS_REQUIRED(ns.mu);
  // Internal id of a live chunk, under the namespace lock.
  absl::StatusOr<std::optional<int64_t>> InternalIdLocked(const Namespace& ns,
                                                          absl::string_view chunk_id)
      ABSL_SHARED_LOCKS_REQUIRED(ns.mu);

  StoreImpl* const owner_;
  std::function<int64_t()> clock_;
};

// The KvSpace entry of a stored chunk record.
KvEntry KvEntryOf(const kvrecords::KvChunkRecord& r);

}  // namespace mnemo::db

#endif  // MNEMO_DB_KV_STORE_H_
