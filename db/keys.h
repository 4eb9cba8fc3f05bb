// Key layout of mnemo's RocksDB column families.
//
// Every key in a data column family starts with the owning namespace's
// 4-byte big-endian numeric id, so one namespace is the contiguous key range
// [NsPrefix(id), NsPrefix(id + 1)) in every data CF and dropping it is a
// DeleteRange per CF. Namespace ids are never reused (a re-created name gets a
// fresh id), so a stale key can never be read back as live data.
//
//   meta   "schema_version"               -> decimal schema version
//          "next_nsid"                    -> u32 BE, next namespace id to hand out
//          "ns/" name                     -> namespace config, JSON (see records.h)
//          "st/" nsid                     -> NamespaceCounters (records.h)
//          "qt/" nsid                     -> NamespaceQuota (namespace_quota.h)
//   docs   nsid 'd' doc_id                -> DocumentRecord
//          nsid 'm' u16 BE len(doc_id) doc_id chunk_id -> "" (membership)
//   idmap  nsid 'c' chunk_id              -> internal id, u64 BE
//   chunks nsid internal_id(u64 BE)       -> ChunkRecord
//   dense  nsid internal_id(u64 BE)       -> dim float32, little-endian
//   ilog   nsid seq(u64 BE)               -> op byte ('A' add / 'R' remove)
//                                            + internal id u64 BE
//   multivec nsid internal_id(u64 BE)     -> token vectors of the chunk (late
//                                            interaction namespaces; records.h)
//   meta   "mv/" nsid (u32 BE)            -> the namespace's trained token codec
//                                            (index::ResidualCodec::Serialize)
//   bm25   nsid ...                       -> BM25 postings of the chunks of an
//                                            encoder namespace, by internal
//                                            id (see bm25.h)
//
// Big-endian integers make RocksDB's bytewise order the numeric order, so the
// index log replays in sequence order and chunk scans go by internal id. The
// membership key length-prefixes the document id so that a document id that
// is a prefix of another (or contains '\0') never captures its chunks.
#ifndef MNEMO_DB_KEYS_H_
#define MNEMO_DB_KEYS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace mnemo::db::keys {

// Column family names.
inline constexpr char kMetaCf[] = "meta";
inline constexpr char kDocsCf[] = "docs";
inline constexpr char kChunksCf[] = "chunks";
inline constexpr char kDenseCf[] = "dense";
inline constexpr char kIdMapCf[] = "idmap";
inline constexpr char kIndexLogCf[] = "ilog";
// BM25 postings of encoder namespaces (layout in bm25.h; nsid-prefixed too).
inline constexpr char kBm25Cf[] = "bm25";
// Token vectors of late-interaction namespaces, keyed like `dense`.
inline constexpr char kMultiVecCf[] = "multivec";

// meta keys.
inline constexpr char kSchemaVersionKey[] = "schema_version";
inline constexpr char kNextNsIdKey[] = "next_nsid";
inline constexpr char kNsConfigPrefix[] = "ns/";
inline constexpr char kNsCountersPrefix[] = "st/";
inline constexpr char kMultiVecCodecPrefix[] = "mv/";
inline constexpr char kNsQuotaPrefix[] = "qt/";

// Largest namespace id ever handed out; NsPrefix(id + 1) must not overflow.
inline constexpr uint32_t kMaxNsId = 0xFFFFFFFEu;

// Index log operations.
inline constexpr char kLogAdd = 'A';
inline constexpr char kLogRemove = 'R';

void AppendU16(std::string* out, uint16_t v);
void AppendU32(std::string* out, uint32_t v);
void AppendU64(std::string* out, uint64_t v);
// Decode big-endian integers from the start of `in`; nullopt when short.
std::optional<uint32_t> ReadU32(absl::string_view in);
std::optional<uint64_t> ReadU64(absl::string_view in);

std::string NsPrefix(uint32_t nsid);
// NsPrefix(nsid + 1): exclusive upper bound of the namespace's range.
std::string NsEnd(uint32_t nsid);

std::string NsConfigKey(absl::string_view name);
std::string NsCountersKey(uint32_t nsid);
std::string MultiVecCodecKey(uint32_t nsid);
std::string NsQuotaKey(uint32_t nsid);

std::string DocKey(uint32_t nsid, absl::string_view doc_id);
// Prefix of all 'd' keys of a namespace.
std::string DocKeyPrefix(uint32_t nsid);
std::string MembershipKey(uint32_t nsid, absl::string_view doc_id,
                          absl::string_view chunk_id);
// Prefix of every membership key of one document.
std::string MembershipPrefix(uint32_t nsid, absl::string_view doc_id);

std::string IdMapKey(uint32_t nsid, absl::string_view chunk_id);
// Key of the chunks and dense CFs.
std::string RowKey(uint32_t nsid, int64_t internal_id);
std::string LogKey(uint32_t nsid, uint64_t seq);

// Trailing u64 of a RowKey / LogKey (after the 4-byte ns prefix).
std::optional<uint64_t> RowKeyId(absl::string_view key);

// Returns the smallest key greater than every key starting with `prefix`
// (the prefix with its last non-0xff byte incremented); empty when none.
std::string PrefixEnd(absl::string_view prefix);

}  // namespace mnemo::db::keys

#endif  // MNEMO_DB_KEYS_H_
