// Collapse: copy the disk as seen at a chain's top layer into one standalone
// image, atomically (temporary name, fdatasync, rename, directory fsync).
#ifndef CLONEKIT_COLLAPSE_H_
#define CLONEKIT_COLLAPSE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "clonekit/chain.h"

namespace clonekit {

enum class OutputFormat { kRaw, kQcow2 };
enum class OutputCompression { kNone, kZstd, kDeflate };

struct CollapseOptions {
  OutputFormat format = OutputFormat::kRaw;
  OutputCompression compression = OutputCompression::kNone;  // qcow2 only
  bool overwrite = false;                                    // --force
  unsigned file_mode = 0644;  // a new output file's mode (the manager's clones: 0600)
  // The destination is a new regular file, never a device or a symlink's
  // target (the manager: a name in a pool someone else may write to).
  bool regular_file_only = false;
  // Called with the bytes of the virtual disk done so far (data copied,
  // zeros settled) and the virtual size; monotonic, total only on success.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Called with the data bytes copied so far (the allocated bytes of the
  // collapsed disk); monotonic. The manager's job progress is built on it.
  std::function<void(uint64_t data_done)> data_progress;
  // Spare (default): the copy leaves the page cache as it found it -- what
  // was cached stays, what it reads or writes is dropped -- so the VMs that
  // share the host keep their working sets. Fill: ordinary buffered I/O.
  CacheUse page_cache = CacheUse::kSpare;
  // Polled between chunks; when set, the copy stops and nothing is left.
  const std::atomic<bool>* cancel = nullptr;

  // Raw output pipeline (io_uring).
  unsigned workers = 0;                 // -j: 0 = online cores
  unsigned queue_depth = 8;             // requests in flight per worker
  uint32_t request_bytes = 1 << 20;     // bytes per read request
  uint32_t sparse_block = 4096;         // -S: skip all-zero blocks this size; 0 = off
  bool direct = false;                  // --direct: O_DIRECT writes
  bool copy_offload = false;            // --copy-offload: reflink/copy_file_range
  bool no_create = false;               // -n: write into an existing file/device in place
  bool target_is_zero = false;          // --target-is-zero: with -n, skip zeroing
  uint64_t window_bytes = 1ull << 30;   // resolve and copy this much at a time
  // Copy at most this many bytes of data per second (0: no limit), so a
  // clone does not starve running VMs of storage bandwidth. Enforced per
  // window, which is then shrunk to about a quarter second of data.
  uint64_t max_bytes_per_second = 0;
  bool early_writeback = true;          // start writeback as ranges finish
  // Tests only: sees every I/O completion and may change its result.
  std::function<int(bool is_write, uint32_t requested, int result)> io_hook;
};

struct CollapseStats {
  uint64_t virtual_size = 0;
  uint64_t data_bytes = 0;  // bytes copied from layers
};

Status Collapse(const Chain& chain, const std::string& destination, const CollapseOptions& options,
                CollapseStats* stats = nullptr);

// A collapse into a file writes ".NAME.clonekit-XXXXXX" beside it and holds
// an exclusive flock on it while alive (it takes that name only once
// locked). A temporary nobody holds was left by a collapse that died (kill
// -9, power loss): it is stale. Only regular files of this user with one
// link are ever removed, never through a symlink.
//
// Removes the stale temporaries of `destination` (never a live one, never
// the destination itself).
void RemoveTemporaries(const std::string& destination);

// Removes every stale temporary in `directory`. Every collapse into a file
// does this for its destination's directory before it starts.
void RemoveStaleTemporaries(const std::string& directory);

// Removes any temporary output files still in progress. Async-signal-safe:
// for a second SIGINT/SIGTERM that must exit at once.
void RemovePartialOutputs();

}  // namespace clonekit

#endif  // CLONEKIT_COLLAPSE_H_
