// Status and Result: how every kcqrs module reports failure.
//
// As in LevelDB and RocksDB, nothing in kcqrs throws across a module boundary.
// A function that can fail returns a Status, or a Result<T> holding either a
// value or a non-OK Status. Both are [[nodiscard]]: an ignored error is a
// compile error under -Werror.
//
// Thread-safety: Status and Result are values; distinct objects may be used
// from distinct threads without synchronization.
#ifndef KCQRS_STATUS_H_
#define KCQRS_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kcqrs {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,    // bad input: config, record, request
    kNotFound,           // a key, topic or file that does not exist
    kAlreadyExists,      // creating something that is there
    kFailedPrecondition, // the call is not valid in the current state
    kUnavailable,        // transient: the broker or a peer is unreachable
    kTimedOut,           // a deadline passed before the call completed
    kAborted,            // a transaction was aborted; retry from committed state
    kFenced,             // another instance owns this work now; stop it
    kCorruption,         // stored data does not parse
    kIoError,            // the file system said no
    kNotSupported,       // the call is valid but not implemented here
    kInternal,           // a bug, or a library error with no better code
  };

  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status NotFound(std::string msg) {
    return Status(Code::kNotFound, std::move(msg));
  }
  static Status AlreadyExists(std::string msg) {
    return Status(Code::kAlreadyExists, std::move(msg));
  }
  static Status FailedPrecondition(std::string msg) {
    return Status(Code::kFailedPrecondition, std::move(msg));
  }
  static Status Unavailable(std::string msg) {
    return Status(Code::kUnavailable, std::move(msg));
  }
  static Status TimedOut(std::string msg) {
    return Status(Code::kTimedOut, std::move(msg));
  }
  static Status Aborted(std::string msg) {
    return Status(Code::kAborted, std::move(msg));
  }
  static Status Fenced(std::string msg) {
    return Status(Code::kFenced, std::move(msg));
  }
  static Status Corruption(std::string msg) {
    return Status(Code::kCorruption, std::move(msg));
  }
  static Status IoError(std::string msg) {
    return Status(Code::kIoError, std::move(msg));
  }
  static Status NotSupported(std::string msg) {
    return Status(Code::kNotSupported, std::move(msg));
  }
  static Status Internal(std::string msg) {
    return Status(Code::kInternal, std::move(msg));
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsTimedOut() const { return code_ == Code::kTimedOut; }
  bool IsAborted() const { return code_ == Code::kAborted; }
  bool IsFenced() const { return code_ == Code::kFenced; }

  // Returns the same status with "context: " put before the message, so that
  // an error can say where it happened as it travels up.
  Status WithContext(std::string_view context) const {
    if (ok()) return *this;
    std::string msg(context);
    msg += ": ";
    msg += message_;
    return Status(code_, std::move(msg));
  }

  // "OK", or "<CodeName>: <message>".
  std::string ToString() const {
    if (ok()) return "OK";
    std::string s(CodeName(code_));
    s += ": ";
    s += message_;
    return s;
  }

  static std::string_view CodeName(Code code) {
    switch (code) {
      case Code::kOk: return "OK";
      case Code::kInvalidArgument: return "InvalidArgument";
      case Code::kNotFound: return "NotFound";
      case Code::kAlreadyExists: return "AlreadyExists";
      case Code::kFailedPrecondition: return "FailedPrecondition";
      case Code::kUnavailable: return "Unavailable";
      case Code::kTimedOut: return "TimedOut";
      case Code::kAborted: return "Aborted";
      case Code::kFenced: return "Fenced";
      case Code::kCorruption: return "Corruption";
      case Code::kIoError: return "IoError";
      case Code::kNotSupported: return "NotSupported";
      case Code::kInternal: return "Internal";
    }
    return "Unknown";
  }

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Status(Code code, std::string message)
      : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// Either a T or a non-OK Status. Accessing value() of an error is a bug
// (asserted in debug builds); check ok() first.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : state_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(state_).ok() && "Result from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(state_); }

  // OK when a value is held.
  Status status() const {
    return ok() ? Status::OK() : std::get<Status>(state_);
  }

  T& value() & {
    assert(ok());
    return std::get<T>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(state_));
  }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace kcqrs

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define KCQRS_RETURN_IF_ERROR(expr)                   \
  do {                                                \
    ::kcqrs::Status kcqrs_status_ = (expr);           \
    if (!kcqrs_status_.ok()) return kcqrs_status_;    \
  } while (false)

#endif  // KCQRS_STATUS_H_
