// RawDestination (internal): where raw output goes.
//
// Normally a fresh temporary file (reads as zeros, renamed into place when
// complete). With `no_create`, an existing regular file or a block device is
// written in place: ranges that must read as zero are punched or zeroed
// there, unless the caller vouches that the target already reads as zeros.
#ifndef CLONEKIT_STORAGE_RAW_DESTINATION_H_
#define CLONEKIT_STORAGE_RAW_DESTINATION_H_

#include <memory>
#include <string>

#include "clonekit/collapse.h"
#include "clonekit/extent_map.h"
#include "drop_behind.h"
#include "output_file.h"
#include "uncached_io.h"

namespace clonekit {

class RawDestination {
 public:
  static Result<std::unique_ptr<RawDestination>> Open(const std::string& path, uint64_t size,
                                                      const CollapseOptions& options);
  ~RawDestination();

  const std::string& name() const { return name_; }
  int fd() const { return fresh_ ? fresh_->fd() : fd_; }
  int direct_fd() const { return direct_fd_; }
  // RWF_DONTCACHE for buffered writes to fd(), while the file system takes it.
  UncachedIo* uncached() { return &uncached_; }
  bool reads_zero() const { return reads_zero_; }
  bool is_block_device() const { return block_device_; }

  // Makes [offset, offset + length) read as zeros (no-op on a zeroed target).
  [[nodiscard]] Status Zero(uint64_t offset, uint64_t length);
  // The same for every extent of `map` that reads as zero.
  [[nodiscard]] Status ZeroWhereMapReadsZero(const ExtentMap& map);
  // Every write below `end` is done (a copier calls this after each
  // window): when the cache is spared by hand, those pages leave it.
  void WrittenBelow(uint64_t end) {
    if (uncached_.by_hand()) drop_behind_->WrittenBelow(end);
  }
  // Durable and, for a fresh file, in place under its final name.
  Status Commit();

 private:
  RawDestination() = default;
  std::string name_;
  std::unique_ptr<OutputFile> fresh_;  // set when writing a new file
  int fd_ = -1;                        // in-place target (owned)
  int direct_fd_ = -1;
  bool reads_zero_ = true;
  bool block_device_ = false;
  UncachedIo uncached_;
  std::unique_ptr<DropBehind> drop_behind_;  // on fd(), set once it is open
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_RAW_DESTINATION_H_
