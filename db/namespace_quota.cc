// Namespace quotas (db/quota.h): their records, the check each write makes
// before its commit, usage and SetNamespaceQuota.
#include "db/namespace_quota.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/keys.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {
namespace quota {

std::string Encode(const NamespaceQuota& q) {
  std::string out;
  keys::AppendU64(&out, q.max_bytes);
  keys::AppendU64(&out, q.max_chunks);
  keys::AppendU64(&out, q.max_kv_bytes);
  return out;
}

absl::StatusOr<NamespaceQuota> Decode(absl::string_view value) {
  if (value.size() != 24) {
    return absl::DataLossError(
        absl::StrCat("namespace quota: ", value.size(), " bytes, expected 24"));
  }
  NamespaceQuota q;
  q.max_bytes = *keys::ReadU64(value);
  q.max_chunks = *keys::ReadU64(value.substr(8));
  q.max_kv_bytes = *keys::ReadU64(value.substr(16));
  return q;
}

NamespaceQuota Apply(NamespaceQuota q, const QuotaChange& change) {
  if (change.max_bytes.has_value()) q.max_bytes = *change.max_bytes;
  if (change.max_chunks.has_value()) q.max_chunks = *change.max_chunks;
  if (change.max_kv_bytes.has_value()) q.max_kv_bytes = *change.max_kv_bytes;
  return q;
}

absl::Status Check(absl::string_view ns, absl::string_view limit_name, uint64_t limit,
                   uint64_t before, uint64_t after) {
  if (limit == 0 || after <= before || after <= limit) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("namespace '", ns, "' quota ", limit_name, " is ", limit,
                   "; this write would take its usage to ", after, " (now ", before,
                   "); nothing was written. Delete data or raise the limit with "
                   "SetNamespaceQuota"));
}

}  // namespace quota

NamespaceUsage StoreImpl::UsageLocked(const Namespace& ns) {
  NamespaceUsage usage;
  usage.bytes = ns.stored_bytes;
  usage.chunks = ns.external_ids.size();
  if (ns.kv != nullptr) usage.kv_bytes = ns.kv->stored_bytes();
  return usage;
}

absl::Status StoreImpl::CheckQuotaLocked(const Namespace& ns, const NamespaceWrite& write) {
  const NamespaceQuota& q = ns.quota;
  const absl::string_view name = ns.config.name;
  if (write.chunks_changed) {
    const uint64_t before = ns.stored_bytes;
    const int64_t signed_after = static_cast<int64_t>(before) + write.bytes_delta;
    const uint64_t after = signed_after < 0 ? 0 : static_cast<uint64_t>(signed_after);
    RETURN_IF_ERROR(quota::Check(name, "max_bytes", q.max_bytes, before, after));
    if (q.max_chunks != 0 && !write.added.empty()) {
      absl::flat_hash_set<int64_t> gone;
      for (int64_t id : write.removed) {
        if (ns.external_ids.contains(id)) gone.insert(id);
      }
      const uint64_t chunks = ns.external_ids.size();
      RETURN_IF_ERROR(quota::Check(name, "max_chunks", q.max_chunks, chunks,
                                   chunks - gone.size() + write.added.size()));
    }
  }
  if (q.max_kv_bytes != 0 && !write.kv_put.empty() && ns.kv != nullptr) {
    // KV held after the write: entries erased or replaced leave, puts come.
    const uint64_t before = ns.kv->stored_bytes();
    uint64_t leaving = 0;
    uint64_t coming = 0;
    absl::flat_hash_set<int64_t> seen;
    for (const auto& [id, why] : write.kv_erased) {
      if (!seen.insert(id).second) continue;
      if (auto e = ns.kv->Find(id)) leaving += e->stored_bytes;
    }
    for (const auto& [id, entry] : write.kv_put) {
      coming += entry.stored_bytes;
      if (!seen.insert(id).second) continue;
      if (auto e = ns.kv->Find(id)) leaving += e->stored_bytes;
    }
    const uint64_t after = before - std::min(before, leaving) + coming;
    RETURN_IF_ERROR(quota::Check(name, "max_kv_bytes", q.max_kv_bytes, before, after));
  }
  return absl::OkStatus();
}

absl::StatusOr<NamespaceInfo> StoreImpl::SetNamespaceQuota(absl::string_view name,
                                                           const QuotaChange& change) {
  if (!change.max_bytes.has_value() && !change.max_chunks.has_value() &&
      !change.max_kv_bytes.has_value()) {
    return absl::InvalidArgumentError(
        "a quota change sets none of max_bytes, max_chunks, max_kv_bytes");
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(name));
  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  const NamespaceQuota updated = quota::Apply(ns->quota, change);
  rocksdb::WriteBatch batch;
  batch.Put(meta_, keys::NsQuotaKey(ns->nsid), quota::Encode(updated));
  RETURN_IF_ERROR(WriteToDb(SyncedWrite(), &batch, "setting namespace quota"));
  ns->quota = updated;
  spdlog::info("namespace '{}': quota max_bytes {} max_chunks {} max_kv_bytes {}", ns->config.name,
               updated.max_bytes, updated.max_chunks, updated.max_kv_bytes);
  return InfoLocked(*ns);
}

absl::Status StoreImpl::LoadQuotaLocked(Namespace* ns) {
  ASSIGN_OR_RETURN(auto value, GetOne(meta_, keys::NsQuotaKey(ns->nsid)));
  ns->quota = NamespaceQuota();
  if (value.has_value()) {
    ASSIGN_OR_RETURN(ns->quota, quota::Decode(*value));
  }
  return absl::OkStatus();
}

}  // namespace mnemo::db
