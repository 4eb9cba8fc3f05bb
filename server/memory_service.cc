// The memory service (see memory_service.h).
#include "server/memory_service.h"

#include <utility>
#include <vector>

#include "common/status_macros.h"
#include "server/convert_memory.h"
#include "server/service.h"

namespace mnemo::server {

grpc::ServerUnaryReactor* MemoryService::MemoryAdd(grpc::CallbackServerContext* ctx,
                                                   const v1::MemoryAddRequest* request,
                                                   v1::MemoryAddResponse* response) {
  if (auto* r = Refuse(ctx, "MemoryAdd",
                       auth_.Check(*ctx, request->namespace_(), Role::kWrite))) {
    return r;
  }
  const std::vector<db::MemoryInput> inputs = MemoryInputsFromProto(*request);
  absl::StatusOr<std::vector<db::MemoryAddResult>> results = store_->memories().Add(
      request->namespace_(), inputs, MemoryAddOptionsFromProto(*request));
  if (results.ok()) MemoryAddResultsToProto(*results, response);
  return FinishUnary(ctx, "MemoryAdd", results.status());
}

grpc::ServerUnaryReactor* MemoryService::MemorySearch(grpc::CallbackServerContext* ctx,
                                                      const v1::MemorySearchRequest* request,
                                                      v1::MemorySearchResponse* response) {
  if (auto* r = Refuse(ctx, "MemorySearch",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::MemorySearchOptions options, MemorySearchOptionsFromProto(*request));
    ASSIGN_OR_RETURN(std::vector<db::MemoryHit> hits,
                     store_->memories().Search(request->namespace_(), options));
    MemoryHitsToProto(hits, response);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "MemorySearch", status);
}

grpc::ServerUnaryReactor* MemoryService::MemoryGet(grpc::CallbackServerContext* ctx,
                                                   const v1::MemoryGetRequest* request,
                                                   v1::MemoryGetResponse* response) {
  if (auto* r = Refuse(ctx, "MemoryGet",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::StatusOr<db::Memory> memory = store_->memories().Get(request->namespace_(), request->id());
  if (memory.ok()) MemoryToProto(*memory, response->mutable_memory());
  return FinishUnary(ctx, "MemoryGet", memory.status());
}

grpc::ServerUnaryReactor* MemoryService::MemoryList(grpc::CallbackServerContext* ctx,
                                                    const v1::MemoryListRequest* request,
                                                    v1::MemoryListResponse* response) {
  if (auto* r = Refuse(ctx, "MemoryList",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::MemoryListOptions options, MemoryListOptionsFromProto(*request));
    ASSIGN_OR_RETURN(db::MemoryPage page, store_->memories().List(request->namespace_(), options));
    MemoryPageToProto(page, response);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "MemoryList", status);
}

grpc::ServerUnaryReactor* MemoryService::MemoryUpdate(grpc::CallbackServerContext* ctx,
                                                      const v1::MemoryUpdateRequest* request,
                                                      v1::MemoryUpdateResponse* response) {
  if (auto* r = Refuse(ctx, "MemoryUpdate",
                       auth_.Check(*ctx, request->namespace_(), Role::kWrite))) {
    return r;
  }
  absl::StatusOr<db::Memory> memory = store_->memories().Update(
      request->namespace_(), request->id(), MemoryUpdateFromProto(*request));
  if (memory.ok()) MemoryToProto(*memory, response->mutable_memory());
  return FinishUnary(ctx, "MemoryUpdate", memory.status());
}

grpc::ServerUnaryReactor* MemoryService::MemoryDelete(grpc::CallbackServerContext* ctx,
                                                      const v1::MemoryDeleteRequest* request,
                                                      v1::MemoryDeleteResponse* /*response*/) {
  if (auto* r = Refuse(ctx, "MemoryDelete",
                       auth_.Check(*ctx, request->namespace_(), Role::kWrite))) {
    return r;
  }
  return FinishUnary(ctx, "MemoryDelete",
                     store_->memories().Delete(request->namespace_(), request->id(),
                                               request->actor()));
}

grpc::ServerUnaryReactor* MemoryService::MemoryDeleteAll(grpc::CallbackServerContext* ctx,
                                                         const v1::MemoryDeleteAllRequest* request,
                                                         v1::MemoryDeleteAllResponse* response) {
  if (auto* r = Refuse(ctx, "MemoryDeleteAll",
                       auth_.Check(*ctx, request->namespace_(), Role::kWrite))) {
    return r;
  }
  absl::StatusOr<uint64_t> deleted = store_->memories().DeleteAll(
      request->namespace_(), MemoryScopeFromProto(request->scope()), request->actor());
  if (deleted.ok()) response->set_deleted(*deleted);
  return FinishUnary(ctx, "MemoryDeleteAll", deleted.status());
}

grpc::ServerUnaryReactor* MemoryService::MemoryHistory(grpc::CallbackServerContext* ctx,
                                                       const v1::MemoryHistoryRequest* request,
                                                       v1::MemoryHistoryResponse* response) {
  if (auto* r = Refuse(ctx, "MemoryHistory",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::StatusOr<std::vector<db::MemoryEvent>> events =
      store_->memories().History(request->namespace_(), request->id());
  if (events.ok()) MemoryEventsToProto(*events, response);
  return FinishUnary(ctx, "MemoryHistory", events.status());
}

grpc::ServerUnaryReactor* MemoryService::MemoryReset(grpc::CallbackServerContext* ctx,
                                                     const v1::MemoryResetRequest* request,
                                                     v1::MemoryResetResponse* response) {
  if (auto* r = Refuse(ctx, "MemoryReset",
                       auth_.Check(*ctx, request->namespace_(), Role::kAdmin))) {
    return r;
  }
  absl::StatusOr<uint64_t> deleted = store_->memories().Reset(request->namespace_());
  if (deleted.ok()) response->set_deleted(*deleted);
  return FinishUnary(ctx, "MemoryReset", deleted.status());
}

grpc::ServerUnaryReactor* MemoryService::BlockGet(grpc::CallbackServerContext* ctx,
                                                  const v1::BlockGetRequest* request,
                                                  v1::BlockGetResponse* response) {
  if (auto* r = Refuse(ctx, "BlockGet",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::StatusOr<db::MemoryBlock> block =
      store_->memories().GetBlock(request->namespace_(), request->agent_id(), request->label());
  if (block.ok()) MemoryBlockToProto(*block, response->mutable_block());
  return FinishUnary(ctx, "BlockGet", block.status());
}

grpc::ServerUnaryReactor* MemoryService::BlockEdit(grpc::CallbackServerContext* ctx,
                                                   const v1::BlockEditRequest* request,
                                                   v1::BlockEditResponse* response) {
  if (auto* r = Refuse(ctx, "BlockEdit",
                       auth_.Check(*ctx, request->namespace_(), Role::kWrite))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::BlockEdit edit, BlockEditFromProto(*request));
    ASSIGN_OR_RETURN(db::MemoryBlock block,
                     store_->memories().EditBlock(request->namespace_(), request->agent_id(),
                                                  request->label(), edit));
    MemoryBlockToProto(block, response->mutable_block());
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "BlockEdit", status);
}

grpc::ServerUnaryReactor* MemoryService::BlockHistory(grpc::CallbackServerContext* ctx,
                                                      const v1::BlockHistoryRequest* request,
                                                      v1::BlockHistoryResponse* response) {
  if (auto* r = Refuse(ctx, "BlockHistory",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::StatusOr<std::vector<db::BlockEvent>> events = store_->memories().BlockHistory(
      request->namespace_(), request->agent_id(), request->label());
  if (events.ok()) BlockEventsToProto(*events, response);
  return FinishUnary(ctx, "BlockHistory", events.status());
}

}  // namespace mnemo::server
