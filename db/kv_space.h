// In-memory state of one namespace's chunk KV caches: which chunks hold KV
// (with size, expiry, pin and token hash), the eviction order, the prefix
// lookup table and the counters KvStats reports. Rebuilt on open from the
// kv CF's chunk records, updated after each committed KV write; the rows
// themselves are written by the store (db/kv_store.cc).
//
// Thread safety: every method locks the space's own mutex. The store
// additionally holds the namespace's writer lock across plan, commit and
// apply of a write, so a plan (eviction victims) stays valid until its
// write is applied; reads only touch the eviction order and stamps.
#ifndef MNEMO_DB_KV_SPACE_H_
#define MNEMO_DB_KV_SPACE_H_

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "db/kv.h"

namespace mnemo::db {

// The order in which unpinned chunks lose their KV when a namespace is over
// budget. Implementations need not be thread-safe (KvSpace locks).
class KvEvictionPolicy {
 public:
  virtual ~KvEvictionPolicy() = default;
  virtual void Add(int64_t id) = 0;     // KV of `id` was stored (again)
  // KV of `id` was read; true when that moves it in the order (LRU).
  virtual bool Touch(int64_t id) = 0;
  virtual void Remove(int64_t id) = 0;  // KV of `id` is gone
  // Visits ids in eviction order, first victim first, until `visit`
  // returns false.
  virtual void Visit(const std::function<bool(int64_t)>& visit) const = 0;
};

// kKvEvictLru ("" too) or kKvEvictFifo; INVALID_ARGUMENT otherwise.
absl::StatusOr<std::unique_ptr<KvEvictionPolicy>> NewKvEvictionPolicy(absl::string_view name);

struct KvEntry {
  uint32_t n_tokens = 0;
  uint32_t n_layers = 0;
  uint64_t stored_bytes = 0;
  uint64_t index_bytes = 0;  // of stored_bytes, the key indexes'
  uint64_t fp16_bytes = 0;
  int64_t expires_ms = 0;  // 0 = never
  bool pinned = false;
  uint64_t token_hash = 0;
  double key_error_sum = 0;
  double value_error_sum = 0;
  // Recency stamp (kv_records.h): larger = used later. A put takes
  // KvSpace::NextRecency(); a loaded chunk keeps its stored stamp (0 when
  // none was stored).
  uint64_t recency = 0;

  bool Expired(int64_t now_ms) const { return expires_ms != 0 && now_ms >= expires_ms; }
};

class KvSpace {
 public:
  // INVALID_ARGUMENT for an unknown eviction policy.
  static absl::StatusOr<std::unique_ptr<KvSpace>> Create(const KvConfig& config);

  KvConfig config() const ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the config (same model; the caller checks). A new policy
  // starts its order from the chunks held by recency stamp (then id).
  absl::Status Reconfigure(const KvConfig& config) ABSL_LOCKS_EXCLUDED(mu_);

  // The entry of `id` when it holds KV that has not expired.
  std::optional<KvEntry> Live(int64_t id, int64_t now_ms) const ABSL_LOCKS_EXCLUDED(mu_);
  // The entry of `id`, expired or not.
  std::optional<KvEntry> Find(int64_t id) const ABSL_LOCKS_EXCLUDED(mu_);
  // A read of `id`: under LRU it moves to the back of the order and takes
  // the next recency stamp, marked for the next FlushRecency.
  void Touch(int64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // The next recency stamp (a put writes it with its rows).
  uint64_t NextRecency() ABSL_LOCKS_EXCLUDED(mu_);
  // Records stored KV (replacing an entry of the same id) at the back of
  // the eviction order. Stamps of later puts and reads exceed
  // entry.recency. Loading puts chunks in stamp order.
  void Put(int64_t id, const KvEntry& entry) ABSL_LOCKS_EXCLUDED(mu_);
  // Hands out the (id, stamp) of the chunks read since the last call that
  // still hold KV, and forgets them. A failed write of them gives them
  // back with MarkRecencyUnflushed.
  std::vector<std::pair<int64_t, uint64_t>> TakeUnflushedRecency() ABSL_LOCKS_EXCLUDED(mu_);
  void MarkRecencyUnflushed(absl::Span<const std::pair<int64_t, uint64_t>> stamps)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Changes the pin and expiry of `id` (no-op when absent), keeping its
  // place in the eviction order.
  void SetRetention(int64_t id, bool pinned, int64_t expires_ms) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets `id` (no-op when absent). `why` counts it as evicted / expired.
  enum class Why { kDeleted, kEvicted, kExpired };
  void Erase(int64_t id, Why why = Why::kDeleted) ABSL_LOCKS_EXCLUDED(mu_);
  bool empty() const ABSL_LOCKS_EXCLUDED(mu_);
  // Encoded bytes of every entry held (expired ones included until erased).
  uint64_t stored_bytes() const ABSL_LOCKS_EXCLUDED(mu_);

  // Ids whose KV expired by `now_ms`.
  std::vector<int64_t> ExpiredIds(int64_t now_ms) const ABSL_LOCKS_EXCLUDED(mu_);
  // Victims (in policy order, unpinned, not in `exclude`) whose eviction
  // makes room for `incoming` bytes once the bytes of `freed` ids are gone
  // too. Empty when it already fits or there is no budget;
  // RESOURCE_EXHAUSTED when even evicting every candidate is not enough.
  absl::StatusOr<std::vector<int64_t>> PlanEviction(uint64_t incoming,
                                                    absl::Span<const int64_t> freed) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Ids whose tokens hash to `hash`.
  std::vector<int64_t> WithTokenHash(uint64_t hash) const ABSL_LOCKS_EXCLUDED(mu_);
  // Distinct token counts of the chunks held, longest first.
  std::vector<uint32_t> Lengths() const ABSL_LOCKS_EXCLUDED(mu_);

  KvStats Stats(int64_t now_ms) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  KvSpace() = default;
  void EraseLocked(int64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  KvConfig config_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<KvEvictionPolicy> policy_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, KvEntry> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::vector<int64_t>> by_hash_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, uint64_t, std::greater<>> lengths_ ABSL_GUARDED_BY(mu_);  // length -> count
  uint64_t stored_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evicted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t expired_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_recency_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_set<int64_t> unflushed_ ABSL_GUARDED_BY(mu_);  // read, stamp not stored
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_KV_SPACE_H_
