// The lifetime token a store shares with the objects it hands out that
// outlive the call that made them (KvReader, KvChunkWriter): it says
// whether the store is still open, keeps Close from tearing the DB down
// under a call in flight, and lets Close release what those objects hold
// of the DB (RocksDB snapshots, pinned blocks).
//
// Contract (stated to callers in db/store.h): such an object must be
// destroyed before Store::Close(). Using one afterwards is a programming
// error: debug builds abort with a message saying so; every build returns
// FAILED_PRECONDITION "store closed" and never touches the freed DB.
//
// Thread safety: every method is thread-safe. Lock order: db/store_impl.h.
#ifndef MNEMO_DB_STORE_LIFETIME_H_
#define MNEMO_DB_STORE_LIFETIME_H_

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"

namespace mnemo::db {

class StoreLifetime {
 public:
  // Something handed out that holds DB resources until it is destroyed.
  class Holder {
   public:
    virtual ~Holder() = default;
    // Releases everything it holds of `db`; called once, by Close, while no
    // Pin is held. The holder must not use the DB afterwards.
    virtual void ReleaseDb(rocksdb::DB* db) = 0;
  };

  // Shared hold on the open DB for the length of one call: Close waits for
  // it. db() is null once the store is closed.
  class ABSL_SCOPED_LOCKABLE Pin {
   public:
    explicit Pin(StoreLifetime* lifetime) ABSL_SHARED_LOCK_FUNCTION(lifetime->mu_)
        : lifetime_(lifetime) {
      lifetime_->mu_.ReaderLock();
    }
    ~Pin() ABSL_UNLOCK_FUNCTION() { lifetime_->mu_.ReaderUnlock(); }
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
    rocksdb::DB* db() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return lifetime_->db_; }

   private:
    StoreLifetime* const lifetime_;
  };

  explicit StoreLifetime(rocksdb::DB* db);
  StoreLifetime(const StoreLifetime&) = delete;
  StoreLifetime& operator=(const StoreLifetime&) = delete;

  // Tracks `holder` until Unregister or Close. Call while the store is open
  // (under a namespace lock that saw it open, or a Pin).
  void Register(Holder* holder) ABSL_LOCKS_EXCLUDED(registry_mu_);
  // Stops tracking `holder`; returns false when Close already released it
  // (the holder then holds nothing of the DB). Otherwise the holder may
  // release its resources through `db` before this returns: the callback
  // runs under the registry lock, so Close cannot run concurrently.
  template <typename Fn>
  bool Unregister(Holder* holder, Fn release) ABSL_LOCKS_EXCLUDED(registry_mu_) {
    absl::MutexLock l(&registry_mu_);
    if (released_) return false;
    holders_.erase(holder);
    release(db_registry_);
    return true;
  }

  // Waits for every Pin, releases every registered holder and marks the
  // store closed. Called by Store::Close before the DB is destroyed.
  void Close() ABSL_LOCKS_EXCLUDED(mu_, registry_mu_);

  // The error a handed-out object returns when used after Close; `what`
  // names the object ("KvReader"). Aborts in debug builds (NDEBUG unset).
  static absl::Status UsedAfterClose(absl::string_view what);

 private:
  absl::Mutex mu_ ABSL_ACQUIRED_BEFORE(registry_mu_);
  rocksdb::DB* db_ ABSL_GUARDED_BY(mu_);

  absl::Mutex registry_mu_;
  bool released_ ABSL_GUARDED_BY(registry_mu_) = false;
  // The same DB as db_, for Unregister (which holds no Pin).
  rocksdb::DB* db_registry_ ABSL_GUARDED_BY(registry_mu_) = nullptr;
  absl::flat_hash_set<Holder*> holders_ ABSL_GUARDED_BY(registry_mu_);

};

}  // namespace mnemo::db

#endif  // MNEMO_DB_STORE_LIFETIME_H_
