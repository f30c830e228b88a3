// WriteFully (internal): pwrite all of a buffer, or fail naming the file.
#ifndef CLONEKIT_STORAGE_WRITE_FULLY_H_
#define CLONEKIT_STORAGE_WRITE_FULLY_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "clonekit/status.h"
#include "uncached_io.h"

namespace clonekit {

// Writes `length` bytes at `offset`, retrying short writes and EINTR; an
// error names `name` and the offset.
// With `uncached`, asks for RWF_DONTCACHE while the file system takes it.
[[nodiscard]] Status WriteFully(int fd, const std::string& name, const void* data, size_t length, uint64_t offset,
                                UncachedIo* uncached = nullptr);

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_WRITE_FULLY_H_
