// UncachedIo (internal): whether RWF_DONTCACHE is still worth asking for on
// one file.
//
// Kernels before 6.14, and file systems that do not take it, fail such an
// I/O with EOPNOTSUPP before doing anything; the caller then repeats it
// without the flag, and this remembers not to ask again for this file.
// The copy then spares the cache by hand (by_hand(): DropBehind for what
// it writes, SourcePages for what it reads).
// CLONEKIT_NO_DONTCACHE=1 in the environment never asks: the tests and the
// bench use it to run the by-hand path on a kernel that has the flag.
// Thread-safe.
#ifndef CLONEKIT_STORAGE_UNCACHED_IO_H_
#define CLONEKIT_STORAGE_UNCACHED_IO_H_

#include <linux/fs.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "clonekit/file.h"

#ifndef RWF_DONTCACHE
#define RWF_DONTCACHE 0x00000080  // linux/fs.h of 6.14; Debian 12's headers predate it
#endif

namespace clonekit {

// Whether RWF_DONTCACHE may be asked for at all in this process.
inline bool DontcacheAllowed() {
  const char* no = std::getenv("CLONEKIT_NO_DONTCACHE");
  return !no || std::strcmp(no, "1") != 0;
}

class UncachedIo {
 public:
  explicit UncachedIo(CacheUse use = CacheUse::kFill)
      : spare_(use == CacheUse::kSpare), on_(spare_ && DontcacheAllowed()) {}
  UncachedIo(const UncachedIo& other) : spare_(other.spare_), on_(other.on_.load()) {}
  UncachedIo& operator=(const UncachedIo& other) {
    spare_ = other.spare_;
    on_.store(other.on_.load());
    return *this;
  }

  // Sparing was asked for, but the flag is not (or no longer) used.
  bool by_hand() const { return spare_ && !on_.load(std::memory_order_relaxed); }

  // The RWF_ flags for the next I/O.
  int flags() const { return on_.load(std::memory_order_relaxed) ? RWF_DONTCACHE : 0; }

  // After an I/O made with `flags_used` failed with `err`: true when it
  // should be repeated without the flag (which is not asked for again).
  bool Refused(int flags_used, int err) {
    if (err != EOPNOTSUPP || !(flags_used & RWF_DONTCACHE)) return false;
    on_.store(false, std::memory_order_relaxed);
    return true;
  }

 private:
  bool spare_;
  std::atomic<bool> on_;
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_UNCACHED_IO_H_
