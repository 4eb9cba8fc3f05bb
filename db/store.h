// mnemo's storage engine: one RocksDB instance per data directory holding
// namespaces of documents, chunks and their dense vectors, plus one dense
// index per namespace.
//
// Crash consistency: every write commits its records and its index-log
// entries in one RocksDB WriteBatch with the WAL synced before the call
// returns, so an acknowledged write survives kill -9. Index snapshots are
// saved (by Checkpoint, on Close, and in the background) with the last index
// log sequence they contain; Open loads each snapshot and replays the log
// after it from the stored vectors.
//
// Thread safety: every method is safe to call concurrently. Searches on a
// namespace run in parallel; writes to a namespace are serialised and exclude
// its searches while they update the index.
//
// CPU scheduling of searches: the index spreads a query batch over an
// OpenMP team. Concurrent large batches would each start a full team and
// oversubscribe the cores, so a batch of at least 2 queries per OpenMP thread
// runs alone with the whole team, while smaller batches run single-threaded
// side by side (concurrency comes from the callers). A search that scores
// every vector (Flat) of at least 2^20 floats also takes the whole team,
// whatever its batch: one query then splits its scan over the threads.
#ifndef MNEMO_DB_STORE_H_
#define MNEMO_DB_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "db/injection.h"
#include "db/kv.h"
#include "db/convo.h"
#include "db/memory.h"
#include "db/quota.h"
#include "index/dense_index.h"
#include "index/filter.h"
#include "index/metric.h"

namespace mnemo::db {

using index::Metric;

// Limits on what a single call may carry. Violations give INVALID_ARGUMENT
// (malformed) or RESOURCE_EXHAUSTED (too large / too many).
struct Limits {
  uint32_t max_id_bytes = 512;            // ids are 1..max_id_bytes bytes
  uint32_t max_metadata_bytes = 64 << 10;  // metadata JSON per record
  uint32_t max_text_bytes = 4 << 20;       // text per document or chunk
  uint32_t max_k = 1024;                   // search k is 1..max_k
  uint32_t max_query_batch = 4096;         // queries per Search
  uint32_t max_write_batch = 20000;        // documents + chunks per Upsert
  uint32_t max_dim = 65536;
  uint32_t max_namespaces = 10000;
};

struct StoreOptions {
  // Create the data directory and store when missing (default true).
  bool create_if_missing = true;
  // Sync the WAL before acknowledging a write (default true). false trades
  // durability of the last writes on power loss for latency; a process
  // crash (kill -9) loses nothing either way.
  bool sync_writes = true;
  // Save an index snapshot after this many logged index changes in a
  // namespace, on a background thread (0 = only on Checkpoint and Close).
  uint64_t snapshot_every_ops = 100000;
  // RocksDB block cache size in bytes.
  uint64_t block_cache_bytes = 256ull << 20;
  // Budget of every column family's memtables together (RocksDB's
  // db_write_buffer_size): past it the largest memtable is flushed. With the
  // block cache it bounds what the store holds in memory; 0 = no shared
  // budget (each of the dozen column families may then hold up to twice
  // its 64 MiB write buffer).
  uint64_t memtable_bytes = 64ull << 20;
  // Chunk KV retention timers (background threads, stopped by Close), at
  // most one day each. Every kv_expiry_interval_ms the KV of chunks whose
  // TTL ran out is removed (blocks, key indexes and record in one commit,
  // counted in KvStats::expired_chunks); 0 = only at a namespace's next KV
  // put and on Compact (expired KV reads as missing either way). Every
  // kv_recency_flush_ms the access recency of chunks read since the last
  // flush is written (small unsynced rows), so an LRU order survives a
  // restart; 0 = only at Close. A crash loses at most the recency since the
  // last flush (those chunks reopen at their older place in the order).
  uint64_t kv_expiry_interval_ms = 30'000;
  uint64_t kv_recency_flush_ms = 10'000;
  // Agent memories (db/memory.h): every memory_expiry_interval_ms (a
  // background timer, 0 = never) the memories whose expiry passed at least
  // memory_expired_keep_ms ago are deleted (until then they are hidden from
  // search and list unless show_expired, and refused by Update).
  uint64_t memory_expiry_interval_ms = 30'000;
  uint64_t memory_expired_keep_ms = 3'600'000;
  // Directory holding the built-in encoders' assets (an encoder named "X"
  // loads from <encoder_dir>/X, e.g. .assets/use-lite). Empty = no encoder
  // is available: the store opens and serves vectors, and every text
  // operation of an encoder namespace fails with FAILED_PRECONDITION.
  // Encoders load lazily, once per process, on first use.
  std::string encoder_dir;
  Limits limits;
};

// Built-in encoder names accepted by NamespaceConfig::encoder.
inline constexpr char kEncoderUseLite[] = "use-lite";

struct NamespaceConfig {
  std::string name;  // [A-Za-z0-9_.-]{1,128}
  // Vector dimension. With an encoder: 0 = the encoder's, any other value
  // must equal it (INVALID_ARGUMENT otherwise).
  uint32_t dim = 0;
  Metric metric = Metric::kInnerProduct;
  // true: the caller did not choose a metric; CreateNamespace picks cosine
  // for an encoder namespace and inner product otherwise. Always false in
  // the config the store returns.
  bool metric_unset = false;
  std::string index_factory = "Flat";
  uint64_t train_threshold = 0;  // see index::DenseIndexOptions
  std::string description;
  // Built-in encoder that embeds text on the server: "" = none (callers
  // bring vectors) or kEncoderUseLite. Unknown names are INVALID_ARGUMENT.
  // An encoder namespace chunks and embeds documents upserted as text,
  // embeds chunks given as text only, indexes every chunk's text for BM25
  // and accepts text queries.
  std::string encoder;
  // Chunking window in tokens for documents upserted as text; 0 = 128 (the
  // encoder's input limit). Encoder namespaces only.
  uint32_t chunk_max_tokens = 0;
  // Tokens repeated between consecutive chunks; unset = 16, at most half
  // the window. Encoder namespaces only. The store returns both resolved.
  std::optional<uint32_t> chunk_overlap_tokens;
  // Late interaction (SearchMode::kLateInteraction): keep every chunk's
  // token vectors (the encoder's final token states, unit-normalised),
  // compressed ColBERTv2/PLAID-style, and search them by MaxSim. Unset =
  // on for encoder namespaces; true without an encoder is
  // INVALID_ARGUMENT. Costs one more encoder pass per chunk on upsert and
  // 4 + dim * nbits / 8 bytes per token once the codec is trained
  // (dim * 2 bytes, fp16, while staged before). The store returns it
  // resolved (false for namespaces without an encoder).
  std::optional<bool> late_interaction;
  // Residual bits per dimension of the token codec, 1, 2 or 4; 0 = 2. 4
  // bits (4 + dim / 2 bytes per token) ranks closer to exact MaxSim on
  // encoder token states (see README). Late interaction only; the store
  // returns it resolved (0 when off).
  uint32_t late_interaction_nbits = 0;
  // Tokens staged uncompressed before the namespace's codec (k-means
  // centroids, bucket cutoffs and weights) is trained on them; 0 =
  // index::kLateInteractionTrainTokens (32768). The codec is trained once,
  // by the write that reaches this count, and encodes every later token.
  // Late interaction only; the store returns it resolved (0 when off).
  uint64_t late_interaction_train_tokens = 0;
  // Limits on what the namespace may hold (db/quota.h); all 0 = none. Set
  // at creation and changed by SetNamespaceQuota; the store returns the
  // current ones.
  NamespaceQuota quota;
};

struct NamespaceInfo {
  NamespaceConfig config;
  uint64_t chunk_count = 0;
  uint64_t document_count = 0;
  bool index_trained = false;
  std::string index_description;
  int64_t created_unix_ms = 0;
  uint64_t approximate_bytes = 0;
  // Late-interaction namespaces: token vectors held, whether the codec is
  // trained, and a one-line description of the multi-vector index.
  uint64_t late_interaction_tokens = 0;
  bool late_interaction_trained = false;
  std::string late_interaction_description;
  // What the namespace holds, as its quota counts it (db/quota.h); exact.
  NamespaceUsage usage;
  // Non-empty when Open found the namespace's data damaged (a checksum
  // mismatch in one of its files...): what was damaged, naming the file,
  // and what to do. Such a namespace reports only its config, creation
  // time and approximate bytes; every call on it but GetNamespace,
  // ListNamespaces, Stats and DropNamespace fails with DATA_LOSS.
  std::string damage;
};

// In an encoder namespace a document's text is chunked, embedded and
// indexed on upsert, replacing every chunk the document had before, in the
// same commit. Its chunks get ids "<document id>#<n>" (n from 0), the
// document's metadata, and their byte ranges in the text. Empty or
// whitespace-only text is INVALID_ARGUMENT there. Elsewhere a document is
// stored as given.
struct Document {
  std::string id;
  std::string text;
  std::string metadata_json;  // a JSON object or empty
};

struct Chunk {
  std::string id;
  std::string document_id;  // may be empty
  std::string text;
  std::string metadata_json;  // a JSON object or empty
  // Namespace dim; as given (not normalised). May be empty in an encoder
  // namespace when `text` is not: the store embeds the text. Empty with
  // text in a namespace without an encoder is FAILED_PRECONDITION.
  std::vector<float> vector;
  // Byte range [source_begin, source_end) of the chunk in its document's
  // text, for chunks the store cut from a document (0, 0 otherwise; ignored
  // on input).
  uint64_t source_begin = 0;
  uint64_t source_end = 0;
};

struct WriteResult {
  uint64_t documents_written = 0;
  uint64_t chunks_written = 0;
};

struct DeleteResult {
  uint64_t chunks_deleted = 0;
  uint64_t documents_deleted = 0;
};

struct GetResult {
  std::vector<Chunk> chunks;        // found chunks, request order
  std::vector<Document> documents;  // found documents, request order
  std::vector<std::string> missing_ids;
};

// How Search ranks chunks.
enum class SearchMode {
  kDense,           // nearest vectors (the only mode for vector queries)
  kBm25,            // Okapi BM25 over chunk text (k1 1.2, b 0.75)
  kHybridRrf,       // reciprocal rank fusion of dense and BM25
  kHybridWeighted,  // weighted sum of min-max normalised dense and BM25
  // MaxSim over the chunks' token vectors (late interaction, ColBERT):
  // score = sum over the query's tokens of the best cosine with any token
  // of the chunk. Text queries in late-interaction namespaces only
  // (FAILED_PRECONDITION elsewhere). Once the namespace's codec is trained:
  // centroid candidate generation, centroid-interaction pruning, then exact
  // MaxSim over the decompressed tokens of the survivors; before, exact
  // MaxSim over every staged chunk.
  kLateInteraction,
};

struct SearchOptions {
  int k = 10;
  // Text queries (encoder namespaces only), used instead of vector queries:
  // Search's `queries` must then be empty (INVALID_ARGUMENT otherwise). One
  // hit list per text. Each text must be non-blank and within
  // limits.max_text_bytes. In a namespace without an encoder:
  // FAILED_PRECONDITION.
  std::vector<std::string> text_queries;
  // Vector queries allow only kDense (INVALID_ARGUMENT otherwise).
  SearchMode mode = SearchMode::kDense;
  // kLateInteraction knobs (index::MultiVectorSearchParams): centroids
  // probed per query token and candidates kept for the MaxSim rerank;
  // 0 = the index defaults, which bench_maxsim --real measures.
  uint32_t late_nprobe = 0;
  uint32_t late_max_candidates = 0;
  // kHybridWeighted: weights of the dense and BM25 lists, finite and >= 0;
  // both 0 = 0.5 each.
  float dense_weight = 0;
  float bm25_weight = 0;
  // kHybridRrf constant; 0 = 60.
  int rrf_k = 0;
  // Fill Hit::snippet (text queries only; INVALID_ARGUMENT with vector
  // queries): the sentence of the chunk's text with the most occurrences
  // of the query's words (the first one on a tie or when none occurs), with
  // each occurrence marked as [[word]]. Query words are the runs of ASCII
  // letters and digits of the query; they match whole ASCII words of the
  // text, ignoring ASCII case.
  bool highlight = false;
  // Dimension the caller's queries were produced with; when non-zero it must
  // equal the namespace's (INVALID_ARGUMENT otherwise), so a batch of the
  // wrong dimension whose float count happens to divide is refused instead
  // of being silently re-split. 0 = not checked.
  uint32_t expected_dim = 0;
  index::Filter filter;          // empty = no filter
  bool include_payload = false;  // fill text, document id and metadata
  bool include_vectors = false;
  index::DenseSearchParams params;
};

struct Hit {
  std::string id;
  // kDense: see index::Metric. kBm25: the BM25 score. Hybrid modes: the
  // fused score (higher is better). kLateInteraction: the MaxSim (over
  // decompressed tokens once trained).
  float score = 0;
  std::optional<Chunk> chunk;  // when payload or vectors were asked for
  std::string snippet;         // when highlight was asked for
};

// One backup in a backup directory (db/backup.cc).
struct BackupInfo {
  uint32_t id = 0;              // 1, 2, ... in creation order
  int64_t created_unix_s = 0;
  uint64_t size_bytes = 0;      // bytes of its files (files shared with other backups included)
  uint32_t files = 0;
  // Every write acknowledged before the backup began has a RocksDB
  // sequence number <= this one and is in the backup.
  uint64_t sequence = 0;
};

class Store {
 public:
  // Restores backup `id` (0 = the newest) of `backup_dir` into `data_dir`,
  // which must not exist or be empty (FAILED_PRECONDITION otherwise); the
  // store then opens there as usual, its indexes rebuilt from the restored
  // vectors. NOT_FOUND for a missing backup directory or id, DATA_LOSS for
  // a backup whose files fail their checksums.
  static absl::Status RestoreBackup(const std::string& backup_dir, uint32_t id,
                                    const std::string& data_dir);

  // Opens (or creates) the store in `path`. Loads index snapshots and
  // replays the index log. Fails with FAILED_PRECONDITION when another
  // process holds the directory, DATA_LOSS on unreadable store-wide data
  // (the namespace list). A namespace whose own data is damaged does not
  // fail Open: it is kept as damaged (NamespaceInfo::damage), logged at
  // error level, and the other namespaces serve. Limit: its damaged file
  // stays in the LSM; a later automatic compaction that takes it as input
  // fails on it and RocksDB stops the store's writes (restore a backup).
  // Compact() leaves damaged namespaces out.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options,
                                                     const std::string& path);

  // Flushes, saves index snapshots and closes. Called by the destructor
  // when not called before; calling it twice is harmless.
  //
  // Every KvReader and KvChunkWriter this store handed out must be
  // destroyed before Close() (or the store's destruction), as LevelDB asks
  // of its iterators. Using one afterwards is a programming error: debug
  // builds abort with a message saying so; other builds return
  // FAILED_PRECONDITION ("store closed") from every call and never touch
  // the closed store. Destroying one afterwards is safe. Close waits for a
  // call of theirs already in flight.
  virtual absl::Status Close() = 0;
  virtual ~Store() = default;

  // ALREADY_EXISTS if the name is taken; INVALID_ARGUMENT on a bad name,
  // dim, or factory string.
  virtual absl::StatusOr<NamespaceInfo> CreateNamespace(const NamespaceConfig& config) = 0;
  // NOT_FOUND when absent. A damaged namespace is listed with its
  // NamespaceInfo::damage.
  virtual absl::StatusOr<NamespaceInfo> GetNamespace(absl::string_view name) = 0;
  virtual absl::StatusOr<std::vector<NamespaceInfo>> ListNamespaces() = 0;
  // Removes the namespace and everything in it (range deletes), damaged
  // ones included (the way to recreate one). NOT_FOUND when absent.
  virtual absl::Status DropNamespace(absl::string_view name) = 0;
  // Changes the namespace's quota (unset fields keep theirs; see
  // db/quota.h) in a synced write, and returns its info with the new
  // limits. Lowering a limit below the usage is allowed: later writes that
  // would raise that usage are refused until enough is deleted. NOT_FOUND
  // when absent.
  virtual absl::StatusOr<NamespaceInfo> SetNamespaceQuota(absl::string_view name,
                                                          const QuotaChange& change) = 0;

  // Inserts or replaces documents and chunks atomically: either all are
  // stored and indexed or none is. Validates everything first (ids, dim,
  // NaN/Inf, metadata JSON object and size, text size, batch size). In an
  // encoder namespace documents with text are chunked and embedded, chunks
  // without vectors are embedded (outside the namespace lock), and every
  // chunk's text is indexed for BM25 in the same commit; this needs the
  // encoder (FAILED_PRECONDITION when its assets are not available).
  // chunks_written counts the chunks cut from documents too.
  virtual absl::StatusOr<WriteResult> Upsert(absl::string_view ns,
                                            absl::Span<const Document> documents,
                                            absl::Span<const Chunk> chunks) = 0;

  // Deletes atomically. Unknown ids are not an error (counted as 0).
  virtual absl::StatusOr<DeleteResult> Delete(absl::string_view ns,
                                             absl::Span<const std::string> chunk_ids,
                                             absl::Span<const std::string> document_ids) = 0;

  virtual absl::StatusOr<GetResult> Get(absl::string_view ns,
                                       absl::Span<const std::string> chunk_ids,
                                       absl::Span<const std::string> document_ids,
                                       bool include_vectors) = 0;

  // Batch search: queries holds n * dim floats, or is empty when
  // options.text_queries holds n texts (see SearchOptions). Returns n hit
  // lists, best first, at most k each (fewer when the namespace or filter
  // has fewer). Text queries need the namespace's encoder:
  // FAILED_PRECONDITION when its assets are not available.
  virtual absl::StatusOr<std::vector<std::vector<Hit>>> Search(
      absl::string_view ns, absl::Span<const float> queries,
      const SearchOptions& options) = 0;

  // Empty name = all namespaces.
  virtual absl::StatusOr<std::vector<NamespaceInfo>> Stats(absl::string_view ns) = 0;

  // Saves every index snapshot, flushes memtables and trims the index log.
  // With a non-empty target_dir (which must not exist) also writes a
  // consistent, openable copy of the whole store there. Returns the RocksDB
  // sequence number the checkpoint covers.
  virtual absl::StatusOr<uint64_t> Checkpoint(const std::string& target_dir) = 0;

  // Compacts one namespace's key range (or everything) and rebuilds indexes
  // that carry dead entries.
  virtual absl::Status Compact(absl::string_view ns) = 0;

  // --- Backups (db/backup.cc): RocksDB's BackupEngine in `backup_dir` (an
  // absolute path on this host, created when missing). Incremental: files
  // already in an earlier backup are shared, not copied again. Online:
  // writes go on while it runs; the backup holds every write acknowledged
  // before it began (BackupInfo::sequence). Index files are not copied: a
  // restored store rebuilds its indexes from the stored vectors, which are
  // the truth they are built from. INVALID_ARGUMENT for a relative path.
  virtual absl::StatusOr<BackupInfo> CreateBackup(const std::string& backup_dir) = 0;
  // Oldest first. NOT_FOUND when `backup_dir` holds no backup engine.
  virtual absl::StatusOr<std::vector<BackupInfo>> ListBackups(const std::string& backup_dir) = 0;
  // Re-reads every file of backup `id` (0 = every backup) and checks its
  // size and checksum: DATA_LOSS naming what differs, NOT_FOUND for an
  // unknown id. Returns the ids verified.
  virtual absl::StatusOr<std::vector<uint32_t>> VerifyBackup(const std::string& backup_dir,
                                                             uint32_t id) = 0;

  // --- Chunk KV caches (db/kv.h). NOT_FOUND for an unknown namespace; every
  // call but RegisterKvModel is FAILED_PRECONDITION on a namespace without
  // a registered model, and one naming another model is
  // FAILED_PRECONDITION with the first differing field.

  // Registers the namespace's decoder model and KV settings. Registering
  // the same model again updates codec, capacity, policy and default TTL
  // (a lower capacity takes effect at the next put); another model is
  // FAILED_PRECONDITION while the namespace holds KV.
  virtual absl::StatusOr<KvStats> RegisterKvModel(absl::string_view ns,
                                                  const KvConfig& config) = 0;
  // Starts a put of one chunk's KV (see KvChunkWriter). Validates the
  // header: NOT_FOUND for an unknown chunk, INVALID_ARGUMENT for bad
  // tokens or TTL. The writer must not outlive the store (see Close).
  virtual absl::StatusOr<std::unique_ptr<KvChunkWriter>> BeginPutKv(absl::string_view ns,
                                                                    KvPutHeader header) = 0;
  // Reads blocks of several chunks. NOT_FOUND naming the first chunk that
  // is unknown or holds no KV (never stored, deleted, evicted or
  // expired), before any block is read; INVALID_ARGUMENT for a bad layer
  // range or positions. Counts as a use of each chunk for LRU. The reader
  // holds a snapshot of the store and must be destroyed before Close()
  // (see Close).
  virtual absl::StatusOr<std::unique_ptr<KvReader>> ReadKv(absl::string_view ns,
                                                           const KvReadOptions& options) = 0;
  // Per id, the token count of its stored KV, 0 when it holds none.
  virtual absl::StatusOr<std::vector<uint32_t>> ExistsKv(absl::string_view ns,
                                                         absl::Span<const std::string> chunk_ids,
                                                         const ModelFingerprint& model) = 0;
  // Removes the KV of these chunks (their text and vectors stay). Unknown
  // ids and chunks without KV count 0.
  virtual absl::StatusOr<uint64_t> DeleteKv(absl::string_view ns,
                                            absl::Span<const std::string> chunk_ids) = 0;
  // The longest run of chunks with KV whose token ids, concatenated, are a
  // prefix of `tokens`, taking the longest matching chunk at each step.
  virtual absl::StatusOr<KvPrefixMatch> LookupPrefix(absl::string_view ns,
                                                     const ModelFingerprint& model,
                                                     absl::Span<const int32_t> tokens) = 0;
  // Pins / unpins and sets the TTL (seconds from now, 0 = never) of the KV
  // of these chunks; unset fields stay. Returns how many chunks with KV
  // were updated.
  virtual absl::StatusOr<uint64_t> SetKvRetention(absl::string_view ns,
                                                  absl::Span<const std::string> chunk_ids,
                                                  std::optional<bool> pin,
                                                  std::optional<int64_t> ttl_seconds) = 0;
  virtual absl::StatusOr<KvStats> GetKvStats(absl::string_view ns) = 0;

  // --- Memory injection (db/injection.h). NOT_FOUND for an unknown
  // namespace.

  // Registers the namespace's injection model from its directory's files
  // and computes the records of every chunk already stored (batched
  // commits, under the namespace's writer lock). Encoder namespaces only
  // (FAILED_PRECONDITION); a model for another encoder or dim is
  // FAILED_PRECONDITION; files that do not make a model are
  // INVALID_ARGUMENT, NOT_FOUND or DATA_LOSS (encoder::InjectionModel) and
  // store nothing. The same model (lineage and exact) again finishes any
  // backfill left (after a crash) and is otherwise a no-op; another model is
  // FAILED_PRECONDITION naming the first differing lineage field. From then
  // on every chunk written gets its record in the chunk's own commit, and
  // a chunk without text is INVALID_ARGUMENT.
  virtual absl::StatusOr<InjectionInfo> RegisterInjectionModel(absl::string_view ns,
                                                               const InjectionFiles& files,
                                                               bool exact) = 0;
  // FAILED_PRECONDITION when the namespace has no injection model.
  virtual absl::StatusOr<InjectionInfo> GetInjectionModel(absl::string_view ns) = 0;
  // The dense top k chunks of the query with their injection tokens (see
  // RecallOptions). FAILED_PRECONDITION without a model, for a caller
  // lineage that differs (naming the field) or a record written by another
  // model; DATA_LOSS for a record that does not decode; INVALID_ARGUMENT
  // for a bad k, rerank, query text or vector.
  virtual absl::StatusOr<RecallResult> Recall(absl::string_view ns,
                                              const RecallOptions& options) = 0;

  // --- Agent memories in encoder namespaces (db/memory.h).
  virtual MemoryStore& memories() = 0;
  // --- Conversation logs of agent runs in the same namespaces (db/convo.h).
  virtual ConvoStore& conversations() = 0;

  virtual const StoreOptions& options() const = 0;
  virtual const std::string& path() const = 0;
};

// Validates a namespace name: [A-Za-z0-9_.-]{1,128}.
absl::Status ValidateNamespaceName(absl::string_view name);

}  // namespace mnemo::db

#endif  // MNEMO_DB_STORE_H_
