#include "platform/quota/quota_book.h"

#include <gtest/gtest.h>

namespace zs::platform {
namespace {

TEST(TokenBucket, StartsFullRefillsAndCapsAtOneMinute) {
  TokenBucket b(60, 0);  // one a second
  EXPECT_DOUBLE_EQ(b.available(0), 60);
  b.take(60, 0);
  EXPECT_DOUBLE_EQ(b.available(0), 0);
  EXPECT_DOUBLE_EQ(b.available(10), 10);
  EXPECT_DOUBLE_EQ(b.available(1000), 60);
  b.take(100, 1000);  // usage known afterwards may overdraw
  EXPECT_DOUBLE_EQ(b.available(1000), -40);
  EXPECT_DOUBLE_EQ(b.seconds_until(1, 1000), 41);
}

TEST(TokenBucket, ClockGoingBackwardsDoesNotMintTokens) {
  TokenBucket b(60, 100);
  b.take(60, 100);
  EXPECT_DOUBLE_EQ(b.available(50), 0);
  EXPECT_DOUBLE_EQ(b.available(101), 1);
}

TEST(QuotaBook, UnknownKeyIsUnlimited) {
  QuotaBook q;
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(q.admit("anyone", 0));
  EXPECT_EQ(q.usage("anyone", 0).requests_remaining, -1);
}

TEST(QuotaBook, RequestsPerMinuteRefusesWithRetryAfter) {
  QuotaBook q;
  q.set_limits("team", {.requests_per_minute = 3}, 0);
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(q.admit("team", 0));
    q.finish("team", 0, 0);
  }
  auto r = q.admit("team", 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->limit, "requests_per_minute");
  EXPECT_DOUBLE_EQ(r->limit_value, 3);
  EXPECT_DOUBLE_EQ(r->retry_after_s, 20);  // one request refills every 20 s
  EXPECT_NE(r->message.find("requests_per_minute limit of 3"), std::string::npos);
  EXPECT_NE(r->message.find("'team'"), std::string::npos);
  EXPECT_TRUE(q.admit("team", 19.9));
  EXPECT_FALSE(q.admit("team", 20.01));
}

TEST(QuotaBook, TokensPerMinuteChargesAfterTheFact) {
  QuotaBook q;
  q.set_limits("k", {.tokens_per_minute = 600}, 0);
  ASSERT_FALSE(q.admit("k", 0));
  q.finish("k", 900, 0);  // a long answer overdraws the bucket
  auto r = q.admit("k", 1);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->limit, "tokens_per_minute");
  EXPECT_NEAR(r->retry_after_s, 29.1, 1e-9);  // -290 at t=1, 10 tokens a second, until 1 is there
  EXPECT_FALSE(q.admit("k", 31));
}

TEST(QuotaBook, MaxConcurrentCountsRequestsInFlight) {
  QuotaBook q;
  q.set_limits("k", {.max_concurrent = 2}, 0);
  ASSERT_FALSE(q.admit("k", 0));
  ASSERT_FALSE(q.admit("k", 0));
  auto r = q.admit("k", 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->limit, "max_concurrent");
  EXPECT_EQ(q.usage("k", 0).in_flight, 2);
  q.finish("k", 10, 0);
  EXPECT_FALSE(q.admit("k", 0));
}

TEST(QuotaBook, RefusedRequestsDoNotConsumeQuota) {
  QuotaBook q;
  q.set_limits("k", {.requests_per_minute = 60, .max_concurrent = 1}, 0);
  ASSERT_FALSE(q.admit("k", 0));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(q.admit("k", 0));  // refused on concurrency
  q.finish("k", 0, 0);
  EXPECT_EQ(q.usage("k", 0).requests_remaining, 59);
}

TEST(QuotaBook, NewLimitsKeepUsage) {
  QuotaBook q;
  q.set_limits("k", {.requests_per_minute = 10}, 0);
  for (int i = 0; i < 10; ++i) ASSERT_FALSE(q.admit("k", 0));
  q.set_limits("k", {.requests_per_minute = 20}, 0);  // a reload must not reset the bucket
  EXPECT_TRUE(q.admit("k", 0));
  q.set_limits("k", {}, 0);  // limits removed
  EXPECT_FALSE(q.admit("k", 0));
}

}  // namespace
}  // namespace zs::platform
