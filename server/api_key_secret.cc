// Key text, randomness and digests of mnemod's API keys (OpenSSL).
#include "server/api_key_secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mnemo::server {
namespace {

constexpr absl::string_view kPrefix = "mk_";
constexpr size_t kIdHexDigits = 16;
constexpr size_t kSecretHexDigits = 64;

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    return absl::InternalError("OpenSSL RAND_bytes failed");
  }
  return absl::BytesToHexString(raw);
}

std::string FormatKey(const KeyText& key) { return absl::StrCat(kPrefix, key.id, ".", key.secret); }

std::optional<KeyText> ParseKey(absl::string_view text) {
  if (!absl::StartsWith(text, kPrefix)) return std::nullopt;
  text.remove_prefix(kPrefix.size());
  if (text.size() != kIdHexDigits + 1 + kSecretHexDigits || text[kIdHexDigits] != '.') {
    return std::nullopt;
  }
  KeyText key{std::string(text.substr(0, kIdHexDigits)),
              std::string(text.substr(kIdHexDigits + 1))};
  if (!IsLowerHex(key.id) || !IsLowerHex(key.secret)) return std::nullopt;
  return key;
}

std::string SaltedDigest(absl::string_view salt, absl::string_view secret) {
  const std::string input = absl::StrCat(salt, secret);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), length));
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace mnemo::server
