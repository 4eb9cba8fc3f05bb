// StoreImpl: the RocksDB-backed db::Store, the thin owner that opens the
// DB and wires the concerns that each live in their own file:
//
//   store_impl.cc         open, close, point-read helpers, test seams
//   namespace_registry.cc create / get / list / drop namespaces
//   recovery.cc           load namespaces: snapshot + index-log replay
//   write_path.cc         Upsert, Delete and the one commit/apply routine
//   token_vectors.cc      late-interaction token rows of a write
//   get.cc                point reads of chunks and documents
//   search.cc             dense, BM25, hybrid and late-interaction search
//   maintenance.cc        index snapshots, Checkpoint, Compact
//   backup.cc             backups (BackupEngine): create, list, verify, restore
//   kv_store.cc           chunk KV caches (KvStore)
//   kv_streams.cc         the KV writer and reader handed out
//   kv_retention.cc       KV expiry and recency flush timers (PeriodicTask)
//   memory_*.cc           agent memories (MemoryEngine, memory_engine.h)
//   convo_*.cc            conversation logs (ConvoEngine, convo_engine.h)
//
// and internal helpers of their own: namespace.h (a namespace's in-memory
// state), namespace_write.h (one write on its way to CommitLocked),
// store_lifetime.h (the token handed-out readers hold), validation.h,
// rocks_status.h, bounded_iterator.h, file_io.h.
//
// See keys.h for the key layout and records.h for the value encodings.
// Internal to db/.
//
// LOCK ORDER (the one place it is written down; other files refer here):
//
//   backup_mu_ -> mu_ (CreateBackup holds both while it copies)
//   close_mu_ -> mu_ -> StoreLifetime pin -> Namespace::snapshot_mu
//             -> Namespace::mu -> {bg_mu_, parallel_search_mu_,
//                                  KvSpace's lock, StoreLifetime registry}
//
// - `mu_` (store) guards the namespace map and the closed flag.
// - Each namespace has `snapshot_mu` (serialises snapshot writers of that
//   namespace) and `mu` (readers: Search/Get/Stats/snapshot serialisation/
//   KV reads; writer: Upsert/Delete/Drop/rebuild/KV writes).
// - A StoreLifetime pin (store_lifetime.h) is held by a handed-out object
//   (KvReader::Next, KvChunkWriter::Commit) for one call, before it takes
//   any namespace lock; Close takes it exclusively only after it released
//   every namespace lock, so Close never holds both.
// - The KV retention timers (periodic_task.h) run on their own threads
//   and take mu_, then one Namespace::mu at a time, like any call. Close
//   stops (joins) them first, holding only close_mu_, which they never take.
// - The locks on the right are leaves: nothing is acquired under them.
// No path takes two of these locks in another order.
//
// Recovery invariant: for every namespace, the index equals
//   snapshot(seq S) + the index-log entries with seq > S
// where each log entry is committed in the same WriteBatch as the rows it
// describes. Internal ids are never reused, so replaying "add id" reads the
// vector from the `dense` CF and skips ids whose row is gone (removed by a
// later entry that is replayed too).
#ifndef MNEMO_DB_STORE_IMPL_H_
#define MNEMO_DB_STORE_IMPL_H_

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "db/injection_store.h"
#include "db/kv_store.h"
#include "db/convo_engine.h"
#include "db/memory_engine.h"
#include "db/namespace.h"
#include "db/namespace_write.h"
#include "db/periodic_task.h"
#include "db/store.h"
#include "db/store_lifetime.h"
#include "db/store_testing.h"
#include "db/text.h"
#include "db/token_vectors.h"
#include "db/write_resumer.h"
#include "index/dense_index.h"
#include "index/fusion.h"
#include "index/residual_codec.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"

namespace mnemo::db {

class StoreImpl final : public Store {
 public:
  friend absl::Status testing::CloseWithoutSnapshotForTesting(Store* store);
  friend absl::StatusOr<testing::RecoveryInfo> testing::RecoveryInfoForTesting(
      Store* store, absl::string_view ns);
  friend absl::Status testing::SetKvClockForTesting(Store* store,
                                                    std::function<int64_t()> now_ms);
  // The memory engine stages chunk writes and runs the index searches of
  // memories with the write and search routines below.
  friend class MemoryEngine;
  friend class ConvoEngine;

  // `env`: where RocksDB's files go (tests only, see
  // testing::OpenOnFileSystemForTesting); null = the default Env.
  StoreImpl(const StoreOptions& options, const std::string& path,
            std::unique_ptr<rocksdb::Env> env = nullptr);
  ~StoreImpl() override;

  // Opens the DB, loads every namespace and starts the background thread.
  absl::Status Init();

  // --- db::Store (contracts in store.h).
  absl::Status Close() override;
  absl::StatusOr<NamespaceInfo> CreateNamespace(const NamespaceConfig& config) override;
  absl::StatusOr<NamespaceInfo> GetNamespace(absl::string_view name) override;
  absl::StatusOr<std::vector<NamespaceInfo>> ListNamespaces() override;
  absl::Status DropNamespace(absl::string_view name) override;
  absl::StatusOr<NamespaceInfo> SetNamespaceQuota(absl::string_view name,
                                                  const QuotaChange& change) override;
  absl::StatusOr<WriteResult> Upsert(absl::string_view ns, absl::Span<const Document> documents,
                                     absl::Span<const Chunk> chunks) override;
  absl::StatusOr<DeleteResult> Delete(absl::string_view ns,
                                      absl::Span<const std::string> chunk_ids,
                                      absl::Span<const std::string> document_ids) override;
  absl::StatusOr<GetResult> Get(absl::string_view ns, absl::Span<const std::string> chunk_ids,
                                absl::Span<const std::string> document_ids,
                                bool include_vectors) override;
  absl::StatusOr<std::vector<std::vector<Hit>>> Search(absl::string_view ns,
                                                       absl::Span<const float> queries,
                                                       const SearchOptions& options) override;
  absl::StatusOr<std::vector<NamespaceInfo>> Stats(absl::string_view ns) override;
  absl::StatusOr<uint64_t> Checkpoint(const std::string& target_dir) override;
  absl::Status Compact(absl::string_view ns) override;
  absl::StatusOr<BackupInfo> CreateBackup(const std::string& backup_dir) override;
  absl::StatusOr<std::vector<BackupInfo>> ListBackups(const std::string& backup_dir) override;
  absl::StatusOr<std::vector<uint32_t>> VerifyBackup(const std::string& backup_dir,
                                                     uint32_t id) override;
  // KV calls are KvStore's (kv_store.h).
  absl::StatusOr<KvStats> RegisterKvModel(absl::string_view ns, const KvConfig& config) override {
    return kv_store_.RegisterKvModel(ns, config);
  }
  absl::StatusOr<std::unique_ptr<KvChunkWriter>> BeginPutKv(absl::string_view ns,
                                                            KvPutHeader header) override {
    return kv_store_.BeginPutKv(ns, std::move(header));
  }
  absl::StatusOr<std::unique_ptr<KvReader>> ReadKv(absl::string_view ns,
                                                   const KvReadOptions& options) override {
    return kv_store_.ReadKv(ns, options);
  }
  absl::StatusOr<std::vector<uint32_t>> ExistsKv(absl::string_view ns,
                                                 absl::Span<const std::string> chunk_ids,
                                                 const ModelFingerprint& model) override {
    return kv_store_.ExistsKv(ns, chunk_ids, model);
  }
  absl::StatusOr<uint64_t> DeleteKv(absl::string_view ns,
                                    absl::Span<const std::string> chunk_ids) override {
    return kv_store_.DeleteKv(ns, chunk_ids);
  }
  absl::StatusOr<KvPrefixMatch> LookupPrefix(absl::string_view ns, const ModelFingerprint& model,
                                             absl::Span<const int32_t> tokens) override {
    return kv_store_.LookupPrefix(ns, model, tokens);
  }
  absl::StatusOr<uint64_t> SetKvRetention(absl::string_view ns,
                                          absl::Span<const std::string> chunk_ids,
                                          std::optional<bool> pin,
                                          std::optional<int64_t> ttl_seconds) override {
    return kv_store_.SetKvRetention(ns, chunk_ids, pin, ttl_seconds);
  }
  absl::StatusOr<KvStats> GetKvStats(absl::string_view ns) override {
    return kv_store_.GetKvStats(ns);
  }
  // Memory injection calls are InjectionStore's (injection_store.h).
  absl::StatusOr<InjectionInfo> RegisterInjectionModel(absl::string_view ns,
                                                       const InjectionFiles& files,
                                                       bool exact) override {
    return injection_store_.Register(ns, files, exact);
  }
  absl::StatusOr<InjectionInfo> GetInjectionModel(absl::string_view ns) override {
    return injection_store_.Info(ns);
  }
  absl::StatusOr<RecallResult> Recall(absl::string_view ns,
                                      const RecallOptions& options) override {
    return injection_store_.Recall(ns, options);
  }
  MemoryStore& memories() override { return memory_engine_; }
  ConvoStore& conversations() override { return convo_engine_; }
  const StoreOptions& options() const override { return options_; }
  const std::string& path() const override { return path_; }

  // --- Engine services of the concern files (KvStore among them).

  // The open namespace `name`: FAILED_PRECONDITION after Close, NOT_FOUND
  // when absent.
  absl::StatusOr<NamespacePtr> FindNamespace(absl::string_view name) ABSL_LOCKS_EXCLUDED(mu_);
  // Point reads of many keys in one CF; nullopt for absent keys.
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      rocksdb::ColumnFamilyHandle* cf, const std::vector<std::string>& keys);
  absl::StatusOr<std::optional<std::string>> GetOne(rocksdb::ColumnFamilyHandle* cf,
                                                    const std::string& key);
  // Commits `write` in one synced WriteBatch and applies it to the
  // namespace's in-memory state (see NamespaceWrite): the one commit/apply
  // routine of every write. `what` names the write in errors.
  absl::Status CommitLocked(Namespace* ns, NamespaceWrite* write, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);
  // Stages the removal of the chunks `victims` (unknown ids skipped) into
  // `write`: rows, BM25 postings and index-log entries. Returns how many
  // existed.
  absl::StatusOr<uint64_t> StageChunkDeletesLocked(Namespace* ns,
                                                   absl::Span<const std::string> victims,
                                                   NamespaceWrite* write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);
  // Stages the removal of the KV rows of `ids` (those holding KV).
  void StageKvRemovalLocked(const Namespace& ns, rocksdb::WriteBatch* batch,
                            absl::Span<const int64_t> ids) ABSL_SHARED_LOCKS_REQUIRED(ns.mu);
  rocksdb::DB* db() const { return db_.get(); }
  // Writes `batch`: every write of the store goes through here, so that
  // writes resume after a file-system error once it clears (see
  // write_resumer.h). `what` names the write in errors.
  absl::Status WriteToDb(const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch,
                          absl::string_view what) {
    return write_resumer_.Write(db_.get(), options, batch, what);
  }
  rocksdb::ColumnFamilyHandle* idmap_cf() const { return idmap_; }
  rocksdb::ColumnFamilyHandle* kv_cf() const { return kv_; }
  rocksdb::ColumnFamilyHandle* meta_cf() const { return meta_; }
  rocksdb::ColumnFamilyHandle* chunks_cf() const { return chunks_; }
  rocksdb::ColumnFamilyHandle* dense_cf() const { return dense_; }
  rocksdb::ColumnFamilyHandle* inject_cf() const { return inject_; }
  const std::shared_ptr<StoreLifetime>& lifetime() const { return lifetime_; }
  rocksdb::WriteOptions SyncedWrite() const {
    rocksdb::WriteOptions w;
    w.sync = options_.sync_writes;
    return w;
  }

 private:
  // --- store_impl.cc
  absl::Status OpenDb();
  absl::Status CloseImpl(bool save_snapshots);
  std::vector<NamespacePtr> AllNamespaces() ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<rocksdb::ColumnFamilyHandle*> DataCfs() const {
    return {docs_, chunks_, dense_, idmap_, ilog_, bm25_, multivec_, kv_, inject_, memory_};
  }
  std::string SnapshotPath(uint32_t nsid) const {
    return (std::filesystem::path(index_dir_) / absl::StrCat(nsid, ".idx")).string();
  }

  // --- namespace_registry.cc
  NamespaceInfo InfoLocked(const Namespace& ns) ABSL_SHARED_LOCKS_REQUIRED(ns.mu);
  // Bytes of the namespace's key range in the data CFs (files + memtables).
  uint64_t ApproximateBytesLocked(const Namespace& ns) ABSL_SHARED_LOCKS_REQUIRED(ns.mu);

  // --- namespace_quota.cc
  NamespaceUsage UsageLocked(const Namespace& ns) ABSL_SHARED_LOCKS_REQUIRED(ns.mu);
  // RESOURCE_EXHAUSTED when `write` would take a usage over its limit
  // (db/quota.h); called by CommitLocked before anything is staged.
  absl::Status CheckQuotaLocked(const Namespace& ns, const NamespaceWrite& write)
      ABSL_SHARED_LOCKS_REQUIRED(ns.mu);
  // Reads the namespace's stored quota (none stored = no limits).
  absl::Status LoadQuotaLocked(Namespace* ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);

  // --- recovery.cc
  absl::Status LoadNamespaces();
  absl::Status LoadNamespace(Namespace* ns);
  // Loads the snapshot file and replays the log after it into `*out`.
  absl::Status LoadSnapshotAndReplay(Namespace* ns, std::unique_ptr<index::DenseIndex>* out,
                                     uint64_t* snapshot_seq, uint64_t* replayed)
      ABSL_SHARED_LOCKS_REQUIRED(ns->mu);
  // Builds a fresh index from the namespace's `dense` rows.
  absl::StatusOr<std::unique_ptr<index::DenseIndex>> BuildIndexFromDense(const Namespace& ns);
  absl::Status RebuildIndexLocked(Namespace* ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);
  void RemoveOrphanSnapshots();

  // --- write_path.cc
  absl::Status StageUpsertLocked(Namespace* ns, absl::Span<const Document> documents,
                                 absl::Span<const Chunk> chunks,
                                 const absl::flat_hash_set<std::string>& text_docs,
                                 const std::vector<std::vector<uint32_t>>& chunk_terms,
                                 std::vector<index::Attributes>* chunk_attrs,
                                 NamespaceWrite* write_out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);
  // Applies a committed chunk write to the dense index, id maps and
  // attributes; rebuilds the index from the CF when an update fails.
  absl::Status ApplyChunksLocked(Namespace* ns, NamespaceWrite* write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);

  // --- token_vectors.cc
  // Builds the namespace's multi-vector index from its stored codec and
  // multivec rows (every row must belong to a live chunk).
  absl::StatusOr<std::unique_ptr<index::MultiVectorIndex>> BuildMultiVecFromCf(
      const Namespace& ns) ABSL_SHARED_LOCKS_REQUIRED(ns.mu);
  // Adds the multivec rows of a write to `batch`: the new chunks' rows and,
  // when this write brings the staged tokens to the training threshold, the
  // codec trained on them plus every surviving staged row re-encoded.
  // `removed` are the ids this write deletes. Fills `*trained` with the new
  // codec (null when none was trained) and `*reencoded` with the staged
  // documents rewritten in encoded form.
  absl::Status StageMultiVecLocked(
      Namespace* ns, rocksdb::WriteBatch* batch, const std::vector<int64_t>& removed,
      const std::vector<int64_t>& ids, std::vector<std::optional<PendingTokens>>* tokens,
      std::shared_ptr<const index::ResidualCodec>* trained,
      std::vector<std::pair<int64_t, index::ResidualCodes>>* reencoded)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);
  // Brings the multi-vector index in line with a committed write (see
  // StageMultiVecLocked); rebuilds it from the CF when an update fails.
  absl::Status ApplyMultiVecLocked(
      Namespace* ns, const std::vector<int64_t>& removed, const std::vector<int64_t>& ids,
      std::vector<std::optional<PendingTokens>> tokens,
      std::shared_ptr<const index::ResidualCodec> trained,
      std::vector<std::pair<int64_t, index::ResidualCodes>> reencoded)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);

  // --- search.cc
  // Search with options.text_queries (see SearchOptions).
  absl::StatusOr<std::vector<std::vector<Hit>>> TextSearch(Namespace* ns,
                                                           absl::Span<const float> queries,
                                                           const SearchOptions& options)
      ABSL_LOCKS_EXCLUDED(ns->mu);
  // TextSearch in SearchMode::kLateInteraction, options already validated.
  absl::StatusOr<std::vector<std::vector<Hit>>> LateSearch(Namespace* ns,
                                                           const text::TextEncoder& enc,
                                                           const SearchOptions& options)
      ABSL_LOCKS_EXCLUDED(ns->mu);
  // Top-k (internal id, score) per query of the dense index; queries holds
  // a multiple of the namespace dim, already validated.
  absl::StatusOr<std::vector<std::vector<index::ScoredId>>> DenseSearchLocked(
      Namespace* ns, absl::Span<const float> queries, int k, const SearchOptions& options,
      const index::IdPredicate* predicate) ABSL_SHARED_LOCKS_REQUIRED(ns->mu);
  // Turns ranked internal ids into hits: external ids, payload, vectors and
  // snippets as the options ask (snippets need `encoder`, null for vector
  // queries).
  absl::StatusOr<std::vector<std::vector<Hit>>> MakeHitsLocked(
      Namespace* ns, const std::vector<std::vector<index::ScoredId>>& lists,
      const SearchOptions& options, const text::TextEncoder* encoder)
      ABSL_SHARED_LOCKS_REQUIRED(ns->mu);

  // --- maintenance.cc
  // Writes a snapshot of `ns` unless the current one is up to date, then
  // trims the log entries it covers.
  absl::Status SnapshotNamespace(Namespace* ns);
  void RequestSnapshot() ABSL_LOCKS_EXCLUDED(bg_mu_);
  void BackgroundLoop();

  // --- kv_retention.cc
  // Starts the KV expiry and recency flush timers the options ask for.
  void StartKvRetention();
  // Stops them (waiting for a pass in progress), then flushes the recency
  // of every namespace once more. Close calls it before anything else.
  absl::Status StopKvRetention() ABSL_LOCKS_EXCLUDED(mu_);
  // One pass of each timer over every open namespace.
  void ExpireKvPass() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status FlushKvRecencyPass() ABSL_LOCKS_EXCLUDED(mu_);

  const StoreOptions options_;
  const std::string path_;
  const std::string index_dir_;

  // Serialises Close; db_ and the handles are only destroyed under it, after
  // every namespace was marked closed under its writer lock and the
  // lifetime token was closed.
  absl::Mutex close_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // The Env db_ was opened on (null = rocksdb::Env::Default()); outlives
  // db_, declared before it.
  const std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<rocksdb::DB> db_;
  // Resumes writes after a file-system error (its listener is db_'s).
  WriteResumer write_resumer_;
  // Shared with every KvReader and KvChunkWriter handed out (see
  // store_lifetime.h); created with db_.
  std::shared_ptr<StoreLifetime> lifetime_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* docs_ = nullptr;
  rocksdb::ColumnFamilyHandle* chunks_ = nullptr;
  rocksdb::ColumnFamilyHandle* dense_ = nullptr;
  rocksdb::ColumnFamilyHandle* idmap_ = nullptr;
  rocksdb::ColumnFamilyHandle* ilog_ = nullptr;
  rocksdb::ColumnFamilyHandle* bm25_ = nullptr;
  rocksdb::ColumnFamilyHandle* multivec_ = nullptr;
  rocksdb::ColumnFamilyHandle* kv_ = nullptr;
  rocksdb::ColumnFamilyHandle* inject_ = nullptr;  // injection records
  rocksdb::ColumnFamilyHandle* memory_ = nullptr;  // memory_records.h

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t next_nsid_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<std::string, NamespacePtr> namespaces_ ABSL_GUARDED_BY(mu_);

  absl::Mutex bg_mu_;
  absl::CondVar bg_cv_;
  bool bg_stop_ ABSL_GUARDED_BY(bg_mu_) = false;
  bool bg_wakeup_ ABSL_GUARDED_BY(bg_mu_) = false;
  std::thread bg_thread_;
  // KV retention timers (null when off); started by Init, stopped by Close.
  std::unique_ptr<PeriodicTask> kv_expiry_task_;
  std::unique_ptr<PeriodicTask> kv_recency_task_;

  // OpenMP threads available to one search (omp_get_max_threads at Open).
  const int search_threads_ = std::max(1, omp_get_max_threads());
  // Held by a search that uses the whole OpenMP team (see store.h).
  absl::Mutex parallel_search_mu_;
  // Serialises backups (one BackupEngine writer per backup directory).
  absl::Mutex backup_mu_ ABSL_ACQUIRED_BEFORE(mu_);

  // Chunk KV caches; uses the services above.
  KvStore kv_store_{this};
  // Memory injection; uses the services above.
  InjectionStore injection_store_{this};
  // Agent memories; uses the services above.
  MemoryEngine memory_engine_{this};
  // Conversation logs; use the memory engine's namespaces and encoder.
  ConvoEngine convo_engine_{this, &memory_engine_};
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_STORE_IMPL_H_
