// Shared memory region naming and layout of the same-host KV read
// (mnemo/kv_shm.h).
#include "mnemo/kv_shm.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>

#include "absl/strings/str_cat.h"

namespace mnemo {

absl::Status CheckKvShmName(absl::string_view name) {
  bool ok = name.size() > kKvShmPrefix.size() &&
            name.size() <= kKvShmPrefix.size() + kKvShmMaxSuffix &&
            name.substr(0, kKvShmPrefix.size()) == kKvShmPrefix;
  for (size_t i = kKvShmPrefix.size(); ok && i < name.size(); ++i) {
    const char c = name[i];
    ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("shared memory name '", name, "' is not ",
                                                 kKvShmPrefix, " followed by 1..", kKvShmMaxSuffix,
                                                 " of [A-Za-z0-9_.-]"));
}

std::string NewKvShmName() {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(kKvShmPrefix, getpid(), "-", counter.fetch_add(1), "-",
                      std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
}

uint64_t KvShmRegionBytes(uint64_t kv_values, KvDtype dtype) {
  return kv_values * KvDtypeBytes(dtype);
}

bool KvShmBlockFits(uint64_t region_bytes, uint64_t k_offset, uint64_t block_bytes) {
  return k_offset <= region_bytes && block_bytes <= (region_bytes - k_offset) / 2;
}

}  // namespace mnemo
