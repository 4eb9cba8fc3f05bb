// The core service (server/service.h) and the unary call ending both
// services share.
#include "server/service.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/convert.h"
#include "server/logging.h"
#include "server/refused_reactor.h"
#include "server/status_mapping.h"

namespace mnemo::server {

void LogRpcFailure(absl::string_view method, const absl::Status& status,
                   const std::string& peer) {
  LogEvent(spdlog::level::debug, "rpc failed",
           {{"method", std::string(method)},
            {"code", absl::StatusCodeToString(status.code())},
            {"error", std::string(status.message())},
            {"peer", peer}});
}

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* ctx, absl::string_view method,
                                      const absl::Status& status) {
  if (!status.ok()) LogRpcFailure(method, status, ctx->peer());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* ctx, absl::string_view method,
                                 const absl::Status& status) {
  return status.ok() ? nullptr : FinishUnary(ctx, method, status);
}

namespace {

absl::Status UpsertInto(db::Store* store, const v1::UpsertRequest& request,
                        v1::UpsertResponse* response) {
  const UpsertBatch batch = UpsertBatchFromProto(request);
  ASSIGN_OR_RETURN(db::WriteResult written,
                   store->Upsert(request.namespace_(), batch.documents, batch.chunks));
  AddWriteResultToProto(written, response);
  return absl::OkStatus();
}

absl::Status DoSearch(db::Store* store, const v1::SearchRequest& request,
                      v1::SearchResponse* response) {
  ASSIGN_OR_RETURN(db::SearchOptions options, SearchOptionsFromProto(request));
  ASSIGN_OR_RETURN(absl::Span<const float> queries, QueryVectorsFromProto(request));
  ASSIGN_OR_RETURN(std::vector<std::vector<db::Hit>> results,
                   store->Search(request.namespace_(), queries, options));
  SearchResultsToProto(results, response);
  return absl::OkStatus();
}

// Server side of UpsertStream, for an authenticated `caller` who needs
// write on each message's namespace; deletes itself when the call is done.
class UpsertStreamReactor final : public grpc::ServerReadReactor<v1::UpsertRequest> {
 public:
  UpsertStreamReactor(db::Store* store, Caller caller, grpc::CallbackServerContext* ctx,
                      v1::UpsertResponse* response)
      : store_(store), caller_(std::move(caller)), ctx_(ctx), response_(response) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed (or the call broke): report totals
      Finish(grpc::Status::OK);
      return;
    }
    absl::Status status = Authorizer::Permit(caller_, request_.namespace_(), Role::kWrite);
    if (status.ok()) status = UpsertInto(store_, request_, response_);
    if (!status.ok()) {
      LogRpcFailure("UpsertStream", status, ctx_->peer());
      Finish(ToGrpcStatus(status));
      return;
    }
    request_.Clear();
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  db::Store* const store_;
  const Caller caller_;
  grpc::CallbackServerContext* const ctx_;
  v1::UpsertResponse* const response_;
  v1::UpsertRequest request_;
};

}  // namespace

MnemoService::MnemoService(db::Store* store, std::string version, Authorizer* auth)
    : store_(store), version_(std::move(version)),
      auth_(auth != nullptr ? *auth : Authorizer::Off()) {}

grpc::ServerUnaryReactor* MnemoService::CreateNamespace(grpc::CallbackServerContext* ctx,
                                                        const v1::CreateNamespaceRequest* request,
                                                        v1::CreateNamespaceResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    // The caller's key id goes into the audit line.
    ASSIGN_OR_RETURN(Caller caller, auth_.Authenticate(*ctx));
    RETURN_IF_ERROR(Authorizer::Permit(caller, request->config().name(), Role::kAdmin));
    ASSIGN_OR_RETURN(db::NamespaceConfig config, NamespaceConfigFromProto(request->config()));
    ASSIGN_OR_RETURN(db::NamespaceInfo info, store_->CreateNamespace(config));
    NamespaceInfoToProto(info, response->mutable_info());
    LogEvent(spdlog::level::info, "namespace created",
             {{"namespace", config.name}, {"dim", config.dim},
              {"index_factory", config.index_factory}, {"by", caller.key_id}});
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "CreateNamespace", status);
}

grpc::ServerUnaryReactor* MnemoService::GetNamespace(grpc::CallbackServerContext* ctx,
                                                     const v1::GetNamespaceRequest* request,
                                                     v1::GetNamespaceResponse* response) {
  if (auto* r = Refuse(ctx, "GetNamespace", auth_.Check(*ctx, request->name(), Role::kRead))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::NamespaceInfo info, store_->GetNamespace(request->name()));
    NamespaceInfoToProto(info, response->mutable_info());
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "GetNamespace", status);
}

grpc::ServerUnaryReactor* MnemoService::ListNamespaces(grpc::CallbackServerContext* ctx,
                                                       const v1::ListNamespacesRequest* request,
                                                       v1::ListNamespacesResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    // Only the namespaces the caller may read.
    ASSIGN_OR_RETURN(Caller caller, auth_.Authenticate(*ctx));
    ASSIGN_OR_RETURN(std::vector<db::NamespaceInfo> infos, store_->ListNamespaces());
    for (const db::NamespaceInfo& info : infos) {
      if (!Authorizer::Covers(caller, info.config.name, Role::kRead)) continue;
      NamespaceInfoToProto(info, response->add_namespaces());
    }
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "ListNamespaces", status);
}

grpc::ServerUnaryReactor* MnemoService::DropNamespace(grpc::CallbackServerContext* ctx,
                                                      const v1::DropNamespaceRequest* request,
                                                      v1::DropNamespaceResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Caller caller, auth_.Authenticate(*ctx));
    RETURN_IF_ERROR(Authorizer::Permit(caller, request->name(), Role::kAdmin));
    RETURN_IF_ERROR(store_->DropNamespace(request->name()));
    LogEvent(spdlog::level::info, "namespace dropped",
             {{"namespace", request->name()}, {"by", caller.key_id}});
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "DropNamespace", status);
}

grpc::ServerUnaryReactor* MnemoService::Upsert(grpc::CallbackServerContext* ctx,
                                               const v1::UpsertRequest* request,
                                               v1::UpsertResponse* response) {
  if (auto* r = Refuse(ctx, "Upsert", auth_.Check(*ctx, request->namespace_(), Role::kWrite))) {
    return r;
  }
  return FinishUnary(ctx, "Upsert", UpsertInto(store_, *request, response));
}

grpc::ServerReadReactor<v1::UpsertRequest>* MnemoService::UpsertStream(
    grpc::CallbackServerContext* ctx, v1::UpsertResponse* response) {
  absl::StatusOr<Caller> caller = auth_.Authenticate(*ctx);
  if (!caller.ok()) {
    LogRpcFailure("UpsertStream", caller.status(), ctx->peer());
    return new RefusedReader<v1::UpsertRequest>(caller.status());
  }
  return new UpsertStreamReactor(store_, *std::move(caller), ctx, response);
}

grpc::ServerUnaryReactor* MnemoService::Get(grpc::CallbackServerContext* ctx,
                                            const v1::GetRequest* request,
                                            v1::GetResponse* response) {
  if (auto* r = Refuse(ctx, "Get", auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::GetResult result,
                     store_->Get(request->namespace_(), IdsFromProto(request->chunk_ids()),
                                 IdsFromProto(request->document_ids()),
                                 request->include_vectors()));
    GetResultToProto(std::move(result), response);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "Get", status);
}

grpc::ServerUnaryReactor* MnemoService::Delete(grpc::CallbackServerContext* ctx,
                                               const v1::DeleteRequest* request,
                                               v1::DeleteResponse* response) {
  if (auto* r = Refuse(ctx, "Delete", auth_.Check(*ctx, request->namespace_(), Role::kWrite))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::DeleteResult result,
                     store_->Delete(request->namespace_(), IdsFromProto(request->chunk_ids()),
                                    IdsFromProto(request->document_ids())));
    DeleteResultToProto(result, response);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "Delete", status);
}

grpc::ServerUnaryReactor* MnemoService::Search(grpc::CallbackServerContext* ctx,
                                               const v1::SearchRequest* request,
                                               v1::SearchResponse* response) {
  if (auto* r = Refuse(ctx, "Search", auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  return FinishUnary(ctx, "Search", DoSearch(store_, *request, response));
}

grpc::ServerUnaryReactor* MnemoService::Stats(grpc::CallbackServerContext* ctx,
                                              const v1::StatsRequest* request,
                                              v1::StatsResponse* response) {
  // Stats of every namespace ("" = all) needs read on "*".
  const std::string& ns = request->namespace_();
  if (auto* r = Refuse(ctx, "Stats",
                       auth_.Check(*ctx, ns.empty() ? kEveryNamespace : ns, Role::kRead))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<db::NamespaceInfo> infos, store_->Stats(request->namespace_()));
    StatsToProto(infos, store_->path(), version_, response);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "Stats", status);
}

grpc::ServerUnaryReactor* MnemoService::Checkpoint(grpc::CallbackServerContext* ctx,
                                                   const v1::CheckpointRequest* request,
                                                   v1::CheckpointResponse* response) {
  if (auto* r = Refuse(ctx, "Checkpoint", auth_.Check(*ctx, kEveryNamespace, Role::kAdmin))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(uint64_t sequence, store_->Checkpoint(request->target_dir()));
    response->set_last_sequence(sequence);
    LogEvent(spdlog::level::info, "checkpoint written",
             {{"target_dir", request->target_dir()}, {"last_sequence", sequence}});
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "Checkpoint", status);
}

grpc::ServerUnaryReactor* MnemoService::Compact(grpc::CallbackServerContext* ctx,
                                                const v1::CompactRequest* request,
                                                v1::CompactResponse* response) {
  const std::string& ns = request->namespace_();
  if (auto* r = Refuse(ctx, "Compact",
                       auth_.Check(*ctx, ns.empty() ? kEveryNamespace : ns, Role::kAdmin))) {
    return r;
  }
  absl::Status status = store_->Compact(request->namespace_());
  if (status.ok()) LogEvent(spdlog::level::info, "compacted", {{"namespace", request->namespace_()}});
  return FinishUnary(ctx, "Compact", status);
}

}  // namespace mnemo::server
