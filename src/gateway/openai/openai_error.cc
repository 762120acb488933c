#include "gateway/openai/openai_error.h"

#include <nlohmann/json.hpp>

namespace zs::gateway::openai {

HttpError http_error_for(core::StatusCode code) {
  using core::StatusCode;
  switch (code) {
    case StatusCode::kOk: return {200, ""};
    case StatusCode::kInvalidArgument: return {400, "invalid_request_error"};
    case StatusCode::kUnauthenticated: return {401, "authentication_error"};
    case StatusCode::kNotFound: return {404, "invalid_request_error"};
    case StatusCode::kFailedPrecondition: return {409, "invalid_request_error"};
    case StatusCode::kTooLarge: return {413, "invalid_request_error"};
    case StatusCode::kResourceExhausted: return {429, "rate_limit_error"};
    case StatusCode::kUnknown:
    case StatusCode::kInternal: return {500, "server_error"};
    case StatusCode::kUpstreamFailed: return {502, "server_error"};
    case StatusCode::kUnavailable: return {503, "service_unavailable"};
    case StatusCode::kDeadlineExceeded: return {504, "timeout"};
    case StatusCode::kInsufficientMemory: return {507, "insufficient_storage"};
  }
  return {500, "server_error"};
}

std::string openai_error_json(const std::string& message, const std::string& type,
                              const std::string& param, const std::string& code) {
  nlohmann::json err = {
      {"message", message},
      {"type", type},
      {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
      {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)},
  };
  // Messages may quote client bytes that are not valid UTF-8; replace rather than throw.
  return nlohmann::json{{"error", err}}.dump(-1, ' ', false,
                                             nlohmann::json::error_handler_t::replace);
}

std::string openai_error_json(const core::Status& status, const std::string& param, const std::string& code) {
  return openai_error_json(status.message(), http_error_for(status.code()).type, param, code);
}

void respond_error(ResponseWriter& w, const core::Status& status, const std::string& param,
                   const std::string& code, HttpHeaders headers) {
  w.respond(http_error_for(status.code()).status, "application/json", openai_error_json(status, param, code),
            std::move(headers));
}

void respond_error(ResponseWriter& w, const ApiError& error, HttpHeaders headers) {
  w.respond(error.http_status(), "application/json", error.to_json(), std::move(headers));
}

}  // namespace zs::gateway::openai
