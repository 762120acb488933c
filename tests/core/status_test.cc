#include "core/status.h"

#include <gtest/gtest.h>

#include "core/mapped_file.h"

namespace zs::core {
namespace {

Status fails_inside() {
  ZS_RETURN_IF_ERROR(Status::error("inner"));
  return Status::ok();
}

TEST(Status, CarriesMessagesAndContext) {
  EXPECT_TRUE(Status::ok().is_ok());
  Status s = fails_inside();
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.with_context("outer").message(), "outer: inner");
  EXPECT_TRUE(Status::ok().with_context("x").is_ok());
}

TEST(Result, HoldsValueOrStatus) {
  Result<int> a(5);
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a.value(), 5);
  Result<int> b(Status::error("no"));
  ASSERT_FALSE(b.is_ok());
  EXPECT_EQ(b.status().message(), "no");
}

TEST(MappedFile, MissingFileAndDirectoryAreClearErrors) {
  auto r = MappedFile::open("/nonexistent/file");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("/nonexistent/file"), std::string::npos);
  auto d = MappedFile::open("/tmp");
  ASSERT_FALSE(d.is_ok());
  EXPECT_NE(d.status().message().find("not a regular file"), std::string::npos);
}

TEST(MappedFile, EmptyFileMapsToNothing) {
  auto r = MappedFile::open("/dev/null");
  ASSERT_FALSE(r.is_ok());  // a character device, not a regular file
}

}  // namespace
}  // namespace zs::core
