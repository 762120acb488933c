#pragma once
// Errors that cross a layer boundary: a Status carries a message a user can act on,
// Result<T> carries either a value or that Status. Exceptions never cross layers.
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace zs::core {

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message), true); }

  bool is_ok() const { return !failed_; }
  explicit operator bool() const { return is_ok(); }
  const std::string& message() const { return message_; }

  // Adds context in front of the message ("loading model.gguf: <message>").
  Status with_context(const std::string& context) const {
    return failed_ ? error(context + ": " + message_) : *this;
  }

 private:
  Status(std::string message, bool failed) : message_(std::move(message)), failed_(failed) {}
  std::string message_;
  bool failed_ = false;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit on purpose

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }

 private:
  std::optional<T> value_;
  Status status_ = Status::error("empty result");
};

}  // namespace zs::core

// Returns early from the calling function when `expr` (a Status) failed.
#define ZS_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::zs::core::Status zs_status_ = (expr);       \
    if (!zs_status_.is_ok()) return zs_status_;   \
  } while (0)
