#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "image_writer.h"

namespace clonekit {

bool IsZero(const uint8_t* data, size_t length) {
  // Compare the first 16 bytes, then the buffer against itself shifted.
  size_t head = std::min<size_t>(length, 16);
  for (size_t i = 0; i < head; i++) {
    if (data[i]) return false;
  }
  return length <= 16 || std::memcmp(data, data + 16, length - 16) == 0;
}

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

namespace {

class RawWriter final : public ImageWriter {
 public:
  RawWriter(int fd, std::string name, uint32_t sparse_block)
      : fd_(fd), name_(std::move(name)), block_(sparse_block) {}

  // Writes the runs of non-zero blocks (aligned to the guest offset).
  Status Write(uint64_t offset, const uint8_t* data, size_t length) override {
    if (block_ == 0) return WriteFully(fd_, name_, data, length, offset);
    const size_t kSparseBlock = block_;
    size_t pos = 0;
    while (pos < length) {
      size_t block = std::min(length - pos, kSparseBlock - ((offset + pos) % kSparseBlock));
      if (IsZero(data + pos, block)) {
        pos += block;
        continue;
      }
      size_t run_end = pos + block;
      while (run_end < length) {
        size_t next = std::min(length - run_end, kSparseBlock);
        if (IsZero(data + run_end, next)) break;
        run_end += next;
      }
      CLONEKIT_RETURN_IF_ERROR(WriteFully(fd_, name_, data + pos, run_end - pos, offset + pos));
      pos = run_end;
    }
    return Status::OK();
  }

  Status Finish() override { return Status::OK(); }

 private:
  int fd_;
  std::string name_;
  uint32_t block_;
};

}  // namespace

Result<std::unique_ptr<ImageWriter>> NewFdWriter(int fd, const std::string& name, uint32_t sparse_block) {
  return std::unique_ptr<ImageWriter>(new RawWriter(fd, name, sparse_block));
}

}  // namespace clonekit
