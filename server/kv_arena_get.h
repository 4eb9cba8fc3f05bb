// GetKv through the KV arena (server/kv_arena.h): the reactor of a GetKv
// call that names an arena session. Every block is answered with a lease
// on its bytes in the arena. Hits are pinned as found; misses are read
// from the store (one read per layer, opened together so they see the
// same KV) and copied into the arena by one fill thread per call, layer
// after layer, up to kKvArenaFillAhead layers ahead of the stream, so later
// layers are filled while earlier ones are being sent and used.
#ifndef MNEMO_SERVER_KV_ARENA_GET_H_
#define MNEMO_SERVER_KV_ARENA_GET_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "db/store.h"
#include "mnemo/v1/mnemo.grpc.pb.h"
#include "server/kv_arena.h"

namespace mnemo::server {

inline constexpr int kKvArenaFillAhead = 4;

// A new reactor for `request` (which names an arena session) of the
// caller authenticated as `key_id` ("" with authentication off); `arena`
// may be null (the call then fails with FAILED_PRECONDITION). A session of
// another key is PERMISSION_DENIED. Deletes itself.
grpc::ServerWriteReactor<v1::GetKvResponse>* NewKvArenaGetReactor(
    db::Store* store, KvArena* arena, const std::string& key_id,
    grpc::CallbackServerContext* ctx, const v1::GetKvRequest& request);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_KV_ARENA_GET_H_
