// Status and Result<T>: how library code reports failure without throwing or
// aborting. The CLI turns a failed Status into one line and exit code 2.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace llm {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad flag or value given by the user
  kNotFound,         // a file or tensor that must exist does not
  kDataLoss,         // a file exists but is truncated or corrupt
  kUnimplemented,    // valid input the engine cannot honour (other arch, rope type)
  kIoError,          // the OS refused a read or write
  kInternal,         // a bug: an invariant did not hold
};

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status Unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Either a value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : data_(std::move(value)) {}           // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {}    // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(data_);
  }
  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace llm

// Propagates a failed Status to the caller. The only control-flow macro we allow.
#define LLM_RETURN_IF_ERROR(expr)          \
  do {                                     \
    ::llm::Status llm_status_ = (expr);    \
    if (!llm_status_.ok()) return llm_status_; \
  } while (0)

#define LLM_CONCAT_INNER(a, b) a##b
#define LLM_CONCAT(a, b) LLM_CONCAT_INNER(a, b)
#define LLM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
#define LLM_ASSIGN_OR_RETURN(lhs, expr) \
  LLM_ASSIGN_OR_RETURN_IMPL(LLM_CONCAT(llm_result_, __LINE__), lhs, expr)
