// MnemoService's SetNamespaceQuota over db::Store (quotas: db/quota.h).
#include "common/status_macros.h"
#include "server/convert.h"
#include "server/logging.h"
#include "server/service.h"

namespace mnemo::server {

grpc::ServerUnaryReactor* MnemoService::SetNamespaceQuota(
    grpc::CallbackServerContext* ctx, const v1::SetNamespaceQuotaRequest* request,
    v1::SetNamespaceQuotaResponse* response) {
  // Quotas are the operator's limits on a namespace's users: only an admin
  // of every namespace changes them, not the namespace's own admin.
  if (auto* r = Refuse(ctx, "SetNamespaceQuota",
                       auth_.Check(*ctx, kEveryNamespace, Role::kAdmin))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(
        db::NamespaceInfo info,
        store_->SetNamespaceQuota(request->name(), QuotaChangeFromProto(request->quota())));
    NamespaceInfoToProto(info, response->mutable_info());
    const db::NamespaceQuota& q = info.config.quota;
    LogEvent(spdlog::level::info, "namespace quota set",
             {{"namespace", request->name()},
              {"max_bytes", q.max_bytes},
              {"max_chunks", q.max_chunks},
              {"max_kv_bytes", q.max_kv_bytes}});
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "SetNamespaceQuota", status);
}

}  // namespace mnemo::server
