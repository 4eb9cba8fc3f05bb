// Quota records and checks of a namespace (the limits are in db/quota.h):
// the stored form of a NamespaceQuota, the bytes a row counts, and the
// check every write makes before its commit (StoreImpl::CheckQuotaLocked,
// db/namespace_quota.cc). Internal to db/.
#ifndef MNEMO_DB_NAMESPACE_QUOTA_H_
#define MNEMO_DB_NAMESPACE_QUOTA_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "db/quota.h"

namespace mnemo::db::quota {

// Three u64 BE limits: max_bytes, max_chunks, max_kv_bytes.
std::string Encode(const NamespaceQuota& quota);
// DATA_LOSS on a bad size.
absl::StatusOr<NamespaceQuota> Decode(absl::string_view value);

// `quota` with the fields `change` sets replaced.
NamespaceQuota Apply(NamespaceQuota quota, const QuotaChange& change);

// Bytes one chunk counts: its encoded record plus its vector.
inline uint64_t ChunkBytes(size_t record_bytes, uint32_t dim) {
  return record_bytes + static_cast<uint64_t>(dim) * sizeof(float);
}

// RESOURCE_EXHAUSTED naming `limit_name`, `limit`, `after` and `before` when
// the limit is set (non-zero) and the write raises the usage above it.
absl::Status Check(absl::string_view ns, absl::string_view limit_name, uint64_t limit,
                   uint64_t before, uint64_t after);

}  // namespace mnemo::db::quota

#endif  // MNEMO_DB_NAMESPACE_QUOTA_H_
