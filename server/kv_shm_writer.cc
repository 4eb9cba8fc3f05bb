// Mapping and filling a client's shared memory region for GetKv
// (server/kv_shm_writer.h).
#include "server/kv_shm_writer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "mnemo/kv_shm.h"

namespace mnemo::server {

absl::StatusOr<std::unique_ptr<KvShmWriter>> KvShmWriter::Open(const std::string& name,
                                                               uint64_t needed) {
  RETURN_IF_ERROR(CheckKvShmName(name));
  const int fd = shm_open(name.c_str(), O_RDWR, 0);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(absl::StrCat("shared memory '", name, "' does not exist"));
    }
    return absl::PermissionDeniedError(
        absl::StrCat("cannot open shared memory '", name, "': ", std::strerror(err)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("fstat of shared memory '", name, "' failed"));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < needed) {
    close(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat("shared memory '", name, "' holds ", size, " bytes; the read needs ", needed));
  }
  if (needed > 0) {
    const int err = posix_fallocate(fd, 0, static_cast<off_t>(needed));
    if (err != 0) {
      close(fd);
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot back shared memory '", name, "' with ", needed, " bytes: ", std::strerror(err)));
    }
  }
  void* p = needed == 0
                ? nullptr
                : mmap(nullptr, needed, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    return absl::InternalError(
        absl::StrCat("cannot map shared memory '", name, "': ", std::strerror(errno)));
  }
  return std::unique_ptr<KvShmWriter>(new KvShmWriter(static_cast<char*>(p), needed));
}

KvShmWriter::~KvShmWriter() {
  if (data_ != nullptr) munmap(data_, size_);
}

absl::StatusOr<uint64_t> KvShmWriter::Append(absl::string_view bytes) {
  if (bytes.size() > size_ - used_) {
    return absl::InternalError("GetKv wrote past its shared memory plan");
  }
  const uint64_t at = used_;
  if (!bytes.empty()) std::memcpy(data_ + at, bytes.data(), bytes.size());
  used_ += bytes.size();
  return at;
}

}  // namespace mnemo::server
