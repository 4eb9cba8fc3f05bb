// The checksum trailer of self-checking blobs (see checksum_frame.h).
#include "common/checksum_frame.h"

#include <cstring>

#include "common/hash.h"

namespace mnemo {
namespace {

uint64_t BodySum(const void* data, size_t n) { return Fnv1a(data, n, kFnv1aStoredBasis); }

// Whether the last 8 of `n` bytes at `data` hold the checksum of the rest.
bool TrailerMatches(const void* data, size_t n) {
  const size_t body = n - kChecksumTrailerBytes;
  uint64_t stored;
  std::memcpy(&stored, static_cast<const char*>(data) + body, sizeof(stored));
  return BodySum(data, body) == stored;
}

}  // namespace

void AppendChecksumTrailer(std::vector<uint8_t>* framed) {
  const uint64_t sum = BodySum(framed->data(), framed->size());
  const auto* p = reinterpret_cast<const uint8_t*>(&sum);
  framed->insert(framed->end(), p, p + sizeof(sum));
}

void AppendChecksumTrailer(std::string* framed) {
  const uint64_t sum = BodySum(framed->data(), framed->size());
  framed->append(reinterpret_cast<const char*>(&sum), sizeof(sum));
}

std::optional<absl::Span<const uint8_t>> StripChecksumTrailer(absl::Span<const uint8_t> framed) {
  if (framed.size() < kChecksumTrailerBytes || !TrailerMatches(framed.data(), framed.size())) {
    return std::nullopt;
  }
  return framed.first(framed.size() - kChecksumTrailerBytes);
}

std::optional<absl::string_view> StripChecksumTrailer(absl::string_view framed) {
  if (framed.size() < kChecksumTrailerBytes || !TrailerMatches(framed.data(), framed.size())) {
    return std::nullopt;
  }
  return framed.substr(0, framed.size() - kChecksumTrailerBytes);
}

}  // namespace mnemo
