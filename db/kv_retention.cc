// KvStore's background retention (see kv_store.h): flushing the recency
// stamps of read chunks, so the LRU order survives a restart, and removing
// expired KV without waiting for the next put. The store runs both on
// timers (StoreOptions::kv_recency_flush_ms, kv_expiry_interval_ms) and
// flushes once more at Close.
//
// Crash safety: stamps are written after the reads that made them, in
// unsynced batches of small rows. A crash or power loss loses at most the
// stamps since the last flush: those chunks reopen at their older place in
// the order (staler, never corrupt: every stamp ever written was a real
// use, and a stamp row is removed in the same batch as its chunk's KV). A
// stamp row without a chunk record is ignored on open.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/kv_records.h"
#include "db/namespace_write.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {

absl::StatusOr<size_t> KvStore::FlushRecency(Namespace* ns) {
  absl::ReaderMutexLock lock(&ns->mu);
  if (ns->gone != Gone::kNo || ns->kv == nullptr) return size_t{0};
  const std::vector<std::pair<int64_t, uint64_t>> stamps = ns->kv->TakeUnflushedRecency();
  if (stamps.empty()) return size_t{0};
  rocksdb::WriteBatch batch;
  for (const auto& [id, stamp] : stamps) {
    batch.Put(owner_->kv_cf(), kvrecords::RecencyKey(ns->nsid, id),
              kvrecords::EncodeRecency(stamp));
  }
  rocksdb::WriteOptions unsynced;
  unsynced.sync = false;
  absl::Status st = owner_->WriteToDb(unsynced, &batch, "writing KV recency");
  if (!st.ok()) {
    ns->kv->MarkRecencyUnflushed(stamps);  // retried by the next flush
    return st;
  }
  return stamps.size();
}

absl::StatusOr<size_t> KvStore::RemoveExpired(Namespace* ns) {
  {
    absl::ReaderMutexLock lock(&ns->mu);
    if (ns->gone != Gone::kNo || ns->kv == nullptr) return size_t{0};
    if (ns->kv->ExpiredIds(NowMs()).empty()) return size_t{0};
  }
  absl::MutexLock lock(&ns->mu);
  if (ns->gone != Gone::kNo || ns->kv == nullptr) return size_t{0};
  const uint64_t before = ns->kv->Stats(NowMs()).expired_chunks;
  RETURN_IF_ERROR(RemoveExpiredLocked(ns));
  return static_cast<size_t>(ns->kv->Stats(NowMs()).expired_chunks - before);
}

void StoreImpl::StartKvRetention() {
  if (options_.kv_expiry_interval_ms > 0) {
    kv_expiry_task_ = std::make_unique<PeriodicTask>(
        "KV expiry", absl::Milliseconds(options_.kv_expiry_interval_ms),
        [this] { ExpireKvPass(); });
  }
  if (options_.kv_recency_flush_ms > 0) {
    kv_recency_task_ = std::make_unique<PeriodicTask>(
        "KV recency flush", absl::Milliseconds(options_.kv_recency_flush_ms), [this] {
          absl::Status st = FlushKvRecencyPass();
          if (!st.ok()) spdlog::warn("KV recency flush failed: {}", st.ToString());
        });
  }
}

absl::Status StoreImpl::StopKvRetention() {
  if (kv_expiry_task_ != nullptr) kv_expiry_task_->Stop();
  if (kv_recency_task_ != nullptr) kv_recency_task_->Stop();
  kv_expiry_task_.reset();
  kv_recency_task_.reset();
  absl::Status st = FlushKvRecencyPass();
  if (!st.ok()) spdlog::error("KV recency flush on close failed: {}", st.ToString());
  return st;
}

void StoreImpl::ExpireKvPass() {
  for (const NamespacePtr& ns : AllNamespaces()) {
    absl::StatusOr<size_t> removed = kv_store_.RemoveExpired(ns.get());
    if (!removed.ok()) {
      spdlog::warn("namespace '{}': removing expired KV failed: {}", ns->config.name,
                   removed.status().ToString());
    } else if (*removed > 0) {
      spdlog::debug("namespace '{}': KV of {} expired chunks removed", ns->config.name,
                    *removed);
    }
  }
}

absl::Status StoreImpl::FlushKvRecencyPass() {
  absl::Status result;
  for (const NamespacePtr& ns : AllNamespaces()) {
    result.Update(Annotate(kv_store_.FlushRecency(ns.get()).status(),
                           absl::StrCat("namespace '", ns->config.name, "'")));
  }
  return result;
}

}  // namespace mnemo::db
