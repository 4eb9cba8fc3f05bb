// The mnemo.v1.MnemoKv gRPC service: chunk KV caches, a thin, final adapter
// over db::Store's KV calls, served by mnemod next to MnemoService.
//
// Each method converts the request with server/convert.h, calls the store,
// converts the result back and maps the status in one place (FinishUnary).
// PutKv and GetKv are streams: PutKv encodes each layer as it arrives and
// commits when the client half-closes; GetKv reads and writes one block at
// a time; a GetKv naming a KV arena session is answered with leases on
// the hot tier instead (server/kv_arena_get.h).
//
// Handlers run on gRPC's callback threads; the store is thread-safe.
#ifndef MNEMO_SERVER_KV_SERVICE_H_
#define MNEMO_SERVER_KV_SERVICE_H_

#include <memory>
#include <string>

#include "db/store.h"
#include "mnemo/v1/mnemo.grpc.pb.h"
#include "server/authorizer.h"
#include "server/kv_arena.h"

namespace mnemo::server {

class KvService final
    : public v1::MnemoKv::WithRawCallbackMethod_GetKv<v1::MnemoKv::CallbackService> {
 public:
  // Borrows `store`, which must outlive the service (and the server it is
  // registered with). `arena` (may be null: no hot tier) is shared: K and
  // V sent from it stay pinned until gRPC releases their slices, which may
  // be after the server is gone; `arena_socket` is where clients get it
  // (server/kv_arena_socket.h).
  // `auth` (borrowed; null = Authorizer::Off()) checks every call.
  // `max_message_bytes`: the server's send limit (--max-message-bytes); a
  // GetKv block over it is RESOURCE_EXHAUSTED (kv_block_sender.h).
  explicit KvService(db::Store* store, std::shared_ptr<KvArena> arena = nullptr,
                     std::string arena_socket = "",
                     Authorizer* auth = nullptr, size_t max_message_bytes = 64 << 20);

  grpc::ServerUnaryReactor* RegisterKvModel(grpc::CallbackServerContext* ctx,
                                            const v1::RegisterKvModelRequest* request,
                                            v1::RegisterKvModelResponse* response) override;
  // Encodes each layer as it arrives; commits when the client half-closes
  // after the last layer. Any error ends the call and stores nothing.
  grpc::ServerReadReactor<v1::PutKvRequest>* PutKv(grpc::CallbackServerContext* ctx,
                                                   v1::PutKvResponse* response) override;
  // Reads and writes one block at a time, layer by layer. Served raw
  // (server/kv_block_wire.h): the request is parsed here, K and V go out as
  // slices of their own.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* GetKv(grpc::CallbackServerContext* ctx,
                                                    const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* ExistsKv(grpc::CallbackServerContext* ctx,
                                     const v1::ExistsKvRequest* request,
                                     v1::ExistsKvResponse* response) override;
  grpc::ServerUnaryReactor* DeleteKv(grpc::CallbackServerContext* ctx,
                                     const v1::DeleteKvRequest* request,
                                     v1::DeleteKvResponse* response) override;
  grpc::ServerUnaryReactor* LookupKvPrefix(grpc::CallbackServerContext* ctx,
                                           const v1::LookupKvPrefixRequest* request,
                                           v1::LookupKvPrefixResponse* response) override;
  grpc::ServerUnaryReactor* SetKvRetention(grpc::CallbackServerContext* ctx,
                                           const v1::SetKvRetentionRequest* request,
                                           v1::SetKvRetentionResponse* response) override;
  grpc::ServerUnaryReactor* GetKvStats(grpc::CallbackServerContext* ctx,
                                       const v1::GetKvStatsRequest* request,
                                       v1::GetKvStatsResponse* response) override;
  // Retrieval attention: opens a db::KvContext on the first message and
  // answers each step with a partial or the top keys (db/kv_context.h).
  grpc::ServerBidiReactor<v1::AttendRequest, v1::AttendResponse>* Attend(
      grpc::CallbackServerContext* ctx) override;
  // The hot tier (server/kv_arena_rpc.cc): where its socket is, and
  // releasing leases.
  grpc::ServerUnaryReactor* KvArenaInfo(grpc::CallbackServerContext* ctx,
                                        const v1::KvArenaInfoRequest* request,
                                        v1::KvArenaInfoResponse* response) override;
  grpc::ServerUnaryReactor* KvArenaRelease(grpc::CallbackServerContext* ctx,
                                           const v1::KvArenaReleaseRequest* request,
                                           v1::KvArenaReleaseResponse* response) override;

 private:
  db::Store* const store_;
  const std::shared_ptr<KvArena> arena_;
  const std::string arena_socket_;
  Authorizer& auth_;
  const size_t max_message_bytes_;
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_KV_SERVICE_H_
