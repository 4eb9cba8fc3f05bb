// Validation of the KV cache configuration of a namespace (see kv.h).
#include "db/kv.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "db/kv_space.h"

namespace mnemo::db {

absl::Status ValidateKvConfig(const KvConfig& config) {
  const ModelFingerprint& m = config.model;
  auto bad = [](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("KV model: ", why));
  };
  if (m.architecture.empty()) return bad("architecture is empty");
  if (m.n_layers <= 0 || m.n_layers > 1024) return bad("n_layers must be in 1..1024");
  if (m.n_heads <= 0 || m.n_kv_heads <= 0) return bad("n_heads and n_kv_heads must be positive");
  if (m.n_heads % m.n_kv_heads != 0) return bad("n_kv_heads must divide n_heads");
  if (m.head_dim <= 0 || m.head_dim % 2 != 0 || m.head_dim > 4096) {
    return bad("head_dim must be even and in 2..4096");
  }
  if (m.dim <= 0) return bad("dim must be positive");
  if (!std::isfinite(m.rope_theta) || m.rope_theta <= 0) {
    return bad("rope_theta must be finite and positive");
  }
  if (m.rope_style != "half") return bad("rope_style must be \"half\"");
  if (m.dtype.empty()) return bad("dtype is empty");
  if (m.tokenizer_sha256.empty()) return bad("tokenizer_sha256 is empty");
  if (m.Canonical().find_first_of('\n') != std::string::npos) return bad("fields hold a newline");
  for (const std::string* s : {&m.architecture, &m.rope_style, &m.dtype, &m.tokenizer_sha256}) {
    if (s->find_first_of(";=") != std::string::npos) return bad("fields may not hold ';' or '='");
  }
  if (config.default_ttl_seconds < 0) {
    return absl::InvalidArgumentError("default_ttl_seconds must be >= 0");
  }
  if (config.key_index_keys_per_cluster > kMaxKeysPerCluster) {
    return absl::InvalidArgumentError(absl::StrCat("key_index_keys_per_cluster must be at most ",
                                                   kMaxKeysPerCluster, " (0 = no key index)"));
  }
  auto policy = NewKvEvictionPolicy(config.eviction_policy);
  if (!policy.ok()) return policy.status();
  return ValidateKvCodecOptions(config.codec);
}

}  // namespace mnemo::db
