// PoolFs: every file the service opens or creates, confined to its pools.
//
// A path is taken only when it lies lexically in a pool's directory, and
// is then opened beneath that directory's descriptor with openat2
// (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): no symlink, anywhere in the
// path, and no escape by "..". Reads are opened O_NONBLOCK and must be
// regular files (a FIFO never blocks a worker); creations are O_EXCL, so
// the service never writes into a file it did not just make.
//
// Thread-safety: a PoolFs is an immutable snapshot of the pools; make a new
// one after pools change. Calls are safe from any thread.
#ifndef CLONEKIT_MANAGER_POOL_FS_H_
#define CLONEKIT_MANAGER_POOL_FS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clonekit/chain.h"
#include "clonekit/file.h"
#include "clonekit/status.h"
#include "store.h"
#include "unique_fd.h"

namespace clonekit::manager {

class PoolFs {
 public:
  explicit PoolFs(std::vector<Pool> pools) : pools_(std::move(pools)) {}

  // The innermost pool whose directory holds `path` (absolute), or null.
  const Pool* PoolOf(const std::string& path) const;

  // A regular file in a pool, opened read-only. `what` names it in errors.
  [[nodiscard]] Result<UniqueFd> OpenRead(const std::string& path, const std::string& what) const;
  // A new file in a pool (O_CREAT|O_EXCL, `mode`), opened read-write.
  [[nodiscard]] Result<UniqueFd> CreateExclusive(const std::string& path, mode_t mode, const std::string& what) const;
  // A regular file in a pool the service made itself (a reservation),
  // opened write-only and truncated.
  [[nodiscard]] Result<UniqueFd> OpenOwnedForWrite(const std::string& path, const std::string& what) const;

  // A disk's chain, every layer opened as OpenRead does and every backing
  // file in a pool. `top_format`: the definition's (never guessed from the
  // bytes, which a guest writes); none only for an import, which probes.
  // headers_only: shared locks only (the VM may run); else the copy's.
  [[nodiscard]] Result<std::unique_ptr<Chain>> OpenChain(const std::string& top, std::optional<ImageFormat> top_format,
                                                         bool headers_only) const;

  std::vector<std::string> Dirs() const;

 private:
  Result<UniqueFd> OpenBeneath(const std::string& path, int flags, mode_t mode, const std::string& what) const;
  std::vector<Pool> pools_;
};

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_POOL_FS_H_
