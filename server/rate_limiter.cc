// RateLimiter (server/rate_limiter.h).
#include "server/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace mnemo::server {

absl::Status RateLimiter::Take(absl::string_view key_id, RateLimit own, Clock::time_point now) {
  // A key's own rate wins; its own burst applies to the default rate too.
  const RateLimit limit =
      own.rps > 0 ? own : RateLimit{defaults_.rps, own.burst > 0 ? own.burst : defaults_.burst};
  if (!(limit.rps > 0)) return absl::OkStatus();
  const double burst = limit.burst > 0 ? limit.burst : std::max(1.0, std::ceil(limit.rps));
  absl::MutexLock l(&mu_);
  auto [it, fresh] = buckets_.try_emplace(std::string(key_id), Bucket{burst, now});
  Bucket& b = it->second;
  if (!fresh && now > b.refilled) {
    const double elapsed = std::chrono::duration<double>(now - b.refilled).count();
    b.tokens = std::min(burst, b.tokens + elapsed * limit.rps);
    b.refilled = now;
  }
  if (b.tokens < 1.0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("rate limit of API key '", key_id, "' exceeded: ", limit.rps,
                     " requests/s with bursts of ", burst));
  }
  b.tokens -= 1.0;
  return absl::OkStatus();
}

void RateLimiter::Forget(absl::string_view key_id) {
  absl::MutexLock l(&mu_);
  buckets_.erase(key_id);
}

}  // namespace mnemo::server
