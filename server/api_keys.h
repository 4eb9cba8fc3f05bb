// ApiKeys: mnemod's API keys, each granting one role on one namespace ("*"
// = every namespace), kept as salted digests in the store
// (db/auth_records.h: meta "ak/" + id, one synced write per change)
// and in memory for the per-call lookup.
//
// A record is JSON: {"ns", "role", "name", "created_unix_ms", "salt",
// "digest", "rate_limit_rps", "rate_limit_burst"}; never the secret (see
// server/api_key_secret.h).
//
// Thread-safe: lookups share a reader lock; Create and Revoke write the
// store first and then the map, so a crash never leaves a key in memory
// that the store lacks.
#ifndef MNEMO_SERVER_API_KEYS_H_
#define MNEMO_SERVER_API_KEYS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "db/store.h"

namespace mnemo::server {

// Ordered: each role covers the ones below it.
enum class Role { kRead = 1, kWrite = 2, kAdmin = 3 };

// "read", "write", "admin".
absl::string_view RoleName(Role role);
// INVALID_ARGUMENT for anything but RoleName's words.
absl::StatusOr<Role> ParseRole(absl::string_view name);

// The namespace of a key that covers every namespace.
inline constexpr char kEveryNamespace[] = "*";

struct ApiKey {
  std::string id;  // public: 16 hex digits
  std::string ns;  // a namespace name or kEveryNamespace
  Role role = Role::kRead;
  std::string name;  // the creator's label
  int64_t created_unix_ms = 0;
  double rate_limit_rps = 0;    // 0 = the server's default
  uint32_t rate_limit_burst = 0;  // 0 = the server's default
  std::string salt;    // hex
  std::string digest;  // hex SHA-256(salt || secret)
};

struct NewKeyOptions {
  std::string ns;
  Role role = Role::kRead;
  std::string name;
  double rate_limit_rps = 0;
  uint32_t rate_limit_burst = 0;
};

class ApiKeys {
 public:
  // Reads every key of `store` (borrowed; outlives this). DATA_LOSS for a
  // record that does not parse.
  static absl::StatusOr<std::unique_ptr<ApiKeys>> Load(db::Store* store);

  // A new key: its record, and the key text (returned only here).
  // INVALID_ARGUMENT for a bad namespace name (other than "*"), a name over
  // 256 bytes or a negative rate.
  absl::StatusOr<std::pair<ApiKey, std::string>> Create(const NewKeyOptions& options)
      ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND for an unknown id.
  absl::Status Revoke(absl::string_view id) ABSL_LOCKS_EXCLUDED(mu_);
  // Keys by id; only those of namespace `ns` unless it is empty.
  std::vector<ApiKey> List(absl::string_view ns) const ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<ApiKey> Find(absl::string_view id) const ABSL_LOCKS_EXCLUDED(mu_);
  // The key whose text is `presented` (its secret's digest compared in
  // constant time); nullopt for an unknown, revoked or malformed key.
  std::optional<ApiKey> Verify(absl::string_view presented) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit ApiKeys(db::Store* store) : store_(store) {}

  db::Store* const store_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, ApiKey> keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_API_KEYS_H_
