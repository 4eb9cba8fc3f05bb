// The KV-cache service (server/kv_service.h): unary methods and the
// streaming reactors of PutKv and GetKv. Conversion is server/convert.h's.
#include "server/kv_service.h"

#include <atomic>
#include <chrono>
#include <climits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/kv_context.h"
#include "server/convert.h"
#include "server/kv_arena_get.h"
#include "server/kv_block_sender.h"
#include "server/kv_block_wire.h"
#include "server/logging.h"
#include "server/refused_reactor.h"
#include "server/service.h"
#include "server/status_mapping.h"

namespace mnemo::server {
namespace {

// Server side of PutKv: the header opens a db::KvChunkWriter, each layer is
// encoded as it arrives, and the put commits when the client half-closes.
// Any error, or a stream that breaks, ends the call with nothing stored.
class PutKvReactor final : public grpc::ServerReadReactor<v1::PutKvRequest> {
 public:
  // `caller` needs write on the header's namespace.
  PutKvReactor(db::Store* store, KvArena* arena, Caller caller,
               grpc::CallbackServerContext* ctx, v1::PutKvResponse* response)
      : store_(store), arena_(arena), caller_(std::move(caller)), ctx_(ctx), response_(response) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok && (cancelled_.load() || ctx_->IsCancelled())) {
      // A cancelled call (client cancel, deadline, broken connection) ends
      // the stream too; it must not commit what arrived.
      writer_.reset();
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "KV put cancelled; nothing was stored"));
      return;
    }
    absl::Status status = ok ? Consume() : Complete();
    if (!status.ok()) {
      LogRpcFailure("PutKv", status, ctx_->peer());
      writer_.reset();
      Finish(ToGrpcStatus(status));
      return;
    }
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    request_.Clear();
    StartRead(&request_);
  }

  void OnCancel() override { cancelled_ = true; }
  void OnDone() override { delete this; }

 private:
  absl::Status Consume() {
    switch (request_.part_case()) {
      case v1::PutKvRequest::kHeader: {
        if (writer_ != nullptr) {
          return absl::InvalidArgumentError("a KV put carries a second header");
        }
        const v1::PutKvHeader& header = request_.header();
        ns_ = header.namespace_();
        RETURN_IF_ERROR(Authorizer::Permit(caller_, ns_, Role::kWrite));
        ASSIGN_OR_RETURN(writer_, store_->BeginPutKv(ns_, KvPutHeaderFromProto(header)));
        return absl::OkStatus();
      }
      case v1::PutKvRequest::kLayer: {
        if (writer_ == nullptr) {
          return absl::InvalidArgumentError("a KV put must start with its header");
        }
        db::KvTensorShape shape;
        RETURN_IF_ERROR(KvLayerFromProto(request_.layer(), &shape, &k_, &v_));
        return writer_->AddLayer(request_.layer().layer(), shape, k_, v_);
      }
      case v1::PutKvRequest::PART_NOT_SET:
        break;
    }
    return absl::InvalidArgumentError("a KV put message holds neither header nor layer");
  }

  absl::Status Complete() {
    if (writer_ == nullptr) return absl::InvalidArgumentError("a KV put sent no header");
    KvArena::WriteLock arena_lock(arena_, ns_);  // the commit invalidates the hot tier
    ASSIGN_OR_RETURN(db::KvPutResult result, writer_->Commit());
    writer_.reset();
    KvPutResultToProto(result, response_);
    return absl::OkStatus();
  }

  db::Store* const store_;
  KvArena* const arena_;
  const Caller caller_;
  grpc::CallbackServerContext* const ctx_;
  v1::PutKvResponse* const response_;
  std::string ns_;
  v1::PutKvRequest request_;
  std::unique_ptr<db::KvChunkWriter> writer_;
  std::atomic<bool> cancelled_{false};
  std::vector<float> k_, v_;
};

// Server side of Attend: a ping-pong of one response per request. The
// first request opens a db::KvContext; each step after it is answered from
// it, on this callback thread (the context's OpenMP team does the math).
class AttendReactor final
    : public grpc::ServerBidiReactor<v1::AttendRequest, v1::AttendResponse> {
 public:
  // `caller` needs read on the open message's namespace.
  AttendReactor(db::Store* store, Caller caller, grpc::CallbackServerContext* ctx)
      : store_(store), caller_(std::move(caller)), ctx_(ctx) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed (or the call broke)
      End(absl::OkStatus());
      return;
    }
    response_.Clear();
    absl::Status status = Answer();
    if (!status.ok()) {
      End(status);
      return;
    }
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      context_.reset();
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "Attend stream broken"));
      return;
    }
    request_.Clear();
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Answer() {
    switch (request_.part_case()) {
      case v1::AttendRequest::kOpen: {
        if (context_ != nullptr) {
          return absl::InvalidArgumentError("an Attend stream opens its context once");
        }
        RETURN_IF_ERROR(
            Authorizer::Permit(caller_, request_.open().namespace_(), Role::kRead));
        ASSIGN_OR_RETURN(context_,
                         db::OpenKvContext(store_, request_.open().namespace_(),
                                           KvContextOptionsFromProto(request_.open())));
        AttendOpenedToProto(*context_, &response_);
        return absl::OkStatus();
      }
      case v1::AttendRequest::kStep: {
        if (context_ == nullptr) {
          return absl::InvalidArgumentError("an Attend stream must start with its open message");
        }
        const auto t0 = std::chrono::steady_clock::now();
        ASSIGN_OR_RETURN(AttendStepRequest step,
                         AttendStepFromProto(request_.step(), context_->shape()));
        const attention::QueryBlock queries{step.queries.data(), step.n_queries,
                                            static_cast<int32_t>(step.position)};
        if (step.position < 0 || step.position > INT32_MAX - step.n_queries) {
          return absl::InvalidArgumentError(
              absl::StrCat("attend step position ", step.position, " is out of range"));
        }
        attention::ContextAttentionStats stats;
        if (step.top_k) {
          RETURN_IF_ERROR(context_->FetchTopK(step.layer, queries, step.budget.exact_fraction,
                                              &selected_, &stats));
          TopKeysToProto(selected_, &response_);
        } else {
          RETURN_IF_ERROR(context_->Attend(step.layer, queries, step.budget, &partial_, &stats));
          AttendPartialToProto(partial_, &response_);
        }
        response_.set_layer(step.layer);
        AttendStatsToProto(
            stats,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
            &response_);
        return absl::OkStatus();
      }
      case v1::AttendRequest::PART_NOT_SET:
        break;
    }
    return absl::InvalidArgumentError("an Attend message holds neither open nor step");
  }

  void End(const absl::Status& status) {
    if (!status.ok()) LogRpcFailure("Attend", status, ctx_->peer());
    context_.reset();
    Finish(ToGrpcStatus(status));
  }

  db::Store* const store_;
  const Caller caller_;
  grpc::CallbackServerContext* const ctx_;
  std::unique_ptr<db::KvContext> context_;
  v1::AttendRequest request_;
  v1::AttendResponse response_;
  attention::PartialResult partial_;
  attention::SelectedKeys selected_;
};

}  // namespace

KvService::KvService(db::Store* store, std::shared_ptr<KvArena> arena, std::string arena_socket,
                     Authorizer* auth, size_t max_message_bytes)
    : store_(store),
      arena_(std::move(arena)),
      arena_socket_(std::move(arena_socket)),
      auth_(auth != nullptr ? *auth : Authorizer::Off()),
      max_message_bytes_(max_message_bytes) {}

grpc::ServerUnaryReactor* KvService::RegisterKvModel(
    grpc::CallbackServerContext* ctx, const v1::RegisterKvModelRequest* request,
    v1::RegisterKvModelResponse* response) {
  if (auto* r = Refuse(ctx, "RegisterKvModel",
                       auth_.Check(*ctx, request->namespace_(), Role::kAdmin))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::KvConfig config, KvConfigFromProto(request->config()));
    KvArena::WriteLock arena_lock(arena_.get(), request->namespace_());
    ASSIGN_OR_RETURN(db::KvStats stats, store_->RegisterKvModel(request->namespace_(), config));
    KvStatsToProto(stats, response->mutable_stats());
    LogEvent(spdlog::level::info, "KV model registered",
             {{"namespace", request->namespace_()}, {"model", config.model.Canonical()},
              {"codec", std::string(db::KvCodecName(config.codec.kind))}});
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "RegisterKvModel", status);
}

grpc::ServerReadReactor<v1::PutKvRequest>* KvService::PutKv(grpc::CallbackServerContext* ctx,
                                                               v1::PutKvResponse* response) {
  absl::StatusOr<Caller> caller = auth_.Authenticate(*ctx);
  if (!caller.ok()) {
    LogRpcFailure("PutKv", caller.status(), ctx->peer());
    return new RefusedReader<v1::PutKvRequest>(caller.status());
  }
  return new PutKvReactor(store_, arena_.get(), *std::move(caller), ctx, response);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* KvService::GetKv(grpc::CallbackServerContext* ctx,
                                                             const grpc::ByteBuffer* raw) {
  absl::StatusOr<Caller> caller = auth_.Authenticate(*ctx);
  absl::StatusOr<v1::GetKvRequest> request = ParseGetKvRequest(*raw);
  absl::Status s = !caller.ok()    ? caller.status()
                   : !request.ok() ? request.status()
                                   : Authorizer::Permit(*caller, request->namespace_(), Role::kRead);
  if (!s.ok()) {
    LogRpcFailure("GetKv", s, ctx->peer());
    return new RefusedWriter<grpc::ByteBuffer>(s);
  }
  if (!request->arena_session().empty()) {
    // The session must be the caller's key's (checked by the reactor).
    return NewKvArenaGetReactor(store_, arena_, caller->key_id, ctx, *request,
                                KvArenaGetOptions{false, max_message_bytes_});
  }
  if (arena_ != nullptr) {
    // The arena is the hot tier of remote reads too: hits are sent from it.
    return NewKvArenaGetReactor(store_, arena_, caller->key_id, ctx, *request,
                                KvArenaGetOptions{true, max_message_bytes_});
  }
  return NewKvBlockSender(store_, ctx, *request, max_message_bytes_);
}

grpc::ServerUnaryReactor* KvService::ExistsKv(grpc::CallbackServerContext* ctx,
                                                 const v1::ExistsKvRequest* request,
                                                 v1::ExistsKvResponse* response) {
  if (auto* r = Refuse(ctx, "ExistsKv",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<uint32_t> tokens,
                     store_->ExistsKv(request->namespace_(), IdsFromProto(request->chunk_ids()),
                                      FingerprintFromProto(request->model())));
    ExistsKvToProto(tokens, response);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "ExistsKv", status);
}

grpc::ServerUnaryReactor* KvService::DeleteKv(grpc::CallbackServerContext* ctx,
                                                 const v1::DeleteKvRequest* request,
                                                 v1::DeleteKvResponse* response) {
  if (auto* r = Refuse(ctx, "DeleteKv",
                       auth_.Check(*ctx, request->namespace_(), Role::kWrite))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    KvArena::WriteLock arena_lock(arena_.get(), request->namespace_());
    ASSIGN_OR_RETURN(uint64_t deleted,
                     store_->DeleteKv(request->namespace_(), IdsFromProto(request->chunk_ids())));
    response->set_deleted(deleted);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "DeleteKv", status);
}

grpc::ServerUnaryReactor* KvService::LookupKvPrefix(grpc::CallbackServerContext* ctx,
                                                   const v1::LookupKvPrefixRequest* request,
                                                   v1::LookupKvPrefixResponse* response) {
  if (auto* r = Refuse(ctx, "LookupKvPrefix",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    std::vector<int32_t> tokens(request->tokens().begin(), request->tokens().end());
    ASSIGN_OR_RETURN(db::KvPrefixMatch match,
                     store_->LookupPrefix(request->namespace_(),
                                          FingerprintFromProto(request->model()), tokens));
    KvPrefixMatchToProto(std::move(match), response);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "LookupKvPrefix", status);
}

grpc::ServerUnaryReactor* KvService::SetKvRetention(grpc::CallbackServerContext* ctx,
                                                       const v1::SetKvRetentionRequest* request,
                                                       v1::SetKvRetentionResponse* response) {
  if (auto* r = Refuse(ctx, "SetKvRetention",
                       auth_.Check(*ctx, request->namespace_(), Role::kWrite))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    const KvRetention retention = KvRetentionFromProto(*request);
    KvArena::WriteLock arena_lock(arena_.get(), request->namespace_());
    ASSIGN_OR_RETURN(uint64_t updated,
                     store_->SetKvRetention(request->namespace_(),
                                            IdsFromProto(request->chunk_ids()), retention.pin,
                                            retention.ttl_seconds));
    response->set_updated(updated);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "SetKvRetention", status);
}

grpc::ServerUnaryReactor* KvService::GetKvStats(grpc::CallbackServerContext* ctx,
                                                const v1::GetKvStatsRequest* request,
                                                v1::GetKvStatsResponse* response) {
  if (auto* r = Refuse(ctx, "GetKvStats",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::KvStats stats, store_->GetKvStats(request->namespace_()));
    KvStatsToProto(stats, response->mutable_stats());
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "GetKvStats", status);
}

}  // namespace mnemo::server

namespace mnemo::server {

grpc::ServerBidiReactor<v1::AttendRequest, v1::AttendResponse>* KvService::Attend(
    grpc::CallbackServerContext* ctx) {
  absl::StatusOr<Caller> caller = auth_.Authenticate(*ctx);
  if (!caller.ok()) {
    LogRpcFailure("Attend", caller.status(), ctx->peer());
    return new RefusedBidi<v1::AttendRequest, v1::AttendResponse>(caller.status());
  }
  return new AttendReactor(store_, *std::move(caller), ctx);
}

}  // namespace mnemo::server
