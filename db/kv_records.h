// Keys and values of the chunk KV caches (see db/kv.h).
//
//   kv   nsid 'b' internal_id(u64 BE) layer(u16 BE) -> block of one layer
//        nsid 'k' internal_id(u64 BE) layer(u16 BE) -> key index of one layer
//                                                      (db/kv_key_index.h)
//        nsid 'c' internal_id(u64 BE)               -> KvChunkRecord
//        nsid 'r' internal_id(u64 BE)               -> recency stamp of the
//                                                      chunk's KV (see below)
//   meta "kv/" nsid(u32 BE)                         -> the namespace's KvConfig, JSON
//
// A chunk's blocks are adjacent (one prefix), in layer order, so a chunk's
// KV is removed with one DeleteRange and read layer by layer with point
// gets. Block values are large and live in RocksDB blob files.
//
// Block value: 0x01, u64 fingerprint hash, u32 byte size of the K tensor,
// the K tensor, the V tensor (each a db/kv_codec.h encoding).
// Chunk record: 0x01, u64 fingerprint hash, u32 n_layers, u64 stored bytes,
// u64 fp16 bytes, i64 created ms, i64 expires ms (0 = never), u8 pinned,
// f64 sum of K errors, f64 sum of V errors, u32 n tokens, n * i32 tokens.
// Recency stamp: 0x01, u64 stamp. Stamps come from one per-namespace
// counter: a put takes the next one (written in the put's batch), an LRU
// read takes the next one in memory and a background flush writes it later
// (db/kv_retention.cc). Opening orders a namespace's chunks by stamp; a
// lost flush only leaves an older stamp (a staler order), never a bad one.
// Integers little-endian except in keys. Decoding checks every size and
// returns DATA_LOSS on a mismatch.
#ifndef MNEMO_DB_KV_RECORDS_H_
#define MNEMO_DB_KV_RECORDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "db/kv.h"

namespace mnemo::db::kvrecords {

inline constexpr char kKvCf[] = "kv";
inline constexpr char kKvConfigPrefix[] = "kv/";

std::string BlockKey(uint32_t nsid, int64_t internal_id, uint32_t layer);
// Prefix of every block key of one chunk, and its exclusive end.
std::string BlockPrefix(uint32_t nsid, int64_t internal_id);
std::string BlockPrefixEnd(uint32_t nsid, int64_t internal_id);
std::string ChunkKey(uint32_t nsid, int64_t internal_id);
std::string KeyIndexKey(uint32_t nsid, int64_t internal_id, uint32_t layer);
// Prefix of every chunk record of a namespace.
std::string ChunkKeyPrefix(uint32_t nsid);
// internal id of a ChunkKey; nullopt when malformed.
std::optional<int64_t> ChunkKeyId(absl::string_view key);
std::string ConfigKey(uint32_t nsid);
std::string RecencyKey(uint32_t nsid, int64_t internal_id);
// Prefix of every recency stamp of a namespace.
std::string RecencyKeyPrefix(uint32_t nsid);
// internal id of a RecencyKey; nullopt when malformed.
std::optional<int64_t> RecencyKeyId(absl::string_view key);
std::string EncodeRecency(uint64_t stamp);
absl::StatusOr<uint64_t> DecodeRecency(absl::string_view value);

struct KvChunkRecord {
  uint64_t fingerprint_hash = 0;
  uint32_t n_layers = 0;
  uint64_t stored_bytes = 0;
  uint64_t fp16_bytes = 0;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;  // 0 = never
  bool pinned = false;
  double key_error_sum = 0;
  double value_error_sum = 0;
  std::vector<int32_t> tokens;
  // Of stored_bytes, the key indexes' (0 in records written before it was
  // kept: it follows the tokens, and older records end with them).
  uint64_t index_bytes = 0;
};
std::string EncodeChunkRecord(const KvChunkRecord& r);
absl::StatusOr<KvChunkRecord> DecodeChunkRecord(absl::string_view value);

std::string EncodeBlock(uint64_t fingerprint_hash, absl::string_view k, absl::string_view v);
struct BlockView {
  uint64_t fingerprint_hash = 0;
  absl::string_view k, v;  // borrowed from the value
};
absl::StatusOr<BlockView> DecodeBlock(absl::string_view value);

std::string EncodeConfig(const KvConfig& config);
absl::StatusOr<KvConfig> DecodeConfig(absl::string_view value);

// 64-bit FNV-1a over the token ids (little-endian bytes): the key of the
// prefix lookup, checked against the stored tokens on a hit.
uint64_t TokenHash(absl::Span<const int32_t> tokens);

}  // namespace mnemo::db::kvrecords

#endif  // MNEMO_DB_KV_RECORDS_H_
