// The conversation-log calls of the memory service (see memory_service.h):
// thin adapters over db::Store::conversations() (db/convo.h), converted with
// server/convert_convo.h.
#include <vector>

#include "common/status_macros.h"
#include "server/convert_convo.h"
#include "server/memory_service.h"
#include "server/service.h"

namespace mnemo::server {

grpc::ServerUnaryReactor* MemoryService::AppendMessages(grpc::CallbackServerContext* ctx,
                                                        const v1::AppendMessagesRequest* request,
                                                        v1::AppendMessagesResponse* response) {
  if (auto* r = Refuse(ctx, "AppendMessages",
                       auth_.Check(*ctx, request->namespace_(), Role::kWrite))) {
    return r;
  }
  const std::vector<db::MessageInput> inputs = MessageInputsFromProto(*request);
  absl::StatusOr<std::vector<db::Message>> messages =
      store_->conversations().Append(request->namespace_(), request->run_id(), inputs);
  if (messages.ok()) {
    for (const db::Message& m : *messages) MessageToProto(m, response->add_messages());
  }
  return FinishUnary(ctx, "AppendMessages", messages.status());
}

grpc::ServerUnaryReactor* MemoryService::SearchMessages(grpc::CallbackServerContext* ctx,
                                                        const v1::SearchMessagesRequest* request,
                                                        v1::SearchMessagesResponse* response) {
  if (auto* r = Refuse(ctx, "SearchMessages",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::StatusOr<std::vector<db::MessageHit>> hits = store_->conversations().Search(
      request->namespace_(), MessageSearchOptionsFromProto(*request));
  if (hits.ok()) MessageHitsToProto(*hits, response);
  return FinishUnary(ctx, "SearchMessages", hits.status());
}

grpc::ServerUnaryReactor* MemoryService::ListMessages(grpc::CallbackServerContext* ctx,
                                                      const v1::ListMessagesRequest* request,
                                                      v1::ListMessagesResponse* response) {
  if (auto* r = Refuse(ctx, "ListMessages",
                       auth_.Check(*ctx, request->namespace_(), Role::kRead))) {
    return r;
  }
  absl::StatusOr<db::MessagePage> page = store_->conversations().List(
      request->namespace_(), MessageListOptionsFromProto(*request));
  if (page.ok()) MessagePageToProto(*page, response);
  return FinishUnary(ctx, "ListMessages", page.status());
}

grpc::ServerUnaryReactor* MemoryService::DeleteRun(grpc::CallbackServerContext* ctx,
                                                   const v1::DeleteRunRequest* request,
                                                   v1::DeleteRunResponse* response) {
  if (auto* r = Refuse(ctx, "DeleteRun",
                       auth_.Check(*ctx, request->namespace_(), Role::kWrite))) {
    return r;
  }
  absl::StatusOr<uint64_t> deleted =
      store_->conversations().DeleteRun(request->namespace_(), request->run_id());
  if (deleted.ok()) response->set_deleted(*deleted);
  return FinishUnary(ctx, "DeleteRun", deleted.status());
}

}  // namespace mnemo::server
