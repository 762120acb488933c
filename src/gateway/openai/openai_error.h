#pragma once
// OpenAI-style error objects: {"error": {"message", "type", "param", "code"}}. Clients of the
// OpenAI API (SDKs, UIs) show `message` and use `param` to point at the offending field.
//
// The HTTP status and the error type of an answer come from the failure's core::StatusCode,
// through http_error_for() below and nowhere else:
//
//   StatusCode            HTTP  OpenAI type             when
//   kInvalidArgument      400   invalid_request_error   a malformed request, a bad field or header
//   kUnauthenticated      401   authentication_error    no or a wrong API key
//   kNotFound             404   invalid_request_error   unknown model, deployment, file, batch or endpoint
//   kFailedPrecondition   409   invalid_request_error   the thing's state forbids it (cancel a finished batch)
//   kTooLarge             413   invalid_request_error   an upload or body over its limit
//   kResourceExhausted    429   rate_limit_error        a full queue or a spent quota (retry later)
//   kInternal, kUnknown   500   server_error            a failure on this side
//   kUpstreamFailed       502   server_error            the instance the request went to failed
//   kUnavailable          503   service_unavailable     loading, draining or shutting down (retry later)
//   kDeadlineExceeded     504   timeout                 no instance or answer in the time allowed
//   kInsufficientMemory   507   insufficient_storage    the model cannot fit its device (retrying will not help)
//
// Protocol answers of the HTTP layer that are not failures of an operation (405 for a method a
// path does not take) are written by the router (gateway/http/router.h).
#include <string>
#include <utility>

#include "core/status.h"
#include "gateway/http/response_writer.h"

namespace zs::gateway::openai {

// How a failure is answered over HTTP.
struct HttpError {
  int status = 500;
  const char* type = "server_error";  // the OpenAI error object's "type"
};

// The one mapping from a status code to the HTTP answer (the table above). kOk maps to 200.
HttpError http_error_for(core::StatusCode code);

// The JSON text of an OpenAI error object. An empty `param` or `code` is written as null.
std::string openai_error_json(const std::string& message,
                              const std::string& type = "invalid_request_error",
                              const std::string& param = "", const std::string& code = "");
// The error object of a failed Status, typed by its code.
std::string openai_error_json(const core::Status& status, const std::string& param = "",
                              const std::string& code = "");

// A refused request: why (a status code and a message), and the OpenAI fields that point at it.
struct ApiError {
  core::StatusCode status = core::StatusCode::kInvalidArgument;
  std::string message;
  std::string param;  // the field at fault ("messages[1].content[0].image_url.url"), or ""
  std::string code;   // a machine-readable reason ("invalid_value"), or ""

  int http_status() const { return http_error_for(status).status; }
  std::string type() const { return http_error_for(status).type; }
  std::string to_json() const { return openai_error_json(message, type(), param, code); }
};

// Answers a request with the OpenAI error object of a failed `status`, under the HTTP status of
// its code.
void respond_error(ResponseWriter& w, const core::Status& status, const std::string& param = "",
                   const std::string& code = "", HttpHeaders headers = {});
void respond_error(ResponseWriter& w, const ApiError& error, HttpHeaders headers = {});

}  // namespace zs::gateway::openai
