#include "drop_behind.h"

#include <fcntl.h>

namespace clonekit {

// Advice only: a failure leaves pages cached, never loses data (the caller's
// fdatasync makes the file durable and reports write errors).
void DropBehind::WrittenBelow(uint64_t end) {
  end &= ~uint64_t(4095);  // the page holding `end` may still be written
  if (dropped_ < started_) {
    sync_file_range(fd_, static_cast<off_t>(dropped_), static_cast<off_t>(started_ - dropped_),
                    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    posix_fadvise(fd_, static_cast<off_t>(dropped_), static_cast<off_t>(started_ - dropped_), POSIX_FADV_DONTNEED);
    dropped_ = started_;
  }
  if (started_ < end) {
    sync_file_range(fd_, static_cast<off_t>(started_), static_cast<off_t>(end - started_), SYNC_FILE_RANGE_WRITE);
    started_ = end;
  }
}

void DropBehind::DropAll() {
  posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
  dropped_ = started_;
}

}  // namespace clonekit
