// ImageWriter (internal): where collapsed bytes go.
//
// The copy loop hands over data in ascending guest order; ranges it never
// writes read as zeros in the result. Finish completes the format's
// metadata; durability and the final name are the OutputFile's job.
#ifndef CLONEKIT_STORAGE_IMAGE_WRITER_H_
#define CLONEKIT_STORAGE_IMAGE_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "clonekit/collapse.h"
#include "clonekit/status.h"

namespace clonekit {

class ImageWriter {
 public:
  virtual ~ImageWriter() = default;
  virtual Status Write(uint64_t offset, const uint8_t* data, size_t length) = 0;
  virtual Status Finish() = 0;
};

// Writes raw bytes at their guest offsets into an already sized fd; skips
// all-zero blocks of `sparse_block` bytes (0: writes everything).
Result<std::unique_ptr<ImageWriter>> NewFdWriter(int fd, const std::string& name, uint32_t sparse_block);

// True when the buffer holds only zero bytes.
bool IsZero(const uint8_t* data, size_t length);

// pwrite all of it or fail with the file named.
Status WriteFully(int fd, const std::string& name, const void* data, size_t length, uint64_t offset);

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_IMAGE_WRITER_H_
