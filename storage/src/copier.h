// Copier (internal): one kind of destination, as the copy driver sees it.
//
// The driver (copy_driver.h) resolves the chain window by window and hands
// each window's extents to a copier; the copier moves that window's bytes to
// its destination and nothing else. Windowing, the rate limit, cancel,
// progress and the final stats belong to the driver alone, so a new kind of
// destination is one new Copier.
//
// Thread-safety: CopyWindow and Finish are called from one thread at a time
// (not always the same one), in order; a copier may use threads of its own
// inside a call and must have joined or parked them when the call returns.
#ifndef CLONEKIT_STORAGE_COPIER_H_
#define CLONEKIT_STORAGE_COPIER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "clonekit/chain.h"
#include "clonekit/collapse.h"
#include "clonekit/extent_map.h"

namespace clonekit {

// What the driver and a copier share during a copy.
struct CopySignals {
  // Data bytes (data and compressed extents) written so far, over the
  // whole copy; a copier adds a request's bytes when its writes complete.
  std::atomic<uint64_t> data_done{0};
  // Set by the driver when the copy is cancelled: finish or abandon the
  // I/O in flight and return soon (the result is discarded).
  std::atomic<bool> stop{false};

  bool stopped() const { return stop.load(std::memory_order_relaxed); }
};

class Copier {
 public:
  virtual ~Copier() = default;

  // Copies one window: the bytes of every data and compressed extent of
  // `map`, and makes every extent that reads as zero read as zero at the
  // destination (free when it already does).
  // REQUIRES: windows arrive in ascending order, each starting where the
  // previous one ended; `map` covers its window entirely and outlives the call.
  [[nodiscard]] virtual Status CopyWindow(const ExtentMap& map, CopySignals& signals) = 0;

  // After the last window: the format's metadata and flushes the copier
  // owns (none for a raw file). Durability of a file and its final name are
  // OutputFile's job.
  [[nodiscard]] virtual Status Finish() { return Status::OK(); }
};

class RawDestination;
class Qcow2Writer;

// Raw bytes into a file or device through io_uring (uring_pipeline.cc).
// Fails when the kernel offers no io_uring (disabled by sysctl or seccomp).
Result<std::unique_ptr<Copier>> NewUringCopier(const Chain& chain, RawDestination& destination,
                                               const CollapseOptions& options);

// The same on one thread with pread/pwrite: the fallback without io_uring.
std::unique_ptr<Copier> NewSimpleCopier(const Chain& chain, RawDestination& destination,
                                        const CollapseOptions& options);

// Whole 64 KiB clusters into a new qcow2 image, on `options.workers` threads.
std::unique_ptr<Copier> NewQcow2Copier(const Chain& chain, Qcow2Writer& writer, const CollapseOptions& options);

// Raw bytes into an NBD export (nbd_destination.cc); connects at once and
// checks the export (writable, large enough).
Result<std::unique_ptr<Copier>> NewNbdCopier(const Chain& chain, const std::string& uri,
                                             const CollapseOptions& options);

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_COPIER_H_
