// The model fingerprint: the fields that decide whether a stored KV cache,
// key index or memory token produced by one model can be used by another.
// Two models with equal fingerprints produce interchangeable K/V; anything
// else is refused (the store answers FAILED_PRECONDITION naming the first
// differing field). Shared by the store (lineage checks) and the reference
// decoder (decoder/fingerprint.h fills one from a model config), and part of
// the installed SDK (mnemo/client.h): a decoder passes its fingerprint to the
// KV calls as is. No dependency beyond Abseil.
#ifndef MNEMO_MODEL_FINGERPRINT_H_
#define MNEMO_MODEL_FINGERPRINT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace mnemo {

struct ModelFingerprint {
  std::string architecture;  // "llama"
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int dim = 0;
  double rope_theta = 0;
  std::string rope_style;        // "half"
  std::string dtype;             // of the K/V values: "float32"
  std::string tokenizer_sha256;  // hex SHA-256 of the tokenizer model file

  // "architecture=llama;n_layers=6;...;tokenizer_sha256=<hex>": the fields
  // in the order declared above, numbers in shortest round-trip form. Equal
  // fingerprints give byte-equal strings.
  std::string Canonical() const;
  // 64-bit FNV-1a of Canonical(). Stable across builds and machines.
  uint64_t Hash() const;
  // Hash() as 16 lowercase hex digits.
  std::string HashHex() const;

  bool operator==(const ModelFingerprint& other) const = default;
};

// Parses Canonical()'s output back. INVALID_ARGUMENT naming the field that
// is missing, unknown, repeated or malformed.
absl::StatusOr<ModelFingerprint> ParseFingerprint(const std::string& canonical);

struct FingerprintDiff {
  std::string field;     // e.g. "n_kv_heads"
  std::string expected;  // value in the first fingerprint, canonical form
  std::string actual;    // value in the second

  // "n_kv_heads: expected 2, got 4".
  std::string ToString() const;
};

// The first field (in declaration order) where `expected` and `actual`
// differ; nullopt when they are equal.
std::optional<FingerprintDiff> FirstDifference(const ModelFingerprint& expected,
                                               const ModelFingerprint& actual);

}  // namespace mnemo

#endif  // MNEMO_MODEL_FINGERPRINT_H_
