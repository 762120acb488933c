#pragma once
// Errors that cross a layer boundary: a Status carries a code a caller can branch on and a
// message a user can act on; Result<T> carries either a value or that Status. Exceptions never
// cross layers.
//
// Callers decide by code (`s.code() == StatusCode::kNotFound`, `s.is_not_found()`), never by
// the message's text. The code is chosen where the error arises (a missing file is kNotFound,
// a malformed config kInvalidArgument) and survives with_context() on its way up. The gateway
// and the worker answer HTTP requests with the status and OpenAI error type of the code
// (gateway/openai/openai_error.h: http_error_for).
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace zs::core {

// What went wrong, in terms a caller can act on. The HTTP answer of each is in
// gateway/openai/openai_error.h.
enum class StatusCode {
  kOk = 0,
  kUnknown,             // an error whose source gave no code (Status::error)
  kInvalidArgument,     // the input is malformed or out of range: fixing the input fixes it
  kUnauthenticated,     // no valid credentials
  kNotFound,            // the named thing (file, model, deployment, batch) does not exist
  kFailedPrecondition,  // the thing is not in a state that allows the operation (cancelling a finished batch)
  kTooLarge,            // the input is larger than a configured limit (an upload, a body)
  kResourceExhausted,   // a queue or quota is full for now: retrying later may succeed
  kInsufficientMemory,  // the work needs more memory than the device can ever give (a model too large for it)
  kInternal,            // a bug or an unexpected failure on this side
  kUpstreamFailed,      // a process the request was passed to (a worker instance) failed or could not be reached
  kUnavailable,         // the service cannot take the request now (loading, draining, shutting down)
  kDeadlineExceeded,    // the operation did not finish in the time allowed
};

// The code's name in snake case ("not_found"), for logs and tests.
constexpr std::string_view status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kUnknown: return "unknown";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kUnauthenticated: return "unauthenticated";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kFailedPrecondition: return "failed_precondition";
    case StatusCode::kTooLarge: return "too_large";
    case StatusCode::kResourceExhausted: return "resource_exhausted";
    case StatusCode::kInsufficientMemory: return "insufficient_memory";
    case StatusCode::kInternal: return "internal";
    case StatusCode::kUpstreamFailed: return "upstream_failed";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kDeadlineExceeded: return "deadline_exceeded";
  }
  return "unknown";
}

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  // A failure with a code (`code` must not be kOk; a kOk code is taken as kUnknown).
  static Status from_code(StatusCode code, std::string message) {
    return Status(code == StatusCode::kOk ? StatusCode::kUnknown : code, std::move(message));
  }
  // A failure whose source names no code (kUnknown); prefer the named constructors below
  // wherever a caller may act on the kind of failure.
  static Status error(std::string message) { return from_code(StatusCode::kUnknown, std::move(message)); }
  static Status invalid_argument(std::string m) { return from_code(StatusCode::kInvalidArgument, std::move(m)); }
  static Status unauthenticated(std::string m) { return from_code(StatusCode::kUnauthenticated, std::move(m)); }
  static Status not_found(std::string m) { return from_code(StatusCode::kNotFound, std::move(m)); }
  static Status failed_precondition(std::string m) { return from_code(StatusCode::kFailedPrecondition, std::move(m)); }
  static Status too_large(std::string m) { return from_code(StatusCode::kTooLarge, std::move(m)); }
  static Status resource_exhausted(std::string m) { return from_code(StatusCode::kResourceExhausted, std::move(m)); }
  static Status insufficient_memory(std::string m) { return from_code(StatusCode::kInsufficientMemory, std::move(m)); }
  static Status internal(std::string m) { return from_code(StatusCode::kInternal, std::move(m)); }
  static Status upstream_failed(std::string m) { return from_code(StatusCode::kUpstreamFailed, std::move(m)); }
  static Status unavailable(std::string m) { return from_code(StatusCode::kUnavailable, std::move(m)); }
  static Status deadline_exceeded(std::string m) { return from_code(StatusCode::kDeadlineExceeded, std::move(m)); }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  bool is_invalid_argument() const { return code_ == StatusCode::kInvalidArgument; }
  bool is_not_found() const { return code_ == StatusCode::kNotFound; }
  bool is_failed_precondition() const { return code_ == StatusCode::kFailedPrecondition; }
  bool is_resource_exhausted() const { return code_ == StatusCode::kResourceExhausted; }
  bool is_unavailable() const { return code_ == StatusCode::kUnavailable; }
  bool is_deadline_exceeded() const { return code_ == StatusCode::kDeadlineExceeded; }

  // Adds context in front of the message ("loading model.gguf: <message>"); the code stays.
  Status with_context(const std::string& context) const {
    return is_ok() ? *this : Status(code_, context + ": " + message_);
  }
  // The same message under another code, for a layer that knows better what the failure means
  // to its caller (a parse error in a request body is the client's invalid argument).
  Status with_code(StatusCode code) const { return is_ok() ? *this : from_code(code, message_); }

 private:
  Status(StatusCode code, std::string message) : message_(std::move(message)), code_(code) {}
  std::string message_;
  StatusCode code_ = StatusCode::kOk;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit on purpose

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  StatusCode code() const { return is_ok() ? StatusCode::kOk : status_.code(); }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_ = Status::internal("empty result");
};

}  // namespace zs::core

// Returns early from the calling function when `expr` (a Status) failed.
#define ZS_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::zs::core::Status zs_status_ = (expr);       \
    if (!zs_status_.is_ok()) return zs_status_;   \
  } while (0)
