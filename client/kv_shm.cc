// Creating, mapping and pooling the SDK's shared memory regions
// (client/kv_shm.h).
#include "client/kv_shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "mnemo/kv_shm.h"

namespace mnemo::client_internal {

absl::StatusOr<std::unique_ptr<ShmRegion>> ShmRegion::Create(uint64_t bytes) {
  const std::string name = NewKvShmName();
  const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot create shared memory ", name, ": ", std::strerror(errno)));
  }
  const uint64_t size = std::max<uint64_t>(bytes, 1);
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    close(fd);
    shm_unlink(name.c_str());
    return absl::ResourceExhaustedError(absl::StrCat("cannot size shared memory ", name, " to ",
                                                     size, " bytes: ", std::strerror(err)));
  }
  void* p = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    shm_unlink(name.c_str());
    return absl::InternalError(absl::StrCat("cannot map shared memory ", name));
  }
  return std::unique_ptr<ShmRegion>(new ShmRegion(name, static_cast<const char*>(p), size));
}

ShmRegion::~ShmRegion() {
  munmap(const_cast<char*>(data_), size_);
  shm_unlink(name_.c_str());
}

absl::StatusOr<std::unique_ptr<ShmRegion>> ShmPool::Take(uint64_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if ((*it)->size() >= bytes) {
        std::unique_ptr<ShmRegion> r = std::move(*it);
        free_.erase(it);
        return r;
      }
    }
  }
  return ShmRegion::Create(bytes);
}

void ShmPool::Give(std::unique_ptr<ShmRegion> region) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(std::move(region));
  if (free_.size() > 2) free_.erase(free_.begin());  // keep the newest two
}

}  // namespace mnemo::client_internal
