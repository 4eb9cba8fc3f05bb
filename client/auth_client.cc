// ClientImpl's API-key calls (MnemoAuth) with their SDK <-> wire
// conversion, and the UNIMPLEMENTED defaults of Client.
#include "absl/strings/str_cat.h"
#include "client/client_impl.h"
#include "common/status_macros.h"

namespace mnemo {
namespace {

v1::Role RoleToProto(ApiKeyRole role) {
  switch (role) {
    case ApiKeyRole::kRead:
      return v1::ROLE_READ;
    case ApiKeyRole::kWrite:
      return v1::ROLE_WRITE;
    case ApiKeyRole::kAdmin:
      return v1::ROLE_ADMIN;
  }
  return v1::ROLE_UNSPECIFIED;
}

ApiKeyRole RoleFromProto(v1::Role role) {
  switch (role) {
    case v1::ROLE_WRITE:
      return ApiKeyRole::kWrite;
    case v1::ROLE_ADMIN:
      return ApiKeyRole::kAdmin;
    default:
      return ApiKeyRole::kRead;
  }
}

ApiKeyInfo ApiKeyFromProto(const v1::ApiKeyInfo& in) {
  ApiKeyInfo out;
  out.id = in.id();
  out.ns = in.namespace_();
  out.role = RoleFromProto(in.role());
  out.name = in.name();
  out.created_unix_ms = in.created_unix_ms();
  out.rate_limit_rps = in.rate_limit_rps();
  out.rate_limit_burst = in.rate_limit_burst();
  return out;
}

absl::Status Unimplemented(const char* what) {
  return absl::UnimplementedError(absl::StrCat(what, " is not implemented by this client"));
}

}  // namespace

absl::StatusOr<CreatedApiKey> Client::CreateApiKey(const NewApiKey&, const CallOptions&) {
  return Unimplemented("CreateApiKey");
}
absl::StatusOr<std::vector<ApiKeyInfo>> Client::ListApiKeys(const std::string&,
                                                            const CallOptions&) {
  return Unimplemented("ListApiKeys");
}
absl::Status Client::RevokeApiKey(const std::string&, const CallOptions&) {
  return Unimplemented("RevokeApiKey");
}

namespace client_internal {

absl::StatusOr<CreatedApiKey> ClientImpl::CreateApiKey(const NewApiKey& key,
                                                       const CallOptions& call) {
  v1::CreateKeyRequest request;
  request.set_namespace_(key.ns);
  request.set_role(RoleToProto(key.role));
  request.set_name(key.name);
  request.set_rate_limit_rps(key.rate_limit_rps);
  request.set_rate_limit_burst(key.rate_limit_burst);
  v1::CreateKeyResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return auth_stub_->CreateKey(ctx, request, &response);
  }));
  return CreatedApiKey{ApiKeyFromProto(response.info()), response.key()};
}

absl::StatusOr<std::vector<ApiKeyInfo>> ClientImpl::ListApiKeys(const std::string& ns,
                                                                const CallOptions& call) {
  v1::ListKeysRequest request;
  request.set_namespace_(ns);
  v1::ListKeysResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return auth_stub_->ListKeys(ctx, request, &response);
  }));
  std::vector<ApiKeyInfo> out;
  for (const v1::ApiKeyInfo& k : response.keys()) out.push_back(ApiKeyFromProto(k));
  return out;
}

absl::Status ClientImpl::RevokeApiKey(const std::string& id, const CallOptions& call) {
  v1::RevokeKeyRequest request;
  request.set_id(id);
  v1::RevokeKeyResponse response;
  return Call(call, [&](grpc::ClientContext* ctx) {
    return auth_stub_->RevokeKey(ctx, request, &response);
  });
}

}  // namespace client_internal
}  // namespace mnemo
