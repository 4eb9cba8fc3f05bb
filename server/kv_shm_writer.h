// mnemod's end of the same-host KV read: a client's shared memory region
// (named and laid out as mnemo/kv_shm.h says), mapped for writing, filled
// block by block in stream order. Not thread-safe; one per GetKv call.
#ifndef MNEMO_SERVER_KV_SHM_WRITER_H_
#define MNEMO_SERVER_KV_SHM_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mnemo::server {

class KvShmWriter {
 public:
  // Opens and maps the first `needed` bytes of region `name`, backing every
  // page now (so a full /dev/shm is an error here, not a SIGBUS later).
  // INVALID_ARGUMENT for a name mnemo/kv_shm.h does not allow, NOT_FOUND
  // when it does not exist, PERMISSION_DENIED when it cannot be opened,
  // RESOURCE_EXHAUSTED when it is smaller than `needed` or cannot be backed.
  static absl::StatusOr<std::unique_ptr<KvShmWriter>> Open(const std::string& name,
                                                           uint64_t needed);
  ~KvShmWriter();
  KvShmWriter(const KvShmWriter&) = delete;
  KvShmWriter& operator=(const KvShmWriter&) = delete;

  // Copies `bytes` to the next free offset and returns that offset;
  // INTERNAL past the planned size.
  absl::StatusOr<uint64_t> Append(absl::string_view bytes);

 private:
  KvShmWriter(char* data, uint64_t size) : data_(data), size_(size) {}
  char* const data_;
  const uint64_t size_;
  uint64_t used_ = 0;
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_KV_SHM_WRITER_H_
