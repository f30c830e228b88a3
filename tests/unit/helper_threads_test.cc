#include "helper_threads.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

namespace clonekit {
namespace {

TEST(HelperThreads, RunsEachIndexOnceOnItsOwnThreadAndJoins) {
  std::mutex mu;
  std::multiset<size_t> ran;
  std::set<std::thread::id> threads;
  {
    HelperThreads helpers(3, [&](size_t i) {
      std::lock_guard<std::mutex> lock(mu);
      ran.insert(i);
      threads.insert(std::this_thread::get_id());
    });
    EXPECT_EQ(helpers.started(), 3u);
  }  // joined here: every task has run
  EXPECT_EQ(ran, (std::multiset<size_t>{1, 2, 3}));
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
}

TEST(HelperThreads, NoneForZero) {
  std::atomic<int> calls{0};
  {
    HelperThreads helpers(0, [&](size_t) { calls++; });
    EXPECT_EQ(helpers.started(), 0u);
  }
  EXPECT_EQ(calls, 0);
}

// The task is the object's own copy: a lambda passed as a temporary is
// gone once the constructor returns, while the threads still call it.
TEST(HelperThreads, KeepsItsOwnCopyOfTheTask) {
  std::atomic<int> sum{0};
  std::atomic<bool> go{false};
  {
    HelperThreads helpers(2, [&sum, &go, add = 5](size_t i) {
      while (!go) std::this_thread::yield();
      sum += add * static_cast<int>(i);
    });
    go = true;
  }
  EXPECT_EQ(sum, 15);
}

}  // namespace
}  // namespace clonekit
