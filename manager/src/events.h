// EventFeed: the change feed behind GET /api/v1/events. Every change is an
// event with a sequence number; readers ask for what came after the last
// one they saw, waiting a while when there is nothing new. The last 512
// events are kept (a reader further behind reloads instead).
//
// Numbers go on across services: a feed numbers from the clock's
// milliseconds x 1000 at the moment its service became the active one
// (StartNumbering), so a reader that reconnects with a number from the
// service before (restarted, or the active one a standby took over from)
// gets all of this one's events. A reader with a number this feed has not
// reached (another host's clock ahead) is taken from now, once, when its
// stream opens (Last).
//
// Thread-safety: Emit and After may be called from any thread.
#ifndef CLONEKIT_MANAGER_EVENTS_H_
#define CLONEKIT_MANAGER_EVENTS_H_

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

namespace clonekit::manager {

class EventFeed {
 public:
  using json = nlohmann::ordered_json;
  // REQUIRES: before the first Emit.
  void StartNumbering();
  // The number of the newest event (one below the first, before any).
  uint64_t Last();
  // Adds {seq, kind, data}; wakes every waiting reader.
  void Emit(const std::string& kind, json data);
  // The events after `after`, waiting up to timeout_ms for one.
  json After(uint64_t after, int timeout_ms);

 private:
  static constexpr size_t kKept = 512;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<uint64_t, json>> events_;
  uint64_t next_ = 1;
};

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_EVENTS_H_
