#include "clonekit/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "image_lock.h"
#include "uncached_io.h"

namespace clonekit {

Status ReadableFile::Segment(uint64_t offset, uint64_t limit, bool* is_data, uint64_t* end) const {
  (void)offset;
  *is_data = true;
  *end = limit;
  return Status::OK();
}

namespace {

class PosixFile final : public ReadableFile {
 public:
  PosixFile(std::string name, int fd, const struct stat& st)
      : name_(std::move(name)),
        fd_(fd),
        size_(static_cast<uint64_t>(st.st_size)),
        blocks_(static_cast<uint64_t>(st.st_blocks) * 512),
        identity_{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)} {}
  ~PosixFile() override { close(fd_); }

  const std::string& name() const override { return name_; }
  uint64_t size() const override { return size_; }
  FileIdentity identity() const override { return identity_; }
  uint64_t allocated_bytes() const override { return blocks_; }
  int fd() const override { return fd_; }

  Status ReadAt(uint64_t offset, void* buf, size_t n, size_t* got, CacheUse cache) const override {
    size_t done = 0;
    auto* out = static_cast<uint8_t*>(buf);
    while (done < n) {
      const int flags = cache == CacheUse::kSpare ? uncached_.flags() : 0;
      struct iovec iov = {out + done, n - done};
      ssize_t r = preadv2(fd_, &iov, 1, static_cast<off_t>(offset + done), flags);
      if (r < 0) {
        if (errno == EINTR || uncached_.Refused(flags, errno)) continue;
        return Status::FromErrno(name_, "read error at byte " + std::to_string(offset + done), errno);
      }
      if (r == 0) break;  // end of file
      done += static_cast<size_t>(r);
    }
    *got = done;
    return Status::OK();
  }

  Status Segment(uint64_t offset, uint64_t limit, bool* is_data, uint64_t* end) const override {
    if (offset >= size_) {  // the zero tail up to the 512-byte rounded size
      *is_data = false;
      *end = limit;
      return Status::OK();
    }
    off_t data = lseek(fd_, static_cast<off_t>(offset), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) {  // a hole up to end of file
        *is_data = false;
        *end = limit;
        return Status::OK();
      }
      if (errno == EINVAL || errno == EOPNOTSUPP) return ReadableFile::Segment(offset, limit, is_data, end);
      return Status::FromErrno(name_, "SEEK_DATA failed", errno);
    }
    if (static_cast<uint64_t>(data) > offset) {
      *is_data = false;
      *end = std::min<uint64_t>(limit, static_cast<uint64_t>(data));
      return Status::OK();
    }
    off_t hole = lseek(fd_, static_cast<off_t>(offset), SEEK_HOLE);
    if (hole < 0) return Status::FromErrno(name_, "SEEK_HOLE failed", errno);
    *is_data = true;
    *end = std::min<uint64_t>(limit, static_cast<uint64_t>(hole));
    return Status::OK();
  }

 private:
  std::string name_;
  int fd_;
  uint64_t size_;
  uint64_t blocks_;
  FileIdentity identity_;
  mutable UncachedIo uncached_{CacheUse::kSpare};  // RWF_DONTCACHE until the file system refuses it
};

class MemoryFile final : public ReadableFile {
 public:
  MemoryFile(std::string name, std::vector<uint8_t> bytes, FileIdentity identity)
      : name_(std::move(name)), bytes_(std::move(bytes)), identity_(identity) {}

  const std::string& name() const override { return name_; }
  uint64_t size() const override { return bytes_.size(); }
  FileIdentity identity() const override { return identity_; }

  Status ReadAt(uint64_t offset, void* buf, size_t n, size_t* got, CacheUse) const override {
    if (n == 0 || offset >= bytes_.size()) {
      *got = 0;
      return Status::OK();
    }
    size_t avail = bytes_.size() - static_cast<size_t>(offset);
    *got = std::min(n, avail);
    std::memcpy(buf, bytes_.data() + offset, *got);
    return Status::OK();
  }

 private:
  std::string name_;
  std::vector<uint8_t> bytes_;
  FileIdentity identity_;
};

class PosixFileOpener final : public FileOpener {
 public:
  explicit PosixFileOpener(OpenOptions options) : options_(options) {}
  Result<std::unique_ptr<ReadableFile>> Open(const std::string& path) override {
    return OpenFileForRead(path, options_);
  }

 private:
  OpenOptions options_;
};

}  // namespace

Result<std::unique_ptr<ReadableFile>> OpenFileForRead(const std::string& path,
                                                       const OpenOptions& options) {
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(path, "cannot open", errno);
  return AdoptFileForRead(fd, path, options);
}

Result<std::unique_ptr<ReadableFile>> AdoptFileForRead(int fd, const std::string& path,
                                                        const OpenOptions& options) {
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int err = errno;
    close(fd);
    return Status::FromErrno(path, "cannot stat", err);
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    close(fd);
    return Status::InvalidArgument(path + ": not a regular file or block device");
  }
  // Opened O_NONBLOCK so that a FIFO could not block the open; a regular
  // file or device is read blocking (io_uring would answer EAGAIN instead).
  const int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  if (S_ISBLK(st.st_mode)) {
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0) {
      int err = errno;
      close(fd);
      return Status::FromErrno(path, "cannot size block device", err);
    }
    st.st_size = end;
  }
  if (options.lock) {
    Status s = LockImageForRead(fd, path, options.force_share);
    if (!s.ok()) {
      close(fd);
      return s;
    }
  }
  return std::unique_ptr<ReadableFile>(new PosixFile(path, fd, st));
}

std::unique_ptr<ReadableFile> NewMemoryFile(std::string name, std::vector<uint8_t> bytes,
                                            FileIdentity identity) {
  return std::make_unique<MemoryFile>(std::move(name), std::move(bytes), identity);
}

std::unique_ptr<FileOpener> NewPosixFileOpener(const OpenOptions& options) {
  return std::make_unique<PosixFileOpener>(options);
}

}  // namespace clonekit
