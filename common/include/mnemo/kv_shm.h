// The same-host KV read protocol (GetKv with a shared memory region), written
// once for the SDK, which creates and reads the region, and mnemod, which
// fills it. Only the names and the layout live here; each side maps the
// region in its own file (client/kv_shm.cc, server/kv_shm_writer.cc). Part
// of the installed SDK; Abseil only.
//
// Naming: a region is a POSIX shared memory object called kKvShmPrefix
// followed by 1..kKvShmMaxSuffix of [A-Za-z0-9_.-]; mnemod opens no other
// name. The client creates it (O_EXCL, mode 0600), sizes it for the whole
// read, and removes it.
//
// Layout: the blocks of the read in stream order; each block is its K then
// its V, back to back, each n_kv_heads * tokens * head_dim elements of the
// read's dtype (little-endian). GetKvResponse.shm_offset is where the
// block's K starts; its V starts right after.
#ifndef MNEMO_KV_SHM_H_
#define MNEMO_KV_SHM_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "mnemo/kv_names.h"

namespace mnemo {

inline constexpr absl::string_view kKvShmPrefix = "/mnemo-";
inline constexpr size_t kKvShmMaxSuffix = 200;

// OK for a name of the form above; INVALID_ARGUMENT saying the rule otherwise.
absl::Status CheckKvShmName(absl::string_view name);

// A fresh region name for this process: "/mnemo-<pid>-<serial>-<clock>".
// Thread-safe; distinct within the process.
std::string NewKvShmName();

// Bytes a region needs for `kv_values` elements of K and V together (every
// block of the read) in `dtype`.
uint64_t KvShmRegionBytes(uint64_t kv_values, KvDtype dtype);

// Whether a block whose K starts at `k_offset` and whose K and V take
// `block_bytes` each lies inside a region of `region_bytes`.
bool KvShmBlockFits(uint64_t region_bytes, uint64_t k_offset, uint64_t block_bytes);

}  // namespace mnemo

#endif  // MNEMO_KV_SHM_H_
