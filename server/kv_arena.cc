// The hot tier's arena: memory, allocator, cache, pins, leases and
// sessions (server/kv_arena.h).
#include "server/kv_arena.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <random>

#include "absl/strings/str_cat.h"

namespace mnemo::server {
namespace {

constexpr uint64_t kHugePage = uint64_t{2} << 20;

uint64_t RoundUp(uint64_t x, uint64_t to) { return (x + to - 1) / to * to; }

std::string RandomBytes(size_t n) {
  std::random_device rd;
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rd() & 0xff);
  return out;
}

}  // namespace

std::string KvArenaKey::Encode() const {
  return absl::StrCat(ns.size(), ":", ns, chunk_id.size(), ":", chunk_id, "/", layer, "/", dtype,
                      "/", position);
}

absl::StatusOr<std::unique_ptr<KvArena>> KvArena::Create(uint64_t bytes) {
  if (bytes == 0) return absl::InvalidArgumentError("a KV arena needs at least one byte");
  const uint64_t size = RoundUp(bytes, kHugePage);
  bool huge = true;
  int fd = memfd_create("mnemo-kv-arena", MFD_CLOEXEC | MFD_HUGETLB | MFD_ALLOW_SEALING);
  if (fd >= 0 && (ftruncate(fd, static_cast<off_t>(size)) != 0 ||
                  fallocate(fd, 0, 0, static_cast<off_t>(size)) != 0)) {
    close(fd);  // no huge pages reserved (or not enough)
    fd = -1;
  }
  if (fd < 0) {
    huge = false;
    fd = memfd_create("mnemo-kv-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
      return absl::InternalError(absl::StrCat("memfd_create: ", std::strerror(errno)));
    }
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
      const int err = errno;
      close(fd);
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot size the KV arena to ", size, " bytes: ", std::strerror(err)));
    }
  }
  // Clients get a read-only descriptor and cannot resize it; the seals stop
  // anyone else (a shrink would SIGBUS every reader).
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map the KV arena: ", std::strerror(err)));
  }
  if (!huge) madvise(p, size, MADV_HUGEPAGE);  // transparent huge pages when shmem allows
  // Back every page now, so a full tmpfs is an error here and not a SIGBUS later.
  if (!huge && fallocate(fd, 0, 0, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    munmap(p, size);
    close(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot back the KV arena with ", size, " bytes: ", std::strerror(err)));
  }
  madvise(p, size, MADV_POPULATE_WRITE);  // best effort (Linux 5.14+)
  // And write every page once (they are still zero): on a virtual machine
  // whose host backs guest memory lazily the first write to a page costs a
  // host fault even after the populate (measured ~2 ms per MiB, which made
  // a fresh mnemod fill its arena at ~0.5 GB/s); paid here, at start,
  // instead of in the first GetKv.
  const long page = sysconf(_SC_PAGESIZE);
  const uint64_t step = huge ? (uint64_t{2} << 20) : static_cast<uint64_t>(page > 0 ? page : 4096);
  for (uint64_t off = 0; off < size; off += step) static_cast<volatile char*>(p)[off] = 0;
  const std::string self = absl::StrCat("/proc/self/fd/", fd);
  const int ro_fd = open(self.c_str(), O_RDONLY | O_CLOEXEC);
  if (ro_fd < 0) {
    const int err = errno;
    munmap(p, size);
    close(fd);
    return absl::InternalError(
        absl::StrCat("cannot reopen the KV arena read-only: ", std::strerror(err)));
  }
  return std::unique_ptr<KvArena>(new KvArena(static_cast<char*>(p), size, fd, ro_fd, huge));
}

KvArena::KvArena(char* data, uint64_t size, int fd, int ro_fd, bool huge)
    : data_(data), size_(size), fd_(fd), ro_fd_(ro_fd), huge_pages_(huge), id_(RandomBytes(16)) {
  free_[0] = size;
}

KvArena::~KvArena() {
  munmap(data_, size_);
  close(ro_fd_);
  close(fd_);
}

KvArena::Namespace* KvArena::NamespaceOf(const std::string& ns) {
  std::lock_guard<std::mutex> lock(ns_mu_);
  std::unique_ptr<Namespace>& slot = namespaces_[ns];
  if (slot == nullptr) slot = std::make_unique<Namespace>();
  return slot.get();
}

KvArena::WriteLock::WriteLock(KvArena* arena, const std::string& ns) : arena_(arena), ns_(ns) {
  if (arena_ != nullptr) lock_ = std::unique_lock<std::shared_mutex>(arena_->NamespaceOf(ns)->mu);
}

KvArena::WriteLock::~WriteLock() {
  if (arena_ != nullptr) arena_->BumpGeneration(ns_);
}

std::shared_lock<std::shared_mutex> KvArena::ReadLock(const std::string& ns) {
  return std::shared_lock<std::shared_mutex>(NamespaceOf(ns)->mu);
}

void KvArena::BumpGeneration(const std::string& ns) {
  // Called with the namespace's lock held exclusively; readers of the
  // generation hold it shared.
  NamespaceOf(ns)->generation += 1;
}

uint64_t KvArena::Generation(const std::string& ns) { return NamespaceOf(ns)->generation; }

KvArenaBlock KvArena::BlockOf(uint64_t id, const Entry& e) const {
  const uint64_t half = e.span / 2;
  return KvArenaBlock{id, e.offset, e.offset + half, e.bytes, e.meta};
}

std::optional<KvArenaBlock> KvArena::Lookup(const KvArenaKey& key, uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_key_.find(key.Encode());
  if (it == by_key_.end()) {
    ++misses_;
    return std::nullopt;
  }
  const uint64_t id = it->second;
  Entry& e = entries_.at(id);
  if (e.generation != generation) {
    ForgetLocked(id);
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  if (e.pins++ == 0) lru_.erase(e.lru);
  return BlockOf(id, e);
}

absl::StatusOr<KvArenaBlock> KvArena::Insert(const KvArenaKey& key, uint64_t generation,
                                             absl::string_view k, absl::string_view v,
                                             std::shared_ptr<const KvArenaMeta> meta) {
  if (k.size() != v.size()) return absl::InternalError("K and V of a block differ in size");
  const uint64_t span = 2 * RoundUp(std::max<uint64_t>(k.size(), 1), kKvArenaAlign);
  uint64_t id = 0;
  uint64_t offset = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (span > size_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "a KV block of ", span, " bytes is larger than the KV arena (", size_,
          " bytes; mnemod --kv-arena-bytes)"));
    }
    std::optional<uint64_t> at = AllocateLocked(span);
    while (!at.has_value() && !lru_.empty()) {
      const uint64_t victim = lru_.front();
      ForgetLocked(victim);
      ++evictions_;
      at = AllocateLocked(span);
    }
    if (!at.has_value()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the KV arena (", size_, " bytes) is full of leased blocks; release leases "
          "(KvArenaRelease) or read fewer blocks at once"));
    }
    offset = *at;
    id = next_entry_++;
    Entry& e = entries_[id];
    e.generation = generation;
    e.offset = offset;
    e.span = span;
    e.bytes = k.size();
    e.pins = 1;  // the caller's; unfindable until the copy is done
    e.meta = std::move(meta);
  }
  std::memcpy(data_ + offset, k.data(), k.size());
  std::memcpy(data_ + offset + span / 2, v.data(), v.size());
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_.at(id);
  const std::string encoded = key.Encode();
  // Cached only when no KV write of the namespace happened since the read.
  if (generation == Generation(key.ns)) {
    auto old = by_key_.find(encoded);
    if (old != by_key_.end()) ForgetLocked(old->second);
    e.key = encoded;
    by_key_[encoded] = id;
  }
  return BlockOf(id, e);
}

std::optional<uint64_t> KvArena::AllocateLocked(uint64_t span) {
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < span) continue;
    const uint64_t offset = it->first;
    const uint64_t rest = it->second - span;
    free_.erase(it);
    if (rest > 0) free_[offset + span] = rest;
    used_ += span;
    return offset;
  }
  return std::nullopt;
}

void KvArena::FreeLocked(uint64_t offset, uint64_t span) {
  used_ -= span;
  auto next = free_.lower_bound(offset);
  if (next != free_.end() && next->first == offset + span) {
    span += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      prev->second += span;
      return;
    }
  }
  free_[offset] = span;
}

void KvArena::ForgetLocked(uint64_t id) {
  Entry& e = entries_.at(id);
  if (!e.key.empty()) {
    auto it = by_key_.find(e.key);
    if (it != by_key_.end() && it->second == id) by_key_.erase(it);
    e.key.clear();
    if (e.pins == 0) lru_.erase(e.lru);
  }
  if (e.pins == 0) {
    FreeLocked(e.offset, e.span);
    entries_.erase(id);
  }
}

void KvArena::UnpinLocked(uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.pins == 0) return;
  Entry& e = it->second;
  if (--e.pins > 0) return;
  if (e.key.empty()) {
    FreeLocked(e.offset, e.span);
    entries_.erase(it);
    return;
  }
  e.lru = lru_.insert(lru_.end(), id);
}

void KvArena::Unpin(uint64_t entry) {
  std::lock_guard<std::mutex> lock(mu_);
  UnpinLocked(entry);
}

std::string KvArena::OpenSession(const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string token;
  do {
    token = RandomBytes(16);
  } while (sessions_.count(token) > 0);
  sessions_[token].key_id = key_id;
  return token;
}

void KvArena::CloseSessionLocked(std::unordered_map<std::string, Session>::iterator it) {
  for (const auto& [lease, entry] : it->second.leases) UnpinLocked(entry);
  sessions_.erase(it);
}

void KvArena::CloseSession(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(token);
  if (it != sessions_.end()) CloseSessionLocked(it);
}

size_t KvArena::CloseSessionsOf(const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t closed = 0;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto next = std::next(it);
    if (it->second.key_id == key_id) {
      CloseSessionLocked(it);
      ++closed;
    }
    it = next;
  }
  return closed;
}

bool KvArena::HasSession(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.count(token) > 0;
}

absl::Status KvArena::CheckSessionLocked(const std::string& token, const std::string& key_id) {
  auto it = sessions_.find(token);
  if (it == sessions_.end()) {
    return absl::FailedPreconditionError(
        "unknown or closed KV arena session (reconnect to the arena socket)");
  }
  if (it->second.key_id != key_id) {
    // Names neither key: the token is someone else's, and useless here.
    return absl::PermissionDeniedError(
        "this KV arena session belongs to another API key: connect to the arena socket with "
        "the key of this call");
  }
  return absl::OkStatus();
}

absl::Status KvArena::CheckSession(const std::string& token, const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return CheckSessionLocked(token, key_id);
}

absl::StatusOr<uint64_t> KvArena::Lease(const std::string& token, uint64_t entry) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(token);
  if (it == sessions_.end()) {
    UnpinLocked(entry);
    return absl::FailedPreconditionError(
        "unknown or closed KV arena session (reconnect to the arena socket)");
  }
  const uint64_t lease = next_lease_++;
  it->second.leases[lease] = entry;
  return lease;
}

absl::StatusOr<uint64_t> KvArena::Release(const std::string& token, const std::string& key_id,
                                          absl::Span<const uint64_t> ids) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = CheckSessionLocked(token, key_id); !s.ok()) return s;
  auto it = sessions_.find(token);
  for (uint64_t id : ids) {
    if (it->second.leases.count(id) == 0) {
      return absl::NotFoundError(
          absl::StrCat("lease ", id, " is not held by this KV arena session; nothing released"));
    }
  }
  uint64_t released = 0;
  for (uint64_t id : ids) {
    auto lease = it->second.leases.find(id);
    if (lease == it->second.leases.end()) continue;  // a duplicate id
    UnpinLocked(lease->second);
    it->second.leases.erase(lease);
    ++released;
  }
  return released;
}

KvArena::Stats KvArena::GetStats() {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s;
  s.entries = entries_.size();
  for (const auto& [id, e] : entries_) s.pinned_entries += e.pins > 0 ? 1 : 0;
  s.used_bytes = used_;
  s.evictions = evictions_;
  s.hits = hits_;
  s.misses = misses_;
  s.sessions = sessions_.size();
  for (const auto& [token, session] : sessions_) s.leases += session.leases.size();
  return s;
}

}  // namespace mnemo::server
