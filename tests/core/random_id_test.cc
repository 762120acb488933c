#include "core/random_id.h"

#include <gtest/gtest.h>

#include <set>

namespace zs::core {
namespace {

TEST(RandomHex, HasTheLengthAskedAndOnlyHexDigits) {
  for (int digits : {0, 1, 7, 8, 9, 24, 32}) {
    const std::string s = random_hex(digits);
    ASSERT_EQ(static_cast<int>(s.size()), digits);
    EXPECT_EQ(s.find_first_not_of("0123456789abcdef"), std::string::npos) << s;
  }
  EXPECT_EQ(random_hex(-3), "");
}

TEST(RandomHex, IdsDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(seen.insert(random_hex(24)).second);
}

}  // namespace
}  // namespace zs::core
