// GetKv through the KV arena (server/kv_arena.h): the reactor of a GetKv
// call that names an arena session, where every block is answered with a
// lease on its bytes in the arena, or of one without a session while
// mnemod has an arena, where the bytes are sent from the arena. Hits are pinned as found; misses are read
// from the store (one read per layer, opened together so they see the
// same KV) and copied into the arena by one fill thread per call, layer
// after layer, up to kKvArenaFillAhead layers ahead of the stream, so later
// layers are filled while earlier ones are being sent and used.
#ifndef MNEMO_SERVER_KV_ARENA_GET_H_
#define MNEMO_SERVER_KV_ARENA_GET_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "db/store.h"
#include "mnemo/v1/mnemo.grpc.pb.h"
#include "server/kv_arena.h"

namespace mnemo::server {

inline constexpr int kKvArenaFillAhead = 4;

struct KvArenaGetOptions {
  // False: the request names an arena session and every block is answered
  // with a lease. True (a GetKv without a session, when mnemod has an
  // arena: the arena is then the hot tier of remote reads too): the same
  // hits and fills, but each block is answered with its bytes, sent from
  // the arena as they lie there (server/kv_block_wire.h) and unpinned when
  // gRPC is done with them; a block the arena cannot take (larger than it,
  // or every byte pinned) is sent from a copy of its own.
  bool inline_bytes = false;
  // mnemod --max-message-bytes: an inline block over it ends the call with
  // RESOURCE_EXHAUSTED (BlockOverMessageLimit).
  size_t max_message_bytes = 64 << 20;
};

// A new reactor for `request` of the caller authenticated as `key_id` (""
// with authentication off); `arena` may be null (the call then fails with
// FAILED_PRECONDITION); the slices sent from it hold it. Without
// inline_bytes, a session of another key is PERMISSION_DENIED. Deletes
// itself.
grpc::ServerWriteReactor<grpc::ByteBuffer>* NewKvArenaGetReactor(
    db::Store* store, std::shared_ptr<KvArena> arena, const std::string& key_id,
    grpc::CallbackServerContext* ctx, const v1::GetKvRequest& request,
    const KvArenaGetOptions& options);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_KV_ARENA_GET_H_
