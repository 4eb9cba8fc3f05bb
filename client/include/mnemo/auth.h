// API keys in the C++ SDK (the MnemoAuth service, proto/mnemo/v1/auth.proto):
// the types of the Client::*ApiKey calls (client.h). A key grants one role
// on one namespace ("*" = every namespace); a client sends its key with
// ClientOptions::api_key. See README "Authentication" for what each role
// covers.
#ifndef MNEMO_CLIENT_AUTH_H_
#define MNEMO_CLIENT_AUTH_H_

#include <cstdint>
#include <string>

namespace mnemo {

// Ordered: each covers the ones before it.
enum class ApiKeyRole { kRead, kWrite, kAdmin };

struct ApiKeyInfo {
  std::string id;  // public; the key text starts with "mk_<id>."
  std::string ns;  // "*" = every namespace
  ApiKeyRole role = ApiKeyRole::kRead;
  std::string name;
  int64_t created_unix_ms = 0;
  double rate_limit_rps = 0;      // 0 = the server's --rate-limit-rps
  uint32_t rate_limit_burst = 0;  // 0 = the server's --rate-limit-burst
};

struct NewApiKey {
  std::string ns;  // required; "*" needs admin on "*"
  ApiKeyRole role = ApiKeyRole::kRead;
  std::string name;  // optional label
  double rate_limit_rps = 0;
  uint32_t rate_limit_burst = 0;
};

struct CreatedApiKey {
  ApiKeyInfo info;
  std::string key;  // the secret key text: shown once, never retrievable again
};

}  // namespace mnemo

#endif  // MNEMO_CLIENT_AUTH_H_
