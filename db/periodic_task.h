// A background thread that runs one task every `interval` until stopped:
// the store's KV retention timers (recency flush, expiry; see
// db/kv_retention.cc). Stop() (or the destructor) wakes the thread at once
// and joins it, waiting for a run in progress; the task never runs after
// Stop() returns. Internal to db/.
//
// Thread safety: Stop() may be called from any thread but the task's own.
// The task runs without any of this object's locks held, so it may take any
// lock its owner allows (the store's lock order: db/store_impl.h); its
// owner must not hold a lock the task takes while calling Stop().
#ifndef MNEMO_DB_PERIODIC_TASK_H_
#define MNEMO_DB_PERIODIC_TASK_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mnemo::db {

class PeriodicTask {
 public:
  // Starts the thread; the first run is one interval from now. `name`
  // names the task in logs. `interval` must be positive.
  PeriodicTask(std::string name, absl::Duration interval, std::function<void()> task);
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;
  ~PeriodicTask() { Stop(); }

  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string name_;
  const absl::Duration interval_;
  const std::function<void()> task_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // started last, after every member it reads
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_PERIODIC_TASK_H_
