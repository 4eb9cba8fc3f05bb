// RateLimiter (server/rate_limiter.h) on an explicit clock: the burst,
// the refill rate, per-key buckets, key limits over the defaults.
#include "server/rate_limiter.h"

#include <chrono>

#include "gtest/gtest.h"

namespace mnemo::server {
namespace {

using Clock = RateLimiter::Clock;
using std::chrono::milliseconds;

TEST(RateLimiterTest, BurstThenRefillAtTheRate) {
  RateLimiter limiter(RateLimit{2.0, 3});
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("k", {}, t0).ok()) << i;
  absl::Status refused = limiter.Take("k", {}, t0);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("2 requests/s with bursts of 3"), std::string::npos) << refused;
  // 2/s: one token after 500 ms, not before.
  EXPECT_FALSE(limiter.Take("k", {}, t0 + milliseconds(400)).ok());
  EXPECT_TRUE(limiter.Take("k", {}, t0 + milliseconds(500)).ok());
  EXPECT_FALSE(limiter.Take("k", {}, t0 + milliseconds(500)).ok());
  // A long pause refills to the burst, never beyond.
  const Clock::time_point later = t0 + std::chrono::seconds(60);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("k", {}, later).ok()) << i;
  EXPECT_FALSE(limiter.Take("k", {}, later).ok());
}

TEST(RateLimiterTest, KeysHaveTheirOwnBuckets) {
  RateLimiter limiter(RateLimit{1.0, 1});
  const Clock::time_point t0 = Clock::now();
  EXPECT_TRUE(limiter.Take("a", {}, t0).ok());
  EXPECT_FALSE(limiter.Take("a", {}, t0).ok());
  EXPECT_TRUE(limiter.Take("b", {}, t0).ok());
  limiter.Forget("a");
  EXPECT_TRUE(limiter.Take("a", {}, t0).ok());
}

TEST(RateLimiterTest, AKeysOwnLimitWinsAndZeroIsUnlimited) {
  RateLimiter unlimited(RateLimit{});
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(unlimited.Take("k", {}, t0).ok());
  // Its own 1/s burst 2 under a server without a default.
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(unlimited.Take("own", {1.0, 2}, t0).ok());
  EXPECT_FALSE(unlimited.Take("own", {1.0, 2}, t0).ok());
  // Burst 0 = one second's worth (at least 1).
  RateLimiter limiter(RateLimit{0.5, 0});
  EXPECT_TRUE(limiter.Take("k", {}, t0).ok());
  EXPECT_FALSE(limiter.Take("k", {}, t0).ok());
}

}  // namespace
}  // namespace mnemo::server
