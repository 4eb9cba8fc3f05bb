// The mnemo.v1.MnemoAuth gRPC service (proto/mnemo/v1/auth.proto): create,
// list and revoke API keys, over ApiKeys (server/api_keys.h) and checked
// by the Authorizer like every other service:
// - CreateKey: admin on the key's namespace ("*" for a key on "*");
// - ListKeys: admin on the namespace asked for; every key: admin on "*";
// - RevokeKey: admin on the key's namespace (NOT_FOUND for an unknown id).
// Every change is logged ("api key created" / "api key revoked") with the
// key's id and the caller's. With authentication off every call is
// FAILED_PRECONDITION.
#ifndef MNEMO_SERVER_AUTH_SERVICE_H_
#define MNEMO_SERVER_AUTH_SERVICE_H_

#include "mnemo/v1/auth.grpc.pb.h"
#include "server/authorizer.h"

namespace mnemo::server {

class AuthService final : public v1::MnemoAuth::CallbackService {
 public:
  // Borrows `auth`, which outlives the service.
  explicit AuthService(Authorizer* auth) : auth_(*auth) {}

  grpc::ServerUnaryReactor* CreateKey(grpc::CallbackServerContext* ctx,
                                      const v1::CreateKeyRequest* request,
                                      v1::CreateKeyResponse* response) override;
  grpc::ServerUnaryReactor* ListKeys(grpc::CallbackServerContext* ctx,
                                     const v1::ListKeysRequest* request,
                                     v1::ListKeysResponse* response) override;
  grpc::ServerUnaryReactor* RevokeKey(grpc::CallbackServerContext* ctx,
                                      const v1::RevokeKeyRequest* request,
                                      v1::RevokeKeyResponse* response) override;

 private:
  Authorizer& auth_;
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_AUTH_SERVICE_H_
