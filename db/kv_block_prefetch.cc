// Read-ahead of KV blocks on a few threads (see kv_block_prefetch.h).
#include "db/kv_block_prefetch.h"

#include <algorithm>
#include <utility>

namespace mnemo::db {

KvBlockPrefetcher::KvBlockPrefetcher(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                     rocksdb::ReadOptions read_options,
                                     std::vector<std::string> keys,
                                     std::vector<size_t> issue_order, size_t depth)
    : db_(db),
      cf_(cf),
      read_options_(std::move(read_options)),
      keys_(std::move(keys)),
      issue_order_(issue_order.empty() ? [n = keys_.size()] {
        std::vector<size_t> identity(n);
        for (size_t i = 0; i < n; ++i) identity[i] = i;
        return identity;
      }()
                                       : std::move(issue_order)),
      depth_(std::max<size_t>(depth, 1)) {
  {
    absl::MutexLock l(&mu_);
    for (size_t i = 0; i < depth_; ++i) slots_.push_back(std::make_unique<Slot>());
  }
  const size_t threads = std::min({depth_, kMaxThreads, keys_.size()});
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

KvBlockPrefetcher::~KvBlockPrefetcher() { Stop(); }

void KvBlockPrefetcher::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopped_ = true;
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void KvBlockPrefetcher::Work() {
  while (true) {
    size_t i = 0;
    Slot* slot = nullptr;
    {
      absl::MutexLock l(&mu_);
      auto can_issue = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopped_ || issued_ >= keys_.size() || issue_order_[issued_] < taken_ + depth_;
      };
      mu_.Await(absl::Condition(&can_issue));
      if (stopped_ || issued_ >= keys_.size()) return;
      i = issue_order_[issued_++];
      slot = slots_[i % depth_].get();
    }
    // The slot is this worker's until it marks it ready: Next() waits for
    // that, and nobody else issues index i.
    slot->value.Reset();
    slot->status = db_->Get(read_options_, cf_, keys_[i], &slot->value);
    absl::MutexLock l(&mu_);
    slot->ready = true;
  }
}

rocksdb::Status KvBlockPrefetcher::Next(rocksdb::PinnableSlice* value) {
  absl::MutexLock l(&mu_);
  if (stopped_ || taken_ >= keys_.size()) {
    return rocksdb::Status::Aborted("KV read-ahead stopped or past its last key");
  }
  Slot* slot = slots_[taken_ % depth_].get();
  auto ready = [this, slot]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return slot->ready || stopped_;
  };
  mu_.Await(absl::Condition(&ready));
  if (!slot->ready) return rocksdb::Status::Aborted("KV read-ahead stopped");
  rocksdb::Status status = std::move(slot->status);
  *value = std::move(slot->value);
  slot->value.Reset();
  slot->ready = false;
  ++taken_;  // frees the slot for key taken_ - 1 + depth_
  return status;
}

}  // namespace mnemo::db
