// The SDK's end of the same-host KV read: shared memory regions it creates
// (named and laid out as mnemo/kv_shm.h says), maps read-only for mnemod to
// fill, and keeps for reuse. Internal to the client library.
#ifndef MNEMO_CLIENT_KV_SHM_H_
#define MNEMO_CLIENT_KV_SHM_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace mnemo::client_internal {

// One POSIX shared memory object this process created, mapped read-only.
// Removed (unlinked) when destroyed.
class ShmRegion {
 public:
  // A new region of at least `bytes` (at least 1). UNAVAILABLE when it
  // cannot be created, RESOURCE_EXHAUSTED when it cannot be sized.
  static absl::StatusOr<std::unique_ptr<ShmRegion>> Create(uint64_t bytes);
  ~ShmRegion();
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;

  const std::string& name() const { return name_; }
  uint64_t size() const { return size_; }
  std::string_view view() const { return std::string_view(data_, size_); }

 private:
  ShmRegion(std::string name, const char* data, uint64_t size)
      : name_(std::move(name)), data_(data), size_(size) {}
  const std::string name_;
  const char* const data_;
  const uint64_t size_;
};

// Regions kept for reuse between reads (a fresh region costs a page fault
// per page on the server's first write); the newest two are kept.
// Thread-safe.
class ShmPool {
 public:
  // A region of at least `bytes`, taken out of the pool or new.
  absl::StatusOr<std::unique_ptr<ShmRegion>> Take(uint64_t bytes);
  // Returns a region to the pool.
  void Give(std::unique_ptr<ShmRegion> region);

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<ShmRegion>> free_;
};

}  // namespace mnemo::client_internal

#endif  // MNEMO_CLIENT_KV_SHM_H_
