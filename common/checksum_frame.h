// The checksum trailer that frames every self-checking blob mnemo writes
// (the index/ formats: dense index, residual codec, multi-vector index; and
// the index snapshot files of db/records.h): the bytes, then 8 bytes
// holding the 64-bit FNV-1a (common/hash.h, kFnv1aStoredBasis) of all the
// bytes before it, in host byte order. Checking it first catches garbage
// and truncation before any parser reads a length field.
#ifndef MNEMO_COMMON_CHECKSUM_FRAME_H_
#define MNEMO_COMMON_CHECKSUM_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mnemo {

inline constexpr size_t kChecksumTrailerBytes = sizeof(uint64_t);

// Appends the trailer over everything already in *framed.
void AppendChecksumTrailer(std::vector<uint8_t>* framed);
void AppendChecksumTrailer(std::string* framed);

// The bytes before the trailer when `framed` ends with a trailer that
// matches them; nullopt when it is shorter than a trailer or does not match.
// The result borrows from `framed`.
std::optional<absl::Span<const uint8_t>> StripChecksumTrailer(absl::Span<const uint8_t> framed);
std::optional<absl::string_view> StripChecksumTrailer(absl::string_view framed);

}  // namespace mnemo

#endif  // MNEMO_COMMON_CHECKSUM_FRAME_H_
