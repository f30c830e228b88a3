// qemu-compatible image locking (internal).
//
// qemu marks what it does with an image by taking shared OFD locks on single
// bytes: 100+i "I hold permission i", 200+i "I do not let others take
// permission i" (block/file-posix.c). A reader that takes the same bytes is
// refused while a VM writes the image, and a VM cannot start writing while we
// read it. OFD locks belong to the open file description, so they survive
// other fds on the same file being closed and vanish when the process dies.
#ifndef CLONEKIT_STORAGE_IMAGE_LOCK_H_
#define CLONEKIT_STORAGE_IMAGE_LOCK_H_

#include <string>

#include "clonekit/status.h"

namespace clonekit {

// Takes read-side locks on fd: byte 100 (consistent read), plus 201 and 203
// (nobody may write or resize) unless force_share. Then checks nobody else
// holds 101/103 (write/resize) or 200 (denies reading).
Status LockImageForRead(int fd, const std::string& name, bool force_share);

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_IMAGE_LOCK_H_
