// How agent memories (db/memory.h) are stored: the memory's chunk (its
// metadata JSON with the reserved "@" fields), the rows of the `memory`
// column family, history events, content hashes and memory ids. Internal
// to db/.
//
// A memory's chunk: id = memory id, text = memory text, no document, and
// metadata JSON = the user's metadata object plus
//   "@memory": true, "@user_id" / "@agent_id" / "@run_id" (those set),
//   "@created_at", "@updated_at", "@valid_at" (Unix ms), "@expires_at",
//   "@invalid_at" (when set), "@hash".
// Every one is a top-level scalar, so the namespace's attribute table
// (index/filter.h) holds them and the memory predicate evaluates scope,
// times and the user's filter inside the index search.
//
// `memory` CF (every key starts with the namespace's 4-byte id, so dropping
// the namespace range-deletes it like the other data CFs):
//   nsid 'h' lp(user) lp(agent) lp(run) u64 hash  -> memory id (exact-duplicate index)
//   nsid 'e' lp(memory id) u32 n                  -> event n of the memory (JSON)
//   nsid 'x' u64 expires_at_ms memory id          -> "" (expiry index)
//   nsid 'b' lp(agent) lp(label)                  -> core-memory block (JSON)
//   nsid 'k' lp(agent) lp(label) u32 n            -> event n of the block (JSON)
// lp(s) = u16 BE length, then the bytes; integers big-endian.
#ifndef MNEMO_DB_MEMORY_RECORDS_H_
#define MNEMO_DB_MEMORY_RECORDS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "db/memory.h"
#include "db/store.h"

namespace mnemo::db::memrecords {

inline constexpr char kMemoryCf[] = "memory";

// Memory ids are "mem_" + 12 hex digits of the creation ms + 8 random hex
// digits, so their byte order is creation order.
inline constexpr char kMemoryIdPrefix[] = "mem_";
std::string NewMemoryId(int64_t now_ms);
bool IsMemoryId(absl::string_view id);

// Reserved attribute names of a memory's chunk.
inline constexpr char kAttrMemory[] = "@memory";
inline constexpr char kAttrUser[] = "@user_id";
inline constexpr char kAttrAgent[] = "@agent_id";
inline constexpr char kAttrRun[] = "@run_id";
inline constexpr char kAttrCreated[] = "@created_at";
inline constexpr char kAttrUpdated[] = "@updated_at";
inline constexpr char kAttrExpires[] = "@expires_at";
inline constexpr char kAttrValid[] = "@valid_at";
inline constexpr char kAttrInvalid[] = "@invalid_at";
inline constexpr char kAttrHash[] = "@hash";

// 64-bit FNV-1a of the text.
uint64_t TextHash(absl::string_view text);
std::string HashHex(uint64_t hash);

// The chunk metadata JSON of `memory` (its metadata_json must be a valid
// JSON object or empty).
std::string EncodeMemoryMetadata(const Memory& memory);
// The memory stored as `chunk`; NOT_FOUND when the chunk is not a memory,
// DATA_LOSS when its reserved fields are malformed.
absl::StatusOr<Memory> MemoryFromChunk(const Chunk& chunk);

std::string HashKey(uint32_t nsid, const MemoryScope& scope, uint64_t hash);
std::string EventKey(uint32_t nsid, absl::string_view memory_id, uint32_t n);
std::string EventPrefix(uint32_t nsid, absl::string_view memory_id);
// Prefixes of every row of one kind in a namespace.
std::string KindPrefix(uint32_t nsid, char kind);  // 'h', 'e' or 'x'
std::string ExpiryKey(uint32_t nsid, int64_t expires_at_ms, absl::string_view memory_id);
// The expiry time and memory id of an ExpiryKey; DATA_LOSS when malformed.
absl::Status DecodeExpiryKey(absl::string_view key, int64_t* expires_at_ms,
                             std::string* memory_id);

std::string BlockKey(uint32_t nsid, absl::string_view agent_id, absl::string_view label);
std::string BlockEventPrefix(uint32_t nsid, absl::string_view agent_id, absl::string_view label);
std::string BlockEventKey(uint32_t nsid, absl::string_view agent_id, absl::string_view label,
                          uint32_t n);
std::string EncodeBlock(const MemoryBlock& block);
absl::StatusOr<MemoryBlock> DecodeBlock(absl::string_view value);
std::string EncodeBlockEvent(const BlockEvent& event);
absl::StatusOr<BlockEvent> DecodeBlockEvent(absl::string_view value);

std::string EncodeEvent(const MemoryEvent& event);
absl::StatusOr<MemoryEvent> DecodeEvent(absl::string_view value);

}  // namespace mnemo::db::memrecords

#endif  // MNEMO_DB_MEMORY_RECORDS_H_
