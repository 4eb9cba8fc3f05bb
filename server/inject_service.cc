// The mnemo.v1.MnemoInject service (see inject_service.h).
#include "server/inject_service.h"

#include <string>

#include "common/status_macros.h"
#include "server/convert_inject.h"
#include "server/logging.h"
#include "server/service.h"

namespace mnemo::server {

grpc::ServerUnaryReactor* InjectService::RegisterInjectionModel(
    grpc::CallbackServerContext* ctx, const v1::RegisterInjectionModelRequest* request,
    v1::RegisterInjectionModelResponse* response) {
  if (auto* r = Refuse(ctx, "RegisterInjectionModel",
                       auth_.Check(*ctx, request->namespace_(), Role::kAdmin))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::InjectionInfo info,
                     store_->RegisterInjectionModel(request->namespace_(),
                                                    InjectionFilesFromProto(*request),
                                                    request->exact()));
    InjectionInfoToProto(request->namespace_(), info, response->mutable_info());
    response->set_backfilled_chunks(info.backfilled_chunks);
    LogEvent(spdlog::level::info, "injection model registered",
             {{"namespace", request->namespace_()}, {"model", info.name},
              {"model_sha256", info.lineage.model_sha256},
              {"backfilled_chunks", info.backfilled_chunks}});
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "RegisterInjectionModel", status);
}

grpc::ServerUnaryReactor* InjectService::GetInjectionModel(
    grpc::CallbackServerContext* ctx, const v1::GetInjectionModelRequest* request,
    v1::GetInjectionModelResponse* response) {
  if (auto* r = Refuse(ctx, "GetInjectionModel",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::InjectionInfo info, store_->GetInjectionModel(request->namespace_()));
    InjectionInfoToProto(request->namespace_(), info, response->mutable_info());
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "GetInjectionModel", status);
}

grpc::ServerUnaryReactor* InjectService::Recall(grpc::CallbackServerContext* ctx,
                                                const v1::RecallRequest* request,
                                                v1::RecallResponse* response) {
  if (auto* r = Refuse(ctx, "Recall",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::RecallOptions options, RecallOptionsFromProto(*request));
    ASSIGN_OR_RETURN(v1::InjectDtype dtype, InjectDtypeFromProto(request->dtype()));
    ASSIGN_OR_RETURN(db::RecallResult result, store_->Recall(request->namespace_(), options));
    RecallResultToProto(result, dtype, response);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "Recall", status);
}

}  // namespace mnemo::server
