// The mnemo.v1.MnemoMemory gRPC service: agent memories and conversation
// logs, a thin, final adapter over db::Store::memories() (db/memory.h) and
// db::Store::conversations() (db/convo.h, handlers in convo_rpc.cc), served
// by mnemod next to the core and KV services. Each method converts the
// request with server/convert_memory.h or convert_convo.h, calls the store,
// converts the result back and maps the status in one place
// (FinishUnary). Handlers run on gRPC's callback threads; the store is
// thread-safe.
#ifndef MNEMO_SERVER_MEMORY_SERVICE_H_
#define MNEMO_SERVER_MEMORY_SERVICE_H_

#include "db/store.h"
#include "mnemo/v1/memory.grpc.pb.h"
#include "server/authorizer.h"

namespace mnemo::server {

class MemoryService final : public v1::MnemoMemory::CallbackService {
 public:
  // Borrows `store`, which must outlive the service, and `auth` (null =
  // Authorizer::Off()), which checks every call.
  explicit MemoryService(db::Store* store, Authorizer* auth = nullptr)
      : store_(store), auth_(auth != nullptr ? *auth : Authorizer::Off()) {}

  grpc::ServerUnaryReactor* MemoryAdd(grpc::CallbackServerContext* ctx,
                                      const v1::MemoryAddRequest* request,
                                      v1::MemoryAddResponse* response) override;
  grpc::ServerUnaryReactor* MemorySearch(grpc::CallbackServerContext* ctx,
                                         const v1::MemorySearchRequest* request,
                                         v1::MemorySearchResponse* response) override;
  grpc::ServerUnaryReactor* MemoryGet(grpc::CallbackServerContext* ctx,
                                      const v1::MemoryGetRequest* request,
                                      v1::MemoryGetResponse* response) override;
  grpc::ServerUnaryReactor* MemoryList(grpc::CallbackServerContext* ctx,
                                       const v1::MemoryListRequest* request,
                                       v1::MemoryListResponse* response) override;
  grpc::ServerUnaryReactor* MemoryUpdate(grpc::CallbackServerContext* ctx,
                                         const v1::MemoryUpdateRequest* request,
                                         v1::MemoryUpdateResponse* response) override;
  grpc::ServerUnaryReactor* MemoryDelete(grpc::CallbackServerContext* ctx,
                                         const v1::MemoryDeleteRequest* request,
                                         v1::MemoryDeleteResponse* response) override;
  grpc::ServerUnaryReactor* MemoryDeleteAll(grpc::CallbackServerContext* ctx,
                                            const v1::MemoryDeleteAllRequest* request,
                                            v1::MemoryDeleteAllResponse* response) override;
  grpc::ServerUnaryReactor* MemoryHistory(grpc::CallbackServerContext* ctx,
                                          const v1::MemoryHistoryRequest* request,
                                          v1::MemoryHistoryResponse* response) override;
  grpc::ServerUnaryReactor* MemoryReset(grpc::CallbackServerContext* ctx,
                                        const v1::MemoryResetRequest* request,
                                        v1::MemoryResetResponse* response) override;
  grpc::ServerUnaryReactor* BlockGet(grpc::CallbackServerContext* ctx,
                                     const v1::BlockGetRequest* request,
                                     v1::BlockGetResponse* response) override;
  grpc::ServerUnaryReactor* BlockEdit(grpc::CallbackServerContext* ctx,
                                      const v1::BlockEditRequest* request,
                                      v1::BlockEditResponse* response) override;
  grpc::ServerUnaryReactor* BlockHistory(grpc::CallbackServerContext* ctx,
                                         const v1::BlockHistoryRequest* request,
                                         v1::BlockHistoryResponse* response) override;
  // Conversation logs (convo_rpc.cc, over db::Store::conversations()).
  grpc::ServerUnaryReactor* AppendMessages(grpc::CallbackServerContext* ctx,
                                           const v1::AppendMessagesRequest* request,
                                           v1::AppendMessagesResponse* response) override;
  grpc::ServerUnaryReactor* SearchMessages(grpc::CallbackServerContext* ctx,
                                           const v1::SearchMessagesRequest* request,
                                           v1::SearchMessagesResponse* response) override;
  grpc::ServerUnaryReactor* ListMessages(grpc::CallbackServerContext* ctx,
                                         const v1::ListMessagesRequest* request,
                                         v1::ListMessagesResponse* response) override;
  grpc::ServerUnaryReactor* DeleteRun(grpc::CallbackServerContext* ctx,
                                      const v1::DeleteRunRequest* request,
                                      v1::DeleteRunResponse* response) override;

 private:
  db::Store* const store_;
  Authorizer& auth_;
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_MEMORY_SERVICE_H_
