// The 64-bit FNV-1a hash: the one copy behind every non-cryptographic hash
// mnemo stores or compares (checksums of the index/ formats, index
// snapshots and KV block headers, model fingerprint hashes, token-id
// hashes of chunk KV caches).
//
// Two offset bases are in use and both are part of stored data, so neither
// may change: kFnv1aStandardBasis is the published one (model fingerprint
// hashes); kFnv1aStoredBasis, the published one missing its last digit,
// is the one every checksum and token hash has been written with.
#ifndef MNEMO_COMMON_HASH_H_
#define MNEMO_COMMON_HASH_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace mnemo {

inline constexpr uint64_t kFnv1aPrime = 1099511628211ull;
inline constexpr uint64_t kFnv1aStandardBasis = 14695981039346656037ull;
inline constexpr uint64_t kFnv1aStoredBasis = 1469598103934665603ull;

// Folds one byte into the running hash `h`.
constexpr uint64_t Fnv1aStep(uint64_t h, uint8_t byte) { return (h ^ byte) * kFnv1aPrime; }

// FNV-1a of `n` bytes at `data`, starting from `basis` (or from a running
// hash, to hash pieces one after the other).
inline uint64_t Fnv1a(const void* data, size_t n, uint64_t basis) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = basis;
  for (size_t i = 0; i < n; ++i) h = Fnv1aStep(h, p[i]);
  return h;
}

inline uint64_t Fnv1a(absl::string_view bytes, uint64_t basis) {
  return Fnv1a(bytes.data(), bytes.size(), basis);
}

}  // namespace mnemo

#endif  // MNEMO_COMMON_HASH_H_
