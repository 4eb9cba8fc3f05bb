// mnemo C++ client SDK.
//
// A Client holds one gRPC channel to a mnemod. Every call returns
// absl::Status / absl::StatusOr with the server's canonical code and message.
// Calls carry a deadline (ClientOptions::default_timeout, or the per-call
// CallOptions). Idempotent calls (everything but the streams UpsertStream,
// OpenKvWriter and OpenKvReader) are retried on UNAVAILABLE with exponential
// backoff; upserts are idempotent by id.
//
// Thread safety: a Client may be used from many threads at once; a KvWriter
// or KvReader by one thread at a time.
#ifndef MNEMO_CLIENT_CLIENT_H_
#define MNEMO_CLIENT_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
// The model fingerprint of the KV calls is the store's and the reference
// decoder's own type (a plain struct, Abseil only), so a decoder passes its
// fingerprint as is; ParseFingerprint reads its Canonical() form. KvDtype,
// KvCodec and their names come from mnemo/kv_names.h.
#include "mnemo/auth.h"
#include "mnemo/kv_names.h"
#include "mnemo/convo.h"
#include "mnemo/memory.h"
#include "mnemo/model_fingerprint.h"

namespace mnemo {

struct ClientOptions {
  // Deadline of each call (default 30 s).
  std::chrono::milliseconds default_timeout{30000};
  // Attempts for idempotent calls on UNAVAILABLE (default 4, 1 = no retry).
  int max_attempts = 4;
  // First backoff; doubles per attempt (default 50 ms).
  std::chrono::milliseconds initial_backoff{50};
  // Largest message the client sends or accepts (default 256 MiB).
  int max_message_bytes = 256 << 20;
  // Wait this long in Connect for the channel to become ready (0 = don't).
  std::chrono::milliseconds connect_timeout{5000};
  // TLS (mnemod --tls-cert/--tls-key): a PEM file of the CA certificates
  // that may sign the server's certificate. Empty = plaintext. With it,
  // tls_cert_file and tls_key_file (PEM) present a client certificate, for
  // a mnemod that requires one (--tls-client-ca). Connect fails with
  // NOT_FOUND for an unreadable file and INVALID_ARGUMENT for a cert
  // without its key (or the reverse).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // API key of a mnemod with authentication on (--admin-key-file), sent
  // with every call as the metadata "authorization: Bearer <api_key>".
  // Empty = none. Connect fails with INVALID_ARGUMENT for a key holding
  // characters other than printable ASCII. Over plaintext the key crosses
  // the network readable: use TLS beyond loopback.
  std::string api_key;
};

struct CallOptions {
  std::optional<std::chrono::milliseconds> timeout;
};

enum class Metric { kInnerProduct, kL2, kCosine };

// Per-namespace limits, 0 = unlimited (see NamespaceQuota in mnemo.proto):
// bytes of the encoded documents, chunks and vectors; live chunks; encoded
// chunk KV bytes. A write over one fails with RESOURCE_EXHAUSTED naming it.
struct NamespaceQuota {
  uint64_t max_bytes = 0;
  uint64_t max_chunks = 0;
  uint64_t max_kv_bytes = 0;
};

// What a namespace holds, as its quota counts it.
struct NamespaceUsage {
  uint64_t bytes = 0;
  uint64_t chunks = 0;
  uint64_t kv_bytes = 0;
};

// SetNamespaceQuota: unset fields keep the namespace's limit, 0 removes it.
struct QuotaChange {
  std::optional<uint64_t> max_bytes;
  std::optional<uint64_t> max_chunks;
  std::optional<uint64_t> max_kv_bytes;
};

struct NamespaceConfig {
  std::string name;
  uint32_t dim = 0;
  Metric metric = Metric::kInnerProduct;
  std::string index_factory = "Flat";
  uint64_t train_threshold = 0;
  std::string description;
  // Built-in encoder embedding text on the server ("" = none, "use-lite").
  // With an encoder, dim may be 0 (taken from the encoder).
  std::string encoder;
  uint32_t chunk_max_tokens = 0;                // 0 = 128
  std::optional<uint32_t> chunk_overlap_tokens;  // unset = 16
  // Keep token vectors for SearchMode::kLateInteraction (unset = on for
  // encoder namespaces); residual bits 1, 2 or 4 (0 = 2); tokens staged before
  // the codec is trained (0 = 32768). See NamespaceConfig in mnemo.proto.
  std::optional<bool> late_interaction;
  uint32_t late_interaction_nbits = 0;
  uint64_t late_interaction_train_tokens = 0;
  // Limits set at creation; the server returns the current ones.
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
  uint64_t late_interaction_tokens = 0;  // token vectors held
  bool late_interaction_trained = false;
  std::string late_interaction_description;
  NamespaceUsage usage;  // what the namespace's quota counts
  // Found damaged when mnemod started: only config, created_unix_ms and
  // approximate_bytes are filled, other calls on it fail with DATA_LOSS,
  // DropNamespace removes it. `damage` names the file and what to do.
  bool damaged = false;
  std::string damage;
};

struct Document {
  std::string id;
  std::string text;
  std::string metadata_json;
};

struct Chunk {
  std::string id;
  std::string document_id;
  std::string text;
  std::string metadata_json;
  std::vector<float> vector;  // may be empty in an encoder namespace
  // Byte range in the document's text of a chunk the server cut from it.
  uint64_t source_begin = 0;
  uint64_t source_end = 0;
};

struct UpsertResult {
  uint64_t documents_written = 0;
  uint64_t chunks_written = 0;
};

struct DeleteResult {
  uint64_t chunks_deleted = 0;
  uint64_t documents_deleted = 0;
};

struct GetResult {
  std::vector<Chunk> chunks;
  std::vector<Document> documents;
  std::vector<std::string> missing_ids;
};

// kLateInteraction: MaxSim over the chunks' token vectors (text queries in
// namespaces with late_interaction).
enum class SearchMode { kDense, kBm25, kHybridRrf, kHybridWeighted, kLateInteraction };

struct SearchRequest {
  std::string ns;
  // Text queries (encoder namespaces) instead of vectors: one hit list per
  // text. Leave dim/queries empty when set.
  std::vector<std::string> text_queries;
  SearchMode mode = SearchMode::kDense;
  float dense_weight = 0;  // kHybridWeighted; both 0 = 0.5 each
  float bm25_weight = 0;
  uint32_t rrf_k = 0;      // kHybridRrf; 0 = 60
  bool highlight = false;  // fill Hit::snippet
  uint32_t dim = 0;
  std::vector<float> queries;  // n * dim, row-major
  int k = 10;
  // Filter in the JSON syntax {"field": value, "f2": {"in": [...]},
  // "f3": {"gte": 1, "lt": 9}}; empty = none. Parsed by the client:
  // INVALID_ARGUMENT locally when malformed.
  std::string filter_json;
  bool include_payload = false;
  bool include_vectors = false;
  uint32_t hnsw_ef_search = 0;
  uint32_t ivf_nprobe = 0;
  float refine_factor = 0;
  uint32_t late_nprobe = 0;          // kLateInteraction; 0 = index default
  uint32_t late_max_candidates = 0;  // kLateInteraction; 0 = index default
};

struct Hit {
  std::string id;
  float score = 0;
  std::optional<Chunk> chunk;
  std::string snippet;  // best passage, query terms marked [[term]]
};

// A backup in a backup directory on the server's host (CreateBackup).
struct BackupInfo {
  uint32_t id = 0;  // 1, 2, ... in creation order
  int64_t created_unix_s = 0;
  uint64_t size_bytes = 0;  // bytes of its files, files shared with other backups included
  uint32_t files = 0;
  uint64_t sequence = 0;  // covers every write acknowledged before the backup began
};

struct StatsResult {
  std::vector<NamespaceInfo> namespaces;
  uint64_t total_approximate_bytes = 0;
  std::string data_dir;
  std::string version;
};

// --- Memory injection (README "Memory injection", mnemo/v1/inject.proto).
//
// An encoder namespace registers one injection model (a directory such as
// decoder/models/mnemo-ref-4m-inject); every chunk then carries its xRAG
// vector and its memory tokens, computed once at ingest. Recall returns, per
// retrieved chunk, the rows a decoder places in its input embeddings.

// What an injection model was built from; compared field by field.
struct InjectionLineage {
  std::string encoder;                 // built-in encoder name, "use-lite"
  std::string encoder_sha256;          // hex SHA-256 of the encoder's files
  std::string decoder_fingerprint;     // ModelFingerprint::Canonical()
  std::string decoder_weights_sha256;  // hex SHA-256 of the decoder's weights
  std::string model_sha256;            // hex SHA-256 of inject.safetensors
};

struct InjectionInfo {
  std::string ns;
  std::string name;  // config.json "name"
  InjectionLineage lineage;
  uint32_t encoder_dim = 0;    // query embedding width
  uint32_t decoder_dim = 0;    // width of every token row
  uint32_t memory_tokens = 0;  // rows per hit in kMemory
  uint32_t pq_m = 0;           // PQ sub-quantizers per memory token
  uint32_t pq_nbits = 0;       // bits per PQ code
  bool exact = false;          // exact memory tokens stored beside the codes
  uint64_t chunks = 0;         // chunks holding injection records
  // Stored bytes per chunk of each record.
  uint64_t xrag_bytes_per_chunk = 0;
  uint64_t memory_code_bytes_per_chunk = 0;
  uint64_t memory_exact_bytes_per_chunk = 0;
  int64_t registered_unix_ms = 0;
  // RegisterInjectionModel only: chunks whose records that call computed.
  uint64_t backfilled_chunks = 0;
};

// kXrag: one row per hit (the chunk's projected embedding). kMemory: the
// model's memory_tokens rows per hit, decoded and conditioned on the query.
enum class RecallMode { kXrag, kMemory };
// Element type of the tokens on the wire; the SDK always returns floats.
enum class InjectDtype { kFp32, kFp16 };

// GLIMMER-style rerank of the dense top `candidates` by the model's scorer,
// keeping the best `keep` (0 = RecallRequest::k); candidates 0 = 4 * keep.
struct RecallRerank {
  uint32_t candidates = 0;
  uint32_t keep = 0;
};

struct RecallRequest {
  std::string ns;
  // Exactly one of them: a text (embedded by the namespace's encoder) or an
  // embedding of that encoder (its dim, finite).
  std::string query_text;
  std::vector<float> query_vector;
  int k = 4;  // 1..1024
  RecallMode mode = RecallMode::kMemory;
  std::optional<RecallRerank> rerank;
  InjectDtype dtype = InjectDtype::kFp32;
  // kMemory: the exact memory tokens instead of the decoded PQ codes
  // (FAILED_PRECONDITION unless the model was registered with exact).
  bool exact = false;
  // The caller's decoder: when set, checked against the model's lineage
  // (FAILED_PRECONDITION naming the differing field).
  std::optional<ModelFingerprint> decoder;
  std::string decoder_weights_sha256;  // "" = not checked
};

struct RecallHit {
  std::string chunk_id;
  std::string document_id;
  std::string text;
  float score = 0;                   // dense score
  std::optional<float> rerank_score;  // when reranked
  uint32_t m = 0;                    // rows
  uint32_t dim = 0;                  // row width (the decoder's dim)
  std::vector<float> tokens;         // [m, dim] row-major
};

struct RecallResult {
  std::vector<RecallHit> hits;  // best first (by rerank_score when reranked)
  InjectionLineage lineage;     // of the model that produced the tokens
};

// --- Chunk KV caches (README "KV caches").
//
// A namespace registers one decoder model (KvConfig); each stored chunk may
// then hold that model's KV: per layer, K and V of shape
// [n_kv_heads, tokens, head_dim], row-major, keys before RoPE. A put or read
// naming another model is FAILED_PRECONDITION naming the first differing
// field; a namespace without a registered model is FAILED_PRECONDITION;
// evicted, expired or deleted KV reads as missing (NOT_FOUND / 0 tokens).

struct KvConfig {
  // The decoder model; every field must be set (INVALID_ARGUMENT otherwise).
  ModelFingerprint model;
  KvCodec codec = KvCodec::kFp16;
  // Lossless zstd stage on top of the codec (unset = on).
  std::optional<bool> entropy;
  uint32_t int4_group_size = 0;  // kInt4 only; 0 = 32
  // Byte budget of the namespace's stored (encoded) KV; 0 = unlimited. A
  // put over it evicts unpinned chunks' KV in policy order first (their
  // text and vectors stay); RESOURCE_EXHAUSTED when that is not enough.
  uint64_t capacity_bytes = 0;
  std::string eviction_policy;  // "" or "lru" (least recently used), "fifo"
  int64_t default_ttl_seconds = 0;  // TTL of puts that state none; 0 = never
  // Mean keys per cluster of the key index each put builds for retrieval
  // attention (OpenAttend). Unset = 16; 0 = no key index.
  std::optional<uint32_t> key_index_keys_per_cluster;
};

struct KvStats {
  KvConfig config;  // as the server holds it (defaults filled in)
  uint64_t chunks = 0;          // chunks holding KV
  uint64_t blocks = 0;          // (chunk, layer) blocks
  uint64_t tokens = 0;
  uint64_t stored_bytes = 0;    // encoded bytes, what capacity_bytes counts
  uint64_t index_bytes = 0;     // of stored_bytes, the key indexes' (Attend)
  uint64_t fp16_bytes = 0;      // the same K/V at fp16, for the ratio
  uint64_t pinned_chunks = 0;
  uint64_t evicted_chunks = 0;  // since the server opened the store
  uint64_t expired_chunks = 0;  // since the server opened the store
  double mean_key_error = 0;    // mean relative reconstruction error of K blocks
  double mean_value_error = 0;
};

// Shape of one layer's K (and V): [n_kv_heads, tokens, head_dim].
struct KvShape {
  uint32_t n_kv_heads = 0;
  uint32_t tokens = 0;
  uint32_t head_dim = 0;
  size_t elements() const { return size_t{n_kv_heads} * tokens * head_dim; }
  bool operator==(const KvShape&) const = default;
};

// What a put says about its chunk before the layers come.
struct KvPutHeader {
  std::string chunk_id;    // a stored chunk of the namespace (NOT_FOUND otherwise)
  ModelFingerprint model;  // must equal the namespace's
  // The chunk's token ids under the model's tokenizer (1..65536 of them);
  // every layer holds exactly this many tokens.
  std::vector<int32_t> tokens;
  bool pin = false;         // pinned KV is never evicted
  int64_t ttl_seconds = 0;  // 0 = the namespace's default TTL
  // Unset: the keys are before RoPE. Set: they are rotated for positions
  // [keys_position, keys_position + tokens) and the server rotates them
  // back before storing.
  std::optional<int64_t> keys_position;
};

// A whole chunk's KV for Client::PutKv: the header, then per layer l (all
// of the model's n_layers, in order) k[l] and v[l], each
// n_kv_heads * tokens * head_dim floats, sent as `dtype`.
struct KvPut : KvPutHeader {
  KvDtype dtype = KvDtype::kFp32;
  std::vector<std::vector<float>> k;
  std::vector<std::vector<float>> v;
};

struct KvPutResult {
  uint64_t stored_bytes = 0;     // encoded bytes of every block and key index
  std::vector<float> key_error;  // per layer, ||K - K'|| / ||K|| as stored
  std::vector<float> value_error;
  uint32_t evicted_chunks = 0;   // chunks whose KV was evicted to make room
  uint64_t index_bytes = 0;      // of stored_bytes, the key indexes'
  double encode_seconds = 0;     // server time encoding the blocks
  double index_seconds = 0;      // server time building the key indexes
};

// One chunk's put in progress: one gRPC client stream. Nothing is stored
// unless Finish() succeeds after the model's last layer; destroying the
// writer (or Cancel()) before that cancels the stream and stores nothing.
class KvWriter {
 public:
  virtual ~KvWriter() = default;
  // Sends layer `layer` (the next one: 0, 1, ...) with the header's shape
  // [model.n_kv_heads, tokens.size(), model.head_dim]. Values beyond fp16's
  // range (65504) are INVALID_ARGUMENT here when dtype is kFp16; everything
  // else is checked by the server, whose error (a wrong layer, NaN, ...)
  // ends the stream: Write then returns ABORTED and Finish() the server's
  // status.
  virtual absl::Status WriteLayer(uint32_t layer, absl::Span<const float> k,
                                  absl::Span<const float> v, KvDtype dtype = KvDtype::kFp32) = 0;
  // The same with an explicit shape (k and v hold shape.elements() floats).
  virtual absl::Status WriteLayer(uint32_t layer, const KvShape& shape, absl::Span<const float> k,
                                  absl::Span<const float> v, KvDtype dtype = KvDtype::kFp32) = 0;
  // Half-closes the stream; the server commits every layer in one batch
  // and answers. Once only.
  virtual absl::StatusOr<KvPutResult> Finish() = 0;
  // Abandons the put: the server stores nothing. Finish() after it reports
  // CANCELLED.
  virtual void Cancel() = 0;
};

struct KvGetRequest {
  std::vector<std::string> chunk_ids;  // 1.. distinct ids, each holding KV
  ModelFingerprint model;              // must equal the namespace's
  uint32_t layer_begin = 0;
  uint32_t layer_end = 0;  // exclusive; 0 = model.n_layers
  // Element type the server sends; blocks arrive as floats either way.
  KvDtype dtype = KvDtype::kFp32;
  // Empty: keys before RoPE. Else one start position per chunk: keys come
  // rotated for [position, position + tokens).
  std::vector<int64_t> positions;
  // Same-host hot tier: use mnemod's shared memory KV arena when it offers
  // one (mnemod --kv-arena-bytes) and this process can reach it (same host,
  // same uid or root); otherwise, silently, the gRPC stream. Through the
  // arena every block is a lease on bytes mnemod keeps in the arena, which
  // this Client maps read-only once: with `raw` the blocks are views into
  // it (KvBlock::lease), without it they are converted to floats.
  bool shared_memory = false;
  // Leave blocks in the wire dtype (KvBlock::k_raw, v_raw) instead of
  // converting them to floats: what a GPU decoder uploads as is.
  // OpenKvReader only (GetKv always converts).
  bool raw = false;
};

// A pin on one block in mnemod's shared memory KV arena (README "KV
// arena"): K at k_offset, V at v_offset, `bytes` each, 64-byte aligned.
// Lifetime: the block's bytes (KvBlock::k_raw, v_raw) stay mapped, valid
// and unchanged while any copy of the lease is held, also after its reader
// is destroyed, but not after its Client is destroyed (that closes the
// arena session, which releases every lease; the bytes may then be reused)
// nor after mnemod restarts. Dropping the last copy releases the lease: the
// release is sent with the Client's next arena read, and mnemod may evict
// the block from then on.
class KvArenaLease {
 public:
  virtual ~KvArenaLease() = default;
  uint64_t id = 0;
  uint64_t k_offset = 0, v_offset = 0, bytes = 0;
};

// One (chunk, layer) block of a GetKv.
struct KvBlock {
  uint32_t chunk_index = 0;  // into KvGetRequest::chunk_ids
  std::string chunk_id;
  uint32_t layer = 0;
  KvShape shape;
  KvDtype dtype = KvDtype::kFp32;  // what it travelled as
  std::vector<float> k, v;         // shape.elements() floats each (unless raw)
  // With KvGetRequest::raw: K and V as shape.elements() little-endian
  // elements of `dtype`, borrowed: into the KV arena when `lease` is set
  // (valid while the lease is held, see KvArenaLease), else into the
  // received message (valid until the next Next()).
  std::string_view k_raw, v_raw;
  // With KvGetRequest::shared_memory and raw, served from the KV arena:
  // the pin on this block's bytes. Null otherwise.
  std::shared_ptr<const KvArenaLease> lease;
  float key_error = 0, value_error = 0;  // measured when it was stored
  std::vector<int32_t> tokens;     // the chunk's token ids, in its first block only
  int64_t position = -1;           // start position the keys are rotated for; -1 = pre-RoPE
};

// The blocks of one GetKv as they arrive, layer by layer (every chunk's
// block of layer_begin, then of the next layer, ...), so a decoder can
// compute on layer l while later layers are in flight. Destroying the
// reader before the end cancels the call.
class KvReader {
 public:
  virtual ~KvReader() = default;
  // Fills *block with the next block; false when the stream ended well.
  // An error is the server's status (e.g. NOT_FOUND before any block), or
  // DATA_LOSS for a block whose bytes do not match its shape.
  virtual absl::StatusOr<bool> Next(KvBlock* block) = 0;
};

struct KvPrefixMatch {
  std::vector<std::string> chunk_ids;  // the run of chunks, in prompt order
  std::vector<uint32_t> chunk_tokens;  // tokens of each
  uint64_t matched_tokens = 0;
};

// Streams upserts: each Write is one atomic batch on the server.
// --- Retrieval attention (README "Retrieval attention").
//
// A decoder whose context holds stored chunks asks the server, per layer
// and step, for the attention of its queries over those chunks' keys
// through their key indexes, instead of loading their KV. The chunks are
// placed at start positions of the decoder's sequence (a chunk's keys are
// rotated for [start, start + tokens)); the queries must sit after every
// chunk.

struct AttendChunk {
  std::string chunk_id;
  int64_t start = 0;
};

// Shares of the context's clusters per (query, KV head); unset = the
// server's defaults (exact 0.02, estimated 0.25).
struct AttendBudget {
  std::optional<double> exact_fraction;
  std::optional<double> estimated_fraction;
};

struct AttendStats {
  // Summed over queries and KV heads.
  uint64_t keys = 0;
  uint64_t exact_keys = 0;  // scored exactly
  uint64_t clusters = 0;
  uint64_t exact_clusters = 0;
  uint64_t estimated_clusters = 0;
  double server_seconds = 0;
};

// Attention over the context of each query head, normalised over the
// context only: merge it with the decoder's own keys by log-sum-exp.
struct AttendPartial {
  int n_queries = 0, n_heads = 0, head_dim = 0;
  std::vector<float> out;  // [n_queries, n_heads, head_dim]
  std::vector<float> lse;  // [n_queries, n_heads]; -inf when nothing was attended
  std::vector<float> max;  // [n_queries, n_heads]
  AttendStats stats;
};

// The keys attention would read exactly, per KV head.
struct TopKeys {
  int head_dim = 0;
  std::vector<std::vector<int32_t>> positions;  // per KV head, ascending
  std::vector<std::vector<float>> keys;    // per KV head [n, head_dim], RoPE at the positions
  std::vector<std::vector<float>> values;  // per KV head [n, head_dim]
  AttendStats stats;
};

// One Attend stream (one generation). Calls are answered in order; any
// error ends the stream (later calls return it again). Not thread-safe.
class AttendStream {
 public:
  virtual ~AttendStream() = default;
  virtual uint64_t context_tokens() const = 0;  // keys per (layer, KV head)
  virtual int64_t end_position() const = 0;     // one past the context's last position
  // `queries`: [n_queries, n_heads, head_dim] BEFORE RoPE, query i at
  // position + i. INVALID_ARGUMENT locally when their size does not match
  // the model.
  virtual absl::StatusOr<AttendPartial> Attend(uint32_t layer, int64_t position,
                                               absl::Span<const float> queries, int n_queries,
                                               const AttendBudget& budget = {}) = 0;
  virtual absl::StatusOr<TopKeys> FetchTopK(uint32_t layer, int64_t position,
                                            absl::Span<const float> queries, int n_queries,
                                            std::optional<double> exact_fraction = {}) = 0;
  // Half-closes the stream and returns its final status.
  virtual absl::Status Close() = 0;
};

class UpsertWriter {
 public:
  virtual ~UpsertWriter() = default;
  virtual absl::Status Write(const std::vector<Document>& documents,
                             const std::vector<Chunk>& chunks) = 0;
  // Closes the stream and returns the totals (or the first error).
  virtual absl::StatusOr<UpsertResult> Finish() = 0;
};

class Client {
 public:
  // target: "host:port". Fails with UNAVAILABLE when connect_timeout > 0 and
  // the server is not reachable in time.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const std::string& target, const ClientOptions& options = {});
  virtual ~Client() = default;

  virtual absl::StatusOr<NamespaceInfo> CreateNamespace(const NamespaceConfig& config,
                                                        const CallOptions& = {}) = 0;
  virtual absl::StatusOr<NamespaceInfo> GetNamespace(const std::string& name,
                                                     const CallOptions& = {}) = 0;
  virtual absl::StatusOr<std::vector<NamespaceInfo>> ListNamespaces(const CallOptions& = {}) = 0;
  virtual absl::Status DropNamespace(const std::string& name, const CallOptions& = {}) = 0;
  // Changes a namespace's quota; returns its info with the new limits.
  // (Not pure, so that existing Client implementations keep compiling; the
  // default is UNIMPLEMENTED.)
  virtual absl::StatusOr<NamespaceInfo> SetNamespaceQuota(const std::string& name,
                                                          const QuotaChange& change,
                                                          const CallOptions& = {}) {
    (void)name;
    (void)change;
    return absl::UnimplementedError("SetNamespaceQuota");
  }

  virtual absl::StatusOr<UpsertResult> Upsert(const std::string& ns,
                                              const std::vector<Document>& documents,
                                              const std::vector<Chunk>& chunks,
                                              const CallOptions& = {}) = 0;
  virtual absl::StatusOr<std::unique_ptr<UpsertWriter>> UpsertStream(
      const std::string& ns, const CallOptions& = {}) = 0;
  virtual absl::StatusOr<GetResult> Get(const std::string& ns,
                                        const std::vector<std::string>& chunk_ids,
                                        const std::vector<std::string>& document_ids,
                                        bool include_vectors, const CallOptions& = {}) = 0;
  virtual absl::StatusOr<DeleteResult> Delete(const std::string& ns,
                                              const std::vector<std::string>& chunk_ids,
                                              const std::vector<std::string>& document_ids,
                                              const CallOptions& = {}) = 0;
  // One hit list per query, best first.
  virtual absl::StatusOr<std::vector<std::vector<Hit>>> Search(const SearchRequest& request,
                                                               const CallOptions& = {}) = 0;
  virtual absl::StatusOr<StatsResult> Stats(const std::string& ns, const CallOptions& = {}) = 0;
  virtual absl::StatusOr<uint64_t> Checkpoint(const std::string& target_dir,
                                              const CallOptions& = {}) = 0;
  virtual absl::Status Compact(const std::string& ns, const CallOptions& = {}) = 0;
  // Backups into `backup_dir`, an absolute path on the server's host
  // (created when missing): online and incremental; restore with mnemod
  // --restore-from. INVALID_ARGUMENT for a relative path.
  virtual absl::StatusOr<BackupInfo> CreateBackup(const std::string& backup_dir,
                                                  const CallOptions& = {}) = 0;
  // Oldest first; NOT_FOUND when the directory holds no backups.
  virtual absl::StatusOr<std::vector<BackupInfo>> ListBackups(const std::string& backup_dir,
                                                              const CallOptions& = {}) = 0;
  // Checks sizes and checksums of backup `id` (0 = all): DATA_LOSS naming
  // the damage, NOT_FOUND for an unknown id. Returns the ids verified.
  virtual absl::StatusOr<std::vector<uint32_t>> VerifyBackup(const std::string& backup_dir,
                                                             uint32_t id,
                                                             const CallOptions& = {}) = 0;
  // gRPC health check of the server ("" = overall).
  virtual absl::Status HealthCheck(const CallOptions& = {}) = 0;

  // --- Chunk KV caches. Every call but RegisterKvModel is
  // FAILED_PRECONDITION on a namespace without a registered model; NOT_FOUND
  // for an unknown namespace. The default implementations (for test fakes)
  // return UNIMPLEMENTED.

  // Registers (or re-registers) the namespace's model and KV settings.
  // Re-registering the same model updates codec, capacity, policy and
  // default TTL; another model is FAILED_PRECONDITION while KV is stored.
  virtual absl::StatusOr<KvStats> RegisterKvModel(const std::string& ns, const KvConfig& config,
                                                  const CallOptions& = {});
  // Opens a put of one chunk's KV and sends its header; layers follow with
  // KvWriter::WriteLayer. The call's deadline covers the whole stream. Not
  // retried.
  virtual absl::StatusOr<std::unique_ptr<KvWriter>> OpenKvWriter(const std::string& ns,
                                                                 const KvPutHeader& header,
                                                                 const CallOptions& = {});
  // Puts a whole chunk's KV (one stream: header, then one message per
  // layer). INVALID_ARGUMENT locally when put.k and put.v do not hold the
  // same number of layers.
  virtual absl::StatusOr<KvPutResult> PutKv(const std::string& ns, const KvPut& put,
                                            const CallOptions& = {});
  // Streams the blocks of several chunks (see KvReader). Not retried.
  virtual absl::StatusOr<std::unique_ptr<KvReader>> OpenKvReader(const std::string& ns,
                                                                 const KvGetRequest& request,
                                                                 const CallOptions& = {});
  // Every block of the request, in stream order (retried on UNAVAILABLE).
  virtual absl::StatusOr<std::vector<KvBlock>> GetKv(const std::string& ns,
                                                     const KvGetRequest& request,
                                                     const CallOptions& = {});
  // Per id, the token count of its stored KV; 0 when it holds none (unknown
  // id, never stored, deleted, evicted or expired).
  virtual absl::StatusOr<std::vector<uint32_t>> ExistsKv(const std::string& ns,
                                                         const std::vector<std::string>& chunk_ids,
                                                         const ModelFingerprint& model,
                                                         const CallOptions& = {});
  // Removes these chunks' KV (their text and vectors stay); returns how
  // many held KV.
  virtual absl::StatusOr<uint64_t> DeleteKv(const std::string& ns,
                                            const std::vector<std::string>& chunk_ids,
                                            const CallOptions& = {});
  // The longest run of chunks with KV whose tokens, concatenated, are a
  // prefix of `tokens` (longest chunk first at each step).
  virtual absl::StatusOr<KvPrefixMatch> LookupPrefix(const std::string& ns,
                                                     const ModelFingerprint& model,
                                                     const std::vector<int32_t>& tokens,
                                                     const CallOptions& = {});
  // Pins / unpins and sets the TTL (seconds from now, 0 = never) of these
  // chunks' KV; unset fields stay. Returns how many chunks with KV changed.
  virtual absl::StatusOr<uint64_t> SetKvRetention(const std::string& ns,
                                                  const std::vector<std::string>& chunk_ids,
                                                  std::optional<bool> pin,
                                                  std::optional<int64_t> ttl_seconds,
                                                  const CallOptions& = {});
  virtual absl::StatusOr<KvStats> GetKvStats(const std::string& ns, const CallOptions& = {});
  // Opens a retrieval-attention stream over `chunks` of `ns` (see
  // AttendStream) and waits for the server to accept it: NOT_FOUND for an
  // unknown namespace or a chunk without KV, FAILED_PRECONDITION for
  // another model or a chunk without a key index, INVALID_ARGUMENT for
  // overlapping positions. The call's deadline covers the whole stream.
  virtual absl::StatusOr<std::unique_ptr<AttendStream>> OpenAttend(
      const std::string& ns, const ModelFingerprint& model, const std::vector<AttendChunk>& chunks,
      const CallOptions& = {});

  // --- Memory injection. NOT_FOUND for an unknown namespace; the default
  // implementations (for test fakes) return UNIMPLEMENTED.

  // Registers the injection model in directory `dir` (reads config.json and
  // the weights and tokenizer files it names, and sends them) and computes
  // the records of the chunks already stored. Same model again: a no-op;
  // another one: FAILED_PRECONDITION naming the differing lineage field.
  // Not retried past its deadline (a large namespace may need a long one).
  virtual absl::StatusOr<InjectionInfo> RegisterInjectionModel(const std::string& ns,
                                                               const std::string& dir, bool exact,
                                                               const CallOptions& = {});
  // FAILED_PRECONDITION when the namespace has no injection model.
  virtual absl::StatusOr<InjectionInfo> GetInjectionModel(const std::string& ns,
                                                          const CallOptions& = {});
  // Retrieves chunks for the query with their injection tokens.
  virtual absl::StatusOr<RecallResult> Recall(const RecallRequest& request,
                                              const CallOptions& = {});

  // --- Agent memories (mnemo/memory.h) in an encoder namespace (MemoryAdd
  // creates it when absent). INVALID_ARGUMENT for a missing scope or a
  // malformed filter, NOT_FOUND for an unknown memory id,
  // FAILED_PRECONDITION for updating an expired memory. The default
  // implementations (for test fakes) return UNIMPLEMENTED.

  // Adds memories to one scope; exact duplicates are dropped (kNoop) and
  // near duplicates update the memory they resemble (kUpdated).
  virtual absl::StatusOr<std::vector<MemoryAddResult>> MemoryAdd(
      const std::string& ns, const std::vector<MemoryInput>& memories,
      const MemoryAddOptions& options, const CallOptions& = {});
  // Hybrid (dense + BM25) search within the scope, best first.
  virtual absl::StatusOr<std::vector<MemoryHit>> MemorySearch(const MemorySearchRequest& request,
                                                              const CallOptions& = {});
  virtual absl::StatusOr<Memory> MemoryGet(const std::string& ns, const std::string& id,
                                           const CallOptions& = {});
  // One page of the memories matching scope and filter, in id order.
  virtual absl::StatusOr<MemoryPage> MemoryList(const MemoryListRequest& request,
                                                const CallOptions& = {});
  virtual absl::StatusOr<Memory> MemoryUpdate(const std::string& ns, const std::string& id,
                                              const MemoryChanges& changes,
                                              const CallOptions& = {});
  virtual absl::Status MemoryDelete(const std::string& ns, const std::string& id,
                                    const std::string& actor = "", const CallOptions& = {});
  // Deletes every memory of the scope; returns how many.
  virtual absl::StatusOr<uint64_t> MemoryDeleteAll(const std::string& ns,
                                                   const MemoryScope& scope,
                                                   const std::string& actor = "",
                                                   const CallOptions& = {});
  // The memory's events, oldest first (kept after it is deleted).
  virtual absl::StatusOr<std::vector<MemoryEvent>> MemoryHistory(const std::string& ns,
                                                                 const std::string& id,
                                                                 const CallOptions& = {});
  // Deletes every memory and all history of the namespace; returns how many.
  virtual absl::StatusOr<uint64_t> MemoryReset(const std::string& ns, const CallOptions& = {});

  // Core-memory blocks (mnemo/memory.h). NOT_FOUND for a block never set;
  // INVALID_ARGUMENT over its size limit or for a line out of range;
  // FAILED_PRECONDITION when a replace's old text does not occur exactly
  // once (the message names the count).
  virtual absl::StatusOr<MemoryBlock> BlockGet(const std::string& ns, const std::string& agent_id,
                                               const std::string& label, const CallOptions& = {});
  virtual absl::StatusOr<MemoryBlock> BlockEdit(const std::string& ns, const std::string& agent_id,
                                                const std::string& label,
                                                const BlockChange& change,
                                                const CallOptions& = {});
  virtual absl::StatusOr<std::vector<BlockEvent>> BlockHistory(const std::string& ns,
                                                               const std::string& agent_id,
                                                               const std::string& label,
                                                               const CallOptions& = {});

  // --- API keys (mnemo/auth.h) of a mnemod with authentication on;
  // FAILED_PRECONDITION when it is off. CreateApiKey needs admin on the
  // key's namespace; ListApiKeys admin on `ns` ("" = every key: admin on
  // "*"); RevokeApiKey admin on the key's namespace (NOT_FOUND for an
  // unknown id). The default implementations (for test fakes) return
  // UNIMPLEMENTED.
  virtual absl::StatusOr<CreatedApiKey> CreateApiKey(const NewApiKey& key,
                                                     const CallOptions& = {});
  virtual absl::StatusOr<std::vector<ApiKeyInfo>> ListApiKeys(const std::string& ns,
                                                              const CallOptions& = {});
  virtual absl::Status RevokeApiKey(const std::string& id, const CallOptions& = {});

  // --- Conversation logs (mnemo/convo.h) in the memory namespaces
  // (ConvoAppend creates one when absent). INVALID_ARGUMENT for a missing
  // run, an unknown role, blank content, an inverted time range or another
  // selection's page token; NOT_FOUND for an absent namespace. The default
  // implementations (for test fakes) return UNIMPLEMENTED.

  // Appends messages to a run in one commit; returns them with ids and times.
  virtual absl::StatusOr<std::vector<ConvoMessage>> ConvoAppend(
      const std::string& ns, const std::string& run_id,
      const std::vector<ConvoMessageInput>& messages, const CallOptions& = {});
  // Hybrid (dense + BM25) search of the selected messages, best first.
  virtual absl::StatusOr<std::vector<ConvoHit>> ConvoSearch(const ConvoSearchRequest& request,
                                                            const CallOptions& = {});
  // One page of a run's selected messages, in time order.
  virtual absl::StatusOr<ConvoPage> ConvoList(const ConvoListRequest& request,
                                              const CallOptions& = {});
  // Deletes every message of the run; returns how many.
  virtual absl::StatusOr<uint64_t> ConvoDeleteRun(const std::string& ns, const std::string& run_id,
                                                  const CallOptions& = {});
};

}  // namespace mnemo

#endif  // MNEMO_CLIENT_CLIENT_H_
