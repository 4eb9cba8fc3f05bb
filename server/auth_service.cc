// The MnemoAuth service (server/auth_service.h) and its proto <-> ApiKey
// conversion.
#include "server/auth_service.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/logging.h"
#include "server/service.h"

namespace mnemo::server {
namespace {

v1::Role RoleToProto(Role role) {
  switch (role) {
    case Role::kRead:
      return v1::ROLE_READ;
    case Role::kWrite:
      return v1::ROLE_WRITE;
    case Role::kAdmin:
      return v1::ROLE_ADMIN;
  }
  return v1::ROLE_UNSPECIFIED;
}

absl::StatusOr<Role> RoleFromProto(v1::Role role) {
  switch (role) {
    case v1::ROLE_READ:
      return Role::kRead;
    case v1::ROLE_WRITE:
      return Role::kWrite;
    case v1::ROLE_ADMIN:
      return Role::kAdmin;
    default:
      return absl::InvalidArgumentError("role is required: ROLE_READ, ROLE_WRITE or ROLE_ADMIN");
  }
}

void ApiKeyToProto(const ApiKey& key, v1::ApiKeyInfo* out) {
  out->set_id(key.id);
  out->set_namespace_(key.ns);
  out->set_role(RoleToProto(key.role));
  out->set_name(key.name);
  out->set_created_unix_ms(key.created_unix_ms);
  out->set_rate_limit_rps(key.rate_limit_rps);
  out->set_rate_limit_burst(key.rate_limit_burst);
}

absl::Status RequireAuth(const Authorizer& auth) {
  if (auth.enabled()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "authentication is off on this mnemod (start it with --admin-key-file)");
}

}  // namespace

grpc::ServerUnaryReactor* AuthService::CreateKey(grpc::CallbackServerContext* ctx,
                                                 const v1::CreateKeyRequest* request,
                                                 v1::CreateKeyResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(RequireAuth(auth_));
    ASSIGN_OR_RETURN(Caller caller, auth_.Authenticate(*ctx));
    RETURN_IF_ERROR(Authorizer::Permit(caller, request->namespace_(), Role::kAdmin));
    if (request->namespace_().empty()) {
      return absl::InvalidArgumentError("namespace is required (\"*\" = every namespace)");
    }
    NewKeyOptions options;
    options.ns = request->namespace_();
    ASSIGN_OR_RETURN(options.role, RoleFromProto(request->role()));
    options.name = request->name();
    options.rate_limit_rps = request->rate_limit_rps();
    options.rate_limit_burst = request->rate_limit_burst();
    ASSIGN_OR_RETURN(auto created, auth_.keys()->Create(options));
    ApiKeyToProto(created.first, response->mutable_info());
    response->set_key(created.second);
    LogEvent(spdlog::level::info, "api key created",
             {{"key_id", created.first.id},
              {"namespace", created.first.ns},
              {"role", std::string(RoleName(created.first.role))},
              {"name", created.first.name},
              {"by", caller.key_id}});
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "CreateKey", status);
}

grpc::ServerUnaryReactor* AuthService::ListKeys(grpc::CallbackServerContext* ctx,
                                                const v1::ListKeysRequest* request,
                                                v1::ListKeysResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(RequireAuth(auth_));
    const std::string& ns = request->namespace_();
    RETURN_IF_ERROR(auth_.Check(*ctx, ns.empty() ? kEveryNamespace : ns, Role::kAdmin));
    for (const ApiKey& key : auth_.keys()->List(ns)) ApiKeyToProto(key, response->add_keys());
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "ListKeys", status);
}

grpc::ServerUnaryReactor* AuthService::RevokeKey(grpc::CallbackServerContext* ctx,
                                                 const v1::RevokeKeyRequest* request,
                                                 v1::RevokeKeyResponse*) {
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(RequireAuth(auth_));
    ASSIGN_OR_RETURN(Caller caller, auth_.Authenticate(*ctx));
    std::optional<ApiKey> key = auth_.keys()->Find(request->id());
    if (!key.has_value()) {
      return absl::NotFoundError(absl::StrCat("no API key '", request->id(), "'"));
    }
    RETURN_IF_ERROR(Authorizer::Permit(caller, key->ns, Role::kAdmin));
    RETURN_IF_ERROR(auth_.keys()->Revoke(key->id));
    auth_.Revoked(key->id);  // also closes its KV arena sessions
    LogEvent(spdlog::level::info, "api key revoked",
             {{"key_id", key->id}, {"namespace", key->ns}, {"by", caller.key_id}});
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "RevokeKey", status);
}

}  // namespace mnemo::server
