// mnemod's hot tier for chunk KV: one shared memory arena (a memfd, huge
// pages where the kernel gives them) holding recently read (chunk, layer)
// blocks in the wire layout a decoder uploads as is: K then V, each 64-byte
// aligned, little-endian elements of the read's dtype, keys rotated for the
// read's position. A same-host client maps the arena read-only once
// (server/kv_arena_socket.h hands it over) and reads leased blocks in place.
//
// Cache: keyed by (namespace, chunk id, layer, dtype, position), each entry
// stamped with its namespace's generation when it was read. Every KV write
// or removal in a namespace runs under WriteLock(ns), which bumps the
// generation, so an entry read before it is never found again (a replaced,
// deleted, evicted or expired chunk's bytes are not served stale).
//
// Pins: a block is pinned while a GetKv call is filling or sending it, and
// while a session holds a lease on it. Eviction (LRU over unpinned blocks)
// never reuses pinned bytes; when nothing unpinned is left to evict the
// fill fails with RESOURCE_EXHAUSTED.
//
// Sessions: one per arena socket connection, owned by the API key that
// opened it; closing it (or revoking its key) releases every lease it
// holds. Thread-safe.
#ifndef MNEMO_SERVER_KV_ARENA_H_
#define MNEMO_SERVER_KV_ARENA_H_

#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mnemo::server {

// Alignment of K and V in the arena.
inline constexpr uint64_t kKvArenaAlign = 64;

// One (chunk, layer) block as cached.
struct KvArenaKey {
  std::string ns;
  std::string chunk_id;
  uint32_t layer = 0;
  int dtype = 0;         // db::KvDtype
  int64_t position = -1; // -1: keys before RoPE
  std::string Encode() const;
};

// What a GetKv response needs besides the bytes.
struct KvArenaMeta {
  uint32_t heads = 0, tokens = 0, head_dim = 0;
  float key_error = 0, value_error = 0;
  std::vector<int32_t> tokens_ids;
  int64_t position = -1;
};

// A block pinned for the caller (one pin per KvArenaBlock handed out).
struct KvArenaBlock {
  uint64_t entry = 0;
  uint64_t k_offset = 0, v_offset = 0, bytes = 0;
  std::shared_ptr<const KvArenaMeta> meta;
};

class KvArena {
 public:
  // Maps an arena of `bytes` (rounded up to 2 MiB). Tries MFD_HUGETLB
  // first, then a plain memfd with MADV_HUGEPAGE; backs every page now.
  static absl::StatusOr<std::unique_ptr<KvArena>> Create(uint64_t bytes);
  ~KvArena();
  KvArena(const KvArena&) = delete;
  KvArena& operator=(const KvArena&) = delete;

  uint64_t size() const { return size_; }
  bool huge_pages() const { return huge_pages_; }
  // A read-only descriptor of the arena (what clients receive).
  int read_only_fd() const { return ro_fd_; }
  // 16 random bytes naming this arena (a client checks it on the socket).
  const std::string& id() const { return id_; }
  const char* data() const { return data_; }

  // Held (shared) by a GetKv while it checks entries and opens its reads,
  // and (exclusive) by every KV write or removal of `ns`, which bumps the
  // namespace's generation when the lock is released.
  class WriteLock {
   public:
    WriteLock(KvArena* arena, const std::string& ns);
    ~WriteLock();
   private:
    KvArena* arena_;
    std::string ns_;
    std::unique_lock<std::shared_mutex> lock_;
  };
  std::shared_lock<std::shared_mutex> ReadLock(const std::string& ns);
  uint64_t Generation(const std::string& ns);

  // The cached block of `key` at generation `generation`, pinned; none
  // when absent or stale.
  std::optional<KvArenaBlock> Lookup(const KvArenaKey& key, uint64_t generation);
  // Copies K and V into newly allocated bytes (evicting unpinned blocks as
  // needed), caches them under `key` unless `generation` is stale, and
  // returns them pinned. RESOURCE_EXHAUSTED when the block is larger than
  // the arena or every byte is pinned.
  absl::StatusOr<KvArenaBlock> Insert(const KvArenaKey& key, uint64_t generation,
                                      absl::string_view k, absl::string_view v,
                                      std::shared_ptr<const KvArenaMeta> meta);
  // Drops one pin.
  void Unpin(uint64_t entry);

  // Sessions, named by a random 16-byte token, each belonging to the API
  // key id that opened it ("" with authentication off: server/authorizer.h).
  std::string OpenSession(const std::string& key_id = "");
  void CloseSession(const std::string& token);
  // Closes every session of `key_id` (a revoked key), releasing their
  // leases; how many.
  size_t CloseSessionsOf(const std::string& key_id);
  bool HasSession(const std::string& token);
  // OK when `token` names an open session of `key_id`; FAILED_PRECONDITION
  // for an unknown or closed session, PERMISSION_DENIED for another key's.
  absl::Status CheckSession(const std::string& token, const std::string& key_id);
  // Turns one pin of `entry` into a lease of the session; FAILED_PRECONDITION
  // for an unknown or closed session (the pin is dropped then).
  absl::StatusOr<uint64_t> Lease(const std::string& token, uint64_t entry);
  // Releases leases of the session of `key_id`. CheckSession's errors;
  // NOT_FOUND (releasing none) when an id is not a lease of this session.
  absl::StatusOr<uint64_t> Release(const std::string& token, const std::string& key_id,
                                   absl::Span<const uint64_t> ids);

  // Counters (hits, misses, evictions) since the arena was created; the
  // rest as of now. A hit is a Lookup that found the block current.
  struct Stats {
    uint64_t entries = 0, pinned_entries = 0, used_bytes = 0, evictions = 0;
    uint64_t hits = 0, misses = 0, sessions = 0, leases = 0;
  };
  Stats GetStats();

 private:
  struct Entry {
    std::string key;  // empty once it is no longer findable
    uint64_t generation = 0;
    uint64_t offset = 0, span = 0, bytes = 0;
    uint32_t pins = 0;
    std::list<uint64_t>::iterator lru;  // valid while unpinned and findable
    std::shared_ptr<const KvArenaMeta> meta;
  };
  struct Namespace {
    std::shared_mutex mu;
    std::atomic<uint64_t> generation{0};
  };

  KvArena(char* data, uint64_t size, int fd, int ro_fd, bool huge);
  Namespace* NamespaceOf(const std::string& ns);
  void BumpGeneration(const std::string& ns);
  // mu_ held.
  std::optional<uint64_t> AllocateLocked(uint64_t span);
  void FreeLocked(uint64_t offset, uint64_t span);
  void UnpinLocked(uint64_t entry);
  void ForgetLocked(uint64_t entry);  // makes it unfindable; freed once unpinned
  KvArenaBlock BlockOf(uint64_t id, const Entry& e) const;

  char* const data_;
  const uint64_t size_;
  const int fd_, ro_fd_;
  const bool huge_pages_;
  std::string id_;

  std::mutex ns_mu_;
  std::unordered_map<std::string, std::unique_ptr<Namespace>> namespaces_;

  std::mutex mu_;
  std::map<uint64_t, uint64_t> free_;  // offset -> span
  std::unordered_map<uint64_t, Entry> entries_;
  std::unordered_map<std::string, uint64_t> by_key_;
  std::list<uint64_t> lru_;  // unpinned findable entries, least recent first
  uint64_t next_entry_ = 1;
  uint64_t used_ = 0, evictions_ = 0, hits_ = 0, misses_ = 0;
  struct Session {
    std::string key_id;
    std::unordered_map<uint64_t, uint64_t> leases;  // lease id -> entry
  };
  absl::Status CheckSessionLocked(const std::string& token, const std::string& key_id);
  void CloseSessionLocked(std::unordered_map<std::string, Session>::iterator it);
  std::unordered_map<std::string, Session> sessions_;
  uint64_t next_lease_ = 1;
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_KV_ARENA_H_
