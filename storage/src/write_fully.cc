#include "write_fully.h"

#include <unistd.h>

#include <cerrno>

namespace clonekit {

Status WriteFully(int fd, const std::string& name, const void* data, size_t length, uint64_t offset) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (length > 0) {
    ssize_t n = pwrite(fd, p, length, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(name, "write error at byte " + std::to_string(offset), errno);
    }
    p += n;
    offset += static_cast<uint64_t>(n);
    length -= static_cast<size_t>(n);
  }
  return Status::OK();
}

}  // namespace clonekit
