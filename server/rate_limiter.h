// RateLimiter: a token bucket per API key (mnemod --rate-limit-rps,
// --rate-limit-burst, or the key's own limit from CreateKey).
//
// A bucket holds at most `burst` tokens and refills at `rps` tokens per
// second; every call takes one. An empty bucket refuses the call with
// RESOURCE_EXHAUSTED naming the limit, so a client sustains `rps` calls per
// second with bursts of `burst`. rps 0 means no limit.
//
// Thread-safe (one mutex; a call holds it for a few arithmetic operations).
#ifndef MNEMO_SERVER_RATE_LIMITER_H_
#define MNEMO_SERVER_RATE_LIMITER_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace mnemo::server {

struct RateLimit {
  double rps = 0;      // tokens per second; 0 = unlimited
  uint32_t burst = 0;  // bucket size; 0 = max(1, ceil(rps))
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // `defaults` applies to keys whose own limit is 0.
  explicit RateLimiter(RateLimit defaults) : defaults_(defaults) {}

  // Takes one token of `key_id`'s bucket (made full at its first call) at
  // time `now`. OK, or RESOURCE_EXHAUSTED naming the limit.
  absl::Status Take(absl::string_view key_id, RateLimit own, Clock::time_point now = Clock::now())
      ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets a key's bucket (revoked keys).
  void Forget(absl::string_view key_id) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point refilled;
  };

  const RateLimit defaults_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_RATE_LIMITER_H_
