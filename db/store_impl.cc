// RocksDB-backed implementation of db::Store. See keys.h for the key layout
// and records.h for the value encodings.
//
// Locking: `mu_` (store) guards the namespace map and the closed flag. Each
// namespace has `snapshot_mu` (serialises snapshot writers of that
// namespace) and `mu` (readers: Search/Get/Stats/snapshot serialisation;
// writer: Upsert/Delete/Drop/rebuild). Lock order is
// mu_ -> Namespace::snapshot_mu -> Namespace::mu -> bg_mu_; no path takes
// them in another order.
//
// Recovery invariant: for every namespace, the index equals
//   snapshot(seq S) + the index-log entries with seq > S
// where each log entry is committed in the same WriteBatch as the rows it
// describes. Internal ids are never reused, so replaying "add id" reads the
// vector from the `dense` CF and skips ids whose row is gone (removed by a
// later entry that is replayed too).

#include <fcntl.h>
#include <omp.h>
#include <cstring>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "attention/rope.h"
#include "common/status_macros.h"
#include "db/bm25.h"
#include "db/keys.h"
#include "db/kv_records.h"
#include "db/kv_space.h"
#include "db/records.h"
#include "db/store.h"
#include "db/store_testing.h"
#include "db/text.h"
#include "absl/strings/ascii.h"
#include "encoder/chunker.h"
#include "index/fusion.h"
#include "index/multivec.h"
#include "index/residual_codec.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;

constexpr char kSchemaVersion[] = "1";
constexpr size_t kRebuildBatch = 4096;
// Chunking defaults of encoder namespaces (see NamespaceConfig).
constexpr uint32_t kDefaultChunkMaxTokens = 128;
constexpr uint32_t kDefaultChunkOverlapTokens = 16;
constexpr uint32_t kMaxChunkTokens = 4096;
// Candidates each list contributes to a hybrid search (at least k).
constexpr int kHybridDepth = 50;
// Late interaction defaults (see NamespaceConfig).
constexpr uint32_t kDefaultLateNbits = 2;
// Chunks whose token states are computed in one encoder call on upsert.
constexpr size_t kTokenEncodeBatch = 64;

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(context, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return absl::UnavailableError(msg);
  // RocksDB reports a held directory lock as an IO error on "<dir>/LOCK"
  // ("While lock file: ..." from another process, "lock hold by current
  // process" from this one).
  if (s.IsIOError() && absl::StrContains(s.ToString(), "/LOCK")) {
    return absl::FailedPreconditionError(absl::StrCat(
        context, ": the data directory is in use by another Store (RocksDB LOCK held): ",
        s.ToString()));
  }
  return absl::InternalError(msg);
}

// rocksdb::Slice -> absl::string_view (Debian's Abseil does not alias
// std::string_view).
absl::string_view View(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Graph indexes only mark removed ids dead; Compact rebuilds them.
bool KeepsDeadEntries(absl::string_view factory) {
  return absl::StrContains(factory, "HNSW") || absl::StrContains(factory, "NSG");
}

absl::Status ErrnoStatus(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status FsyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY);
  if (fd < 0) return ErrnoStatus("open", path);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoStatus("fsync", path);
  return absl::OkStatus();
}

// Writes `data` to `path` so that a crash leaves either the old file or the
// complete new one: temp file, fsync, rename, fsync of the directory.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view data) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("create", tmp);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status st = ErrnoStatus("write", tmp);
      ::close(fd);
      return st;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    absl::Status st = ErrnoStatus("fsync", tmp);
    ::close(fd);
    return st;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("rename", tmp);
  return FsyncPath(fs::path(path).parent_path().string(), /*directory=*/true);
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return std::move(ss).str();
}

absl::Status ValidateId(absl::string_view id, absl::string_view kind, const Limits& limits) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(kind, " id is empty"));
  if (id.size() > limits.max_id_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " id of ", id.size(),
                                                   " bytes exceeds the limit of ",
                                                   limits.max_id_bytes));
  }
  return absl::OkStatus();
}

// Checks size and JSON-object shape of a metadata field; fills `attrs`.
absl::Status ValidateMetadata(absl::string_view json, absl::string_view what,
                              const Limits& limits, index::Attributes* attrs) {
  if (json.size() > limits.max_metadata_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("metadata of ", what, " is ", json.size(),
                                                     " bytes; the limit is ",
                                                     limits.max_metadata_bytes));
  }
  auto parsed = index::ParseAttributes(json);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata of ", what, ": ", parsed.status().message()));
  }
  if (attrs != nullptr) *attrs = *std::move(parsed);
  return absl::OkStatus();
}

absl::Status ValidateText(absl::string_view text, absl::string_view what, const Limits& limits) {
  if (text.size() > limits.max_text_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("text of ", what, " is ", text.size(),
                                                     " bytes; the limit is ",
                                                     limits.max_text_bytes));
  }
  return absl::OkStatus();
}

index::DenseIndexOptions IndexOptionsFor(const NamespaceConfig& config) {
  index::DenseIndexOptions o;
  o.dim = config.dim;
  o.metric = config.metric;
  o.factory = config.index_factory;
  o.train_threshold = config.train_threshold;
  return o;
}

index::MultiVectorIndexOptions MultiVecOptionsFor(const NamespaceConfig& config) {
  index::MultiVectorIndexOptions o;
  o.dim = config.dim;
  o.nbits = config.late_interaction_nbits;
  // The store trains the codec itself (so that it can persist it in the
  // same write), never the index.
  o.train_threshold = std::numeric_limits<uint64_t>::max();
  return o;
}

// Drops token rows of zero (or non-finite) norm, which the multi-vector
// index refuses, and unit-normalises the rest. Empty when none is left.
absl::StatusOr<std::vector<float>> CleanTokens(std::vector<float> states, uint32_t dim) {
  std::vector<float> kept;
  kept.reserve(states.size());
  for (size_t t = 0; (t + 1) * dim <= states.size(); ++t) {
    double norm = 0;
    bool finite = true;
    for (size_t j = 0; j < dim; ++j) {
      const float x = states[t * dim + j];
      finite = finite && std::isfinite(x);
      norm += double{x} * x;
    }
    if (!finite || !(norm > 0) || !std::isfinite(norm)) continue;
    kept.insert(kept.end(), states.begin() + t * dim, states.begin() + (t + 1) * dim);
  }
  std::vector<float> out;
  if (kept.empty()) return out;
  RETURN_IF_ERROR(index::NormalizeMultiVectorTokens(kept, dim, &out));
  return out;
}

// A chunk's token vectors on their way into a write: encoded with the
// namespace's codec when it had one, else staged raw (unit-norm rows
// already rounded through fp16, so memory and disk hold the same values).
struct PendingTokens {
  std::vector<float> raw;
  index::ResidualCodes codes;
  bool encoded = false;
};

void RoundThroughHalf(std::vector<float>* v) {
  for (float& x : *v) x = records::HalfToFloat(records::FloatToHalf(x));
}

// True when `text` holds nothing but whitespace.
bool IsBlank(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Why a namespace object no longer serves requests.
enum class Gone { kNo, kDropped, kClosed };

// In-memory state of one namespace. `config`, `nsid` and `created_unix_ms`
// are immutable after construction.
struct Namespace {
  NamespaceConfig config;
  uint32_t nsid = 0;
  int64_t created_unix_ms = 0;

  // Held for the whole of a snapshot write so that snapshot files of a
  // namespace only move forward in log sequence.
  absl::Mutex snapshot_mu ABSL_ACQUIRED_BEFORE(mu);

  mutable absl::Mutex mu;
  Gone gone ABSL_GUARDED_BY(mu) = Gone::kNo;
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
  // internal id -> external chunk id of every live chunk.
  absl::flat_hash_map<int64_t, std::string> external_ids ABSL_GUARDED_BY(mu);
  uint64_t document_count ABSL_GUARDED_BY(mu) = 0;
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

  absl::Status GoneStatus() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    if (gone == Gone::kClosed) return absl::FailedPreconditionError("store is closed");
    if (gone == Gone::kDropped) {
      return absl::NotFoundError(absl::StrCat("namespace '", config.name, "' was dropped"));
    }
    return absl::OkStatus();
  }
};

using NamespacePtr = std::shared_ptr<Namespace>;

class StoreImpl final : public Store {
 public:
  friend absl::Status testing::CloseWithoutSnapshotForTesting(Store* store);
  friend absl::StatusOr<testing::RecoveryInfo> testing::RecoveryInfoForTesting(
      Store* store, absl::string_view ns);
  friend absl::Status testing::SetKvClockForTesting(Store* store,
                                                    std::function<int64_t()> now_ms);

  StoreImpl(const StoreOptions& options, const std::string& path)
      : options_(options), path_(path), index_dir_((fs::path(path) / "indexes").string()) {}

  ~StoreImpl() override { IgnoreError(Close()); }

  absl::Status Init();

  absl::Status Close() override;
  absl::StatusOr<NamespaceInfo> CreateNamespace(const NamespaceConfig& config) override;
  absl::StatusOr<NamespaceInfo> GetNamespace(absl::string_view name) override;
  absl::StatusOr<std::vector<NamespaceInfo>> ListNamespaces() override;
  absl::Status DropNamespace(absl::string_view name) override;
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
  const StoreOptions& options() const override { return options_; }
  const std::string& path() const override { return path_; }

 private:
  absl::Status OpenDb();
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
  // Builds the namespace's multi-vector index from its stored codec and
  // multivec rows (every row must belong to a live chunk).
  absl::StatusOr<std::unique_ptr<index::MultiVectorIndex>> BuildMultiVecFromCf(
      const Namespace& ns) ABSL_SHARED_LOCKS_REQUIRED(ns.mu);
  // Token states of `chunks` (those with text), encoded with `codec` when
  // given, else staged raw. Runs the encoder for the chunks whose states
  // `known` (null, or one entry per chunk) does not already hold; called
  // outside the lock.
  absl::StatusOr<std::vector<std::optional<PendingTokens>>> PrepareTokens(
      const text::TextEncoder& enc, const std::vector<Chunk>& chunks, uint32_t dim,
      const index::ResidualCodec* codec,
      std::vector<std::optional<std::vector<float>>>* known = nullptr);
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

  absl::StatusOr<NamespacePtr> FindNamespace(absl::string_view name) ABSL_LOCKS_EXCLUDED(mu_);

  // --- KV caches.
  friend class KvChunkWriterImpl;
  // Wall clock of KV expiry (a test seam can replace it).
  int64_t KvNowMs() const { return kv_clock_ ? kv_clock_() : NowUnixMs(); }
  std::function<int64_t()> kv_clock_;
  friend class KvReaderImpl;
  // Loads the namespace's KV config and chunk records (LoadNamespace).
  absl::Status LoadKvLocked(Namespace* ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);
  // The namespace's KV space after checking `model` against it
  // (FAILED_PRECONDITION when none is registered or the model differs).
  absl::StatusOr<KvSpace*> KvSpaceFor(const Namespace& ns, const ModelFingerprint* model)
      ABSL_SHARED_LOCKS_REQUIRED(ns.mu);
  // Stages the removal of the KV of `ids` (those holding KV) into `batch`.
  void StageKvRemovalLocked(Namespace* ns, rocksdb::WriteBatch* batch,
                            absl::Span<const int64_t> ids) ABSL_SHARED_LOCKS_REQUIRED(ns->mu);
  // After the commit of a StageKvRemovalLocked batch.
  void ApplyKvRemovalLocked(Namespace* ns, absl::Span<const int64_t> ids, KvSpace::Why why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);
  // Internal id of a live chunk, under the namespace lock.
  absl::StatusOr<std::optional<int64_t>> InternalIdLocked(const Namespace& ns,
                                                          absl::string_view chunk_id)
      ABSL_SHARED_LOCKS_REQUIRED(ns.mu);
  // Commits a finished put (KvChunkWriterImpl::Commit).
  absl::StatusOr<KvPutResult> CommitKv(const NamespacePtr& ns, const KvPutHeader& header,
                                       const std::vector<std::string>& blocks,
                                       const KvPutResult& encoded, uint64_t fp16_bytes,
                                       uint64_t fingerprint_hash) ABSL_LOCKS_EXCLUDED(ns->mu);

 public:
  absl::StatusOr<KvStats> RegisterKvModel(absl::string_view ns, const KvConfig& config) override;
  absl::StatusOr<std::unique_ptr<KvChunkWriter>> BeginPutKv(absl::string_view ns,
                                                            KvPutHeader header) override;
  absl::StatusOr<std::unique_ptr<KvReader>> ReadKv(absl::string_view ns,
                                                   const KvReadOptions& options) override;
  absl::StatusOr<std::vector<uint32_t>> ExistsKv(absl::string_view ns,
                                                 absl::Span<const std::string> chunk_ids,
                                                 const ModelFingerprint& model) override;
  absl::StatusOr<uint64_t> DeleteKv(absl::string_view ns,
                                    absl::Span<const std::string> chunk_ids) override;
  absl::StatusOr<KvPrefixMatch> LookupPrefix(absl::string_view ns, const ModelFingerprint& model,
                                             absl::Span<const int32_t> tokens) override;
  absl::StatusOr<uint64_t> SetKvRetention(absl::string_view ns,
                                          absl::Span<const std::string> chunk_ids,
                                          std::optional<bool> pin,
                                          std::optional<int64_t> ttl_seconds) override;
  absl::StatusOr<KvStats> GetKvStats(absl::string_view ns) override;

 private:
  NamespaceInfo InfoLocked(const Namespace& ns) ABSL_SHARED_LOCKS_REQUIRED(ns.mu);
  std::vector<NamespacePtr> AllNamespaces() ABSL_LOCKS_EXCLUDED(mu_);

  // Writes a snapshot of `ns` unless the current one is up to date, then
  // trims the log entries it covers.
  absl::Status SnapshotNamespace(Namespace* ns);
  std::string SnapshotPath(uint32_t nsid) const {
    return (fs::path(index_dir_) / absl::StrCat(nsid, ".idx")).string();
  }

  // Applies a committed write to the in-memory state.
  absl::Status ApplyLocked(Namespace* ns, const std::vector<int64_t>& removed,
                           const std::vector<int64_t>& added, const std::vector<float>& vectors,
                           std::vector<std::pair<int64_t, index::Attributes>> added_attrs,
                           std::vector<std::string> added_external, int64_t doc_delta,
                           const records::NamespaceCounters& counters, uint64_t log_ops)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);

  // Point reads of many keys in one CF; nullopt for absent keys.
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      rocksdb::ColumnFamilyHandle* cf, const std::vector<std::string>& keys);
  absl::StatusOr<std::optional<std::string>> GetOne(rocksdb::ColumnFamilyHandle* cf,
                                                    const std::string& key);
  rocksdb::WriteOptions SyncedWrite() const {
    rocksdb::WriteOptions w;
    w.sync = options_.sync_writes;
    return w;
  }
  std::vector<rocksdb::ColumnFamilyHandle*> DataCfs() const {
    return {docs_, chunks_, dense_, idmap_, ilog_, bm25_, multivec_, kv_};
  }

  void RequestSnapshot() ABSL_LOCKS_EXCLUDED(bg_mu_);
  void BackgroundLoop();
  absl::Status CloseImpl(bool save_snapshots);

  const StoreOptions options_;
  const std::string path_;
  const std::string index_dir_;

  // Serialises Close; db_ and the handles are only destroyed under it, after
  // every namespace was marked closed under its writer lock.
  absl::Mutex close_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::unique_ptr<rocksdb::DB> db_;
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

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t next_nsid_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<std::string, NamespacePtr> namespaces_ ABSL_GUARDED_BY(mu_);

  absl::Mutex bg_mu_;
  absl::CondVar bg_cv_;
  bool bg_stop_ ABSL_GUARDED_BY(bg_mu_) = false;
  bool bg_wakeup_ ABSL_GUARDED_BY(bg_mu_) = false;
  std::thread bg_thread_;

  // OpenMP threads available to one search (omp_get_max_threads at Open).
  const int search_threads_ = std::max(1, omp_get_max_threads());
  // Held by a search that uses the whole OpenMP team (see store.h).
  absl::Mutex parallel_search_mu_;
};

// Sets the calling thread's OpenMP team size for its lifetime, then restores
// it. Team size is a per-thread setting, so concurrent callers do not
// interfere.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ScopedOmpThreads() { omp_set_num_threads(saved_); }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  const int saved_;
};

// ---------------------------------------------------------------------------
// Open / Close

absl::Status StoreImpl::OpenDb() {
  std::error_code ec;
  if (options_.create_if_missing) {
    fs::create_directories(index_dir_, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot create ", index_dir_, ": ", ec.message()));
    }
  } else if (!fs::exists(fs::path(path_) / "CURRENT", ec)) {
    return absl::NotFoundError(absl::StrCat("no store at ", path_));
  } else {
    fs::create_directories(index_dir_, ec);
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options_.create_if_missing;
  db_options.create_missing_column_families = true;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  // Open every CF that exists (a newer schema may have added some) plus the
  // ones this version needs.
  std::vector<std::string> names;
  rocksdb::Status list = rocksdb::DB::ListColumnFamilies(db_options, path_, &names);
  if (!list.ok()) names.clear();
  for (const char* required :
       {rocksdb::kDefaultColumnFamilyName.c_str(), keys::kMetaCf, keys::kDocsCf, keys::kChunksCf,
        keys::kDenseCf, keys::kIdMapCf, keys::kIndexLogCf, keys::kBm25Cf, keys::kMultiVecCf,
        kvrecords::kKvCf}) {
    if (std::find(names.begin(), names.end(), required) == names.end()) {
      names.push_back(required);
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  // KV blocks are large, written once and read whole: they go to blob
  // files (already compressed by their codec), keeping the LSM small.
  rocksdb::ColumnFamilyOptions kv_options = cf_options;
  kv_options.enable_blob_files = true;
  kv_options.min_blob_size = 1024;
  kv_options.blob_compression_type = rocksdb::kNoCompression;
  kv_options.enable_blob_garbage_collection = true;
  for (const auto& name : names) {
    descriptors.emplace_back(name, name == kvrecords::kKvCf ? kv_options : cf_options);
  }

  rocksdb::DB* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(db_options, path_, descriptors, &handles_, &raw),
                            absl::StrCat("opening store at ", path_)));
  db_.reset(raw);
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& n = names[i];
    if (n == keys::kMetaCf) meta_ = handles_[i];
    if (n == keys::kDocsCf) docs_ = handles_[i];
    if (n == keys::kChunksCf) chunks_ = handles_[i];
    if (n == keys::kDenseCf) dense_ = handles_[i];
    if (n == keys::kIdMapCf) idmap_ = handles_[i];
    if (n == keys::kIndexLogCf) ilog_ = handles_[i];
    if (n == keys::kBm25Cf) bm25_ = handles_[i];
    if (n == keys::kMultiVecCf) multivec_ = handles_[i];
    if (n == kvrecords::kKvCf) kv_ = handles_[i];
  }

  ASSIGN_OR_RETURN(auto version, GetOne(meta_, keys::kSchemaVersionKey));
  if (!version.has_value()) {
    RETURN_IF_ERROR(FromRocks(
        db_->Put(SyncedWrite(), meta_, keys::kSchemaVersionKey, kSchemaVersion),
        "writing schema version"));
  } else if (*version != kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "store at ", path_, " has schema version ", *version, "; this build reads ",
        kSchemaVersion));
  }
  return absl::OkStatus();
}

absl::Status StoreImpl::Init() {
  RETURN_IF_ERROR(OpenDb());
  RETURN_IF_ERROR(LoadNamespaces());
  RemoveOrphanSnapshots();
  bg_thread_ = std::thread([this] { BackgroundLoop(); });
  return absl::OkStatus();
}

absl::Status StoreImpl::LoadNamespaces() {
  ASSIGN_OR_RETURN(auto next, GetOne(meta_, keys::kNextNsIdKey));
  uint32_t next_nsid = 1;
  if (next.has_value()) {
    auto v = keys::ReadU32(*next);
    if (!v.has_value()) return absl::DataLossError("meta next_nsid is malformed");
    next_nsid = *v;
  }

  std::vector<NamespacePtr> loaded;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
    for (it->Seek(keys::kNsConfigPrefix);
         it->Valid() && it->key().starts_with(keys::kNsConfigPrefix); it->Next()) {
      ASSIGN_OR_RETURN(records::StoredNamespace stored,
                       records::DecodeNamespace(it->value().ToString()));
      auto ns = std::make_shared<Namespace>();
      ns->config = stored.config;
      ns->nsid = stored.nsid;
      ns->created_unix_ms = stored.created_unix_ms;
      loaded.push_back(std::move(ns));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning namespaces"));
  }

  for (const NamespacePtr& ns : loaded) {
    RETURN_IF_ERROR(Annotate(LoadNamespace(ns.get()),
                             absl::StrCat("loading namespace '", ns->config.name, "'")));
    next_nsid = std::max(next_nsid, ns->nsid + 1);
  }
  absl::MutexLock l(&mu_);
  next_nsid_ = next_nsid;
  for (NamespacePtr& ns : loaded) namespaces_[ns->config.name] = std::move(ns);
  return absl::OkStatus();
}

absl::Status StoreImpl::LoadNamespace(Namespace* ns) {
  absl::MutexLock lock(&ns->mu);
  const uint32_t nsid = ns->nsid;
  ASSIGN_OR_RETURN(auto counters_value, GetOne(meta_, keys::NsCountersKey(nsid)));
  if (!counters_value.has_value()) {
    return absl::DataLossError("namespace counters are missing");
  }
  ASSIGN_OR_RETURN(ns->counters, records::DecodeCounters(*counters_value));
  if (!ns->config.encoder.empty()) {
    // Only the postings are needed here: the encoder itself loads on first
    // use, so a store whose assets went missing still opens.
    ASSIGN_OR_RETURN(ns->bm25, Bm25Index::Open(db_.get(), bm25_, nsid));
  }

  // Chunks: external ids and filter attributes.
  const std::string begin = keys::NsPrefix(nsid);
  const std::string end = keys::NsEnd(nsid);
  {
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper(end);
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, chunks_));
    for (it->Seek(begin); it->Valid(); it->Next()) {
      auto id = keys::RowKeyId(View(it->key()));
      if (!id.has_value()) return absl::DataLossError("malformed chunk key");
      Chunk chunk;
      RETURN_IF_ERROR(records::DecodeChunk(View(it->value()), &chunk));
      auto attrs = index::ParseAttributes(chunk.metadata_json);
      if (attrs.ok()) {
        if (!attrs->empty()) ns->attrs.Set(static_cast<int64_t>(*id), *std::move(attrs));
      } else {
        spdlog::warn("namespace '{}': chunk '{}' has unreadable metadata: {}", ns->config.name,
                     chunk.id, attrs.status().ToString());
      }
      ns->external_ids[static_cast<int64_t>(*id)] = std::move(chunk.id);
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning chunks"));
  }
  {
    const std::string doc_prefix = keys::DocKeyPrefix(nsid);
    const std::string doc_end = keys::PrefixEnd(doc_prefix);
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper(doc_end);
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, docs_));
    for (it->Seek(doc_prefix); it->Valid(); it->Next()) ++ns->document_count;
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning documents"));
  }

  std::unique_ptr<index::DenseIndex> index;
  uint64_t snapshot_seq = 0;
  uint64_t replayed = 0;
  absl::Status loaded = LoadSnapshotAndReplay(ns, &index, &snapshot_seq, &replayed);
  if (loaded.ok()) {
    // The snapshot plus log must describe exactly the stored chunks.
    bool consistent = index->size() == ns->external_ids.size();
    for (auto it = ns->external_ids.begin(); consistent && it != ns->external_ids.end(); ++it) {
      consistent = index->Contains(it->first);
    }
    if (!consistent) {
      loaded = absl::DataLossError(absl::StrCat("index holds ", index->size(),
                                                " vectors but the store has ",
                                                ns->external_ids.size(), " chunks"));
    }
  }
  if (loaded.ok()) {
    ns->index = std::move(index);
    const uint64_t last_seq = ns->counters.next_log_seq - 1;
    if (snapshot_seq == last_seq) ns->snapshot_seq = snapshot_seq;
    ns->may_have_dead_entries = KeepsDeadEntries(ns->config.index_factory);
    ns->recovery = {true, snapshot_seq, replayed};
    spdlog::info("namespace '{}': loaded index snapshot at log seq {}, replayed to {} ({} chunks)",
                 ns->config.name, snapshot_seq, last_seq, ns->external_ids.size());
  } else {
    if (!absl::IsNotFound(loaded)) {
      spdlog::warn("namespace '{}': index snapshot unusable ({}); rebuilding from stored vectors",
                   ns->config.name, loaded.ToString());
    }
    ASSIGN_OR_RETURN(ns->index, BuildIndexFromDense(*ns));
    if (ns->index->size() != ns->external_ids.size()) {
      return absl::DataLossError(absl::StrCat("dense CF holds ", ns->index->size(),
                                              " vectors but the store has ",
                                              ns->external_ids.size(), " chunks"));
    }
    spdlog::info("namespace '{}': built index from {} stored vectors", ns->config.name,
                 ns->index->size());
    // Force the next snapshot to be written.
    ns->ops_since_snapshot = std::max<uint64_t>(1, ns->external_ids.size());
  }
  RETURN_IF_ERROR(LoadKvLocked(ns));
  if (ns->config.late_interaction.value_or(false)) {
    // The multivec CF is committed with the chunks, so it is always the
    // complete truth: no snapshot, no log replay needed.
    ASSIGN_OR_RETURN(ns->multivec, BuildMultiVecFromCf(*ns));
    spdlog::info("namespace '{}': {}", ns->config.name, ns->multivec->Describe());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<index::MultiVectorIndex>> StoreImpl::BuildMultiVecFromCf(
    const Namespace& ns) {
  ASSIGN_OR_RETURN(auto mv, index::MultiVectorIndex::Create(MultiVecOptionsFor(ns.config)));
  ASSIGN_OR_RETURN(auto codec_bytes, GetOne(meta_, keys::MultiVecCodecKey(ns.nsid)));
  size_t code_size = 0;
  if (codec_bytes.has_value()) {
    auto codec = index::ResidualCodec::Deserialize(absl::MakeConstSpan(
        reinterpret_cast<const uint8_t*>(codec_bytes->data()), codec_bytes->size()));
    if (!codec.ok()) {
      return absl::DataLossError(
          absl::StrCat("stored token codec: ", codec.status().message()));
    }
    code_size = (*codec)->code_size();
    RETURN_IF_ERROR(Annotate(mv->AdoptCodec(std::shared_ptr<const index::ResidualCodec>(
                                 *std::move(codec))),
                             "stored token codec"));
  }
  const std::string begin = keys::NsPrefix(ns.nsid);
  const std::string end = keys::NsEnd(ns.nsid);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, multivec_));
  records::MultiVecRecord row;
  for (it->Seek(begin); it->Valid(); it->Next()) {
    auto id = keys::RowKeyId(View(it->key()));
    if (!id.has_value()) return absl::DataLossError("malformed multivec key");
    const auto internal = static_cast<int64_t>(*id);
    if (!ns.external_ids.contains(internal)) {
      return absl::DataLossError(
          absl::StrCat("multivec row ", internal, " belongs to no stored chunk"));
    }
    RETURN_IF_ERROR(records::DecodeMultiVec(View(it->value()), ns.config.dim, code_size, &row));
    if (row.encoded) {
      RETURN_IF_ERROR(mv->AddEncoded(internal, row.centroids, row.residuals));
    } else {
      // Staged row (or, should a codec exist, one it encodes now).
      RETURN_IF_ERROR(mv->Add(internal, row.raw));
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning token vectors"));
  return mv;
}

absl::Status StoreImpl::LoadSnapshotAndReplay(Namespace* ns,
                                              std::unique_ptr<index::DenseIndex>* out,
                                              uint64_t* snapshot_seq, uint64_t* replayed) {
  const std::string file_path = SnapshotPath(ns->nsid);
  std::error_code ec;
  if (!fs::exists(file_path, ec)) return absl::NotFoundError("no snapshot");
  ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(file_path));
  ASSIGN_OR_RETURN(records::SnapshotFile file, records::DecodeSnapshot(bytes));
  if (file.nsid != ns->nsid) {
    return absl::DataLossError(absl::StrCat("snapshot belongs to namespace id ", file.nsid));
  }
  const uint64_t last_seq = ns->counters.next_log_seq - 1;
  if (file.log_seq > last_seq) {
    return absl::DataLossError(absl::StrCat("snapshot is at log seq ", file.log_seq,
                                            " but the store only reached ", last_seq));
  }
  ASSIGN_OR_RETURN(auto index,
                   index::DenseIndex::Deserialize(IndexOptionsFor(ns->config), file.payload));

  // Collect the log after the snapshot. Ids are never reused, so the final
  // state is: snapshot - removed ids + added ids whose rows still exist.
  std::vector<int64_t> removes;
  std::vector<int64_t> adds;
  {
    const std::string begin = keys::LogKey(ns->nsid, file.log_seq + 1);
    const std::string end = keys::NsEnd(ns->nsid);
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper(end);
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, ilog_));
    for (it->Seek(begin); it->Valid(); it->Next()) {
      absl::string_view v = View(it->value());
      auto id = keys::ReadU64(v.substr(std::min<size_t>(1, v.size())));
      if (v.size() != 9 || !id.has_value()) return absl::DataLossError("malformed index log entry");
      if (v[0] == keys::kLogAdd) {
        adds.push_back(static_cast<int64_t>(*id));
      } else if (v[0] == keys::kLogRemove) {
        removes.push_back(static_cast<int64_t>(*id));
      } else {
        return absl::DataLossError("unknown index log operation");
      }
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning index log"));
  }
  if (!removes.empty()) RETURN_IF_ERROR(index->Remove(removes).status());
  for (size_t start = 0; start < adds.size(); start += kRebuildBatch) {
    size_t stop = std::min(adds.size(), start + kRebuildBatch);
    std::vector<std::string> row_keys;
    for (size_t i = start; i < stop; ++i) row_keys.push_back(keys::RowKey(ns->nsid, adds[i]));
    ASSIGN_OR_RETURN(auto rows, MultiGet(dense_, row_keys));
    std::vector<int64_t> ids;
    std::vector<float> vectors;
    for (size_t i = start; i < stop; ++i) {
      const auto& row = rows[i - start];
      if (!row.has_value()) continue;  // removed by a later log entry
      RETURN_IF_ERROR(records::DecodeVector(*row, ns->config.dim, &vectors));
      ids.push_back(adds[i]);
    }
    if (!ids.empty()) RETURN_IF_ERROR(index->Add(ids, vectors));
  }
  *snapshot_seq = file.log_seq;
  *replayed = adds.size() + removes.size();
  *out = std::move(index);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<index::DenseIndex>> StoreImpl::BuildIndexFromDense(
    const Namespace& ns) {
  ASSIGN_OR_RETURN(auto index, index::DenseIndex::Create(IndexOptionsFor(ns.config)));
  const std::string begin = keys::NsPrefix(ns.nsid);
  const std::string end = keys::NsEnd(ns.nsid);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, dense_));
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  auto flush = [&]() -> absl::Status {
    if (ids.empty()) return absl::OkStatus();
    RETURN_IF_ERROR(index->Add(ids, vectors));
    ids.clear();
    vectors.clear();
    return absl::OkStatus();
  };
  for (it->Seek(begin); it->Valid(); it->Next()) {
    auto id = keys::RowKeyId(View(it->key()));
    if (!id.has_value()) return absl::DataLossError("malformed dense key");
    RETURN_IF_ERROR(records::DecodeVector(View(it->value()), ns.config.dim, &vectors));
    ids.push_back(static_cast<int64_t>(*id));
    if (ids.size() >= kRebuildBatch) RETURN_IF_ERROR(flush());
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning dense vectors"));
  RETURN_IF_ERROR(flush());
  return index;
}

absl::Status StoreImpl::RebuildIndexLocked(Namespace* ns) {
  ASSIGN_OR_RETURN(auto index, BuildIndexFromDense(*ns));
  ns->index = std::move(index);
  ns->may_have_dead_entries = false;
  ns->snapshot_seq.reset();
  ++ns->index_generation;
  ns->ops_since_snapshot.fetch_add(1);
  return absl::OkStatus();
}

void StoreImpl::RemoveOrphanSnapshots() {
  absl::flat_hash_set<std::string> live;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [name, ns] : namespaces_) live.insert(absl::StrCat(ns->nsid, ".idx"));
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(index_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (live.contains(name)) continue;
    spdlog::info("removing stale index file {}", entry.path().string());
    fs::remove(entry.path(), ec);
  }
}

absl::Status StoreImpl::Close() { return CloseImpl(/*save_snapshots=*/true); }

absl::Status StoreImpl::CloseImpl(bool save_snapshots) {
  absl::MutexLock close_lock(&close_mu_);
  if (db_ == nullptr) return absl::OkStatus();

  {
    absl::MutexLock l(&bg_mu_);
    bg_stop_ = true;
    bg_cv_.SignalAll();
  }
  if (bg_thread_.joinable()) bg_thread_.join();

  std::vector<NamespacePtr> all;
  {
    absl::MutexLock l(&mu_);
    closed_ = true;
    for (const auto& [name, ns] : namespaces_) all.push_back(ns);
  }
  absl::Status result;
  for (const NamespacePtr& ns : all) {
    if (save_snapshots) {
      absl::Status st = SnapshotNamespace(ns.get());
      if (!st.ok()) {
        spdlog::error("namespace '{}': snapshot on close failed: {}", ns->config.name,
                      st.ToString());
        result.Update(st);
      }
    }
    absl::MutexLock l(&ns->mu);
    ns->gone = Gone::kClosed;
    ns->index.reset();
    ns->bm25.reset();
    ns->multivec.reset();
  }
  rocksdb::FlushOptions flush;
  flush.wait = true;
  result.Update(FromRocks(db_->Flush(flush, handles_), "flushing on close"));
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    result.Update(FromRocks(db_->DestroyColumnFamilyHandle(h), "closing column family"));
  }
  handles_.clear();
  result.Update(FromRocks(db_->Close(), "closing store"));
  db_.reset();
  {
    absl::MutexLock l(&mu_);
    namespaces_.clear();
  }
  spdlog::info("store at {} closed", path_);
  return result;
}

// ---------------------------------------------------------------------------
// Snapshots

absl::Status StoreImpl::SnapshotNamespace(Namespace* ns) {
  absl::MutexLock snapshot_lock(&ns->snapshot_mu);
  std::vector<uint8_t> bytes;
  uint64_t seq = 0;
  uint64_t generation = 0;
  {
    absl::ReaderMutexLock l(&ns->mu);
    if (ns->gone != Gone::kNo) return absl::OkStatus();
    seq = ns->counters.next_log_seq - 1;
    if (ns->snapshot_seq == seq) return absl::OkStatus();
    ASSIGN_OR_RETURN(bytes, ns->index->Serialize());
    generation = ns->index_generation;
    ns->ops_since_snapshot.store(0);
  }
  RETURN_IF_ERROR(WriteFileAtomically(SnapshotPath(ns->nsid),
                                      records::EncodeSnapshot(ns->nsid, seq, bytes)));
  {
    absl::MutexLock l(&ns->mu);
    if (ns->index_generation == generation) ns->snapshot_seq = seq;
  }
  // Entries up to `seq` are in a durable snapshot now. A crash before this
  // trim only leaves entries that replay skips.
  RETURN_IF_ERROR(FromRocks(db_->DeleteRange(rocksdb::WriteOptions(), ilog_,
                                             keys::LogKey(ns->nsid, 0),
                                             keys::LogKey(ns->nsid, seq + 1)),
                            "trimming index log"));
  spdlog::debug("namespace '{}': index snapshot at log seq {} ({} bytes)", ns->config.name, seq,
                bytes.size());
  return absl::OkStatus();
}

void StoreImpl::RequestSnapshot() {
  absl::MutexLock l(&bg_mu_);
  bg_wakeup_ = true;
  bg_cv_.Signal();
}

void StoreImpl::BackgroundLoop() {
  while (true) {
    {
      absl::MutexLock l(&bg_mu_);
      while (!bg_stop_ && !bg_wakeup_) bg_cv_.Wait(&bg_mu_);
      if (bg_stop_) return;
      bg_wakeup_ = false;
    }
    for (const NamespacePtr& ns : AllNamespaces()) {
      if (ns->ops_since_snapshot.load() < options_.snapshot_every_ops) continue;
      absl::Status st = SnapshotNamespace(ns.get());
      if (!st.ok()) {
        spdlog::warn("namespace '{}': background snapshot failed: {}", ns->config.name,
                     st.ToString());
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Helpers

absl::StatusOr<std::vector<std::optional<std::string>>> StoreImpl::MultiGet(
    rocksdb::ColumnFamilyHandle* cf, const std::vector<std::string>& keys) {
  std::vector<std::optional<std::string>> out(keys.size());
  if (keys.empty()) return out;
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::ColumnFamilyHandle*> cfs(keys.size(), cf);
  std::vector<std::string> values;
  std::vector<rocksdb::Status> statuses =
      db_->MultiGet(rocksdb::ReadOptions(), cfs, slices, &values);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    RETURN_IF_ERROR(FromRocks(statuses[i], "reading"));
    out[i] = std::move(values[i]);
  }
  return out;
}

absl::StatusOr<std::optional<std::string>> StoreImpl::GetOne(rocksdb::ColumnFamilyHandle* cf,
                                                             const std::string& key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(FromRocks(s, "reading"));
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<NamespacePtr> StoreImpl::FindNamespace(absl::string_view name) {
  absl::ReaderMutexLock l(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  auto it = namespaces_.find(name);
  if (it == namespaces_.end()) {
    return absl::NotFoundError(absl::StrCat("namespace '", name, "' does not exist"));
  }
  return it->second;
}

std::vector<NamespacePtr> StoreImpl::AllNamespaces() {
  absl::ReaderMutexLock l(&mu_);
  std::vector<NamespacePtr> all;
  if (closed_) return all;
  for (const auto& [name, ns] : namespaces_) all.push_back(ns);
  std::sort(all.begin(), all.end(), [](const NamespacePtr& a, const NamespacePtr& b) {
    return a->config.name < b->config.name;
  });
  return all;
}

NamespaceInfo StoreImpl::InfoLocked(const Namespace& ns) {
  NamespaceInfo info;
  info.config = ns.config;
  info.chunk_count = ns.external_ids.size();
  info.document_count = ns.document_count;
  info.index_trained = ns.index->is_trained();
  info.index_description = ns.index->Describe();
  info.created_unix_ms = ns.created_unix_ms;
  if (ns.multivec != nullptr) {
    info.late_interaction_tokens = ns.multivec->num_tokens();
    info.late_interaction_trained = ns.multivec->is_trained();
    info.late_interaction_description = ns.multivec->Describe();
  }
  const std::string begin = keys::NsPrefix(ns.nsid);
  const std::string end = keys::NsEnd(ns.nsid);
  rocksdb::Range range(begin, end);
  rocksdb::SizeApproximationOptions approx;
  approx.include_memtables = true;
  approx.include_files = true;
  for (rocksdb::ColumnFamilyHandle* cf : DataCfs()) {
    uint64_t size = 0;
    if (db_->GetApproximateSizes(approx, cf, &range, 1, &size).ok()) {
      info.approximate_bytes += size;
    }
  }
  return info;
}

// ---------------------------------------------------------------------------
// Namespaces

absl::StatusOr<NamespaceInfo> StoreImpl::CreateNamespace(const NamespaceConfig& config_in) {
  RETURN_IF_ERROR(ValidateNamespaceName(config_in.name));
  const Limits& limits = options_.limits;
  NamespaceConfig config = config_in;
  if (!config.encoder.empty()) {
    ASSIGN_OR_RETURN(const uint32_t encoder_dim, text::EncoderDim(config.encoder));
    if (config.dim == 0) config.dim = encoder_dim;
    if (config.dim != encoder_dim) {
      return absl::InvalidArgumentError(absl::StrCat("dim ", config.dim, " does not match encoder ",
                                                     config.encoder, " (dim ", encoder_dim,
                                                     "); leave dim 0 to take the encoder's"));
    }
    if (config.metric_unset) {
      config.metric = Metric::kCosine;
      config.metric_unset = false;
    }
    if (config.chunk_max_tokens == 0) config.chunk_max_tokens = kDefaultChunkMaxTokens;
    if (!config.chunk_overlap_tokens.has_value()) {
      config.chunk_overlap_tokens =
          std::min<uint32_t>(kDefaultChunkOverlapTokens, config.chunk_max_tokens / 2);
    }
    if (config.chunk_max_tokens > kMaxChunkTokens) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk_max_tokens must be at most ", kMaxChunkTokens, ", got ", config.chunk_max_tokens));
    }
    encoder::ChunkerOptions chunking;
    chunking.max_tokens = static_cast<int>(config.chunk_max_tokens);
    chunking.overlap_tokens = static_cast<int>(
        std::min<uint32_t>(*config.chunk_overlap_tokens, kMaxChunkTokens + 1));
    if (chunking.max_tokens < 1 || chunking.overlap_tokens < 0 ||
        chunking.overlap_tokens > chunking.max_tokens / 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk_overlap_tokens must be at most half of chunk_max_tokens (", chunking.max_tokens,
          "), got ", *config.chunk_overlap_tokens));
    }
    if (!config.late_interaction.has_value()) config.late_interaction = true;
    if (*config.late_interaction) {
      if (config.late_interaction_nbits == 0) config.late_interaction_nbits = kDefaultLateNbits;
      if (config.late_interaction_nbits != 1 && config.late_interaction_nbits != 2 &&
          config.late_interaction_nbits != 4) {
        return absl::InvalidArgumentError(absl::StrCat(
            "late_interaction_nbits must be 1, 2 or 4, got ", config.late_interaction_nbits));
      }
      if (config.late_interaction_train_tokens == 0) {
        config.late_interaction_train_tokens = index::kLateInteractionTrainTokens;
      }
    } else if (config.late_interaction_nbits != 0 || config.late_interaction_train_tokens != 0) {
      return absl::InvalidArgumentError(
          "late_interaction_nbits and late_interaction_train_tokens need late_interaction");
    }
    // Fail early when the encoder cannot be loaded: such a namespace could
    // not take text.
    RETURN_IF_ERROR(text::GetEncoder(options_.encoder_dir, config.encoder).status());
  } else if (config.chunk_max_tokens != 0 || config.chunk_overlap_tokens.has_value()) {
    return absl::InvalidArgumentError(
        "chunk_max_tokens and chunk_overlap_tokens apply to encoder namespaces only");
  } else if (config.late_interaction.value_or(false) || config.late_interaction_nbits != 0 ||
             config.late_interaction_train_tokens != 0) {
    return absl::InvalidArgumentError(
        "late interaction needs an encoder namespace: its token vectors come from the encoder");
  }
  if (config.encoder.empty()) config.late_interaction = false;
  if (config.metric_unset) config.metric = Metric::kInnerProduct;
  config.metric_unset = false;
  if (config.dim < 1 || config.dim > limits.max_dim) {
    return absl::InvalidArgumentError(absl::StrCat("dim must be in 1..", limits.max_dim,
                                                   ", got ", config.dim));
  }
  if (config.index_factory.empty()) config.index_factory = "Flat";
  auto created = index::DenseIndex::Create(IndexOptionsFor(config));
  if (!created.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("index factory '", config.index_factory,
                                                   "': ", created.status().message()));
  }

  absl::MutexLock l(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  if (namespaces_.contains(config.name)) {
    return absl::AlreadyExistsError(absl::StrCat("namespace '", config.name, "' already exists"));
  }
  if (namespaces_.size() >= limits.max_namespaces) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the store already holds the maximum of ", limits.max_namespaces,
                     " namespaces"));
  }
  if (next_nsid_ > keys::kMaxNsId) {
    return absl::ResourceExhaustedError("namespace ids are exhausted");
  }
  auto ns = std::make_shared<Namespace>();
  ns->config = config;
  ns->nsid = next_nsid_;
  ns->created_unix_ms = NowUnixMs();

  records::StoredNamespace stored{config, ns->nsid, ns->created_unix_ms};
  rocksdb::WriteBatch batch;
  std::string next;
  keys::AppendU32(&next, ns->nsid + 1);
  records::NamespaceCounters counters;
  batch.Put(meta_, keys::NsConfigKey(config.name), records::EncodeNamespace(stored));
  batch.Put(meta_, keys::NsCountersKey(ns->nsid), records::EncodeCounters(counters));
  batch.Put(meta_, keys::kNextNsIdKey, next);
  RETURN_IF_ERROR(FromRocks(db_->Write(SyncedWrite(), &batch), "creating namespace"));
  next_nsid_ = ns->nsid + 1;

  absl::MutexLock nl(&ns->mu);
  if (!config.encoder.empty()) {
    // The namespace id is fresh, so its BM25 key range is empty.
    ASSIGN_OR_RETURN(ns->bm25, Bm25Index::Open(db_.get(), bm25_, ns->nsid));
  }
  if (*config.late_interaction) {
    ASSIGN_OR_RETURN(ns->multivec, index::MultiVectorIndex::Create(MultiVecOptionsFor(config)));
  }
  ns->index = *std::move(created);
  ns->counters = counters;
  ns->snapshot_seq.reset();
  NamespaceInfo info = InfoLocked(*ns);
  namespaces_[config.name] = ns;
  spdlog::info("created namespace '{}' (id {}, dim {}, {})", config.name, ns->nsid, config.dim,
               config.index_factory);
  return info;
}

absl::StatusOr<NamespaceInfo> StoreImpl::GetNamespace(absl::string_view name) {
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(name));
  absl::ReaderMutexLock l(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  return InfoLocked(*ns);
}

absl::StatusOr<std::vector<NamespaceInfo>> StoreImpl::ListNamespaces() { return Stats(""); }

absl::StatusOr<std::vector<NamespaceInfo>> StoreImpl::Stats(absl::string_view name) {
  std::vector<NamespaceInfo> out;
  if (!name.empty()) {
    ASSIGN_OR_RETURN(NamespaceInfo info, GetNamespace(name));
    out.push_back(std::move(info));
    return out;
  }
  // Hold the store lock so Close cannot tear the DB down underneath.
  absl::ReaderMutexLock store_lock(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  std::vector<NamespacePtr> all;
  for (const auto& [n, ns] : namespaces_) all.push_back(ns);
  std::sort(all.begin(), all.end(), [](const NamespacePtr& a, const NamespacePtr& b) {
    return a->config.name < b->config.name;
  });
  for (const NamespacePtr& ns : all) {
    absl::ReaderMutexLock l(&ns->mu);
    if (ns->gone != Gone::kNo) continue;
    out.push_back(InfoLocked(*ns));
  }
  return out;
}

absl::Status StoreImpl::DropNamespace(absl::string_view name) {
  absl::MutexLock l(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  auto it = namespaces_.find(name);
  if (it == namespaces_.end()) {
    return absl::NotFoundError(absl::StrCat("namespace '", name, "' does not exist"));
  }
  NamespacePtr ns = it->second;
  absl::MutexLock snapshot_lock(&ns->snapshot_mu);
  absl::MutexLock nl(&ns->mu);

  const std::string begin = keys::NsPrefix(ns->nsid);
  const std::string end = keys::NsEnd(ns->nsid);
  rocksdb::WriteBatch batch;
  for (rocksdb::ColumnFamilyHandle* cf : DataCfs()) {
    RETURN_IF_ERROR(FromRocks(batch.DeleteRange(cf, begin, end), "dropping namespace"));
  }
  batch.Delete(meta_, keys::NsConfigKey(ns->config.name));
  batch.Delete(meta_, keys::NsCountersKey(ns->nsid));
  batch.Delete(meta_, keys::MultiVecCodecKey(ns->nsid));
  batch.Delete(meta_, kvrecords::ConfigKey(ns->nsid));
  RETURN_IF_ERROR(FromRocks(db_->Write(SyncedWrite(), &batch), "dropping namespace"));

  ns->gone = Gone::kDropped;
  ns->index.reset();
  ns->bm25.reset();
  ns->multivec.reset();
  ns->kv.reset();
  ns->attrs.Clear();
  ns->external_ids.clear();
  namespaces_.erase(it);
  std::error_code ec;
  fs::remove(SnapshotPath(ns->nsid), ec);
  if (ec) {
    // Harmless: Open removes snapshot files of unknown namespaces.
    spdlog::warn("namespace '{}': cannot remove snapshot: {}", ns->config.name, ec.message());
  }
  spdlog::info("dropped namespace '{}' (id {})", ns->config.name, ns->nsid);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Writes

absl::Status StoreImpl::ApplyLocked(Namespace* ns, const std::vector<int64_t>& removed,
                                    const std::vector<int64_t>& added,
                                    const std::vector<float>& vectors,
                                    std::vector<std::pair<int64_t, index::Attributes>> added_attrs,
                                    std::vector<std::string> added_external, int64_t doc_delta,
                                    const records::NamespaceCounters& counters,
                                    uint64_t log_ops) {
  ns->counters = counters;
  ns->document_count = static_cast<uint64_t>(static_cast<int64_t>(ns->document_count) + doc_delta);
  for (int64_t id : removed) {
    ns->attrs.Erase(id);
    ns->external_ids.erase(id);
  }
  for (auto& [id, attrs] : added_attrs) {
    if (!attrs.empty()) ns->attrs.Set(id, std::move(attrs));
  }
  for (size_t i = 0; i < added.size(); ++i) {
    ns->external_ids[added[i]] = std::move(added_external[i]);
  }
  if (!removed.empty() && KeepsDeadEntries(ns->config.index_factory)) {
    ns->may_have_dead_entries = true;
  }

  absl::Status st;
  if (!removed.empty()) st = ns->index->Remove(removed).status();
  if (st.ok() && !added.empty()) st = ns->index->Add(added, vectors);
  if (!st.ok()) {
    // The data is committed; bring the index back in line with it.
    spdlog::error("namespace '{}': index update failed ({}); rebuilding from stored vectors",
                  ns->config.name, st.ToString());
    absl::Status rebuilt = RebuildIndexLocked(ns);
    if (!rebuilt.ok()) {
      return absl::InternalError(absl::StrCat(
          "write committed but the index could not be updated: ", st.message(),
          "; rebuild failed: ", rebuilt.message()));
    }
  }
  const uint64_t pending = ns->ops_since_snapshot.fetch_add(log_ops) + log_ops;
  if (options_.snapshot_every_ops > 0 && pending >= options_.snapshot_every_ops) {
    RequestSnapshot();
  }
  return absl::OkStatus();
}

absl::StatusOr<WriteResult> StoreImpl::Upsert(absl::string_view ns_name,
                                              absl::Span<const Document> documents,
                                              absl::Span<const Chunk> chunks_in) {
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  const Limits& limits = options_.limits;
  const uint32_t dim = ns->config.dim;
  const bool text_ns = !ns->config.encoder.empty();

  // Validate everything before touching the store.
  if (documents.size() + chunks_in.size() > limits.max_write_batch) {
    return absl::ResourceExhaustedError(
        absl::StrCat("write carries ", documents.size() + chunks_in.size(),
                     " documents and chunks; the limit is ", limits.max_write_batch));
  }
  absl::flat_hash_set<absl::string_view> seen;
  std::vector<index::Attributes> doc_attrs(documents.size());
  for (size_t d = 0; d < documents.size(); ++d) {
    const Document& doc = documents[d];
    RETURN_IF_ERROR(ValidateId(doc.id, "document", limits));
    if (!seen.insert(doc.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("document id '", doc.id, "' appears twice in one write"));
    }
    const std::string what = absl::StrCat("document '", doc.id, "'");
    RETURN_IF_ERROR(ValidateText(doc.text, what, limits));
    RETURN_IF_ERROR(ValidateMetadata(doc.metadata_json, what, limits, &doc_attrs[d]));
    if (text_ns && IsBlank(doc.text)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " has empty or whitespace-only text; an encoder namespace chunks and embeds "
                "document text"));
    }
  }
  seen.clear();
  std::vector<index::Attributes> chunk_attrs(chunks_in.size());
  for (size_t c = 0; c < chunks_in.size(); ++c) {
    const Chunk& chunk = chunks_in[c];
    RETURN_IF_ERROR(ValidateId(chunk.id, "chunk", limits));
    if (!seen.insert(chunk.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("chunk id '", chunk.id, "' appears twice in one write"));
    }
    if (!chunk.document_id.empty()) {
      RETURN_IF_ERROR(ValidateId(chunk.document_id, "document", limits));
    }
    const std::string what = absl::StrCat("chunk '", chunk.id, "'");
    if (chunk.vector.empty() && !chunk.text.empty() && !text_ns) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, " has text but no vector, and namespace '", ns_name,
          "' has no encoder to embed it; send vectors or create the namespace with an encoder"));
    }
    const bool to_embed = chunk.vector.empty() && !chunk.text.empty();
    if (!to_embed && chunk.vector.size() != dim) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has a vector of ",
                                                     chunk.vector.size(),
                                                     " floats; the namespace dim is ", dim));
    }
    for (size_t i = 0; i < chunk.vector.size(); ++i) {
      if (!std::isfinite(chunk.vector[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " has a non-finite value at index ", i));
      }
    }
    RETURN_IF_ERROR(ValidateText(chunk.text, what, limits));
    RETURN_IF_ERROR(ValidateMetadata(chunk.metadata_json, what, limits, &chunk_attrs[c]));
  }

  // Text namespaces: chunk documents, embed chunks without vectors and
  // tokenize every chunk for BM25, all before taking the namespace lock.
  std::vector<Chunk> prepared;
  absl::Span<const Chunk> chunks = chunks_in;
  std::vector<std::vector<uint32_t>> chunk_terms;
  std::vector<std::optional<PendingTokens>> chunk_tokens;  // late interaction
  absl::flat_hash_set<std::string> text_docs;  // documents whose chunks are replaced
  if (text_ns && (!documents.empty() || !chunks_in.empty())) {
    ASSIGN_OR_RETURN(const text::TextEncoder* enc,
                     text::GetEncoder(options_.encoder_dir, ns->config.encoder));
    prepared.assign(chunks_in.begin(), chunks_in.end());
    for (Chunk& chunk : prepared) {
      chunk.source_begin = 0;
      chunk.source_end = 0;
    }
    encoder::ChunkerOptions chunking;
    chunking.max_tokens = static_cast<int>(ns->config.chunk_max_tokens);
    chunking.overlap_tokens = static_cast<int>(ns->config.chunk_overlap_tokens.value_or(0));
    for (size_t d = 0; d < documents.size(); ++d) {
      const Document& doc = documents[d];
      ASSIGN_OR_RETURN(std::vector<encoder::TextChunk> pieces,
                       enc->Chunk(doc.text, chunking));
      if (pieces.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("document '", doc.id, "' has text that yields no chunks"));
      }
      text_docs.insert(doc.id);
      for (size_t p = 0; p < pieces.size(); ++p) {
        Chunk chunk;
        chunk.id = absl::StrCat(doc.id, "#", p);
        RETURN_IF_ERROR(ValidateId(chunk.id, "generated chunk", limits));
        if (seen.contains(chunk.id)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "chunk id '", chunk.id, "' is both given and generated from document '", doc.id,
              "'"));
        }
        chunk.document_id = doc.id;
        chunk.text = std::move(pieces[p].text);
        chunk.metadata_json = doc.metadata_json;
        chunk.source_begin = pieces[p].begin;
        chunk.source_end = pieces[p].end;
        prepared.push_back(std::move(chunk));
        chunk_attrs.push_back(doc_attrs[d]);
      }
    }
    if (prepared.size() + documents.size() > limits.max_write_batch) {
      return absl::ResourceExhaustedError(
          absl::StrCat("write carries ", documents.size(), " documents and ", prepared.size(),
                       " chunks after chunking; the limit is ", limits.max_write_batch));
    }
    std::vector<std::string> to_embed;
    std::vector<size_t> embed_index;
    for (size_t c = 0; c < prepared.size(); ++c) {
      if (!prepared[c].vector.empty()) continue;
      to_embed.push_back(prepared[c].text);
      embed_index.push_back(c);
    }
    // With late interaction the network runs once per chunk for both the
    // pooled embedding and the token states.
    const bool late = ns->config.late_interaction.value_or(false);
    std::vector<std::optional<std::vector<float>>> known_states;
    if (late) known_states.resize(prepared.size());
    if (!to_embed.empty()) {
      std::vector<float> embedded;
      if (late) {
        ASSIGN_OR_RETURN(auto both, enc->EncodeWithTokens(to_embed));
        embedded = std::move(both.first);
        if (both.second.size() != to_embed.size()) {
          return absl::InternalError("encoder returned token states for a different batch size");
        }
        for (size_t j = 0; j < embed_index.size(); ++j) {
          known_states[embed_index[j]] = std::move(both.second[j]);
        }
      } else {
        ASSIGN_OR_RETURN(embedded, enc->Encode(to_embed));
      }
      if (embedded.size() != to_embed.size() * dim) {
        return absl::InternalError(absl::StrCat("encoder returned ", embedded.size(),
                                                " floats for ", to_embed.size(), " texts"));
      }
      for (size_t j = 0; j < embed_index.size(); ++j) {
        prepared[embed_index[j]].vector.assign(embedded.begin() + j * dim,
                                               embedded.begin() + (j + 1) * dim);
      }
    }
    chunk_terms.resize(prepared.size());
    for (size_t c = 0; c < prepared.size(); ++c) {
      ASSIGN_OR_RETURN(std::vector<int> ids, enc->Tokenize(prepared[c].text));
      chunk_terms[c].assign(ids.begin(), ids.end());
    }
    if (ns->config.late_interaction.value_or(false)) {
      // The codec only ever goes from absent to trained, so tokens encoded
      // with the one seen here stay valid; tokens staged raw because there
      // was none are encoded under the lock should one appear meanwhile.
      std::shared_ptr<const index::ResidualCodec> codec;
      {
        absl::ReaderMutexLock l(&ns->mu);
        RETURN_IF_ERROR(ns->GoneStatus());
        if (ns->multivec != nullptr) codec = ns->multivec->codec();
      }
      ASSIGN_OR_RETURN(chunk_tokens,
                       PrepareTokens(*enc, prepared, dim, codec.get(), &known_states));
    }
    chunks = prepared;
  }

  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  if (documents.empty() && chunks.empty()) return WriteResult();
  if (text_ns && ns->bm25 == nullptr) return absl::InternalError("namespace has no BM25 index");
  const uint32_t nsid = ns->nsid;
  records::NamespaceCounters counters = ns->counters;
  rocksdb::WriteBatch batch;
  Bm25Update bm25_update;
  uint64_t log_ops = 0;
  auto log = [&](char op, int64_t id) {
    std::string value(1, op);
    keys::AppendU64(&value, static_cast<uint64_t>(id));
    batch.Put(ilog_, keys::LogKey(nsid, counters.next_log_seq++), value);
    ++log_ops;
  };

  int64_t new_docs = 0;
  {
    std::vector<std::string> doc_keys;
    for (const Document& doc : documents) doc_keys.push_back(keys::DocKey(nsid, doc.id));
    ASSIGN_OR_RETURN(auto existing, MultiGet(docs_, doc_keys));
    for (size_t i = 0; i < documents.size(); ++i) {
      if (!existing[i].has_value()) ++new_docs;
      batch.Put(docs_, doc_keys[i],
                records::EncodeDocument(documents[i].text, documents[i].metadata_json));
    }
  }

  std::vector<int64_t> removed;
  std::vector<int64_t> added;
  std::vector<float> vectors;
  std::vector<std::pair<int64_t, index::Attributes>> added_attrs;
  std::vector<std::string> added_external;
  {
    // Chunks of re-chunked documents that the new chunking does not
    // replace by id: removed whole.
    absl::flat_hash_set<absl::string_view> new_ids;
    for (const Chunk& chunk : chunks) new_ids.insert(chunk.id);
    std::vector<std::pair<std::string, std::string>> stale;  // (document id, chunk id)
    for (const Document& doc : documents) {
      if (!text_docs.contains(doc.id)) continue;
      const std::string prefix = keys::MembershipPrefix(nsid, doc.id);
      const std::string end = keys::PrefixEnd(prefix);
      rocksdb::ReadOptions ro;
      rocksdb::Slice upper(end);
      ro.iterate_upper_bound = &upper;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, docs_));
      for (it->Seek(prefix); it->Valid(); it->Next()) {
        std::string chunk_id = it->key().ToString().substr(prefix.size());
        if (!new_ids.contains(chunk_id)) stale.emplace_back(doc.id, std::move(chunk_id));
      }
      RETURN_IF_ERROR(FromRocks(it->status(), "scanning document chunks"));
    }
    std::vector<std::string> stale_map_keys;
    for (const auto& [doc_id, chunk_id] : stale) {
      stale_map_keys.push_back(keys::IdMapKey(nsid, chunk_id));
    }
    ASSIGN_OR_RETURN(auto stale_internal, MultiGet(idmap_, stale_map_keys));
    for (size_t i = 0; i < stale.size(); ++i) {
      batch.Delete(docs_, keys::MembershipKey(nsid, stale[i].first, stale[i].second));
      if (!stale_internal[i].has_value()) continue;
      auto old_id = keys::ReadU64(*stale_internal[i]);
      if (!old_id.has_value()) return absl::DataLossError("malformed id map entry");
      const auto id = static_cast<int64_t>(*old_id);
      const std::string row_key = keys::RowKey(nsid, id);
      batch.Delete(idmap_, stale_map_keys[i]);
      batch.Delete(chunks_, row_key);
      batch.Delete(dense_, row_key);
      RETURN_IF_ERROR(ns->bm25->RemoveToBatch(&batch, id, &bm25_update));
      removed.push_back(id);
      log(keys::kLogRemove, id);
    }

    std::vector<std::string> map_keys;
    for (const Chunk& chunk : chunks) map_keys.push_back(keys::IdMapKey(nsid, chunk.id));
    ASSIGN_OR_RETURN(auto existing, MultiGet(idmap_, map_keys));
    // Old records of replaced chunks, to drop their membership keys.
    std::vector<std::string> old_row_keys;
    std::vector<size_t> old_index;
    std::vector<int64_t> replaced;
    for (size_t c = 0; c < chunks.size(); ++c) {
      if (!existing[c].has_value()) continue;
      auto old_id = keys::ReadU64(*existing[c]);
      if (!old_id.has_value()) return absl::DataLossError("malformed id map entry");
      old_row_keys.push_back(keys::RowKey(nsid, static_cast<int64_t>(*old_id)));
      old_index.push_back(c);
      replaced.push_back(static_cast<int64_t>(*old_id));
    }
    ASSIGN_OR_RETURN(auto old_rows, MultiGet(chunks_, old_row_keys));
    for (size_t j = 0; j < old_index.size(); ++j) {
      const Chunk& chunk = chunks[old_index[j]];
      batch.Delete(chunks_, old_row_keys[j]);
      batch.Delete(dense_, old_row_keys[j]);
      if (old_rows[j].has_value()) {
        Chunk old;
        RETURN_IF_ERROR(records::DecodeChunk(*old_rows[j], &old));
        if (!old.document_id.empty()) {
          batch.Delete(docs_, keys::MembershipKey(nsid, old.document_id, chunk.id));
        }
      }
      if (ns->bm25 != nullptr) {
        RETURN_IF_ERROR(ns->bm25->RemoveToBatch(&batch, replaced[j], &bm25_update));
      }
      removed.push_back(replaced[j]);
      log(keys::kLogRemove, replaced[j]);
    }
    vectors.reserve(chunks.size() * dim);
    for (size_t c = 0; c < chunks.size(); ++c) {
      const Chunk& chunk = chunks[c];
      const auto id = static_cast<int64_t>(counters.next_internal_id++);
      std::string id_value;
      keys::AppendU64(&id_value, static_cast<uint64_t>(id));
      const std::string row_key = keys::RowKey(nsid, id);
      batch.Put(idmap_, map_keys[c], id_value);
      batch.Put(chunks_, row_key,
                records::EncodeChunk(chunk.id, chunk.document_id, chunk.text,
                                     chunk.metadata_json, chunk.source_begin, chunk.source_end));
      batch.Put(dense_, row_key, records::EncodeVector(chunk.vector));
      if (!chunk.document_id.empty()) {
        batch.Put(docs_, keys::MembershipKey(nsid, chunk.document_id, chunk.id), "");
      }
      if (text_ns) {
        RETURN_IF_ERROR(ns->bm25->AddToBatch(&batch, id, chunk_terms[c], &bm25_update));
      }
      log(keys::kLogAdd, id);
      added.push_back(id);
      vectors.insert(vectors.end(), chunk.vector.begin(), chunk.vector.end());
      added_attrs.emplace_back(id, std::move(chunk_attrs[c]));
      added_external.push_back(chunk.id);
    }
  }
  std::shared_ptr<const index::ResidualCodec> trained_codec;
  std::vector<std::pair<int64_t, index::ResidualCodes>> reencoded;
  if (ns->multivec != nullptr) {
    if (chunk_tokens.size() != added.size()) chunk_tokens.resize(added.size());
    RETURN_IF_ERROR(StageMultiVecLocked(ns.get(), &batch, removed, added, &chunk_tokens,
                                        &trained_codec, &reencoded));
  }
  StageKvRemovalLocked(ns.get(), &batch, removed);
  batch.Put(meta_, keys::NsCountersKey(nsid), records::EncodeCounters(counters));
  RETURN_IF_ERROR(FromRocks(db_->Write(SyncedWrite(), &batch), "writing"));
  ApplyKvRemovalLocked(ns.get(), removed, KvSpace::Why::kDeleted);

  if (ns->bm25 != nullptr) {
    absl::Status applied = ns->bm25->ApplyCommitted(bm25_update);
    if (!applied.ok()) {
      // Cannot happen while writes hold the namespace lock; the data is
      // committed and the next update rewrites the statistics.
      spdlog::error("namespace '{}': BM25 statistics: {}", ns->config.name, applied.ToString());
    }
  }
  RETURN_IF_ERROR(ApplyLocked(ns.get(), removed, added, vectors, std::move(added_attrs),
                              std::move(added_external), new_docs, counters, log_ops));
  if (ns->multivec != nullptr) {
    RETURN_IF_ERROR(ApplyMultiVecLocked(ns.get(), removed, added, std::move(chunk_tokens),
                                        std::move(trained_codec), std::move(reencoded)));
  }
  WriteResult result;
  result.documents_written = documents.size();
  result.chunks_written = chunks.size();
  return result;
}

absl::StatusOr<std::vector<std::optional<PendingTokens>>> StoreImpl::PrepareTokens(
    const text::TextEncoder& enc, const std::vector<Chunk>& chunks, uint32_t dim,
    const index::ResidualCodec* codec, std::vector<std::optional<std::vector<float>>>* known) {
  if (enc.token_dim() != static_cast<int>(dim)) {
    return absl::InternalError(absl::StrCat("encoder token states have ", enc.token_dim(),
                                            " dimensions; the namespace dim is ", dim));
  }
  std::vector<std::optional<PendingTokens>> out(chunks.size());
  std::vector<std::string> texts;
  std::vector<size_t> where;
  auto flush = [&]() -> absl::Status {
    if (texts.empty()) return absl::OkStatus();
    std::vector<std::vector<float>> states;
    if (known != nullptr && (*known)[where.front()].has_value()) {
      for (size_t w : where) states.push_back(std::move(*(*known)[w]));
    } else {
      ASSIGN_OR_RETURN(states, enc.EncodeTokens(texts));
    }
    if (states.size() != texts.size()) {
      return absl::InternalError("encoder returned token states for a different batch size");
    }
    for (size_t i = 0; i < states.size(); ++i) {
      ASSIGN_OR_RETURN(std::vector<float> clean, CleanTokens(std::move(states[i]), dim));
      if (clean.empty()) continue;  // no usable token: no row
      PendingTokens pending;
      if (codec != nullptr) {
        ASSIGN_OR_RETURN(pending.codes, codec->Encode(clean));
        pending.encoded = true;
      } else {
        RoundThroughHalf(&clean);
        pending.raw = std::move(clean);
      }
      out[where[i]] = std::move(pending);
    }
    texts.clear();
    where.clear();
    return absl::OkStatus();
  };
  // Chunks whose states are known go in batches of their own, so a batch
  // is either all known or all to encode.
  for (const bool want_known : {true, false}) {
    for (size_t c = 0; c < chunks.size(); ++c) {
      if (IsBlank(chunks[c].text)) continue;
      const bool is_known = known != nullptr && (*known)[c].has_value();
      if (is_known != want_known) continue;
      texts.push_back(chunks[c].text);
      where.push_back(c);
      if (texts.size() >= kTokenEncodeBatch) RETURN_IF_ERROR(flush());
    }
    RETURN_IF_ERROR(flush());
  }
  return out;
}

absl::Status StoreImpl::StageMultiVecLocked(
    Namespace* ns, rocksdb::WriteBatch* batch, const std::vector<int64_t>& removed,
    const std::vector<int64_t>& ids, std::vector<std::optional<PendingTokens>>* tokens,
    std::shared_ptr<const index::ResidualCodec>* trained,
    std::vector<std::pair<int64_t, index::ResidualCodes>>* reencoded) {
  const uint32_t nsid = ns->nsid;
  const uint32_t dim = ns->config.dim;
  for (int64_t id : removed) batch->Delete(multivec_, keys::RowKey(nsid, id));
  std::shared_ptr<const index::ResidualCodec> codec = ns->multivec->codec();
  // Normalises a staged (fp16-rounded) row as the index does, then encodes.
  auto encode_raw = [&](const index::ResidualCodec& with,
                        const std::vector<float>& raw) -> absl::StatusOr<index::ResidualCodes> {
    std::vector<float> unit;
    RETURN_IF_ERROR(index::NormalizeMultiVectorTokens(raw, dim, &unit));
    return with.Encode(unit);
  };
  uint64_t new_raw_tokens = 0;
  for (const auto& t : *tokens) {
    if (t.has_value() && !t->encoded) new_raw_tokens += t->raw.size() / dim;
  }
  if (codec == nullptr && new_raw_tokens > 0 &&
      ns->multivec->num_tokens() + new_raw_tokens >= ns->config.late_interaction_train_tokens) {
    // Train on every surviving staged row plus this write's tokens, in id
    // order (stored rows first: their ids are smaller).
    absl::flat_hash_set<int64_t> gone(removed.begin(), removed.end());
    std::vector<std::pair<int64_t, std::vector<float>>> staged;
    {
      const std::string begin = keys::NsPrefix(nsid);
      const std::string end = keys::NsEnd(nsid);
      rocksdb::ReadOptions ro;
      rocksdb::Slice upper(end);
      ro.iterate_upper_bound = &upper;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, multivec_));
      records::MultiVecRecord row;
      for (it->Seek(begin); it->Valid(); it->Next()) {
        auto id = keys::RowKeyId(View(it->key()));
        if (!id.has_value()) return absl::DataLossError("malformed multivec key");
        if (gone.contains(static_cast<int64_t>(*id))) continue;
        RETURN_IF_ERROR(records::DecodeMultiVec(View(it->value()), dim, 0, &row));
        staged.emplace_back(static_cast<int64_t>(*id), std::move(row.raw));
      }
      RETURN_IF_ERROR(FromRocks(it->status(), "scanning staged token vectors"));
    }
    uint64_t total = new_raw_tokens;
    for (const auto& [id, raw] : staged) total += raw.size() / dim;
    const index::MultiVectorIndexOptions options = MultiVecOptionsFor(ns->config);
    const uint64_t stride = index::MultiVectorSampleStride(options, total);
    std::vector<float> sample;
    uint64_t seen = 0;
    auto take = [&](const std::vector<float>& raw) {
      for (size_t t = 0; (t + 1) * dim <= raw.size(); ++t, ++seen) {
        if (seen % stride == 0) {
          sample.insert(sample.end(), raw.begin() + t * dim, raw.begin() + (t + 1) * dim);
        }
      }
    };
    for (const auto& [id, raw] : staged) take(raw);
    for (const auto& t : *tokens) {
      if (t.has_value() && !t->encoded) take(t->raw);
    }
    std::vector<float> unit_sample;
    RETURN_IF_ERROR(index::NormalizeMultiVectorTokens(sample, dim, &unit_sample));
    sample.clear();
    ASSIGN_OR_RETURN(std::unique_ptr<index::ResidualCodec> fresh,
                     index::TrainMultiVectorCodec(options, total, unit_sample));
    codec = std::shared_ptr<const index::ResidualCodec>(std::move(fresh));
    ASSIGN_OR_RETURN(std::vector<uint8_t> codec_bytes, codec->Serialize());
    batch->Put(meta_, keys::MultiVecCodecKey(nsid),
               rocksdb::Slice(reinterpret_cast<const char*>(codec_bytes.data()),
                              codec_bytes.size()));
    for (auto& [id, raw] : staged) {
      ASSIGN_OR_RETURN(index::ResidualCodes codes, encode_raw(*codec, raw));
      batch->Put(multivec_, keys::RowKey(nsid, id),
                 records::EncodeMultiVecCoded(codes.centroids, codes.residuals));
      reencoded->emplace_back(id, std::move(codes));
    }
    *trained = codec;
    spdlog::info("namespace '{}': trained the token codec on {} tokens ({} centroids, {}-bit)",
                 ns->config.name, total, codec->num_centroids(), codec->nbits());
  }
  for (size_t i = 0; i < tokens->size(); ++i) {
    std::optional<PendingTokens>& t = (*tokens)[i];
    if (!t.has_value()) continue;
    if (!t->encoded && codec != nullptr) {
      ASSIGN_OR_RETURN(t->codes, encode_raw(*codec, t->raw));
      t->raw.clear();
      t->encoded = true;
    }
    batch->Put(multivec_, keys::RowKey(nsid, ids[i]),
               t->encoded ? records::EncodeMultiVecCoded(t->codes.centroids, t->codes.residuals)
                          : records::EncodeMultiVecRaw(t->raw, dim));
  }
  return absl::OkStatus();
}

absl::Status StoreImpl::ApplyMultiVecLocked(
    Namespace* ns, const std::vector<int64_t>& removed, const std::vector<int64_t>& ids,
    std::vector<std::optional<PendingTokens>> tokens,
    std::shared_ptr<const index::ResidualCodec> trained,
    std::vector<std::pair<int64_t, index::ResidualCodes>> reencoded) {
  auto apply = [&]() -> absl::Status {
    if (trained != nullptr) {
      // Every surviving staged row was rewritten encoded: start over from
      // those, exactly as Open would rebuild them.
      ASSIGN_OR_RETURN(auto fresh,
                       index::MultiVectorIndex::Create(MultiVecOptionsFor(ns->config)));
      RETURN_IF_ERROR(fresh->AdoptCodec(trained));
      for (const auto& [id, codes] : reencoded) {
        RETURN_IF_ERROR(fresh->AddEncoded(id, codes.centroids, codes.residuals));
      }
      ns->multivec = std::move(fresh);
    } else {
      for (int64_t id : removed) RETURN_IF_ERROR(ns->multivec->Remove(id).status());
    }
    for (size_t i = 0; i < tokens.size() && i < ids.size(); ++i) {
      const std::optional<PendingTokens>& t = tokens[i];
      if (!t.has_value()) continue;
      if (t->encoded) {
        RETURN_IF_ERROR(ns->multivec->AddEncoded(ids[i], t->codes.centroids, t->codes.residuals));
      } else {
        RETURN_IF_ERROR(ns->multivec->Add(ids[i], t->raw));
      }
    }
    return absl::OkStatus();
  };
  absl::Status st = apply();
  if (st.ok()) return st;
  spdlog::error("namespace '{}': token index update failed ({}); rebuilding from stored rows",
                ns->config.name, st.ToString());
  auto rebuilt = BuildMultiVecFromCf(*ns);
  if (!rebuilt.ok()) {
    return absl::InternalError(absl::StrCat(
        "write committed but the token index could not be updated: ", st.message(),
        "; rebuild failed: ", rebuilt.status().message()));
  }
  ns->multivec = *std::move(rebuilt);
  return absl::OkStatus();
}

// Checks the id lists of a Get or Delete: at most max_write_batch ids in
// all (RESOURCE_EXHAUSTED), each a valid id (INVALID_ARGUMENT).
static absl::Status ValidateIdLists(absl::string_view verb, absl::Span<const std::string> chunk_ids,
                                    absl::Span<const std::string> document_ids,
                                    const Limits& limits) {
  if (chunk_ids.size() + document_ids.size() > limits.max_write_batch) {
    return absl::ResourceExhaustedError(
        absl::StrCat(verb, " carries ", chunk_ids.size() + document_ids.size(),
                     " ids; the limit is ", limits.max_write_batch));
  }
  for (const std::string& id : chunk_ids) RETURN_IF_ERROR(ValidateId(id, "chunk", limits));
  for (const std::string& id : document_ids) RETURN_IF_ERROR(ValidateId(id, "document", limits));
  return absl::OkStatus();
}

absl::StatusOr<DeleteResult> StoreImpl::Delete(absl::string_view ns_name,
                                               absl::Span<const std::string> chunk_ids,
                                               absl::Span<const std::string> document_ids) {
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  RETURN_IF_ERROR(ValidateIdLists("delete", chunk_ids, document_ids, options_.limits));

  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  const uint32_t nsid = ns->nsid;
  records::NamespaceCounters counters = ns->counters;
  rocksdb::WriteBatch batch;
  DeleteResult result;

  // Every chunk to delete: named ones plus members of named documents.
  std::vector<std::string> victims;
  absl::flat_hash_set<std::string> victim_set;
  for (const std::string& id : chunk_ids) {
    if (victim_set.insert(id).second) victims.push_back(id);
  }
  absl::flat_hash_set<absl::string_view> docs_seen;
  int64_t doc_delta = 0;
  for (const std::string& doc_id : document_ids) {
    if (!docs_seen.insert(doc_id).second) continue;
    ASSIGN_OR_RETURN(auto existing, GetOne(docs_, keys::DocKey(nsid, doc_id)));
    if (existing.has_value()) {
      batch.Delete(docs_, keys::DocKey(nsid, doc_id));
      ++result.documents_deleted;
      --doc_delta;
    }
    const std::string prefix = keys::MembershipPrefix(nsid, doc_id);
    const std::string end = keys::PrefixEnd(prefix);
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper(end);
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, docs_));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      std::string chunk_id = it->key().ToString().substr(prefix.size());
      if (victim_set.insert(chunk_id).second) victims.push_back(std::move(chunk_id));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning document chunks"));
  }

  std::vector<std::string> map_keys;
  for (const std::string& id : victims) map_keys.push_back(keys::IdMapKey(nsid, id));
  ASSIGN_OR_RETURN(auto internal, MultiGet(idmap_, map_keys));
  std::vector<int64_t> removed;
  std::vector<std::string> row_keys;
  std::vector<size_t> victim_index;
  for (size_t i = 0; i < victims.size(); ++i) {
    if (!internal[i].has_value()) continue;
    auto id = keys::ReadU64(*internal[i]);
    if (!id.has_value()) return absl::DataLossError("malformed id map entry");
    removed.push_back(static_cast<int64_t>(*id));
    row_keys.push_back(keys::RowKey(nsid, static_cast<int64_t>(*id)));
    victim_index.push_back(i);
  }
  ASSIGN_OR_RETURN(auto rows, MultiGet(chunks_, row_keys));
  uint64_t log_ops = 0;
  Bm25Update bm25_update;
  for (size_t j = 0; j < removed.size(); ++j) {
    const std::string& chunk_id = victims[victim_index[j]];
    batch.Delete(idmap_, map_keys[victim_index[j]]);
    batch.Delete(chunks_, row_keys[j]);
    batch.Delete(dense_, row_keys[j]);
    if (ns->multivec != nullptr) batch.Delete(multivec_, row_keys[j]);
    if (ns->bm25 != nullptr) {
      RETURN_IF_ERROR(ns->bm25->RemoveToBatch(&batch, removed[j], &bm25_update));
    }
    if (rows[j].has_value()) {
      Chunk old;
      RETURN_IF_ERROR(records::DecodeChunk(*rows[j], &old));
      if (!old.document_id.empty()) {
        batch.Delete(docs_, keys::MembershipKey(nsid, old.document_id, chunk_id));
      }
    }
    std::string value(1, keys::kLogRemove);
    keys::AppendU64(&value, static_cast<uint64_t>(removed[j]));
    batch.Put(ilog_, keys::LogKey(nsid, counters.next_log_seq++), value);
    ++log_ops;
  }
  result.chunks_deleted = removed.size();
  if (batch.Count() == 0) return result;
  StageKvRemovalLocked(ns.get(), &batch, removed);
  batch.Put(meta_, keys::NsCountersKey(nsid), records::EncodeCounters(counters));
  RETURN_IF_ERROR(FromRocks(db_->Write(SyncedWrite(), &batch), "deleting"));
  ApplyKvRemovalLocked(ns.get(), removed, KvSpace::Why::kDeleted);
  if (ns->bm25 != nullptr) {
    absl::Status applied = ns->bm25->ApplyCommitted(bm25_update);
    if (!applied.ok()) {
      spdlog::error("namespace '{}': BM25 statistics: {}", ns->config.name, applied.ToString());
    }
  }
  RETURN_IF_ERROR(ApplyLocked(ns.get(), removed, {}, {}, {}, {}, doc_delta, counters, log_ops));
  if (ns->multivec != nullptr) {
    RETURN_IF_ERROR(ApplyMultiVecLocked(ns.get(), removed, {}, {}, nullptr, {}));
  }
  return result;
}

// ---------------------------------------------------------------------------
// Reads

absl::StatusOr<GetResult> StoreImpl::Get(absl::string_view ns_name,
                                         absl::Span<const std::string> chunk_ids,
                                         absl::Span<const std::string> document_ids,
                                         bool include_vectors) {
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  RETURN_IF_ERROR(ValidateIdLists("get", chunk_ids, document_ids, options_.limits));

  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  const uint32_t nsid = ns->nsid;
  GetResult result;

  std::vector<std::string> map_keys;
  for (const std::string& id : chunk_ids) map_keys.push_back(keys::IdMapKey(nsid, id));
  ASSIGN_OR_RETURN(auto internal, MultiGet(idmap_, map_keys));
  std::vector<std::string> row_keys;
  std::vector<size_t> found;
  for (size_t i = 0; i < chunk_ids.size(); ++i) {
    auto id = internal[i].has_value() ? keys::ReadU64(*internal[i]) : std::nullopt;
    if (!id.has_value()) {
      result.missing_ids.push_back(chunk_ids[i]);
      continue;
    }
    row_keys.push_back(keys::RowKey(nsid, static_cast<int64_t>(*id)));
    found.push_back(i);
  }
  ASSIGN_OR_RETURN(auto rows, MultiGet(chunks_, row_keys));
  std::vector<std::optional<std::string>> dense_rows;
  if (include_vectors) {
    ASSIGN_OR_RETURN(dense_rows, MultiGet(dense_, row_keys));
  }
  for (size_t j = 0; j < found.size(); ++j) {
    if (!rows[j].has_value()) {
      return absl::DataLossError(
          absl::StrCat("chunk '", chunk_ids[found[j]], "' is mapped but has no record"));
    }
    Chunk chunk;
    RETURN_IF_ERROR(records::DecodeChunk(*rows[j], &chunk));
    if (include_vectors) {
      if (!dense_rows[j].has_value()) {
        return absl::DataLossError(
            absl::StrCat("chunk '", chunk.id, "' has no stored vector"));
      }
      RETURN_IF_ERROR(records::DecodeVector(*dense_rows[j], ns->config.dim, &chunk.vector));
    }
    result.chunks.push_back(std::move(chunk));
  }

  std::vector<std::string> doc_keys;
  for (const std::string& id : document_ids) doc_keys.push_back(keys::DocKey(nsid, id));
  ASSIGN_OR_RETURN(auto docs, MultiGet(docs_, doc_keys));
  for (size_t i = 0; i < document_ids.size(); ++i) {
    if (!docs[i].has_value()) {
      result.missing_ids.push_back(document_ids[i]);
      continue;
    }
    Document doc;
    doc.id = document_ids[i];
    RETURN_IF_ERROR(records::DecodeDocument(*docs[i], &doc));
    result.documents.push_back(std::move(doc));
  }
  return result;
}

absl::StatusOr<std::vector<std::vector<index::ScoredId>>> StoreImpl::DenseSearchLocked(
    Namespace* ns, absl::Span<const float> queries, int k, const SearchOptions& options,
    const index::IdPredicate* predicate) {
  const size_t n = queries.size() / ns->config.dim;
  std::vector<std::vector<index::ScoredId>> lists(n);
  if (ns->index->size() == 0) return lists;
  const bool whole_team = search_threads_ > 1 && n >= 2 * static_cast<size_t>(search_threads_);
  std::optional<absl::MutexLock> team_lock;
  if (whole_team) team_lock.emplace(&parallel_search_mu_);
  std::optional<ScopedOmpThreads> single_thread;
  if (!whole_team) single_thread.emplace(1);
  ASSIGN_OR_RETURN(index::DenseSearchResult found,
                   ns->index->Search(queries, k, predicate, options.params));
  team_lock.reset();
  single_thread.reset();
  for (size_t q = 0; q < found.n && q < n; ++q) {
    for (size_t j = 0; j < found.k; ++j) {
      const int64_t id = found.ids[q * found.k + j];
      if (id < 0) continue;
      lists[q].emplace_back(id, found.scores[q * found.k + j]);
    }
  }
  return lists;
}

absl::StatusOr<std::vector<std::vector<Hit>>> StoreImpl::MakeHitsLocked(
    Namespace* ns, const std::vector<std::vector<index::ScoredId>>& lists,
    const SearchOptions& options, const text::TextEncoder* encoder) {
  std::vector<std::vector<Hit>> hits(lists.size());
  const bool highlight = options.highlight && encoder != nullptr;
  const bool want_row = options.include_payload || highlight;
  const bool want_chunk = options.include_payload || options.include_vectors;
  std::vector<std::pair<size_t, size_t>> positions;  // (query, hit) needing a row
  std::vector<std::string> row_keys;
  for (size_t q = 0; q < lists.size(); ++q) {
    for (const auto& [id, score] : lists[q]) {
      auto ext = ns->external_ids.find(id);
      if (ext == ns->external_ids.end()) continue;  // cannot happen: index == store
      Hit hit;
      hit.id = ext->second;
      hit.score = score;
      if (want_chunk || highlight) {
        positions.emplace_back(q, hits[q].size());
        row_keys.push_back(keys::RowKey(ns->nsid, id));
      }
      hits[q].push_back(std::move(hit));
    }
  }
  if (positions.empty()) return hits;

  std::vector<std::optional<std::string>> rows;
  std::vector<std::optional<std::string>> dense_rows;
  if (want_row) {
    ASSIGN_OR_RETURN(rows, MultiGet(chunks_, row_keys));
  }
  if (options.include_vectors) {
    ASSIGN_OR_RETURN(dense_rows, MultiGet(dense_, row_keys));
  }
  for (size_t r = 0; r < positions.size(); ++r) {
    const size_t q = positions[r].first;
    Hit& hit = hits[q][positions[r].second];
    Chunk chunk;
    if (want_row && rows[r].has_value()) {
      RETURN_IF_ERROR(records::DecodeChunk(*rows[r], &chunk));
    }
    if (highlight) {
      hit.snippet = text::MakeSnippet(chunk.text, options.text_queries[q],
                                      encoder->SplitSentences(chunk.text));
    }
    if (!want_chunk) continue;
    if (!options.include_payload) chunk = Chunk();
    chunk.id = hit.id;
    if (options.include_vectors && dense_rows[r].has_value()) {
      RETURN_IF_ERROR(records::DecodeVector(*dense_rows[r], ns->config.dim, &chunk.vector));
    }
    hit.chunk = std::move(chunk);
  }
  return hits;
}

absl::StatusOr<std::vector<std::vector<Hit>>> StoreImpl::Search(absl::string_view ns_name,
                                                                absl::Span<const float> queries,
                                                                const SearchOptions& options) {
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  const Limits& limits = options_.limits;
  const uint32_t dim = ns->config.dim;
  if (options.k < 1 || static_cast<uint32_t>(options.k) > limits.max_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be in 1..", limits.max_k, ", got ", options.k));
  }
  if (!options.text_queries.empty()) return TextSearch(ns.get(), queries, options);
  if (options.mode != SearchMode::kDense) {
    return absl::InvalidArgumentError(
        "vector queries are searched in DENSE mode only; BM25, hybrid and late-interaction "
        "modes need text queries");
  }
  if (options.highlight) {
    return absl::InvalidArgumentError("highlight needs text queries");
  }
  if (options.expected_dim != 0 && options.expected_dim != dim) {
    return absl::InvalidArgumentError(absl::StrCat("query dim ", options.expected_dim,
                                                   " does not match namespace \"", ns_name,
                                                   "\" dim ", dim));
  }
  if (queries.empty() || queries.size() % dim != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queries hold ", queries.size(), " floats; expected a non-zero multiple of dim ", dim));
  }
  const size_t n = queries.size() / dim;
  if (n > limits.max_query_batch) {
    return absl::ResourceExhaustedError(absl::StrCat(n, " queries in one search; the limit is ",
                                                     limits.max_query_batch));
  }
  for (size_t i = 0; i < queries.size(); ++i) {
    if (!std::isfinite(queries[i])) {
      return absl::InvalidArgumentError(absl::StrCat("query ", i / dim,
                                                     " has a non-finite value at index ",
                                                     i % dim));
    }
  }
  RETURN_IF_ERROR(index::ValidateFilter(options.filter));

  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  index::FilterPredicate predicate(&ns->attrs, &options.filter);
  ASSIGN_OR_RETURN(auto lists,
                   DenseSearchLocked(ns.get(), queries, options.k, options,
                                     options.filter.empty() ? nullptr : &predicate));
  return MakeHitsLocked(ns.get(), lists, options, /*encoder=*/nullptr);
}

absl::StatusOr<std::vector<std::vector<Hit>>> StoreImpl::TextSearch(
    Namespace* ns, absl::Span<const float> queries, const SearchOptions& options) {
  const Limits& limits = options_.limits;
  if (!queries.empty()) {
    return absl::InvalidArgumentError(
        "a search carries either text queries or vector queries, not both");
  }
  if (ns->config.encoder.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "namespace '", ns->config.name,
        "' has no encoder, so it takes vector queries only; create it with an encoder for text "
        "search"));
  }
  const size_t n = options.text_queries.size();
  if (n > limits.max_query_batch) {
    return absl::ResourceExhaustedError(absl::StrCat(n, " queries in one search; the limit is ",
                                                     limits.max_query_batch));
  }
  for (size_t q = 0; q < n; ++q) {
    const std::string& text = options.text_queries[q];
    RETURN_IF_ERROR(ValidateText(text, absl::StrCat("text query ", q), limits));
    if (IsBlank(text)) {
      return absl::InvalidArgumentError(absl::StrCat("text query ", q, " is empty"));
    }
  }
  switch (options.mode) {
    case SearchMode::kDense:
    case SearchMode::kBm25:
    case SearchMode::kHybridRrf:
    case SearchMode::kHybridWeighted:
    case SearchMode::kLateInteraction:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown search mode ", static_cast<int>(options.mode)));
  }
  if (!std::isfinite(options.dense_weight) || !std::isfinite(options.bm25_weight) ||
      options.dense_weight < 0 || options.bm25_weight < 0) {
    return absl::InvalidArgumentError("dense_weight and bm25_weight must be finite and >= 0");
  }
  if (options.rrf_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("rrf_k must be >= 0, got ", options.rrf_k));
  }
  RETURN_IF_ERROR(index::ValidateFilter(options.filter));
  if (options.mode == SearchMode::kLateInteraction &&
      !ns->config.late_interaction.value_or(false)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "namespace '", ns->config.name,
        "' keeps no token vectors (created with late_interaction off), so it cannot be "
        "searched in LATE_INTERACTION mode"));
  }
  ASSIGN_OR_RETURN(const text::TextEncoder* enc,
                   text::GetEncoder(options_.encoder_dir, ns->config.encoder));
  if (options.mode == SearchMode::kLateInteraction) return LateSearch(ns, *enc, options);

  const bool hybrid =
      options.mode == SearchMode::kHybridRrf || options.mode == SearchMode::kHybridWeighted;
  const bool need_dense = options.mode != SearchMode::kBm25;
  const bool need_bm25 = options.mode != SearchMode::kDense;
  const int depth = hybrid ? std::max(options.k, kHybridDepth) : options.k;
  // Embedding and tokenizing happen before taking the namespace lock.
  std::vector<float> vectors;
  if (need_dense) {
    ASSIGN_OR_RETURN(vectors, enc->Encode(options.text_queries));
    if (vectors.size() != n * ns->config.dim) {
      return absl::InternalError(absl::StrCat("encoder returned ", vectors.size(),
                                              " floats for ", n, " queries"));
    }
  }
  std::vector<std::vector<uint32_t>> terms(need_bm25 ? n : 0);
  for (size_t q = 0; q < terms.size(); ++q) {
    ASSIGN_OR_RETURN(std::vector<int> ids, enc->Tokenize(options.text_queries[q]));
    terms[q].assign(ids.begin(), ids.end());
  }

  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  index::FilterPredicate predicate(&ns->attrs, &options.filter);
  const index::IdPredicate* filter = options.filter.empty() ? nullptr : &predicate;
  std::vector<std::vector<index::ScoredId>> dense(n);
  std::vector<std::vector<index::ScoredId>> bm25(n);
  if (need_dense) {
    ASSIGN_OR_RETURN(dense, DenseSearchLocked(ns, vectors, depth, options, filter));
  }
  if (need_bm25) {
    if (ns->bm25 == nullptr) return absl::InternalError("namespace has no BM25 index");
    for (size_t q = 0; q < n; ++q) {
      ASSIGN_OR_RETURN(bm25[q], ns->bm25->Search(terms[q], depth, filter));
    }
  }
  std::vector<std::vector<index::ScoredId>> lists;
  switch (options.mode) {
    case SearchMode::kDense:
      lists = std::move(dense);
      break;
    case SearchMode::kBm25:
      lists = std::move(bm25);
      break;
    case SearchMode::kHybridRrf:
      for (size_t q = 0; q < n; ++q) {
        std::vector<std::vector<int64_t>> ranked(2);
        for (const auto& [id, score] : dense[q]) ranked[0].push_back(id);
        for (const auto& [id, score] : bm25[q]) ranked[1].push_back(id);
        ASSIGN_OR_RETURN(auto fused, index::ReciprocalRankFusion(
                                         ranked, options.k,
                                         options.rrf_k == 0 ? 60 : options.rrf_k));
        lists.push_back(std::move(fused));
      }
      break;
    case SearchMode::kHybridWeighted: {
      double dense_weight = options.dense_weight;
      double bm25_weight = options.bm25_weight;
      if (dense_weight == 0 && bm25_weight == 0) dense_weight = bm25_weight = 0.5;
      for (size_t q = 0; q < n; ++q) {
        std::vector<index::WeightedList> inputs(2);
        inputs[0].hits = std::move(dense[q]);
        inputs[0].weight = dense_weight;
        inputs[0].higher_is_better = ns->config.metric != Metric::kL2;
        inputs[1].hits = std::move(bm25[q]);
        inputs[1].weight = bm25_weight;
        ASSIGN_OR_RETURN(auto fused, index::WeightedFusion(inputs, options.k));
        lists.push_back(std::move(fused));
      }
      break;
    }
    case SearchMode::kLateInteraction:
      // Dispatched to LateSearch before the dense and BM25 lists are built.
      return absl::InternalError("late-interaction search reached the fusion step");
  }
  return MakeHitsLocked(ns, lists, options, enc);
}

absl::StatusOr<std::vector<std::vector<Hit>>> StoreImpl::LateSearch(
    Namespace* ns, const text::TextEncoder& enc, const SearchOptions& options) {
  const uint32_t dim = ns->config.dim;
  const size_t n = options.text_queries.size();
  // Query token states, outside the lock.
  ASSIGN_OR_RETURN(std::vector<std::vector<float>> states, enc.EncodeTokens(options.text_queries));
  if (states.size() != n) {
    return absl::InternalError("encoder returned token states for a different batch size");
  }
  std::vector<std::vector<float>> queries(n);
  for (size_t q = 0; q < n; ++q) {
    ASSIGN_OR_RETURN(queries[q], CleanTokens(std::move(states[q]), dim));
  }
  index::MultiVectorSearchParams params;
  params.nprobe = options.late_nprobe;
  params.max_candidates = options.late_max_candidates;

  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  if (ns->multivec == nullptr) return absl::InternalError("namespace has no token index");
  index::FilterPredicate predicate(&ns->attrs, &options.filter);
  const index::IdPredicate* filter = options.filter.empty() ? nullptr : &predicate;
  std::vector<std::vector<index::ScoredId>> lists(n);
  for (size_t q = 0; q < n; ++q) {
    // A query without usable tokens, or an empty namespace, matches nothing.
    if (queries[q].empty() || ns->multivec->size() == 0) continue;
    ASSIGN_OR_RETURN(index::MultiVectorSearchResult found,
                     ns->multivec->Search(queries[q], options.k, filter, params));
    for (size_t j = 0; j < found.ids.size(); ++j) {
      if (found.ids[j] >= 0) lists[q].emplace_back(found.ids[j], found.scores[j]);
    }
  }
  return MakeHitsLocked(ns, lists, options, &enc);
}

// ---------------------------------------------------------------------------
// Maintenance

// Holds snapshot_mu and a reader lock on every namespace so that no write
// or snapshot lands while a checkpoint copies the store.
class FreezeAll {
 public:
  explicit FreezeAll(std::vector<NamespacePtr> all) ABSL_NO_THREAD_SAFETY_ANALYSIS
      : all_(std::move(all)) {
    for (const NamespacePtr& ns : all_) {
      ns->snapshot_mu.Lock();
      ns->mu.ReaderLock();
    }
  }
  ~FreezeAll() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (auto it = all_.rbegin(); it != all_.rend(); ++it) {
      (*it)->mu.ReaderUnlock();
      (*it)->snapshot_mu.Unlock();
    }
  }

 private:
  std::vector<NamespacePtr> all_;
};

absl::StatusOr<uint64_t> StoreImpl::Checkpoint(const std::string& target_dir) {
  absl::ReaderMutexLock store_lock(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  std::vector<NamespacePtr> all;
  for (const auto& [name, ns] : namespaces_) all.push_back(ns);
  std::sort(all.begin(), all.end(),
            [](const NamespacePtr& a, const NamespacePtr& b) { return a->nsid < b->nsid; });

  for (const NamespacePtr& ns : all) {
    RETURN_IF_ERROR(Annotate(SnapshotNamespace(ns.get()),
                             absl::StrCat("snapshot of namespace '", ns->config.name, "'")));
  }
  rocksdb::FlushOptions flush;
  flush.wait = true;
  RETURN_IF_ERROR(FromRocks(db_->Flush(flush, handles_), "flushing"));
  if (target_dir.empty()) return db_->GetLatestSequenceNumber();

  std::error_code ec;
  if (fs::exists(target_dir, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat("checkpoint target ", target_dir, " already exists"));
  }
  // Writes are blocked from here on, so the RocksDB checkpoint and the
  // copied snapshot files describe the same state (the log replay on open
  // would reconcile an older snapshot anyway; a newer one must not happen).
  FreezeAll freeze(all);
  rocksdb::Checkpoint* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  uint64_t sequence = 0;
  RETURN_IF_ERROR(FromRocks(checkpoint->CreateCheckpoint(target_dir, 0, &sequence),
                            absl::StrCat("checkpoint to ", target_dir)));
  const std::string target_indexes = (fs::path(target_dir) / "indexes").string();
  fs::create_directories(target_indexes, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", target_indexes, ": ", ec.message()));
  }
  for (const NamespacePtr& ns : all) {
    const std::string from = SnapshotPath(ns->nsid);
    if (!fs::exists(from, ec)) continue;
    ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(from));
    RETURN_IF_ERROR(WriteFileAtomically(
        (fs::path(target_indexes) / fs::path(from).filename()).string(), bytes));
  }
  spdlog::info("checkpoint of {} written to {} at sequence {}", path_, target_dir, sequence);
  return sequence;
}

absl::Status StoreImpl::Compact(absl::string_view ns_name) {
  absl::ReaderMutexLock store_lock(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  std::vector<NamespacePtr> targets;
  if (ns_name.empty()) {
    for (const auto& [name, ns] : namespaces_) targets.push_back(ns);
    for (rocksdb::ColumnFamilyHandle* cf : handles_) {
      RETURN_IF_ERROR(FromRocks(
          db_->CompactRange(rocksdb::CompactRangeOptions(), cf, nullptr, nullptr), "compacting"));
    }
  } else {
    auto it = namespaces_.find(ns_name);
    if (it == namespaces_.end()) {
      return absl::NotFoundError(absl::StrCat("namespace '", ns_name, "' does not exist"));
    }
    targets.push_back(it->second);
    const std::string begin = keys::NsPrefix(it->second->nsid);
    const std::string end = keys::NsEnd(it->second->nsid);
    rocksdb::Slice b(begin), e(end);
    for (rocksdb::ColumnFamilyHandle* cf : DataCfs()) {
      RETURN_IF_ERROR(
          FromRocks(db_->CompactRange(rocksdb::CompactRangeOptions(), cf, &b, &e), "compacting"));
    }
  }
  for (const NamespacePtr& ns : targets) {
    absl::MutexLock l(&ns->mu);
    if (ns->gone != Gone::kNo) continue;
    if (ns->kv != nullptr) {
      // Expired KV reads as missing already; compaction also frees it.
      const std::vector<int64_t> expired = ns->kv->ExpiredIds(KvNowMs());
      if (!expired.empty()) {
        rocksdb::WriteBatch batch;
        StageKvRemovalLocked(ns.get(), &batch, expired);
        RETURN_IF_ERROR(FromRocks(db_->Write(SyncedWrite(), &batch), "removing expired KV"));
        ApplyKvRemovalLocked(ns.get(), expired, KvSpace::Why::kExpired);
      }
    }
    if (!ns->may_have_dead_entries) continue;
    RETURN_IF_ERROR(Annotate(RebuildIndexLocked(ns.get()),
                             absl::StrCat("rebuilding index of '", ns->config.name, "'")));
    spdlog::info("namespace '{}': index rebuilt without dead entries", ns->config.name);
  }
  return absl::OkStatus();
}


// ---------------------------------------------------------------------------
// Chunk KV caches

namespace {

KvEntry EntryOf(const kvrecords::KvChunkRecord& r) {
  KvEntry e;
  e.n_tokens = static_cast<uint32_t>(r.tokens.size());
  e.n_layers = r.n_layers;
  e.stored_bytes = r.stored_bytes;
  e.fp16_bytes = r.fp16_bytes;
  e.expires_ms = r.expires_ms;
  e.pinned = r.pinned;
  e.token_hash = kvrecords::TokenHash(r.tokens);
  e.key_error_sum = r.key_error_sum;
  e.value_error_sum = r.value_error_sum;
  return e;
}

int64_t ExpiryMs(int64_t now_ms, int64_t ttl_seconds) {
  if (ttl_seconds <= 0) return 0;
  constexpr int64_t kMaxTtl = int64_t{1} << 40;  // seconds; keeps the sum in range
  return now_ms + std::min(ttl_seconds, kMaxTtl) * 1000;
}

absl::Status ValidateKvIds(absl::string_view verb, absl::Span<const std::string> ids,
                           const Limits& limits) {
  if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat(verb, " names no chunk"));
  if (ids.size() > limits.max_write_batch) {
    return absl::ResourceExhaustedError(absl::StrCat(verb, " names ", ids.size(),
                                                     " chunks; the limit is ",
                                                     limits.max_write_batch));
  }
  for (const std::string& id : ids) RETURN_IF_ERROR(ValidateId(id, "chunk id", limits));
  return absl::OkStatus();
}

}  // namespace

// One chunk's put: validates and encodes each layer as it comes, holds the
// encoded blocks, and hands them to the store in one commit.
class KvChunkWriterImpl final : public KvChunkWriter {
 public:
  KvChunkWriterImpl(StoreImpl* store, NamespacePtr ns, KvPutHeader header, KvConfig config)
      : store_(store),
        ns_(std::move(ns)),
        header_(std::move(header)),
        config_(std::move(config)),
        fingerprint_hash_(config_.model.Hash()) {}

  absl::Status AddLayer(uint32_t layer, const KvTensorShape& shape, absl::Span<const float> k,
                        absl::Span<const float> v) override {
    if (done_) return absl::FailedPreconditionError("KV put already finished");
    const ModelFingerprint& m = config_.model;
    const auto n_layers = static_cast<uint32_t>(m.n_layers);
    const auto tokens = static_cast<uint32_t>(header_.tokens.size());
    if (layer >= n_layers) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", layer, " is out of range: the model has ", n_layers, " layers"));
    }
    if (layer != next_layer_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer ", layer, " arrived where layer ", next_layer_, " was expected (in order)"));
    }
    if (shape.heads != static_cast<uint32_t>(m.n_kv_heads) ||
        shape.head_dim != static_cast<uint32_t>(m.head_dim)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer ", layer, ": shape [", shape.heads, ", ", shape.tokens, ", ", shape.head_dim,
          "] does not match the model's [n_kv_heads ", m.n_kv_heads, ", tokens, head_dim ",
          m.head_dim, "]"));
    }
    if (shape.tokens != tokens) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " holds ", shape.tokens,
                                                     " tokens; the chunk's header gives ",
                                                     tokens));
    }
    const size_t elements = static_cast<size_t>(shape.heads) * shape.tokens * shape.head_dim;
    if (k.size() != elements || v.size() != elements) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", layer, ": K holds ", k.size(),
                                                     " and V ", v.size(),
                                                     " values; the shape needs ", elements));
    }
    for (const auto& [name, data] : {std::pair{"K", k}, std::pair{"V", v}}) {
      for (size_t i = 0; i < data.size(); ++i) {
        if (!std::isfinite(data[i])) {
          return absl::InvalidArgumentError(
              absl::StrCat("layer ", layer, ": ", name, " holds a NaN or infinity at element ", i));
        }
      }
    }
    absl::Span<const float> keys = k;
    std::vector<float> unrotated;
    if (header_.keys_position.has_value()) {
      unrotated.assign(k.begin(), k.end());
      RETURN_IF_ERROR(attention::UnrotateKeys(unrotated.data(), m.n_kv_heads,
                                              static_cast<int>(tokens), m.head_dim, m.rope_theta,
                                              *header_.keys_position));
      keys = unrotated;
    }
    ASSIGN_OR_RETURN(EncodedKvTensor ek,
                     EncodeKvTensor(keys, shape, KvTensorRole::kKeys, config_.codec));
    ASSIGN_OR_RETURN(EncodedKvTensor ev,
                     EncodeKvTensor(v, shape, KvTensorRole::kValues, config_.codec));
    blocks_.push_back(kvrecords::EncodeBlock(fingerprint_hash_, ek.bytes, ev.bytes));
    result_.stored_bytes += blocks_.back().size();
    result_.key_error.push_back(ek.relative_error);
    result_.value_error.push_back(ev.relative_error);
    fp16_bytes_ += 2 * elements * 2;
    ++next_layer_;
    return absl::OkStatus();
  }

  absl::StatusOr<KvPutResult> Commit() override {
    if (done_) return absl::FailedPreconditionError("KV put already finished");
    done_ = true;
    const auto n_layers = static_cast<uint32_t>(config_.model.n_layers);
    if (next_layer_ != n_layers) {
      return absl::InvalidArgumentError(absl::StrCat("KV put of chunk '", header_.chunk_id,
                                                     "' ended after ", next_layer_, " of ",
                                                     n_layers, " layers; nothing was stored"));
    }
    return store_->CommitKv(ns_, header_, blocks_, result_, fp16_bytes_, fingerprint_hash_);
  }

 private:
  StoreImpl* const store_;
  const NamespacePtr ns_;
  const KvPutHeader header_;
  const KvConfig config_;
  const uint64_t fingerprint_hash_;
  uint32_t next_layer_ = 0;
  bool done_ = false;
  std::vector<std::string> blocks_;
  KvPutResult result_;
  uint64_t fp16_bytes_ = 0;
};

// Blocks of a read, from one RocksDB snapshot taken when the chunks were
// checked, layer-major.
class KvReaderImpl final : public KvReader {
 public:
  struct Item {
    int64_t internal_id = 0;
    std::string chunk_id;
    uint32_t tokens = 0;
    int64_t position = -1;
  };

  KvReaderImpl(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, uint32_t nsid,
               std::vector<Item> items, uint32_t layer_begin, uint32_t layer_end,
               ModelFingerprint model, std::optional<KvDtype> as_bytes)
      : as_bytes_(as_bytes),
        db_(db),
        cf_(cf),
        snapshot_(db->GetSnapshot()),
        nsid_(nsid),
        items_(std::move(items)),
        layer_begin_(layer_begin),
        layer_end_(layer_end),
        model_(std::move(model)),
        fingerprint_hash_(model_.Hash()) {}
  ~KvReaderImpl() override { db_->ReleaseSnapshot(snapshot_); }

  // The wire type a stored kind is already in, if any.
  static std::optional<KvDtype> StoredAs(KvCodecKind kind) {
    switch (kind) {
      case KvCodecKind::kFp32:
        return KvDtype::kFp32;
      case KvCodecKind::kFp16:
        return KvDtype::kFp16;
      case KvCodecKind::kBf16:
        return KvDtype::kBf16;
      default:
        return std::nullopt;
    }
  }

  size_t total_blocks() const override {
    return items_.size() * static_cast<size_t>(layer_end_ - layer_begin_);
  }
  uint64_t total_values() const override {
    uint64_t tokens = 0;
    for (const Item& item : items_) tokens += item.tokens;
    return 2 * tokens * static_cast<uint64_t>(model_.n_kv_heads) * model_.head_dim *
           (layer_end_ - layer_begin_);
  }

  absl::StatusOr<bool> Next(KvBlock* block) override {
    if (next_ >= total_blocks()) return false;
    const size_t chunk_index = next_ % items_.size();
    const uint32_t layer = layer_begin_ + static_cast<uint32_t>(next_ / items_.size());
    ++next_;
    const Item& item = items_[chunk_index];
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot_;
    // Every block carries its own checksums (db/kv_codec.h), verified on
    // decode; RocksDB's second pass over the bytes buys nothing here.
    ro.verify_checksums = false;
    auto corrupt = [&](absl::string_view why) {
      return absl::DataLossError(absl::StrCat("KV of chunk '", item.chunk_id, "' layer ", layer,
                                              ": ", why));
    };
    block->tokens.clear();
    if (layer == layer_begin_) {
      std::string record;
      rocksdb::Status s =
          db_->Get(ro, cf_, kvrecords::ChunkKey(nsid_, item.internal_id), &record);
      if (!s.ok()) return corrupt(absl::StrCat("chunk record unreadable: ", s.ToString()));
      ASSIGN_OR_RETURN(kvrecords::KvChunkRecord r, kvrecords::DecodeChunkRecord(record));
      block->tokens = std::move(r.tokens);
    }
    value_.Reset();
    rocksdb::Status s =
        db_->Get(ro, cf_, kvrecords::BlockKey(nsid_, item.internal_id, layer), &value_);
    if (!s.ok()) return corrupt(absl::StrCat("block unreadable: ", s.ToString()));
    ASSIGN_OR_RETURN(kvrecords::BlockView view, kvrecords::DecodeBlock(View(value_)));
    if (view.fingerprint_hash != fingerprint_hash_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "KV of chunk '", item.chunk_id, "' layer ", layer,
          " was produced by another model (fingerprint hash ", view.fingerprint_hash, ")"));
    }
    const KvTensorShape want{static_cast<uint32_t>(model_.n_kv_heads), item.tokens,
                             static_cast<uint32_t>(model_.head_dim)};
    KvTensorHeader kh, vh;
    block->k.clear();
    block->v.clear();
    block->k_bytes = {};
    block->v_bytes = {};
    ASSIGN_OR_RETURN(kh, PeekKvTensor(view.k));
    ASSIGN_OR_RETURN(vh, PeekKvTensor(view.v));
    if (!(kh.shape == want) || !(vh.shape == want)) return corrupt("shape does not match");
    if (as_bytes_.has_value() && StoredAs(kh.kind) == as_bytes_ &&
        StoredAs(vh.kind) == as_bytes_ && item.position < 0) {
      // Stored in the asked type: hand the payload over as it is.
      ASSIGN_OR_RETURN(block->k_bytes, ViewKvPayload(view.k, &kh, &k_out_));
      ASSIGN_OR_RETURN(block->v_bytes, ViewKvPayload(view.v, &vh, &v_out_));
    } else {
      RETURN_IF_ERROR(DecodeKvTensor(view.k, &block->k, &kh));
      RETURN_IF_ERROR(DecodeKvTensor(view.v, &block->v, &vh));
      if (item.position >= 0) {
        RETURN_IF_ERROR(attention::RotateKeys(block->k.data(), model_.n_kv_heads,
                                              static_cast<int>(item.tokens), model_.head_dim,
                                              model_.rope_theta, item.position));
      }
      if (as_bytes_.has_value()) {
        k_out_ = FloatsToDtype(block->k, *as_bytes_);
        v_out_ = FloatsToDtype(block->v, *as_bytes_);
        block->k_bytes = k_out_;
        block->v_bytes = v_out_;
        block->k.clear();
        block->v.clear();
      }
    }
    block->chunk_index = chunk_index;
    block->chunk_id = item.chunk_id;
    block->layer = layer;
    block->shape = want;
    block->key_error = kh.relative_error;
    block->value_error = vh.relative_error;
    block->position = item.position;
    return true;
  }

 private:
  const std::optional<KvDtype> as_bytes_;
  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const cf_;
  const rocksdb::Snapshot* const snapshot_;
  const uint32_t nsid_;
  const std::vector<Item> items_;
  const uint32_t layer_begin_, layer_end_;
  const ModelFingerprint model_;
  const uint64_t fingerprint_hash_;
  size_t next_ = 0;
  // The block being read and the bytes handed out of it (views into these
  // stay valid until the next Next()).
  rocksdb::PinnableSlice value_;
  std::string k_out_, v_out_;
};

absl::Status StoreImpl::LoadKvLocked(Namespace* ns) {
  ASSIGN_OR_RETURN(auto value, GetOne(meta_, kvrecords::ConfigKey(ns->nsid)));
  if (!value.has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(KvConfig config, kvrecords::DecodeConfig(*value));
  ASSIGN_OR_RETURN(ns->kv, KvSpace::Create(config));
  const std::string begin = kvrecords::ChunkKeyPrefix(ns->nsid);
  const std::string end = keys::PrefixEnd(begin);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, kv_));
  uint64_t chunks = 0;
  for (it->Seek(begin); it->Valid(); it->Next()) {
    auto id = kvrecords::ChunkKeyId(View(it->key()));
    if (!id.has_value()) return absl::DataLossError("malformed KV chunk key");
    ASSIGN_OR_RETURN(kvrecords::KvChunkRecord r, kvrecords::DecodeChunkRecord(View(it->value())));
    if (!ns->external_ids.contains(*id)) {
      // Cannot happen (KV is removed in the chunk's own commit); never
      // serve it.
      spdlog::warn("namespace '{}': KV of unknown chunk {} ignored", ns->config.name, *id);
      continue;
    }
    ns->kv->Put(*id, EntryOf(r));
    ++chunks;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning KV chunks"));
  spdlog::info("namespace '{}': KV of {} chunks ({})", ns->config.name, chunks,
               config.model.Canonical());
  return absl::OkStatus();
}

absl::StatusOr<KvSpace*> StoreImpl::KvSpaceFor(const Namespace& ns,
                                               const ModelFingerprint* model) {
  RETURN_IF_ERROR(ns.GoneStatus());
  if (ns.kv == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "namespace '", ns.config.name, "' has no registered KV model (RegisterKvModel first)"));
  }
  if (model != nullptr) {
    const KvConfig config = ns.kv->config();
    if (auto diff = FirstDifference(config.model, *model)) {
      return absl::FailedPreconditionError(
          absl::StrCat("model fingerprint does not match namespace '", ns.config.name,
                       "''s KV model: ", diff->ToString()));
    }
  }
  return ns.kv.get();
}

void StoreImpl::StageKvRemovalLocked(Namespace* ns, rocksdb::WriteBatch* batch,
                                     absl::Span<const int64_t> ids) {
  if (ns->kv == nullptr) return;
  for (int64_t id : ids) {
    std::optional<KvEntry> e = ns->kv->Find(id);
    if (!e.has_value()) continue;
    for (uint32_t l = 0; l < e->n_layers; ++l) {
      batch->Delete(kv_, kvrecords::BlockKey(ns->nsid, id, l));
    }
    batch->Delete(kv_, kvrecords::ChunkKey(ns->nsid, id));
  }
}

void StoreImpl::ApplyKvRemovalLocked(Namespace* ns, absl::Span<const int64_t> ids,
                                     KvSpace::Why why) {
  if (ns->kv == nullptr) return;
  for (int64_t id : ids) ns->kv->Erase(id, why);
}

absl::StatusOr<std::optional<int64_t>> StoreImpl::InternalIdLocked(const Namespace& ns,
                                                                   absl::string_view chunk_id) {
  ASSIGN_OR_RETURN(auto value, GetOne(idmap_, keys::IdMapKey(ns.nsid, chunk_id)));
  if (!value.has_value()) return std::optional<int64_t>();
  auto id = keys::ReadU64(*value);
  if (!id.has_value()) return absl::DataLossError("malformed id map entry");
  return std::optional<int64_t>(static_cast<int64_t>(*id));
}

absl::StatusOr<KvStats> StoreImpl::RegisterKvModel(absl::string_view ns_name,
                                                   const KvConfig& config_in) {
  RETURN_IF_ERROR(ValidateKvConfig(config_in));
  KvConfig config = config_in;
  if (config.eviction_policy.empty()) config.eviction_policy = kKvEvictLru;
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  bool same_model = false;
  if (ns->kv != nullptr) {
    const KvConfig current = ns->kv->config();
    auto diff = FirstDifference(current.model, config.model);
    same_model = !diff.has_value();
    if (!same_model && !ns->kv->empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "namespace '", ns->config.name, "' holds KV of another model (", diff->ToString(),
          "); delete its KV before registering a new model"));
    }
  }
  RETURN_IF_ERROR(FromRocks(db_->Put(SyncedWrite(), meta_, kvrecords::ConfigKey(ns->nsid),
                                     kvrecords::EncodeConfig(config)),
                            "registering KV model"));
  if (same_model) {
    RETURN_IF_ERROR(ns->kv->Reconfigure(config));
  } else {
    ASSIGN_OR_RETURN(ns->kv, KvSpace::Create(config));
  }
  return ns->kv->Stats(KvNowMs());
}

absl::StatusOr<std::unique_ptr<KvChunkWriter>> StoreImpl::BeginPutKv(absl::string_view ns_name,
                                                                     KvPutHeader header) {
  const Limits& limits = options_.limits;
  RETURN_IF_ERROR(ValidateId(header.chunk_id, "chunk id", limits));
  if (header.tokens.empty() || header.tokens.size() > kMaxKvTokens) {
    return absl::InvalidArgumentError(absl::StrCat("a KV put carries ", header.tokens.size(),
                                                   " token ids; 1..", kMaxKvTokens,
                                                   " are accepted"));
  }
  for (size_t i = 0; i < header.tokens.size(); ++i) {
    if (header.tokens[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", header.tokens[i], " at ", i, " is negative"));
    }
  }
  if (header.ttl_seconds < 0) return absl::InvalidArgumentError("ttl_seconds must be >= 0");
  if (header.keys_position.has_value() &&
      (*header.keys_position < 0 ||
       *header.keys_position > attention::kMaxRopePosition - kMaxKvTokens)) {
    return absl::InvalidArgumentError("keys_position must be >= 0 and < 2^53");
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  KvConfig config;
  {
    absl::ReaderMutexLock lock(&ns->mu);
    ASSIGN_OR_RETURN(KvSpace * kv, KvSpaceFor(*ns, &header.model));
    ASSIGN_OR_RETURN(std::optional<int64_t> id, InternalIdLocked(*ns, header.chunk_id));
    if (!id.has_value()) {
      return absl::NotFoundError(absl::StrCat("chunk '", header.chunk_id,
                                              "' does not exist in namespace '", ns_name, "'"));
    }
    config = kv->config();
  }
  return std::unique_ptr<KvChunkWriter>(
      new KvChunkWriterImpl(this, ns, std::move(header), std::move(config)));
}

absl::StatusOr<KvPutResult> StoreImpl::CommitKv(const NamespacePtr& ns, const KvPutHeader& header,
                                                const std::vector<std::string>& blocks,
                                                const KvPutResult& encoded, uint64_t fp16_bytes,
                                                uint64_t fingerprint_hash) {
  absl::MutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, KvSpaceFor(*ns, &header.model));
  ASSIGN_OR_RETURN(std::optional<int64_t> found, InternalIdLocked(*ns, header.chunk_id));
  if (!found.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("chunk '", header.chunk_id, "' was deleted during the KV put"));
  }
  const int64_t id = *found;
  const int64_t now = KvNowMs();
  std::vector<int64_t> expired = kv->ExpiredIds(now);
  std::vector<int64_t> freed = expired;
  if (kv->Find(id).has_value()) freed.push_back(id);
  ASSIGN_OR_RETURN(std::vector<int64_t> victims, kv->PlanEviction(encoded.stored_bytes, freed));

  rocksdb::WriteBatch batch;
  StageKvRemovalLocked(ns.get(), &batch, freed);
  StageKvRemovalLocked(ns.get(), &batch, victims);
  kvrecords::KvChunkRecord record;
  record.fingerprint_hash = fingerprint_hash;
  record.n_layers = static_cast<uint32_t>(blocks.size());
  record.stored_bytes = encoded.stored_bytes;
  record.fp16_bytes = fp16_bytes;
  record.created_ms = now;
  record.expires_ms = ExpiryMs(
      now, header.ttl_seconds > 0 ? header.ttl_seconds : kv->config().default_ttl_seconds);
  record.pinned = header.pin;
  for (float e : encoded.key_error) record.key_error_sum += e;
  for (float e : encoded.value_error) record.value_error_sum += e;
  record.tokens = header.tokens;
  for (size_t l = 0; l < blocks.size(); ++l) {
    batch.Put(kv_, kvrecords::BlockKey(ns->nsid, id, static_cast<uint32_t>(l)), blocks[l]);
  }
  batch.Put(kv_, kvrecords::ChunkKey(ns->nsid, id), kvrecords::EncodeChunkRecord(record));
  RETURN_IF_ERROR(FromRocks(db_->Write(SyncedWrite(), &batch), "writing KV"));

  ApplyKvRemovalLocked(ns.get(), expired, KvSpace::Why::kExpired);
  ApplyKvRemovalLocked(ns.get(), victims, KvSpace::Why::kEvicted);
  kv->Put(id, EntryOf(record));
  KvPutResult result = encoded;
  result.evicted_chunks = static_cast<uint32_t>(victims.size());
  return result;
}

absl::StatusOr<std::unique_ptr<KvReader>> StoreImpl::ReadKv(absl::string_view ns_name,
                                                           const KvReadOptions& options) {
  RETURN_IF_ERROR(ValidateKvIds("KV read", options.chunk_ids, options_.limits));
  if (!options.positions.empty() && options.positions.size() != options.chunk_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV read gives ", options.positions.size(), " positions for ",
        options.chunk_ids.size(), " chunks (one per chunk, or none)"));
  }
  for (int64_t p : options.positions) {
    if (p < 0 || p > attention::kMaxRopePosition - kMaxKvTokens) {
      return absl::InvalidArgumentError(absl::StrCat("position ", p, " is out of range"));
    }
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  absl::ReaderMutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, KvSpaceFor(*ns, &options.model));
  const auto n_layers = static_cast<uint32_t>(options.model.n_layers);
  const uint32_t layer_end = options.layer_end == 0 ? n_layers : options.layer_end;
  if (options.layer_begin >= layer_end || layer_end > n_layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer range [", options.layer_begin, ", ",
                                                   layer_end, ") is not within the model's ",
                                                   n_layers, " layers"));
  }
  const int64_t now = KvNowMs();
  std::vector<KvReaderImpl::Item> items;
  absl::flat_hash_set<absl::string_view> distinct;
  for (size_t i = 0; i < options.chunk_ids.size(); ++i) {
    const std::string& chunk_id = options.chunk_ids[i];
    if (!distinct.insert(chunk_id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("chunk '", chunk_id, "' is named twice in one KV read"));
    }
    ASSIGN_OR_RETURN(std::optional<int64_t> id, InternalIdLocked(*ns, chunk_id));
    if (!id.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("chunk '", chunk_id, "' does not exist in namespace '", ns_name, "'"));
    }
    std::optional<KvEntry> e = kv->Live(*id, now);
    if (!e.has_value()) {
      return absl::NotFoundError(absl::StrCat(
          "chunk '", chunk_id, "' holds no KV (never stored, deleted, evicted or expired)"));
    }
    items.push_back({*id, chunk_id, e->n_tokens,
                     options.positions.empty() ? -1 : options.positions[i]});
  }
  for (const auto& item : items) kv->Touch(item.internal_id);
  return std::unique_ptr<KvReader>(new KvReaderImpl(db_.get(), kv_, ns->nsid, std::move(items),
                                                    options.layer_begin, layer_end,
                                                    options.model, options.as_bytes));
}

absl::StatusOr<std::vector<uint32_t>> StoreImpl::ExistsKv(absl::string_view ns_name,
                                                         absl::Span<const std::string> chunk_ids,
                                                         const ModelFingerprint& model) {
  RETURN_IF_ERROR(ValidateKvIds("KV exists", chunk_ids, options_.limits));
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  absl::ReaderMutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, KvSpaceFor(*ns, &model));
  const int64_t now = KvNowMs();
  std::vector<uint32_t> out;
  for (const std::string& chunk_id : chunk_ids) {
    ASSIGN_OR_RETURN(std::optional<int64_t> id, InternalIdLocked(*ns, chunk_id));
    std::optional<KvEntry> e;
    if (id.has_value()) e = kv->Live(*id, now);
    out.push_back(e.has_value() ? e->n_tokens : 0);
  }
  return out;
}

absl::StatusOr<uint64_t> StoreImpl::DeleteKv(absl::string_view ns_name,
                                            absl::Span<const std::string> chunk_ids) {
  RETURN_IF_ERROR(ValidateKvIds("KV delete", chunk_ids, options_.limits));
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  absl::MutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, KvSpaceFor(*ns, nullptr));
  std::vector<int64_t> ids;
  absl::flat_hash_set<int64_t> seen;
  const int64_t now = KvNowMs();
  uint64_t live = 0;
  for (const std::string& chunk_id : chunk_ids) {
    ASSIGN_OR_RETURN(std::optional<int64_t> id, InternalIdLocked(*ns, chunk_id));
    if (!id.has_value() || !seen.insert(*id).second) continue;
    std::optional<KvEntry> e = kv->Find(*id);
    if (!e.has_value()) continue;
    if (!e->Expired(now)) ++live;
    ids.push_back(*id);
  }
  if (ids.empty()) return uint64_t{0};
  rocksdb::WriteBatch batch;
  StageKvRemovalLocked(ns.get(), &batch, ids);
  RETURN_IF_ERROR(FromRocks(db_->Write(SyncedWrite(), &batch), "deleting KV"));
  ApplyKvRemovalLocked(ns.get(), ids, KvSpace::Why::kDeleted);
  return live;
}

absl::StatusOr<KvPrefixMatch> StoreImpl::LookupPrefix(absl::string_view ns_name,
                                                     const ModelFingerprint& model,
                                                     absl::Span<const int32_t> tokens) {
  constexpr size_t kMaxLookupTokens = size_t{1} << 22;
  if (tokens.size() > kMaxLookupTokens) {
    return absl::ResourceExhaustedError(absl::StrCat("prefix lookup of ", tokens.size(),
                                                     " tokens; the limit is ",
                                                     kMaxLookupTokens));
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  absl::ReaderMutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, KvSpaceFor(*ns, &model));
  const int64_t now = KvNowMs();
  const std::vector<uint32_t> lengths = kv->Lengths();
  KvPrefixMatch match;
  std::vector<int64_t> used;
  size_t pos = 0;
  while (pos < tokens.size()) {
    bool extended = false;
    for (uint32_t len : lengths) {
      if (len > tokens.size() - pos) continue;
      const absl::Span<const int32_t> piece = tokens.subspan(pos, len);
      for (int64_t id : kv->WithTokenHash(kvrecords::TokenHash(piece))) {
        std::optional<KvEntry> e = kv->Live(id, now);
        if (!e.has_value() || e->n_tokens != len) continue;
        ASSIGN_OR_RETURN(auto record, GetOne(kv_, kvrecords::ChunkKey(ns->nsid, id)));
        if (!record.has_value()) continue;
        ASSIGN_OR_RETURN(kvrecords::KvChunkRecord r, kvrecords::DecodeChunkRecord(*record));
        if (!std::equal(r.tokens.begin(), r.tokens.end(), piece.begin(), piece.end())) continue;
        auto ext = ns->external_ids.find(id);
        if (ext == ns->external_ids.end()) continue;
        match.chunk_ids.push_back(ext->second);
        match.chunk_tokens.push_back(len);
        used.push_back(id);
        pos += len;
        extended = true;
        break;
      }
      if (extended) break;
    }
    if (!extended) break;
  }
  match.matched_tokens = pos;
  for (int64_t id : used) kv->Touch(id);
  return match;
}

absl::StatusOr<uint64_t> StoreImpl::SetKvRetention(absl::string_view ns_name,
                                                  absl::Span<const std::string> chunk_ids,
                                                  std::optional<bool> pin,
                                                  std::optional<int64_t> ttl_seconds) {
  RETURN_IF_ERROR(ValidateKvIds("KV retention", chunk_ids, options_.limits));
  if (ttl_seconds.has_value() && *ttl_seconds < 0) {
    return absl::InvalidArgumentError("ttl_seconds must be >= 0");
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  absl::MutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, KvSpaceFor(*ns, nullptr));
  const int64_t now = KvNowMs();
  rocksdb::WriteBatch batch;
  std::vector<std::pair<int64_t, KvEntry>> updated;
  absl::flat_hash_set<int64_t> seen;
  for (const std::string& chunk_id : chunk_ids) {
    ASSIGN_OR_RETURN(std::optional<int64_t> id, InternalIdLocked(*ns, chunk_id));
    if (!id.has_value() || !seen.insert(*id).second || !kv->Live(*id, now).has_value()) continue;
    ASSIGN_OR_RETURN(auto value, GetOne(kv_, kvrecords::ChunkKey(ns->nsid, *id)));
    if (!value.has_value()) return absl::DataLossError("KV chunk record is missing");
    ASSIGN_OR_RETURN(kvrecords::KvChunkRecord r, kvrecords::DecodeChunkRecord(*value));
    if (pin.has_value()) r.pinned = *pin;
    if (ttl_seconds.has_value()) r.expires_ms = ExpiryMs(now, *ttl_seconds);
    batch.Put(kv_, kvrecords::ChunkKey(ns->nsid, *id), kvrecords::EncodeChunkRecord(r));
    updated.emplace_back(*id, EntryOf(r));
  }
  if (updated.empty()) return uint64_t{0};
  RETURN_IF_ERROR(FromRocks(db_->Write(SyncedWrite(), &batch), "updating KV retention"));
  for (const auto& [id, entry] : updated) kv->SetRetention(id, entry.pinned, entry.expires_ms);
  return static_cast<uint64_t>(updated.size());
}

absl::StatusOr<KvStats> StoreImpl::GetKvStats(absl::string_view ns_name) {
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  absl::ReaderMutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, KvSpaceFor(*ns, nullptr));
  return kv->Stats(KvNowMs());
}

}  // namespace

absl::Status testing::CloseWithoutSnapshotForTesting(Store* store) {
  auto* impl = dynamic_cast<StoreImpl*>(store);
  if (impl == nullptr) return absl::InvalidArgumentError("not a store made by Store::Open");
  return impl->CloseImpl(/*save_snapshots=*/false);
}

absl::StatusOr<testing::RecoveryInfo> testing::RecoveryInfoForTesting(Store* store,
                                                                      absl::string_view ns) {
  auto* impl = dynamic_cast<StoreImpl*>(store);
  if (impl == nullptr) return absl::InvalidArgumentError("not a store made by Store::Open");
  ASSIGN_OR_RETURN(NamespacePtr found, impl->FindNamespace(ns));
  absl::ReaderMutexLock l(&found->mu);
  RETURN_IF_ERROR(found->GoneStatus());
  return found->recovery;
}

absl::Status testing::SetKvClockForTesting(Store* store, std::function<int64_t()> now_ms) {
  auto* impl = dynamic_cast<StoreImpl*>(store);
  if (impl == nullptr) return absl::InvalidArgumentError("not a store made by Store::Open");
  impl->kv_clock_ = std::move(now_ms);
  return absl::OkStatus();
}

absl::Status ValidateNamespaceName(absl::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("namespace name must be 1..128 characters, got ", name.size()));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "namespace name '", name, "' may only contain [A-Za-z0-9_.-]"));
    }
  }
  return absl::OkStatus();
}

namespace {

// The one place StoreOptions are checked.
absl::Status ValidateOptions(const StoreOptions& options) {
  const Limits& l = options.limits;
  // Membership keys length-prefix document ids with 16 bits.
  if (l.max_id_bytes < 1 || l.max_id_bytes > 0xFFFF) {
    return absl::InvalidArgumentError("limits.max_id_bytes must be in 1..65535");
  }
  if (l.max_k < 1 || l.max_k > static_cast<uint32_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError("limits.max_k must be in 1..INT_MAX");
  }
  if (l.max_query_batch < 1 || l.max_write_batch < 1 || l.max_dim < 1 || l.max_namespaces < 1) {
    return absl::InvalidArgumentError(
        "limits.max_query_batch, max_write_batch, max_dim and max_namespaces must be >= 1");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options,
                                                   const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("store path is empty");
  RETURN_IF_ERROR(ValidateOptions(options));
  auto store = std::make_unique<StoreImpl>(options, path);
  absl::Status st = store->Init();
  if (!st.ok()) {
    spdlog::error("cannot open store at {}: {}", path, st.ToString());
    return st;  // the destructor closes what was opened
  }
  spdlog::info("store at {} open", path);
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace mnemo::db
