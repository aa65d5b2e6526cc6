// Status and Result<T>: how every fallible call in supercluster reports
// failure. No exception crosses a module boundary; a Status carries a message
// that names the file, field or request at fault.
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string>
#include <utility>

namespace sc {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad flag, config field, request
  kNotFound,         // missing file or key
  kIOError,          // the OS refused a read, write, rename
  kCorruption,       // a file's bytes fail validation (checksum, header)
  kTimeout,          // a wait or collective ran out of time
  kInternal,         // a bug or an unexpected library failure
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return Status(); }
  template <class... Args>
  static Status invalid(fmt::format_string<Args...> f, Args&&... args) {
    return Status(StatusCode::kInvalidArgument, fmt::format(f, std::forward<Args>(args)...));
  }
  template <class... Args>
  static Status not_found(fmt::format_string<Args...> f, Args&&... args) {
    return Status(StatusCode::kNotFound, fmt::format(f, std::forward<Args>(args)...));
  }
  template <class... Args>
  static Status io_error(fmt::format_string<Args...> f, Args&&... args) {
    return Status(StatusCode::kIOError, fmt::format(f, std::forward<Args>(args)...));
  }
  template <class... Args>
  static Status corruption(fmt::format_string<Args...> f, Args&&... args) {
    return Status(StatusCode::kCorruption, fmt::format(f, std::forward<Args>(args)...));
  }
  template <class... Args>
  static Status timeout(fmt::format_string<Args...> f, Args&&... args) {
    return Status(StatusCode::kTimeout, fmt::format(f, std::forward<Args>(args)...));
  }
  template <class... Args>
  static Status internal(fmt::format_string<Args...> f, Args&&... args) {
    return Status(StatusCode::kInternal, fmt::format(f, std::forward<Args>(args)...));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefixes context ("reading config.json: ") to the message of an error.
  Status with_context(std::string_view context) const {
    if (ok()) return *this;
    return Status(code_, fmt::format("{}: {}", context, message_));
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the Status explaining why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace sc

#define SC_CONCAT_INNER(a, b) a##b
#define SC_CONCAT(a, b) SC_CONCAT_INNER(a, b)

#define SC_RETURN_IF_ERROR(expr)              \
  do {                                        \
    ::sc::Status sc_status_ = (expr);         \
    if (!sc_status_.ok()) return sc_status_;  \
  } while (0)

#define SC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

#define SC_ASSIGN_OR_RETURN(lhs, expr) \
  SC_ASSIGN_OR_RETURN_IMPL(SC_CONCAT(sc_result_, __LINE__), lhs, expr)
