// The secret side of mnemod's API keys: the key text a client sends, its
// random parts, and the salted digest the store keeps in its place.
//
// A key reads "mk_<id>.<secret>": <id> is 16 hex digits (8 random bytes),
// public and listed; <secret> is 64 hex digits (32 random bytes from
// OpenSSL's RAND_bytes) and never stored. The store keeps a random 16-byte
// salt and SHA-256(salt || secret) per key: with 256 random bits in the
// secret one round of a cryptographic hash is as strong as a slow KDF, and
// it costs well under a microsecond per call. Digests are compared with
// CRYPTO_memcmp (constant time).
#ifndef MNEMO_SERVER_API_KEY_SECRET_H_
#define MNEMO_SERVER_API_KEY_SECRET_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mnemo::server {

struct KeyText {
  std::string id;
  std::string secret;
};

// `bytes` random bytes from OpenSSL as lowercase hex. INTERNAL when the
// generator fails.
absl::StatusOr<std::string> RandomHex(size_t bytes);

// "mk_" + id + "." + secret.
std::string FormatKey(const KeyText& key);
// The parts of a key in FormatKey's form; nullopt for anything else.
std::optional<KeyText> ParseKey(absl::string_view text);

// Lowercase hex SHA-256 of salt || secret (`salt` as stored, hex).
std::string SaltedDigest(absl::string_view salt, absl::string_view secret);

// a == b in time that depends only on the lengths.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_API_KEY_SECRET_H_
