// RemoteSource: the source end of a clone of a VM on another host. Its
// chains are read where they are: clonekit runs there (the same program as
// this service, installed at the same path: serve --remote-clonekit), one
// SSH command per disk (remote_host.h), and writes either
//   - into the job's directory on that same host (remote_disk.h's layout:
//     the image is scratch/image until FinishRemoteDisk), for a clone into
//     a pool of the source's host, or
//   - into the NBD export of the new image on a third host
//     (ServeRemoteDisk), over TLS: the export's key goes down the SSH
//     channel's stdin (never on a command line) into a file of a private
//     directory there (mktemp -d, 0700) removed when the copy ends.
// What it reads is confined as the service's own reads are (pool_fs.h):
// clonekit --confine opens the top and every backing file beneath one of
// that host's pools, no symlink followed, regular files only. The copy
// ends when our end of the channel does (cancel, or this service dying)
// or falls silent (a line every 5 s; 30 s without one): clonekit
// --heartbeat reads its stdin, and stops, removing what it had not
// finished.
//
// Thread-safety: functions of their arguments; any thread.
#ifndef CLONEKIT_MANAGER_REMOTE_SOURCE_H_
#define CLONEKIT_MANAGER_REMOTE_SOURCE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "clonekit/status.h"
#include "remote_host.h"

namespace clonekit::manager {

// A chain on another host, as `clonekit map` there reads it.
struct RemoteChainSize {
  uint64_t virtual_size = 0;
  uint64_t data_bytes = 0;  // what a collapse writes, about
};

// One disk's chain on `host`: the top as the definition names it, its
// format ("raw" or "qcow2"), the host's pool directories.
struct RemoteChain {
  std::string clonekit;  // the program's absolute path there
  std::string top, format;
  std::vector<std::string> pool_dirs;
};

// Reads the chain's layout there (shared locks: the VM may run).
[[nodiscard]] Result<RemoteChainSize> MeasureRemoteChain(const RemoteHost& host, const RemoteChain& chain);

// Where a collapse on the source's host writes: exactly one of the two.
struct RemoteTarget {
  // The job's directory on the source's host (ReserveRemoteDisk made it):
  // the image is written as scratch/image in `format` ("raw", "qcow2").
  std::string scratch, format;
  // An export on a third host (raw, reads as zeros), its key.
  std::string export_address, export_key;
};

// REQUIRES: the target's directory reserved or its export serving.
// Collapses the chain there into the target, at most rate bytes/s (0: no
// limit); progress gets 0..1 of the chain's data as clonekit reports it.
// *cancel stops it there (Cancelled).
[[nodiscard]] Status CollapseOnHost(const RemoteHost& host, const RemoteChain& chain, const RemoteTarget& target,
                                    uint64_t rate, const std::function<void(double)>& progress,
                                    const std::atomic<bool>* cancel);

// A snapshot of a VM there: `overlay` (beside `top`, both under the pool
// `pool_dir`) made as a new qcow2 image backed by "./TOP", as large as the
// top. Refused unless every directory from the pool down may be written by
// root only (or is sticky), and never made over or through a name that
// exists (remote_source.cc, kOverlay).
[[nodiscard]] Status MakeRemoteOverlay(const RemoteHost& host, const std::string& clonekit, const std::string& pool_dir,
                                       const std::string& top, const std::string& format, const std::string& overlay);

// What ChangeRemoteFiles does to each file.
enum class RemoteFileChange {
  kMakeReadOnly,  // a snapshot's points (0444)
  kRemove,        // overlays MakeRemoteOverlay made, for a snapshot that failed
};

// Changes files there: each must be a regular file of root's, not a link,
// in a directory beneath the pool that only root may write (or sticky).
[[nodiscard]] Status ChangeRemoteFiles(const RemoteHost& host, RemoteFileChange change, const std::string& pool_dir,
                                       const std::vector<std::string>& files);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_REMOTE_SOURCE_H_
