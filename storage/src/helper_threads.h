// HelperThreads: a task run on up to `count` threads beside the caller's,
// joined when the HelperThreads is destroyed.
//
// A thread the system cannot make (pthread_create's EAGAIN: the process,
// its cgroup or the machine is out of threads) is simply not started, nor
// any after it: every copier's workers take their work from a shared
// counter, so fewer of them do the same work, more slowly, where the
// std::system_error would have ended the process (a service included).
//
// Thread-safety: one owner thread. Lifetime: the task is kept (copied) and
// everything it refers to must outlive this object.
#ifndef CLONEKIT_STORAGE_HELPER_THREADS_H_
#define CLONEKIT_STORAGE_HELPER_THREADS_H_

#include <cstddef>
#include <functional>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace clonekit {

class HelperThreads {
 public:
  // Starts task(i) for i = 1..count, each on a thread of its own, until
  // one cannot be made.
  HelperThreads(size_t count, std::function<void(size_t)> task) : task_(std::move(task)) {
    for (size_t i = 1; i <= count; i++) {
      try {
        threads_.emplace_back([this, i] { task_(i); });
      } catch (const std::system_error&) {
        break;  // (out of threads: the others, and the caller, do the work)
      }
    }
  }
  ~HelperThreads() {
    for (std::thread& t : threads_) t.join();
  }
  HelperThreads(const HelperThreads&) = delete;
  HelperThreads& operator=(const HelperThreads&) = delete;

  size_t started() const { return threads_.size(); }

 private:
  const std::function<void(size_t)> task_;
  std::vector<std::thread> threads_;
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_HELPER_THREADS_H_
