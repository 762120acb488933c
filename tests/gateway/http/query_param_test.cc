#include <gtest/gtest.h>

#include "gateway/http/http_types.h"

namespace zs::gateway {
namespace {

TEST(QueryParam, FindsANamedValueAmongOthers) {
  EXPECT_EQ(query_param("a=1&b=2&c=3", "b"), "2");
  EXPECT_EQ(query_param("a=1&b=2&c=3", "c"), "3");
  EXPECT_EQ(query_param("ab=1&b=2", "b"), "2");  // whole names only
}

TEST(QueryParam, AbsentOrValuelessNamesGiveEmpty) {
  EXPECT_EQ(query_param("", "a"), "");
  EXPECT_EQ(query_param("a=1", "b"), "");
  EXPECT_EQ(query_param("flag&a=1", "flag"), "");
  EXPECT_EQ(query_param("a=", "a"), "");
}

TEST(QueryParam, DecodesPercentEscapesAndPlusButLeavesMalformedEscapesAsTheyAre) {
  EXPECT_EQ(query_param("q=dep%2D0999", "q"), "dep-0999");
  EXPECT_EQ(query_param("q=a+b%20c", "q"), "a b c");
  EXPECT_EQ(query_param("q=100%", "q"), "100%");
  EXPECT_EQ(query_param("q=%zz1", "q"), "%zz1");
  EXPECT_EQ(query_param("q=%4", "q"), "%4");
}

}  // namespace
}  // namespace zs::gateway
