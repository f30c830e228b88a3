// FirstError (internal): the error that ends a parallel copy.
//
// Every copier runs several threads (io_uring workers, qcow2 cluster
// workers, NBD connections); the first failure is the one reported, later
// ones are consequences. Thread-safe; failed() is a cheap poll for loops.
#ifndef CLONEKIT_STORAGE_FIRST_ERROR_H_
#define CLONEKIT_STORAGE_FIRST_ERROR_H_

#include <atomic>
#include <mutex>

#include "clonekit/status.h"

namespace clonekit {

class FirstError {
 public:
  // Keeps `status` if it is the first error; OK statuses are ignored.
  void Set(const Status& status) {
    if (status.ok()) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_.load(std::memory_order_relaxed)) return;
    status_ = status;
    failed_.store(true, std::memory_order_release);
  }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // The first error, or OK.
  [[nodiscard]] Status status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

 private:
  mutable std::mutex mu_;
  std::atomic<bool> failed_{false};
  Status status_;
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_FIRST_ERROR_H_
