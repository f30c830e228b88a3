#include "write_fully.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

namespace clonekit {

Status WriteFully(int fd, const std::string& name, const void* data, size_t length, uint64_t offset,
                  UncachedIo* uncached) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (length > 0) {
    const int flags = uncached ? uncached->flags() : 0;
    struct iovec iov = {const_cast<uint8_t*>(p), length};
    ssize_t n = pwritev2(fd, &iov, 1, static_cast<off_t>(offset), flags);
    if (n < 0) {
      if (errno == EINTR || (uncached && uncached->Refused(flags, errno))) continue;
      return Status::FromErrno(name, "write error at byte " + std::to_string(offset), errno);
    }
    if (n == 0) return Status::FromErrno(name, "write error at byte " + std::to_string(offset), EIO);  // never loop
    p += n;
    offset += static_cast<uint64_t>(n);
    length -= static_cast<size_t>(n);
  }
  return Status::OK();
}

}  // namespace clonekit
