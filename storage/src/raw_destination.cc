#include "raw_destination.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "write_fully.h"

namespace clonekit {

Result<std::unique_ptr<RawDestination>> RawDestination::Open(const std::string& path, uint64_t size,
                                                             const CollapseOptions& options) {
  std::unique_ptr<RawDestination> d(new RawDestination);
  d->name_ = path;
  d->uncached_ = UncachedIo(options.page_cache);
  struct stat st;
  bool exists = (options.regular_file_only ? lstat(path.c_str(), &st) : stat(path.c_str(), &st)) == 0;
  if (options.regular_file_only && exists && !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(path, "the destination is not a regular file: refused");
  }
  d->block_device_ = exists && S_ISBLK(st.st_mode);
  const bool in_place = options.no_create || d->block_device_;

  if (!in_place) {
    Result<std::unique_ptr<OutputFile>> out = OutputFile::Create(path, options.overwrite, options.file_mode);
    if (!out.ok()) return out.status();
    d->fresh_ = std::move(out).value();
    if (ftruncate(d->fresh_->fd(), static_cast<off_t>(size)) < 0) {
      return Status::FromErrno(path, "cannot size output to " + std::to_string(size) + " bytes", errno);
    }
    if (options.direct) {
      d->direct_fd_ = open(d->fresh_->temp_path().c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
      if (d->direct_fd_ < 0) return Status::FromErrno(path, "cannot open for O_DIRECT", errno);
    }
    d->drop_behind_ = std::make_unique<DropBehind>(d->fd());
    return d;
  }

  if (!exists) return Status::FromErrno(path, "-n/--no-create needs an existing target", ENOENT);
  if (!d->block_device_ && !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(path + ": target must be a regular file or a block device");
  }
  // O_EXCL on a block device fails while it is mounted or otherwise in use.
  d->fd_ = open(path.c_str(), O_WRONLY | O_CLOEXEC | (d->block_device_ ? O_EXCL : 0));
  if (d->fd_ < 0) return Status::FromErrno(path, "cannot open target for writing", errno);
  uint64_t target_size = static_cast<uint64_t>(st.st_size);
  if (d->block_device_ && ioctl(d->fd_, BLKGETSIZE64, &target_size) < 0) {
    return Status::FromErrno(path, "cannot get block device size", errno);
  }
  if (target_size < size) {
    return Status::InvalidArgument(path + ": target is smaller (" + std::to_string(target_size) +
                                   " bytes) than the virtual disk (" + std::to_string(size) + " bytes)");
  }
  if (options.direct) {
    d->direct_fd_ = open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (d->direct_fd_ < 0) return Status::FromErrno(path, "cannot open for O_DIRECT", errno);
  }
  d->reads_zero_ = options.target_is_zero;
  d->drop_behind_ = std::make_unique<DropBehind>(d->fd());
  return d;
}

RawDestination::~RawDestination() {
  if (fd_ >= 0) close(fd_);
  if (direct_fd_ >= 0) close(direct_fd_);
}

Status RawDestination::Zero(uint64_t offset, uint64_t length) {
  if (reads_zero_ || length == 0) return Status::OK();
  if (block_device_) {
    uint64_t range[2] = {offset, length};
    if (ioctl(fd_, BLKZEROOUT, range) == 0) return Status::OK();
  } else {
    if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) == 0) {
      return Status::OK();
    }
    if (fallocate(fd_, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) == 0) {
      return Status::OK();
    }
  }
  // The target cannot zero efficiently: write zeros.
  std::vector<uint8_t> zeros(std::min<uint64_t>(length, 1 << 20), 0);
  for (uint64_t done = 0; done < length;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), length - done));
    CLONEKIT_RETURN_IF_ERROR(WriteFully(fd_, name_, zeros.data(), n, offset + done));
    done += n;
  }
  return Status::OK();
}

Status RawDestination::ZeroWhereMapReadsZero(const ExtentMap& map) {
  if (reads_zero_) return Status::OK();
  for (const Extent& e : map.extents()) {
    if (e.reads_zero()) CLONEKIT_RETURN_IF_ERROR(Zero(e.start, e.length));
  }
  return Status::OK();
}

Status RawDestination::Commit() {
  if (fresh_) {
    CLONEKIT_RETURN_IF_ERROR(fresh_->Commit());
  } else if (fdatasync(fd_) < 0) {
    return Status::FromErrno(name_, "fdatasync failed", errno);
  }
  if (uncached_.by_hand()) drop_behind_->DropAll();  // durable now: the last window's pages go too
  return Status::OK();
}

}  // namespace clonekit
