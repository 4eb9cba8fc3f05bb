// KvService's hot-tier calls (server/kv_service.h): KvArenaInfo tells a
// client where the arena socket is; KvArenaRelease drops leases (of a
// session of the caller's key only).
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "server/kv_service.h"
#include "server/service.h"

namespace mnemo::server {

grpc::ServerUnaryReactor* KvService::KvArenaInfo(grpc::CallbackServerContext* ctx,
                                                 const v1::KvArenaInfoRequest*,
                                                 v1::KvArenaInfoResponse* response) {
  // Any authenticated caller; the leases themselves come from GetKv, which
  // checks read on the namespace.
  if (auto* r = Refuse(ctx, "KvArenaInfo", auth_.Authenticate(*ctx).status())) return r;
  if (arena_ != nullptr) {
    response->set_socket_path(arena_socket_);
    response->set_arena_bytes(arena_->size());
    response->set_arena_id(arena_->id());
  }
  return FinishUnary(ctx, "KvArenaInfo", absl::OkStatus());
}

grpc::ServerUnaryReactor* KvService::KvArenaRelease(grpc::CallbackServerContext* ctx,
                                                    const v1::KvArenaReleaseRequest* request,
                                                    v1::KvArenaReleaseResponse* response) {
  absl::StatusOr<Caller> caller = auth_.Authenticate(*ctx);
  if (auto* r = Refuse(ctx, "KvArenaRelease", caller.status())) return r;
  absl::Status status = [&]() -> absl::Status {
    if (arena_ == nullptr) {
      return absl::FailedPreconditionError(
          "this mnemod runs without a KV arena (mnemod --kv-arena-bytes)");
    }
    const std::vector<uint64_t> ids(request->lease_ids().begin(), request->lease_ids().end());
    ASSIGN_OR_RETURN(uint64_t released,
                     arena_->Release(request->arena_session(), caller->key_id, ids));
    response->set_released(released);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "KvArenaRelease", status);
}

}  // namespace mnemo::server
