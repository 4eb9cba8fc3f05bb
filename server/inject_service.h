// The mnemo.v1.MnemoInject gRPC service (mnemo/v1/inject.proto): memory
// injection, a thin, final adapter over db::Store's injection calls, served
// by mnemod next to MnemoService and MnemoKv. Each method converts with
// server/convert_inject.h, calls the store and maps the status in one place
// (FinishUnary). Handlers run on gRPC's callback threads; the store is
// thread-safe.
#ifndef MNEMO_SERVER_INJECT_SERVICE_H_
#define MNEMO_SERVER_INJECT_SERVICE_H_

#include "db/store.h"
#include "server/authorizer.h"
#include "mnemo/v1/inject.grpc.pb.h"

namespace mnemo::server {

class InjectService final : public v1::MnemoInject::CallbackService {
 public:
  // Borrows `store`, which must outlive the service, and `auth` (null =
  // Authorizer::Off()), which checks every call.
  explicit InjectService(db::Store* store, Authorizer* auth = nullptr)
      : store_(store), auth_(auth != nullptr ? *auth : Authorizer::Off()) {}

  grpc::ServerUnaryReactor* RegisterInjectionModel(
      grpc::CallbackServerContext* ctx, const v1::RegisterInjectionModelRequest* request,
      v1::RegisterInjectionModelResponse* response) override;
  grpc::ServerUnaryReactor* GetInjectionModel(grpc::CallbackServerContext* ctx,
                                              const v1::GetInjectionModelRequest* request,
                                              v1::GetInjectionModelResponse* response) override;
  grpc::ServerUnaryReactor* Recall(grpc::CallbackServerContext* ctx,
                                   const v1::RecallRequest* request,
                                   v1::RecallResponse* response) override;

 private:
  db::Store* const store_;
  Authorizer& auth_;
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_INJECT_SERVICE_H_
