// Little-endian fixed-width fields of the db's small binary values (KV
// chunk records and blocks, KV key indexes): an appender and a
// bounds-checked reader, so every decoder reports truncation instead of
// reading past a value. Host byte order is little-endian on every target
// mnemo builds for. Internal to db/.
#ifndef MNEMO_DB_LE_BYTES_H_
#define MNEMO_DB_LE_BYTES_H_

#include <cstddef>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"

namespace mnemo::db {

template <typename T>
void PutLe(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

class LeReader {
 public:
  explicit LeReader(absl::string_view in) : in_(in) {}
  // False (nothing consumed) when fewer than sizeof(T) bytes are left.
  template <typename T>
  bool Get(T* v) {
    if (in_.size() < sizeof(T)) return false;
    std::memcpy(v, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return true;
  }
  bool Bytes(size_t n, absl::string_view* out) {
    if (in_.size() < n) return false;
    *out = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  absl::string_view rest() const { return in_; }
  size_t left() const { return in_.size(); }

 private:
  absl::string_view in_;
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_LE_BYTES_H_
