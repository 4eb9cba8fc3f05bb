// Memory expiry (see memory.h): deleting the memories whose expiry passed
// at least StoreOptions::memory_expired_keep_ms ago, each with a DELETE
// event by actor "ttl", on the store's expiry timer or when asked
// (PurgeExpired). The expiry index (memory_records.h) keeps the scan to the
// memories due.
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/status_macros.h"
#include "db/bounded_iterator.h"
#include "db/keys.h"
#include "db/memory_engine.h"
#include "db/memory_records.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {

void MemoryEngine::StartExpiry() {
  const uint64_t interval = owner_->options().memory_expiry_interval_ms;
  if (interval == 0) return;
  expiry_task_ = std::make_unique<PeriodicTask>("memory expiry", absl::Milliseconds(interval),
                                                [this] { ExpiryPass(); });
}

void MemoryEngine::StopExpiry() {
  if (expiry_task_ != nullptr) expiry_task_->Stop();
  expiry_task_.reset();
}

void MemoryEngine::ExpiryPass() {
  for (const NamespacePtr& ns : owner_->AllNamespaces()) {
    if (ns->config.encoder.empty() || ns->config.late_interaction.value_or(false)) continue;
    {
      // A damaged namespace was logged once at Open; not on every pass.
      absl::ReaderMutexLock lock(&ns->mu);
      if (ns->gone == Gone::kDamaged) continue;
    }
    absl::StatusOr<uint64_t> purged = PurgeExpired(ns->config.name);
    if (!purged.ok() && !absl::IsNotFound(purged.status())) {
      spdlog::warn("namespace '{}': removing expired memories failed: {}", ns->config.name,
                   purged.status().ToString());
    } else if (purged.ok() && *purged > 0) {
      spdlog::debug("namespace '{}': {} expired memories removed", ns->config.name, *purged);
    }
  }
}

absl::StatusOr<uint64_t> MemoryEngine::PurgeExpired(absl::string_view ns_name) {
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, /*create=*/false));
  const int64_t cutoff =
      NowMs() - static_cast<int64_t>(owner_->options().memory_expired_keep_ms);
  const std::string prefix = memrecords::KindPrefix(ns->nsid, 'x');
  {
    // Nothing due (the common case): no writer lock, so searches go on.
    absl::ReaderMutexLock lock(&ns->mu);
    RETURN_IF_ERROR(ns->GoneStatus());
    BoundedIterator it(owner_->db(), owner_->memory_, keys::PrefixEnd(prefix));
    it->Seek(prefix);
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning memory expiry"));
    if (!it->Valid()) return uint64_t{0};
    int64_t first = 0;
    std::string id;
    RETURN_IF_ERROR(memrecords::DecodeExpiryKey(
        absl::string_view(it->key().data(), it->key().size()), &first, &id));
    if (first > cutoff) return uint64_t{0};
  }
  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  NamespaceWrite write;
  std::vector<Memory> victims;
  {
    BoundedIterator it(owner_->db(), owner_->memory_, keys::PrefixEnd(prefix));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      int64_t expires = 0;
      std::string id;
      RETURN_IF_ERROR(memrecords::DecodeExpiryKey(absl::string_view(it->key().data(), it->key().size()), &expires, &id));
      if (expires > cutoff) break;
      absl::StatusOr<std::pair<int64_t, Memory>> loaded = LoadLocked(ns.get(), id);
      if (absl::IsNotFound(loaded.status())) {
        write.batch.Delete(owner_->memory_, it->key());  // a stale row
        continue;
      }
      if (!loaded.ok()) return loaded.status();
      const Memory& m = loaded->second;
      if (m.expires_at_ms.has_value() && *m.expires_at_ms == expires) {
        victims.push_back(m);
      } else {
        write.batch.Delete(owner_->memory_, it->key());
      }
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning memory expiry"));
  }
  if (!victims.empty()) RETURN_IF_ERROR(StageRemovalLocked(ns.get(), victims, "ttl", &write));
  if (write.batch.Count() == 0) return uint64_t{0};
  RETURN_IF_ERROR(owner_->CommitLocked(ns.get(), &write, "removing expired memories"));
  return victims.size();
}

}  // namespace mnemo::db
