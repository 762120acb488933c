// A worker started with --auth-token-file (as the Slurm runtime starts it on a node, on a
// non-loopback address) serves only requests that carry the instance's bearer token.
#include <gtest/gtest.h>

#include <fstream>

#include "e2e/serve_fixture.h"

namespace zs::testing {
namespace {

const std::string kBody = R"({"model":"m","prompt":"Once","max_tokens":2})";

TEST(WorkerToken, RequestsWithoutTheTokenAreRefusedWith401AndWithItServed) {
  TempDir dir;
  std::ofstream(dir.file("token")) << "s3cret-token\n";
  WorkerProcess w({"--auth-token-file", dir.file("token")});
  ASSERT_FALSE(w.address().empty());
  const auto none = w.post("/v1/completions", kBody);
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_NE(none.body.find("authentication_error"), std::string::npos) << none.body;
  EXPECT_EQ(w.post("/v1/completions", kBody, {{"Authorization", "Bearer s3cret-toke"}}).status, 401);
  EXPECT_EQ(w.post("/v1/completions", kBody, {{"Authorization", "Bearer s3cret-token!"}}).status, 401);
  EXPECT_EQ(w.post("/v1/completions", kBody, {{"Authorization", "s3cret-token"}}).status, 401);
  EXPECT_EQ(w.get("/v1/models").status, 401);
  EXPECT_EQ(w.get("/metrics").status, 401);
  EXPECT_EQ(w.post("/v1/completions", kBody, {{"Authorization", "Bearer s3cret-token"}}).status, 200);
}

TEST(WorkerToken, HealthStaysOpenForProbes) {
  TempDir dir;
  std::ofstream(dir.file("token")) << "t\n";
  WorkerProcess w({"--auth-token-file", dir.file("token")});
  ASSERT_FALSE(w.address().empty());
  EXPECT_EQ(w.get("/health").status, 200);
}

TEST(WorkerToken, AnEmptyTokenFileIsRefusedAtStartWithAClearError) {
  TempDir dir;
  std::ofstream(dir.file("token")) << "\n";
  ChildProcess p({ZS_BINARY, "worker", "--model", golden_model("stories260K.gguf"), "--listen", "127.0.0.1:0",
                  "--auth-token-file", dir.file("token")});
  const auto code = p.wait_exit(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
}

TEST(WorkerToken, WithoutATokenFileEveryRouteIsOpenAsBefore) {
  WorkerProcess w;
  ASSERT_FALSE(w.address().empty());
  EXPECT_EQ(w.post("/v1/completions", kBody).status, 200);
}

}  // namespace
}  // namespace zs::testing
