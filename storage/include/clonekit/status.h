// Status and Result: how every storage call reports success or what went wrong.
//
// Errors are values, not exceptions (as in LevelDB): a Status carries a code the
// caller can branch on and a one-line message that already names the file and
// the field at fault, so the CLI can print it as is.
#ifndef CLONEKIT_STATUS_H_
#define CLONEKIT_STATUS_H_

#include <optional>
#include <string>
#include <utility>

namespace clonekit {

// [[nodiscard]]: a dropped Status is a lost error (LevelDB's rule); handle it
// or say why not with IgnoreError().
class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk,
    kCorruption,     // the image contradicts the qcow2 rules or itself
    kNotSupported,   // a valid image using a feature we refuse (encryption...)
    kIOError,        // the OS said no
    kInvalidArgument,
    kLocked,         // another process holds a conflicting image lock
    kCancelled,      // SIGINT/SIGTERM or a caller's cancel
    kExists,         // destination already present
    kNotFound,       // no such VM, snapshot, job... (the manager)
    kPermissionDenied,  // the caller may not do this (the manager's API)
    kBusy,           // too much at once: try again later (the manager's queue)
    kNoSpace,        // the destination cannot hold what would be written
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status Corruption(const std::string& file, const std::string& what) {
    return Status(Code::kCorruption, file, what);
  }
  static Status NotSupported(const std::string& file, const std::string& what) {
    return Status(Code::kNotSupported, file, what);
  }
  static Status IOError(const std::string& file, const std::string& what) {
    return Status(Code::kIOError, file, what);
  }
  // Builds "file: what: strerror(err)".
  static Status FromErrno(const std::string& file, const std::string& what, int err);
  static Status InvalidArgument(const std::string& what) {
    return Status(Code::kInvalidArgument, "", what);
  }
  static Status InvalidArgument(const std::string& subject, const std::string& what) {
    return Status(Code::kInvalidArgument, subject, what);
  }
  static Status NotFound(const std::string& what) { return Status(Code::kNotFound, "", what); }
  static Status Locked(const std::string& file, const std::string& what) {
    return Status(Code::kLocked, file, what);
  }
  static Status Cancelled(const std::string& what) { return Status(Code::kCancelled, "", what); }
  static Status Exists(const std::string& file, const std::string& what) {
    return Status(Code::kExists, file, what);
  }
  static Status PermissionDenied(const std::string& what) { return Status(Code::kPermissionDenied, "", what); }
  static Status Busy(const std::string& what) { return Status(Code::kBusy, "", what); }
  static Status NoSpace(const std::string& subject, const std::string& what) {
    return Status(Code::kNoSpace, subject, what);
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsCancelled() const { return code_ == Code::kCancelled; }
  bool IsLocked() const { return code_ == Code::kLocked; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  // For a best-effort step whose failure changes nothing (say why at the call).
  void IgnoreError() const {}

  // "file: what", or just "what" when no file is involved. Always one line.
  const std::string& message() const { return message_; }

 private:
  Status(Code code, const std::string& file, const std::string& what);

  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  T& operator*() { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

// Formats a number as 0x... for messages.
std::string Hex(unsigned long long value);

}  // namespace clonekit

#define CLONEKIT_RETURN_IF_ERROR(expr)         \
  do {                                         \
    ::clonekit::Status _st = (expr);           \
    if (!_st.ok()) return _st;                 \
  } while (0)

#endif  // CLONEKIT_STATUS_H_
