// Proto conversion of the KV arena's answers (server/kv_arena.h): a leased
// block as a GetKvResponse without K and V bytes.
#ifndef MNEMO_SERVER_CONVERT_KV_ARENA_H_
#define MNEMO_SERVER_CONVERT_KV_ARENA_H_

#include <cstdint>
#include <optional>
#include <string>

#include "db/kv.h"
#include "mnemo/v1/mnemo.pb.h"
#include "server/kv_arena.h"

namespace mnemo::server {

// The block of chunk `chunk_index` (`chunk_id`), layer `layer`, leased as
// `lease_id` (none: the bytes travel in the message, server/kv_block_wire.h);
// `first` marks the chunk's first block of the read (it carries the tokens).
void KvArenaBlockToProto(const KvArenaBlock& block, std::optional<uint64_t> lease_id,
                         uint32_t chunk_index,
                         const std::string& chunk_id, uint32_t layer, db::KvDtype dtype,
                         bool first, v1::GetKvResponse* out);

// What the arena keeps of a block read from the store.
KvArenaMeta KvArenaMetaOf(const db::KvBlock& block);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_CONVERT_KV_ARENA_H_
