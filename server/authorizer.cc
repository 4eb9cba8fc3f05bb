// Authorizer (server/authorizer.h).
#include "server/authorizer.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/api_key_secret.h"

namespace mnemo::server {
namespace {

constexpr size_t kMinAdminKeyBytes = 16;

// The key of an "authorization: Bearer <key>" header; empty when none.
absl::string_view BearerKey(const grpc::ServerContextBase& ctx) {
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return {};
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "bearer ";
  if (value.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
    return {};
  }
  return absl::StripAsciiWhitespace(value.substr(kBearer.size()));
}

std::string Describe(absl::string_view ns) {
  return ns == kEveryNamespace ? std::string("every namespace (\"*\")")
                               : absl::StrCat("namespace '", ns, "'");
}

}  // namespace

Authorizer& Authorizer::Off() {
  static Authorizer* off = new Authorizer();
  return *off;
}

Authorizer::Authorizer(ApiKeys* keys, absl::string_view admin_key, RateLimit limits)
    : keys_(keys), admin_digest_(SaltedDigest("", admin_key)), limiter_(limits) {}

absl::StatusOr<Caller> Authorizer::Authenticate(const grpc::ServerContextBase& ctx) {
  if (!enabled()) return Caller{"", kEveryNamespace, Role::kAdmin};
  return AuthenticateKey(BearerKey(ctx));
}

absl::StatusOr<Caller> Authorizer::AuthenticateKey(absl::string_view presented) {
  if (!enabled()) return Caller{"", kEveryNamespace, Role::kAdmin};
  if (presented.empty()) {
    return absl::UnauthenticatedError(
        "this mnemod requires an API key: send the metadata 'authorization: Bearer <key>' "
        "(SDK ClientOptions::api_key, mnemo --api-key or $MNEMO_API_KEY)");
  }
  Caller caller;
  RateLimit own;
  if (ConstantTimeEquals(SaltedDigest("", presented), admin_digest_)) {
    caller = Caller{kAdminKeyId, kEveryNamespace, Role::kAdmin};
  } else {
    std::optional<ApiKey> key = keys_->Verify(presented);
    if (!key.has_value()) return absl::UnauthenticatedError("unknown or revoked API key");
    caller = Caller{key->id, key->ns, key->role};
    own = RateLimit{key->rate_limit_rps, key->rate_limit_burst};
  }
  RETURN_IF_ERROR(limiter_.Take(caller.key_id, own));
  return caller;
}

absl::Status Authorizer::Permit(const Caller& caller, absl::string_view ns, Role role) {
  const bool ns_ok = caller.ns == kEveryNamespace || caller.ns == ns;
  if (ns_ok && caller.role >= role) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("this call needs role ", RoleName(role), " on ", Describe(ns), "; API key '",
                   caller.key_id, "' has role ", RoleName(caller.role), " on ",
                   Describe(caller.ns)));
}

void Authorizer::Revoked(const std::string& key_id) {
  limiter_.Forget(key_id);
  // Called under the lock, so that replacing the listener waits for a call
  // in progress (its owner may be going away).
  absl::MutexLock lock(&listener_mu_);
  if (listener_) listener_(key_id);
}

void Authorizer::SetRevocationListener(std::function<void(const std::string&)> listener) {
  absl::MutexLock lock(&listener_mu_);
  listener_ = std::move(listener);
}

absl::Status Authorizer::Check(const grpc::ServerContextBase& ctx, absl::string_view ns,
                               Role role) {
  ASSIGN_OR_RETURN(Caller caller, Authenticate(ctx));
  return Permit(caller, ns, role);
}

absl::StatusOr<std::string> ReadAdminKeyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read --admin-key-file ", path));
  std::string line;
  std::getline(in, line);
  std::string key(absl::StripAsciiWhitespace(line));
  if (key.size() < kMinAdminKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--admin-key-file ", path, ": the key is ", key.size(),
                     " bytes; at least ", kMinAdminKeyBytes,
                     " are required (e.g. openssl rand -hex 32)"));
  }
  return key;
}

}  // namespace mnemo::server
