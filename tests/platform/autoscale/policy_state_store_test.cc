#include "platform/autoscale/policy_state_store.h"

#include <gtest/gtest.h>

#include "test_util/temp_dir.h"

namespace zs::platform {
namespace {

TEST(PolicyStateStore, SurvivesReopenAndKeysByPolicy) {
  zs::testing::TempDir dir;
  const std::string path = dir.file("state/policy.sqlite");
  {
    auto s = PolicyStateStore::open(path);
    ASSERT_TRUE(s.is_ok()) << s.status().message();
    ASSERT_TRUE(s.value()->save("chat", "histogram", "bins 1 2 3").is_ok());
    ASSERT_TRUE(s.value()->save("chat", "histogram", "bins 4 5 6").is_ok());  // replaces
  }
  auto s = PolicyStateStore::open(path);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s.value()->load("chat", "histogram"), "bins 4 5 6");
  EXPECT_FALSE(s.value()->load("chat", "predictive").has_value());  // another policy's state is not reused
  EXPECT_FALSE(s.value()->load("other", "histogram").has_value());
}

TEST(PolicyStateStore, UnopenablePathIsAClearError) {
  auto s = PolicyStateStore::open("/proc/version/x.sqlite");
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status().message().find("policy state"), std::string::npos);
}

}  // namespace
}  // namespace zs::platform
