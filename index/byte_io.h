// Little helpers for the index/ serialised formats (dense index, residual
// codec, multi-vector index): host-order POD writes and a bounds-checked
// reader. Internal to index/.
#ifndef MNEMO_INDEX_BYTE_IO_H_
#define MNEMO_INDEX_BYTE_IO_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/types/span.h"

namespace mnemo::index::internal {

template <typename T>
void Put(std::vector<uint8_t>* out, const T& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out->insert(out->end(), p, p + sizeof(T));
}

inline void PutBytes(std::vector<uint8_t>* out, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + n);
}

inline void PutFloats(std::vector<uint8_t>* out, const std::vector<float>& v) {
  PutBytes(out, v.data(), v.size() * sizeof(float));
}

// Reads from a borrowed buffer; every Get fails (returns false, reads
// nothing) rather than run past the end.
class ByteReader {
 public:
  explicit ByteReader(absl::Span<const uint8_t> in) : in_(in) {}
  template <typename T>
  bool Get(T* v) {
    return GetBytes(v, sizeof(T));
  }
  bool GetBytes(void* out, size_t n) {
    if (n > remaining()) return false;
    if (n > 0) std::memcpy(out, in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool GetFloats(std::vector<float>* v, size_t n) {
    if (n > remaining() / sizeof(float)) return false;
    v->resize(n);
    return GetBytes(v->data(), n * sizeof(float));
  }
  // The next n bytes (fewer at the end), consumed.
  absl::Span<const uint8_t> Take(size_t n) {
    auto s = in_.subspan(pos_, n);
    pos_ += s.size();
    return s;
  }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  absl::Span<const uint8_t> in_;
  size_t pos_ = 0;
};

}  // namespace mnemo::index::internal

#endif  // MNEMO_INDEX_BYTE_IO_H_
