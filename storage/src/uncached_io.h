// UncachedIo (internal): whether RWF_DONTCACHE is still worth asking for on
// one file.
//
// Kernels before 6.14, and file systems that do not take it, fail such an
// I/O with EOPNOTSUPP before doing anything; the caller then repeats it
// without the flag, and this remembers not to ask again for this file.
// Thread-safe.
#ifndef CLONEKIT_STORAGE_UNCACHED_IO_H_
#define CLONEKIT_STORAGE_UNCACHED_IO_H_

#include <linux/fs.h>

#include <atomic>
#include <cerrno>

#include "clonekit/file.h"

#ifndef RWF_DONTCACHE
#define RWF_DONTCACHE 0x00000080  // linux/fs.h of 6.14; Debian 12's headers predate it
#endif

namespace clonekit {

class UncachedIo {
 public:
  explicit UncachedIo(CacheUse use = CacheUse::kFill) : on_(use == CacheUse::kSpare) {}
  UncachedIo(const UncachedIo& other) : on_(other.on_.load()) {}
  UncachedIo& operator=(const UncachedIo& other) {
    on_.store(other.on_.load());
    return *this;
  }

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
  std::atomic<bool> on_;
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_UNCACHED_IO_H_
