// In-memory state of a namespace's chunk KV caches (see kv_space.h).
#include "db/kv_space.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace mnemo::db {
namespace {

// LRU (reads move a chunk to the back) or FIFO (they do not): a list in
// eviction order plus an index into it.
class ListPolicy final : public KvEvictionPolicy {
 public:
  explicit ListPolicy(bool move_on_touch) : move_on_touch_(move_on_touch) {}

  void Add(int64_t id) override {
    Remove(id);
    where_[id] = order_.insert(order_.end(), id);
  }
  bool Touch(int64_t id) override {
    if (!move_on_touch_) return false;
    auto it = where_.find(id);
    if (it == where_.end()) return false;
    order_.splice(order_.end(), order_, it->second);
    return true;
  }
  void Remove(int64_t id) override {
    auto it = where_.find(id);
    if (it == where_.end()) return;
    order_.erase(it->second);
    where_.erase(it);
  }
  void Visit(const std::function<bool(int64_t)>& visit) const override {
    for (int64_t id : order_) {
      if (!visit(id)) return;
    }
  }

 private:
  const bool move_on_touch_;
  std::list<int64_t> order_;
  absl::flat_hash_map<int64_t, std::list<int64_t>::iterator> where_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvEvictionPolicy>> NewKvEvictionPolicy(absl::string_view name) {
  if (name.empty() || name == kKvEvictLru) return std::make_unique<ListPolicy>(true);
  if (name == kKvEvictFifo) return std::make_unique<ListPolicy>(false);
  return absl::InvalidArgumentError(absl::StrCat("unknown eviction policy '", name,
                                                 "'; known: ", kKvEvictLru, ", ", kKvEvictFifo));
}

absl::StatusOr<std::unique_ptr<KvSpace>> KvSpace::Create(const KvConfig& config) {
  auto policy = NewKvEvictionPolicy(config.eviction_policy);
  if (!policy.ok()) return policy.status();
  std::unique_ptr<KvSpace> space(new KvSpace());
  absl::MutexLock l(&space->mu_);
  space->config_ = config;
  space->policy_ = *std::move(policy);
  return space;
}

KvConfig KvSpace::config() const {
  absl::MutexLock l(&mu_);
  return config_;
}

absl::Status KvSpace::Reconfigure(const KvConfig& config) {
  absl::MutexLock l(&mu_);
  if (config.eviction_policy != config_.eviction_policy) {
    auto policy = NewKvEvictionPolicy(config.eviction_policy);
    if (!policy.ok()) return policy.status();
    std::vector<std::pair<uint64_t, int64_t>> order;  // (stamp, id)
    for (const auto& [id, e] : entries_) order.emplace_back(e.recency, id);
    std::sort(order.begin(), order.end());
    for (const auto& [stamp, id] : order) (*policy)->Add(id);
    policy_ = *std::move(policy);
  }
  config_ = config;
  return absl::OkStatus();
}

std::optional<KvEntry> KvSpace::Live(int64_t id, int64_t now_ms) const {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.Expired(now_ms)) return std::nullopt;
  return it->second;
}

std::optional<KvEntry> KvSpace::Find(int64_t id) const {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void KvSpace::Touch(int64_t id) {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || !policy_->Touch(id)) return;
  it->second.recency = next_recency_++;
  unflushed_.insert(id);
}

uint64_t KvSpace::NextRecency() {
  absl::MutexLock l(&mu_);
  return next_recency_++;
}

void KvSpace::Put(int64_t id, const KvEntry& entry) {
  absl::MutexLock l(&mu_);
  EraseLocked(id);
  entries_[id] = entry;
  next_recency_ = std::max(next_recency_, entry.recency + 1);
  by_hash_[entry.token_hash].push_back(id);
  ++lengths_[entry.n_tokens];
  stored_bytes_ += entry.stored_bytes;
  policy_->Add(id);
}

void KvSpace::SetRetention(int64_t id, bool pinned, int64_t expires_ms) {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  it->second.pinned = pinned;
  it->second.expires_ms = expires_ms;
}

void KvSpace::Erase(int64_t id, Why why) {
  absl::MutexLock l(&mu_);
  if (!entries_.contains(id)) return;
  EraseLocked(id);
  if (why == Why::kEvicted) ++evicted_;
  if (why == Why::kExpired) ++expired_;
}

void KvSpace::EraseLocked(int64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  const KvEntry& e = it->second;
  auto h = by_hash_.find(e.token_hash);
  if (h != by_hash_.end()) {
    auto& ids = h->second;
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
    if (ids.empty()) by_hash_.erase(h);
  }
  auto len = lengths_.find(e.n_tokens);
  if (len != lengths_.end() && --len->second == 0) lengths_.erase(len);
  stored_bytes_ -= e.stored_bytes;
  policy_->Remove(id);
  unflushed_.erase(id);
  entries_.erase(it);
}

std::vector<std::pair<int64_t, uint64_t>> KvSpace::TakeUnflushedRecency() {
  absl::MutexLock l(&mu_);
  std::vector<std::pair<int64_t, uint64_t>> out;
  out.reserve(unflushed_.size());
  for (int64_t id : unflushed_) out.emplace_back(id, entries_.at(id).recency);
  unflushed_.clear();
  std::sort(out.begin(), out.end());
  return out;
}

void KvSpace::MarkRecencyUnflushed(absl::Span<const std::pair<int64_t, uint64_t>> stamps) {
  absl::MutexLock l(&mu_);
  for (const auto& [id, stamp] : stamps) {
    if (entries_.contains(id)) unflushed_.insert(id);
  }
}

bool KvSpace::empty() const {
  absl::MutexLock l(&mu_);
  return entries_.empty();
}

uint64_t KvSpace::stored_bytes() const {
  absl::MutexLock l(&mu_);
  return stored_bytes_;
}

std::vector<int64_t> KvSpace::ExpiredIds(int64_t now_ms) const {
  absl::MutexLock l(&mu_);
  std::vector<int64_t> out;
  for (const auto& [id, e] : entries_) {
    if (e.Expired(now_ms)) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::vector<int64_t>> KvSpace::PlanEviction(
    uint64_t incoming, absl::Span<const int64_t> freed) const {
  absl::MutexLock l(&mu_);
  std::vector<int64_t> victims;
  if (config_.capacity_bytes == 0) return victims;
  absl::flat_hash_set<int64_t> excluded(freed.begin(), freed.end());
  uint64_t held = stored_bytes_;
  for (int64_t id : excluded) {
    auto it = entries_.find(id);
    if (it != entries_.end()) held -= it->second.stored_bytes;
  }
  if (incoming > config_.capacity_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the chunk's KV takes ", incoming, " bytes; the namespace's KV budget is ",
        config_.capacity_bytes, " bytes"));
  }
  policy_->Visit([&](int64_t id) {
    if (held + incoming <= config_.capacity_bytes) return false;
    if (excluded.contains(id)) return true;
    const KvEntry& e = entries_.at(id);
    if (e.pinned) return true;
    victims.push_back(id);
    held -= e.stored_bytes;
    return true;
  });
  if (held + incoming > config_.capacity_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "KV budget of ", config_.capacity_bytes, " bytes is full: ", held,
        " bytes are pinned or in use and the chunk needs ", incoming));
  }
  return victims;
}

std::vector<int64_t> KvSpace::WithTokenHash(uint64_t hash) const {
  absl::MutexLock l(&mu_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return {};
  return it->second;
}

std::vector<uint32_t> KvSpace::Lengths() const {
  absl::MutexLock l(&mu_);
  std::vector<uint32_t> out;
  for (const auto& [len, count] : lengths_) out.push_back(len);
  return out;
}

KvStats KvSpace::Stats(int64_t now_ms) const {
  absl::MutexLock l(&mu_);
  KvStats s;
  s.config = config_;
  double key_sum = 0, value_sum = 0;
  for (const auto& [id, e] : entries_) {
    if (e.Expired(now_ms)) continue;
    ++s.chunks;
    s.blocks += e.n_layers;
    s.tokens += e.n_tokens;
    s.stored_bytes += e.stored_bytes;
    s.index_bytes += e.index_bytes;
    s.fp16_bytes += e.fp16_bytes;
    if (e.pinned) ++s.pinned_chunks;
    key_sum += e.key_error_sum;
    value_sum += e.value_error_sum;
  }
  if (s.blocks > 0) {
    s.mean_key_error = key_sum / static_cast<double>(s.blocks);
    s.mean_value_error = value_sum / static_cast<double>(s.blocks);
  }
  s.evicted_chunks = evicted_;
  s.expired_chunks = expired_;
  return s;
}

}  // namespace mnemo::db
