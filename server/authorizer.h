// Authorizer: who is calling (the API key in the call's metadata
// `authorization: Bearer <key>`) and whether its role covers the call;
// the one check at the top of every handler of every service:
//
//   RETURN_IF_ERROR(auth.Check(*ctx, request->namespace_(), Role::kRead));
//
// With authentication off (mnemod without --admin-key-file; Off()) every
// call is allowed. With it on:
// - no key, or one that is unknown or revoked: UNAUTHENTICATED;
// - a key over its request rate: RESOURCE_EXHAUSTED naming the limit
//   (server/rate_limiter.h);
// - a key whose role or namespace does not cover the call:
//   PERMISSION_DENIED naming the role needed, the namespace and the key.
// The global admin's key (read from --admin-key-file) is admin on "*", as
// a key created for namespace "*" with role admin is. Calls on the whole
// server ask for admin on "*" (kEveryNamespace).
//
// Thread-safe.
#ifndef MNEMO_SERVER_AUTHORIZER_H_
#define MNEMO_SERVER_AUTHORIZER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "server/api_keys.h"
#include "server/rate_limiter.h"

namespace mnemo::server {

// The authenticated identity of a call.
struct Caller {
  std::string key_id;  // kAdminKeyId for the admin key; "" with auth off
  std::string ns;      // the key's namespace; kEveryNamespace covers all
  Role role = Role::kRead;
};

// The id the admin key's calls are logged and rate-limited under.
inline constexpr char kAdminKeyId[] = "admin";

class Authorizer {
 public:
  // Authentication off: every call is admin on "*". A process-wide object.
  static Authorizer& Off();

  // Authentication on. `keys` is borrowed and outlives this; `admin_key` is
  // the global admin's key text (at least 16 bytes); `limits` the default
  // request rate of every key (the admin key's too).
  Authorizer(ApiKeys* keys, absl::string_view admin_key, RateLimit limits);

  bool enabled() const { return keys_ != nullptr; }
  // The key registry; null with authentication off.
  ApiKeys* keys() const { return keys_; }

  // The caller of `ctx`, after taking one token of its request rate.
  absl::StatusOr<Caller> Authenticate(const grpc::ServerContextBase& ctx);
  // The same for a key presented outside gRPC (the KV arena socket's
  // handshake); `presented` empty = no key.
  absl::StatusOr<Caller> AuthenticateKey(absl::string_view presented);
  // Whether `caller` holds at least `role` on namespace `ns`;
  // PERMISSION_DENIED naming both when not.
  static absl::Status Permit(const Caller& caller, absl::string_view ns, Role role);
  static bool Covers(const Caller& caller, absl::string_view ns, Role role) {
    return Permit(caller, ns, role).ok();
  }
  // Authenticate, then Permit.
  absl::Status Check(const grpc::ServerContextBase& ctx, absl::string_view ns, Role role);
  // After a key is revoked (removed from keys()): drops its request-rate
  // state and tells the revocation listener (which ends what the key still
  // holds open: its KV arena sessions).
  void Revoked(const std::string& key_id);
  // The one revocation listener (nullptr: none), called under a lock that
  // this call takes too: once it returns, the old listener is no longer
  // running. The listener must not call SetRevocationListener.
  void SetRevocationListener(std::function<void(const std::string& key_id)> listener);

 private:
  Authorizer() : limiter_(RateLimit{}) {}

  ApiKeys* const keys_ = nullptr;
  const std::string admin_digest_;  // SHA-256 of the admin key, hex
  RateLimiter limiter_;
  absl::Mutex listener_mu_;
  std::function<void(const std::string&)> listener_ ABSL_GUARDED_BY(listener_mu_);
};

// The admin key of --admin-key-file: its first line without surrounding
// whitespace. NOT_FOUND when unreadable; INVALID_ARGUMENT when shorter
// than 16 bytes.
absl::StatusOr<std::string> ReadAdminKeyFile(const std::string& path);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_AUTHORIZER_H_
