// ApiKeys (server/api_keys.h): records as JSON in the store, a map in memory.
#include "server/api_keys.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/auth_records.h"
#include "nlohmann/json.hpp"
#include "server/api_key_secret.h"

namespace mnemo::server {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxNameBytes = 256;

std::string ToRecord(const ApiKey& key) {
  return json{{"ns", key.ns},
              {"role", std::string(RoleName(key.role))},
              {"name", key.name},
              {"created_unix_ms", key.created_unix_ms},
              {"salt", key.salt},
              {"digest", key.digest},
              {"rate_limit_rps", key.rate_limit_rps},
              {"rate_limit_burst", key.rate_limit_burst}}
      .dump();
}

absl::StatusOr<ApiKey> FromRecord(const std::string& id, const std::string& record) {
  const json j = json::parse(record, nullptr, /*allow_exceptions=*/false);
  auto bad = [&] {
    return absl::DataLossError(absl::StrCat("API key record '", id, "' is corrupt"));
  };
  if (!j.is_object()) return bad();
  ApiKey key;
  key.id = id;
  try {
    key.ns = j.at("ns").get<std::string>();
    absl::StatusOr<Role> role = ParseRole(j.at("role").get<std::string>());
    if (!role.ok()) return bad();
    key.role = *role;
    key.name = j.value("name", "");
    key.created_unix_ms = j.value("created_unix_ms", int64_t{0});
    key.salt = j.at("salt").get<std::string>();
    key.digest = j.at("digest").get<std::string>();
    key.rate_limit_rps = j.value("rate_limit_rps", 0.0);
    key.rate_limit_burst = j.value("rate_limit_burst", uint32_t{0});
  } catch (const json::exception&) {
    return bad();
  }
  return key;
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kRead:
      return "read";
    case Role::kWrite:
      return "write";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  for (Role r : {Role::kRead, Role::kWrite, Role::kAdmin}) {
    if (name == RoleName(r)) return r;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role '", name, "' (read, write or admin)"));
}

absl::StatusOr<std::unique_ptr<ApiKeys>> ApiKeys::Load(db::Store* store) {
  auto keys = std::unique_ptr<ApiKeys>(new ApiKeys(store));
  ASSIGN_OR_RETURN(auto records, db::ListAuthRecords(store));
  absl::MutexLock l(&keys->mu_);
  for (const auto& [id, record] : records) {
    ASSIGN_OR_RETURN(ApiKey key, FromRecord(id, record));
    keys->keys_.emplace(id, std::move(key));
  }
  return keys;
}

absl::StatusOr<std::pair<ApiKey, std::string>> ApiKeys::Create(const NewKeyOptions& options) {
  if (options.ns != kEveryNamespace) RETURN_IF_ERROR(db::ValidateNamespaceName(options.ns));
  if (options.name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key name is ", options.name.size(), " bytes (at most ", kMaxNameBytes, ")"));
  }
  if (!(options.rate_limit_rps >= 0)) {
    return absl::InvalidArgumentError("rate_limit_rps must be >= 0");
  }
  ApiKey key;
  KeyText text;
  ASSIGN_OR_RETURN(text.id, RandomHex(8));
  ASSIGN_OR_RETURN(text.secret, RandomHex(32));
  ASSIGN_OR_RETURN(key.salt, RandomHex(16));
  key.id = text.id;
  key.ns = options.ns;
  key.role = options.role;
  key.name = options.name;
  key.created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  key.rate_limit_rps = options.rate_limit_rps;
  key.rate_limit_burst = options.rate_limit_burst;
  key.digest = SaltedDigest(key.salt, text.secret);
  absl::MutexLock l(&mu_);
  if (keys_.contains(key.id)) return absl::AbortedError("key id collision; try again");
  RETURN_IF_ERROR(db::PutAuthRecord(store_, key.id, ToRecord(key)));
  keys_.emplace(key.id, key);
  return std::make_pair(std::move(key), FormatKey(text));
}

absl::Status ApiKeys::Revoke(absl::string_view id) {
  absl::MutexLock l(&mu_);
  if (!keys_.contains(id)) return absl::NotFoundError(absl::StrCat("no API key '", id, "'"));
  RETURN_IF_ERROR(db::DeleteAuthRecord(store_, id));
  keys_.erase(id);
  return absl::OkStatus();
}

std::vector<ApiKey> ApiKeys::List(absl::string_view ns) const {
  std::vector<ApiKey> out;
  {
    absl::ReaderMutexLock l(&mu_);
    for (const auto& [id, key] : keys_) {
      if (ns.empty() || key.ns == ns) out.push_back(key);
    }
  }
  std::sort(out.begin(), out.end(), [](const ApiKey& a, const ApiKey& b) { return a.id < b.id; });
  return out;
}

std::optional<ApiKey> ApiKeys::Find(absl::string_view id) const {
  absl::ReaderMutexLock l(&mu_);
  auto it = keys_.find(id);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

std::optional<ApiKey> ApiKeys::Verify(absl::string_view presented) const {
  std::optional<KeyText> text = ParseKey(presented);
  if (!text.has_value()) return std::nullopt;
  std::optional<ApiKey> key = Find(text->id);
  if (!key.has_value() || !ConstantTimeEquals(SaltedDigest(key->salt, text->secret), key->digest)) {
    return std::nullopt;
  }
  return key;
}

}  // namespace mnemo::server
