#include "events.h"

#include <chrono>

namespace clonekit::manager {

void EventFeed::StartNumbering() {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  std::lock_guard<std::mutex> lock(mu_);
  next_ = static_cast<uint64_t>(ms.count()) * 1000 + 1;
}

uint64_t EventFeed::Last() {
  std::lock_guard<std::mutex> lock(mu_);
  return next_ - 1;
}

void EventFeed::Emit(const std::string& kind, json data) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t seq = next_++;
  events_.push_back({seq, json{{"seq", seq}, {"kind", kind}, {"data", std::move(data)}}});
  if (events_.size() > kKept) events_.pop_front();
  cv_.notify_all();
}

EventFeed::json EventFeed::After(uint64_t after, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return next_ - 1 > after; });
  json out = json::array();
  for (const auto& [seq, e] : events_) {
    if (seq > after) out.push_back(e);
  }
  return out;
}

}  // namespace clonekit::manager
