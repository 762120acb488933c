#pragma once
// OpenAI-style error objects: {"error": {"message", "type", "param", "code"}}. Clients of the
// OpenAI API (SDKs, UIs) show `message` and use `param` to point at the offending field.
#include <string>
#include <utility>

#include "gateway/http/response_writer.h"

namespace zs::gateway::openai {

// The JSON text of an OpenAI error object. An empty `param` or `code` is written as null.
std::string openai_error_json(const std::string& message,
                              const std::string& type = "invalid_request_error",
                              const std::string& param = "", const std::string& code = "");

// A refused request: what to answer and with which HTTP status.
struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the field at fault ("messages[1].content[0].image_url.url"), or ""
  std::string code;   // a machine-readable reason ("invalid_value"), or ""

  std::string to_json() const { return openai_error_json(message, type, param, code); }
};

// Answers a request with an OpenAI error object.
inline void respond_error(ResponseWriter& w, int status, const std::string& message, const std::string& type,
                          const std::string& param = "", const std::string& code = "", HttpHeaders headers = {}) {
  w.respond(status, "application/json", openai_error_json(message, type, param, code), std::move(headers));
}

}  // namespace zs::gateway::openai
