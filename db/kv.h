// Chunk KV caches in the store: the types of db::Store's KV methods.
//
// A namespace registers one decoder model by its fingerprint (KvConfig).
// KV belongs to a stored chunk: per layer, K and V of shape
// [n_kv_heads, tokens, head_dim] (row-major float32 in memory), with keys
// kept before RoPE so a chunk can be placed at any position of a prompt.
// Each (chunk, layer) is one block row, written with the namespace's codec
// (db/kv_codec.h) and read on its own; all blocks of a chunk are committed
// in one WriteBatch, so a put is all or nothing. Deleting or replacing a
// chunk, or dropping its namespace, removes its KV in the same commit.
//
// Lineage: every block and chunk record stores the hash of the fingerprint
// it was produced with; a put or read naming another model fails with
// FAILED_PRECONDITION saying which field differs.
//
// Capacity: KvConfig::capacity_bytes bounds the encoded bytes of the
// namespace's KV. A put that would exceed it first drops expired KV, then
// evicts unpinned chunks' KV in policy order (their text and vectors stay);
// when that is not enough the put is RESOURCE_EXHAUSTED and nothing is
// evicted. Evicted or expired KV reads as missing (NOT_FOUND / false),
// never as corrupt.
#ifndef MNEMO_DB_KV_H_
#define MNEMO_DB_KV_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "attention/key_clusters.h"
#include "mnemo/model_fingerprint.h"
#include "db/kv_codec.h"

namespace mnemo::db {

// Eviction policies accepted by KvConfig::eviction_policy.
inline constexpr char kKvEvictLru[] = "lru";    // least recently put or read first
inline constexpr char kKvEvictFifo[] = "fifo";  // oldest put first

struct KvConfig {
  // The namespace's decoder model. Every field must be set (INVALID_ARGUMENT
  // otherwise): n_layers, heads, KV heads (dividing heads) and head_dim
  // (even, for RoPE) positive, rope_theta finite and positive, rope_style
  // "half".
  ModelFingerprint model;
  // How blocks are stored (validated by ValidateKvCodecOptions). Changing it
  // later affects new puts only; every block says how it was written.
  KvCodecOptions codec;
  // Byte budget of the namespace's encoded KV; 0 = unlimited.
  uint64_t capacity_bytes = 0;
  // kKvEvictLru (default when empty) or kKvEvictFifo.
  std::string eviction_policy;
  // TTL of puts that state none, in seconds; 0 = no expiry.
  int64_t default_ttl_seconds = 0;
  // Mean keys per cluster of the key index every put builds per (layer,
  // KV head) for retrieval attention (db/kv_key_index.h); 0 = no index
  // (retrieval attention then refuses the namespace's chunks). At most
  // kMaxKeysPerCluster.
  uint32_t key_index_keys_per_cluster = 16;
};

inline constexpr uint32_t kMaxKeysPerCluster = 4096;

struct KvStats {
  KvConfig config;
  uint64_t chunks = 0;        // chunks holding KV (expired ones excluded)
  uint64_t blocks = 0;        // (chunk, layer) blocks
  uint64_t tokens = 0;
  uint64_t stored_bytes = 0;  // encoded bytes, what capacity_bytes counts
  uint64_t index_bytes = 0;   // of stored_bytes, the key indexes' (retrieval attention)
  uint64_t fp16_bytes = 0;    // the same K and V at 2 bytes per element
  uint64_t pinned_chunks = 0;
  uint64_t evicted_chunks = 0;  // since the store was opened
  uint64_t expired_chunks = 0;  // removed after expiry since the store was opened
  double mean_key_error = 0;    // mean relative error of the K blocks
  double mean_value_error = 0;
};

// What a put says about the chunk before its layers come.
struct KvPutHeader {
  std::string chunk_id;    // a stored chunk of the namespace (NOT_FOUND otherwise)
  ModelFingerprint model;  // must equal the namespace's (FAILED_PRECONDITION)
  // The chunk's token ids under the model's tokenizer, 1..kMaxKvTokens of
  // them, each >= 0; every layer must hold exactly this many tokens.
  std::vector<int32_t> tokens;
  bool pin = false;  // pinned KV is never evicted
  // Seconds until the KV expires; 0 = the namespace default; < 0 is
  // INVALID_ARGUMENT.
  int64_t ttl_seconds = 0;
  // Unset: the keys given are before RoPE (what is stored). Set: they are
  // rotated for positions [keys_position, keys_position + T) and are
  // rotated back before they are stored.
  std::optional<int64_t> keys_position;
};

inline constexpr uint32_t kMaxKvTokens = 1u << 16;

struct KvPutResult {
  uint64_t stored_bytes = 0;        // encoded bytes of every block and key index
  std::vector<float> key_error;     // per layer, measured at encode time
  std::vector<float> value_error;
  uint32_t evicted_chunks = 0;      // chunks whose KV was evicted for room
  uint64_t index_bytes = 0;         // of stored_bytes, the key indexes'
  double encode_seconds = 0;        // encoding the blocks (codec)
  double index_seconds = 0;         // building and encoding the key indexes
};

// One chunk's put in progress. Not thread-safe. Destroying it before
// Commit() stores nothing. Must be destroyed before Store::Close(); a
// Commit() after it fails with FAILED_PRECONDITION "store closed" (debug
// builds abort; see Store::Close).
class KvChunkWriter {
 public:
  virtual ~KvChunkWriter() = default;
  // Adds layer `layer`, which must be the next one (0, 1, ...). K and V have
  // the header's token count and the model's KV heads and head dim,
  // finite values (INVALID_ARGUMENT naming what is wrong otherwise). They
  // are encoded here, outside any store lock.
  virtual absl::Status AddLayer(uint32_t layer, const KvTensorShape& shape,
                                absl::Span<const float> k, absl::Span<const float> v) = 0;
  // Commits every layer in one WriteBatch, replacing KV the chunk had.
  // INVALID_ARGUMENT unless all n_layers layers were added; NOT_FOUND when
  // the chunk was deleted meanwhile; FAILED_PRECONDITION when the model
  // was re-registered; RESOURCE_EXHAUSTED when it does not fit the budget.
  virtual absl::StatusOr<KvPutResult> Commit() = 0;
};

struct KvReadOptions {
  std::vector<std::string> chunk_ids;  // 1..max_write_batch distinct ids
  ModelFingerprint model;              // must equal the namespace's
  uint32_t layer_begin = 0;
  uint32_t layer_end = 0;  // exclusive; 0 = n_layers
  // Empty: keys before RoPE. Else one start position (>= 0) per chunk:
  // keys come rotated for [position, position + T).
  std::vector<int64_t> positions;
  // Unset: blocks come as floats (KvBlock::k, v). Set: as little-endian
  // elements of this type (KvBlock::k_bytes, v_bytes). A block stored in
  // that very type and read without rotation is then handed over as
  // stored, without decoding (the fast path of a fetch).
  std::optional<KvDtype> as_bytes;
  // Also read each block's key index (KvBlock::key_index), from the same
  // snapshot; a block without one fails the read with FAILED_PRECONDITION.
  bool with_key_index = false;
  // Read-ahead budget (about; blocks sized as fp16), off by default: the
  // read takes groups of layers, as many as every chunk's blocks of them
  // fit in this, reads each group chunk by chunk (a chunk's blocks of
  // consecutive layers lie back to back in its blob file, so the disk sees
  // long sequential runs instead of strided single blocks), and hands them
  // out layer-major. The blocks and their order are the same either way; a
  // group costs up to this much memory and its first block waits for the
  // whole group. Not faster than plain reads on the machine it was
  // measured on (bench_kv_read --read-ahead), hence off.
  uint64_t read_ahead_bytes = 0;
};

// One (chunk, layer) block as read.
struct KvBlock {
  size_t chunk_index = 0;  // into KvReadOptions::chunk_ids
  std::string chunk_id;
  uint32_t layer = 0;
  KvTensorShape shape;
  std::vector<float> k, v;  // unless KvReadOptions::as_bytes was set
  // When it was: K and V as little-endian elements of that type, borrowed
  // from the reader (valid until its next Next() or Store::Close()).
  absl::string_view k_bytes, v_bytes;
  float key_error = 0, value_error = 0;  // stored with the block
  std::vector<int32_t> tokens;           // in each chunk's first block only
  int64_t position = -1;                 // start position of the keys' RoPE; -1 = none
  // With KvReadOptions::with_key_index: the block's key clusters, one per
  // KV head, over its chunk-local keys (db/kv_key_index.h).
  std::vector<attention::KeyClusters> key_index;
};

// Blocks of a read, layer by layer (every chunk's block of layer_begin,
// then of the next layer ...), each read from the store when asked for.
// The read sees one consistent snapshot of the store. Not thread-safe.
// Must be destroyed before Store::Close(); used after it, its calls fail
// with FAILED_PRECONDITION "store closed" (debug builds abort; see
// Store::Close).
class KvReader {
 public:
  virtual ~KvReader() = default;
  // Fills `block` with the next block; false when every block was given.
  // DATA_LOSS for a corrupt block.
  virtual absl::StatusOr<bool> Next(KvBlock* block) = 0;
  virtual size_t total_blocks() const = 0;
  // K plus V elements of every block of the read.
  virtual uint64_t total_values() const = 0;
};

struct KvPrefixMatch {
  std::vector<std::string> chunk_ids;
  std::vector<uint32_t> chunk_tokens;
  uint64_t matched_tokens = 0;
};

// Validates a KvConfig as RegisterKvModel does.
absl::Status ValidateKvConfig(const KvConfig& config);

}  // namespace mnemo::db

#endif  // MNEMO_DB_KV_H_
