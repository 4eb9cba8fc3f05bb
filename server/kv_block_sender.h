// GetKv over the gRPC stream (no arena session): the reactor that sends a
// read's blocks, one per message, in their wire form (server/
// kv_block_wire.h). Three messages rotate: while one is on the wire, the
// next blocks are read from the store and copied into the others, so the
// db read, the checksum and the copy overlap gRPC's send instead of
// following it.
#ifndef MNEMO_SERVER_KV_BLOCK_SENDER_H_
#define MNEMO_SERVER_KV_BLOCK_SENDER_H_

#include <grpcpp/grpcpp.h>

#include "db/store.h"
#include "mnemo/v1/mnemo.grpc.pb.h"

namespace mnemo::server {

// A new reactor for `request` (which names no arena session). Deletes
// itself when the call is done. A block whose message would exceed
// `max_message_bytes` (mnemod's --max-message-bytes) ends the stream, after
// the blocks before it, with RESOURCE_EXHAUSTED naming the chunk, the layer,
// both sizes and the ways around it, instead of a broken stream.
grpc::ServerWriteReactor<grpc::ByteBuffer>* NewKvBlockSender(db::Store* store,
                                                              grpc::CallbackServerContext* ctx,
                                                              const v1::GetKvRequest& request,
                                                              size_t max_message_bytes);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_KV_BLOCK_SENDER_H_
