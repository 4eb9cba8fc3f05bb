// The names of KV element types and KV codecs, written once for the SDK
// (mnemo/client.h), the CLI, the store (db/kv_codec.h uses these enums as
// its KvDtype and KvCodecKind) and the server. Part of the installed SDK; Abseil only.
//
// On the wire (mnemo.v1.KvDtype / KvCodec) every value here is its proto
// counterpart; UNSPECIFIED (0) there means the default named below.
#ifndef MNEMO_KV_NAMES_H_
#define MNEMO_KV_NAMES_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mnemo {

// Element type of K/V on the wire, little-endian. fp16 / bf16 halve the
// bytes sent; the client converts (round to nearest even) and the server
// stores with the namespace's codec whatever the wire type. Default kFp32.
enum class KvDtype : uint8_t { kFp32 = 0, kFp16 = 1, kBf16 = 2 };

// How the server stores blocks: fp32 (lossless), fp16 (default), bf16, int8
// (per (head, token) scale), int4 (groups; keys per channel, values per
// token), kvq (~4.5x smaller than fp16: non-uniform per-channel keys /
// per-token values, fp16 outliers and sink tokens, rANS-coded codes).
enum class KvCodec : uint8_t { kFp32 = 0, kFp16 = 1, kBf16 = 2, kInt8 = 3, kInt4 = 4, kKvq = 5 };

// "fp32", "fp16", "bf16" (and "float32", "float16", "bfloat16");
// INVALID_ARGUMENT naming the accepted names otherwise.
absl::StatusOr<KvDtype> ParseKvDtype(absl::string_view name);
// "fp32", "fp16", "bf16", "int8", "int4", "kvq"; INVALID_ARGUMENT otherwise.
absl::StatusOr<KvCodec> ParseKvCodec(absl::string_view name);
// The first name ParseKvDtype / ParseKvCodec accepts; "unknown" for a value
// outside the enum. The values are stored in KV block headers: never
// renumber them.
absl::string_view KvDtypeName(KvDtype dtype);
absl::string_view KvCodecName(KvCodec codec);
// Bytes per element: 4, 2, 2; 0 outside the enum.
size_t KvDtypeBytes(KvDtype dtype);

}  // namespace mnemo

#endif  // MNEMO_KV_NAMES_H_
