// DropBehind (internal): keeps a file's written pages out of the page cache,
// one step behind the writer.
//
// Used where a copy spares the page cache without RWF_DONTCACHE: compressed
// qcow2 streams (packed streams share pages, so each write cannot drop its
// own), and any output on a kernel before 6.14. Each call waits for the
// writeback the previous call started and drops those pages, then starts
// writeback of what was written since; by the next call that is usually
// done, so the writer rarely waits.
// Not thread-safe: one caller at a time. Does not own the descriptor.
#ifndef CLONEKIT_STORAGE_DROP_BEHIND_H_
#define CLONEKIT_STORAGE_DROP_BEHIND_H_

#include <cstdint>

namespace clonekit {

class DropBehind {
 public:
  explicit DropBehind(int fd) : fd_(fd) {}

  // Every write below `end` is done.
  void WrittenBelow(uint64_t end);

  // After the file is durable (fdatasync): drops all of its pages.
  void DropAll();

 private:
  const int fd_;
  uint64_t started_ = 0;  // writeback started below this offset
  uint64_t dropped_ = 0;  // waited for and dropped below this one
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_DROP_BEHIND_H_
