// Read-only access to the files that hold image layers.
//
// Layers are read through this seam rather than raw fds so the parsers can be
// fuzzed and unit-tested over memory (MemoryFile) exactly as they run on disk.
#ifndef CLONEKIT_FILE_H_
#define CLONEKIT_FILE_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "clonekit/status.h"

namespace clonekit {

// Identifies a file independently of the path used to reach it, so loops
// through symlinks and hard links are recognised.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  bool operator==(const FileIdentity&) const = default;
};

// How an I/O treats the page cache.
enum class CacheUse : uint8_t {
  kFill,   // ordinary buffered I/O: what it touches stays cached
  // Pages already cached are used and stay; pages the I/O brings in are
  // dropped once done (RWF_DONTCACHE, where the kernel and file system take
  // it; elsewhere the same as kFill). A clone on a host that runs VMs must
  // not evict their working sets.
  kSpare,
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;

  // The path as it was opened; used in every error message.
  virtual const std::string& name() const = 0;
  virtual uint64_t size() const = 0;
  virtual FileIdentity identity() const = 0;

  // Reads up to n bytes at offset; *got < n only at end of file.
  virtual Status ReadAt(uint64_t offset, void* buf, size_t n, size_t* got, CacheUse cache) const = 0;
  Status ReadAt(uint64_t offset, void* buf, size_t n, size_t* got) const {
    return ReadAt(offset, buf, n, got, CacheUse::kFill);
  }

  // Where data and holes are: sets *is_data for the segment starting at
  // offset and *end to where that segment ends (clamped to limit). Files that
  // cannot tell report everything as data.
  virtual Status Segment(uint64_t offset, uint64_t limit, bool* is_data, uint64_t* end) const;

  // Disk bytes in use (st_blocks), for `info`.
  virtual uint64_t allocated_bytes() const { return size(); }

  // The descriptor, for writers and pipelines that need it; -1 when none.
  virtual int fd() const { return -1; }
};

struct OpenOptions {
  // Take qemu-compatible shared read locks (see lock.h). Off for fuzzing.
  bool lock = true;
  // qemu's -U: read even while another process writes (no 2xx lock bytes).
  bool force_share = false;
};

// Opens a path read-only (O_RDONLY|O_NONBLOCK|O_CLOEXEC: a FIFO never
// blocks the open), taking the image locks.
Result<std::unique_ptr<ReadableFile>> OpenFileForRead(const std::string& path,
                                                       const OpenOptions& options);

// The same for a descriptor the caller opened (e.g. beneath a directory
// with openat2): takes ownership of fd, whatever the result. `name` is what
// messages call it.
Result<std::unique_ptr<ReadableFile>> AdoptFileForRead(int fd, const std::string& name,
                                                        const OpenOptions& options);

// A file held in memory, for tests and fuzzing.
std::unique_ptr<ReadableFile> NewMemoryFile(std::string name, std::vector<uint8_t> bytes,
                                            FileIdentity identity = {});

// Opens the files a chain refers to. The chain opener goes through this so
// that fuzzers can supply backing files from memory.
class FileOpener {
 public:
  virtual ~FileOpener() = default;
  virtual Result<std::unique_ptr<ReadableFile>> Open(const std::string& path) = 0;
};

std::unique_ptr<FileOpener> NewPosixFileOpener(const OpenOptions& options);

// openat2 of dir/relative beneath `dir`: no symlink anywhere in
// `relative` (RESOLVE_NO_SYMLINKS, NO_MAGICLINKS) and no escape from it
// (RESOLVE_BENEATH: ".." out fails with EXDEV), O_NOFOLLOW | O_CLOEXEC
// added to `flags`. A descriptor, or -1 with errno.
int OpenBeneath(const std::string& dir, const std::string& relative, int flags, mode_t mode = 0);

// Opens only regular files inside `dirs`, each beneath the innermost of
// them that holds its path (lexically) with OpenBeneath, O_NONBLOCK (a FIFO
// never blocks the open), then checked to be a regular file: what a chain
// may read when its files are confined to a host's storage pools
// (clonekit --confine). Errors name the path and why.
std::unique_ptr<FileOpener> NewConfinedFileOpener(std::vector<std::string> dirs, const OpenOptions& options);

}  // namespace clonekit

#endif  // CLONEKIT_FILE_H_
