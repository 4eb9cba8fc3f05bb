// A background thread running one task periodically (see periodic_task.h).
#include "db/periodic_task.h"

#include <utility>

#include "spdlog/spdlog.h"

namespace mnemo::db {

PeriodicTask::PeriodicTask(std::string name, absl::Duration interval, std::function<void()> task)
    : name_(std::move(name)), interval_(interval), task_(std::move(task)) {
  thread_ = std::thread([this] { Loop(); });
}

void PeriodicTask::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void PeriodicTask::Loop() {
  spdlog::debug("{}: every {}", name_, absl::FormatDuration(interval_));
  while (true) {
    {
      absl::MutexLock l(&mu_);
      // Wakes early when Stop() sets the flag.
      const absl::Time deadline = absl::Now() + interval_;
      if (mu_.AwaitWithDeadline(absl::Condition(&stop_), deadline)) return;
    }
    task_();
  }
}

}  // namespace mnemo::db
