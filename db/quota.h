// Per-namespace quotas: limits on what a namespace may hold, and the usage
// they are checked against.
//
// What counts:
//   bytes     the encoded size of every document record (text + metadata),
//             chunk record (id, document id, text, metadata, source range)
//             and dense vector (dim * 4) of the namespace: the rows a write
//             adds, measured as the store encodes them. Index structures,
//             BM25 postings, token vectors, memory bookkeeping and KV are not
//             counted here.
//   chunks    live chunks (NamespaceInfo::chunk_count).
//   kv_bytes  encoded bytes of the namespace's chunk KV (KvStats::stored_bytes).
//
// A limit of 0 means unlimited. A write that would take a usage above its
// limit is refused whole with RESOURCE_EXHAUSTED naming the limit, its value
// and the usage; writes that do not raise a usage (deletes, replacements by
// smaller records) always go through, also when a lowered limit is already
// exceeded. Writes to a namespace are serialised, so the check is exact under
// concurrent writers. Usage is recomputed from the rows when the store opens.
#ifndef MNEMO_DB_QUOTA_H_
#define MNEMO_DB_QUOTA_H_

#include <cstdint>
#include <optional>

namespace mnemo::db {

struct NamespaceQuota {
  uint64_t max_bytes = 0;     // 0 = unlimited
  uint64_t max_chunks = 0;    // 0 = unlimited
  uint64_t max_kv_bytes = 0;  // 0 = unlimited

  bool operator==(const NamespaceQuota&) const = default;
};

struct NamespaceUsage {
  uint64_t bytes = 0;
  uint64_t chunks = 0;
  uint64_t kv_bytes = 0;
};

// A change of a namespace's quota: unset fields keep their limit, 0 removes
// one.
struct QuotaChange {
  std::optional<uint64_t> max_bytes;
  std::optional<uint64_t> max_chunks;
  std::optional<uint64_t> max_kv_bytes;
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_QUOTA_H_
