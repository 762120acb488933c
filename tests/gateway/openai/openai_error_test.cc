#include "gateway/openai/openai_error.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace zs::gateway::openai {
namespace {

using core::Status;
using core::StatusCode;

// The table documented in openai_error.h: every code, its HTTP status and its error type.
TEST(HttpErrorFor, MapsEveryCode) {
  struct Row {
    StatusCode code;
    int status;
    std::string type;
  };
  const Row rows[] = {
      {StatusCode::kOk, 200, ""},
      {StatusCode::kInvalidArgument, 400, "invalid_request_error"},
      {StatusCode::kUnauthenticated, 401, "authentication_error"},
      {StatusCode::kNotFound, 404, "invalid_request_error"},
      {StatusCode::kFailedPrecondition, 409, "invalid_request_error"},
      {StatusCode::kTooLarge, 413, "invalid_request_error"},
      {StatusCode::kResourceExhausted, 429, "rate_limit_error"},
      {StatusCode::kUnknown, 500, "server_error"},
      {StatusCode::kInternal, 500, "server_error"},
      {StatusCode::kUpstreamFailed, 502, "server_error"},
      {StatusCode::kUnavailable, 503, "service_unavailable"},
      {StatusCode::kDeadlineExceeded, 504, "timeout"},
      {StatusCode::kInsufficientMemory, 507, "insufficient_storage"},
  };
  for (const Row& r : rows) {
    const HttpError e = http_error_for(r.code);
    EXPECT_EQ(e.status, r.status) << core::status_code_name(r.code);
    EXPECT_EQ(std::string(e.type), r.type) << core::status_code_name(r.code);
  }
}

// A full queue (retry later) and a model too large for its device (retrying will not help)
// must stay apart.
TEST(HttpErrorFor, QueueFullAndNoMemoryDiffer) {
  EXPECT_EQ(http_error_for(StatusCode::kResourceExhausted).status, 429);
  EXPECT_EQ(http_error_for(StatusCode::kInsufficientMemory).status, 507);
}

TEST(OpenAiErrorJson, TypesAStatusByItsCode) {
  auto j = nlohmann::json::parse(openai_error_json(Status::not_found("unknown model 'x'"), "model", "model_not_found"));
  EXPECT_EQ(j["error"]["message"], "unknown model 'x'");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "model");
  EXPECT_EQ(j["error"]["code"], "model_not_found");
}

TEST(ApiError, StatusAndTypeComeFromTheCode) {
  ApiError e;
  EXPECT_EQ(e.http_status(), 400);
  EXPECT_EQ(e.type(), "invalid_request_error");
  e.status = StatusCode::kNotFound;
  EXPECT_EQ(e.http_status(), 404);
}

class RecordingWriter : public ResponseWriter {
 public:
  void respond(int s, std::string type, std::string b, HttpHeaders h) override {
    status = s;
    content_type = std::move(type);
    body = std::move(b);
    headers = std::move(h);
  }
  void start_stream(int, std::string, HttpHeaders) override {}
  bool write(std::string) override { return false; }
  void end() override {}
  bool client_gone() const override { return false; }
  void on_client_gone(std::function<void()>) override {}
  size_t queued_bytes() const override { return 0; }
  int status = 0;
  std::string content_type, body;
  HttpHeaders headers;
};

TEST(RespondError, AnswersWithTheCodesStatus) {
  RecordingWriter w;
  respond_error(w, Status::resource_exhausted("the queue is full"), "", "", {{"Retry-After", "1"}});
  EXPECT_EQ(w.status, 429);
  EXPECT_EQ(w.content_type, "application/json");
  EXPECT_EQ(nlohmann::json::parse(w.body)["error"]["type"], "rate_limit_error");
  ASSERT_EQ(w.headers.size(), 1u);
  RecordingWriter w2;
  respond_error(w2, Status::error("boom").with_context("loading"));
  EXPECT_EQ(w2.status, 500);
  EXPECT_EQ(nlohmann::json::parse(w2.body)["error"]["message"], "loading: boom");
}

}  // namespace
}  // namespace zs::gateway::openai
