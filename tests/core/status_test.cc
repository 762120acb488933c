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

TEST(Status, ErrorWithoutACodeIsUnknown) {
  EXPECT_EQ(Status::ok().code(), StatusCode::kOk);
  EXPECT_EQ(Status::error("x").code(), StatusCode::kUnknown);
  EXPECT_FALSE(Status::error("x").is_ok());
  // A failure is never OK, even when asked for with kOk.
  EXPECT_EQ(Status::from_code(StatusCode::kOk, "x").code(), StatusCode::kUnknown);
}

TEST(Status, NamedConstructorsCarryTheirCode) {
  struct Case {
    Status status;
    StatusCode code;
    std::string_view name;
  };
  const Case cases[] = {
      {Status::invalid_argument("m"), StatusCode::kInvalidArgument, "invalid_argument"},
      {Status::unauthenticated("m"), StatusCode::kUnauthenticated, "unauthenticated"},
      {Status::not_found("m"), StatusCode::kNotFound, "not_found"},
      {Status::failed_precondition("m"), StatusCode::kFailedPrecondition, "failed_precondition"},
      {Status::too_large("m"), StatusCode::kTooLarge, "too_large"},
      {Status::resource_exhausted("m"), StatusCode::kResourceExhausted, "resource_exhausted"},
      {Status::insufficient_memory("m"), StatusCode::kInsufficientMemory, "insufficient_memory"},
      {Status::internal("m"), StatusCode::kInternal, "internal"},
      {Status::upstream_failed("m"), StatusCode::kUpstreamFailed, "upstream_failed"},
      {Status::unavailable("m"), StatusCode::kUnavailable, "unavailable"},
      {Status::deadline_exceeded("m"), StatusCode::kDeadlineExceeded, "deadline_exceeded"},
  };
  for (const Case& c : cases) {
    EXPECT_FALSE(c.status.is_ok()) << c.name;
    EXPECT_EQ(c.status.code(), c.code) << c.name;
    EXPECT_EQ(c.status.message(), "m") << c.name;
    EXPECT_EQ(status_code_name(c.status.code()), c.name);
  }
  EXPECT_TRUE(Status::not_found("m").is_not_found());
  EXPECT_FALSE(Status::not_found("m").is_invalid_argument());
  EXPECT_TRUE(Status::invalid_argument("m").is_invalid_argument());
  EXPECT_TRUE(Status::failed_precondition("m").is_failed_precondition());
  EXPECT_TRUE(Status::resource_exhausted("m").is_resource_exhausted());
  EXPECT_TRUE(Status::unavailable("m").is_unavailable());
  EXPECT_TRUE(Status::deadline_exceeded("m").is_deadline_exceeded());
}

Status missing_model() {
  ZS_RETURN_IF_ERROR(Status::not_found("no such file: m.gguf"));
  return Status::ok();
}

TEST(Status, CodeSurvivesContextAndEarlyReturn) {
  Status s = missing_model().with_context("loading deployment 'a'").with_context("config.yaml");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "config.yaml: loading deployment 'a': no such file: m.gguf");
}

TEST(Status, WithCodeKeepsTheMessage) {
  Status s = Status::unavailable("host down").with_code(StatusCode::kInvalidArgument);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "host down");
  EXPECT_TRUE(Status::ok().with_code(StatusCode::kInternal).is_ok());
}

Result<int> parse_port(int v) {
  if (v < 0) return Status::invalid_argument("negative port");
  return v;
}

TEST(Result, CarriesTheCode) {
  EXPECT_EQ(parse_port(80).code(), StatusCode::kOk);
  auto r = parse_port(-1);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  // Passed up as a Status into another Result, the code stays.
  Result<std::string> up = r.status().with_context("listen");
  EXPECT_EQ(up.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(up.status().message(), "listen: negative port");
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

TEST(MappedFile, MissingFileIsNotFound) {
  EXPECT_EQ(MappedFile::open("/nonexistent/file").code(), StatusCode::kNotFound);
  EXPECT_EQ(MappedFile::open("/tmp").code(), StatusCode::kInvalidArgument);
}

TEST(MappedFile, EmptyFileMapsToNothing) {
  auto r = MappedFile::open("/dev/null");
  ASSERT_FALSE(r.is_ok());  // a character device, not a regular file
}

}  // namespace
}  // namespace zs::core
