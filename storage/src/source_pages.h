// SourcePages (internal): spares the page cache on the read side by hand,
// for layers whose file refuses RWF_DONTCACHE (kernels before 6.14, such as
// Debian 12's 6.1, and file systems without it).
//
// Before a window it notes which pages of the host ranges the window will
// read are cached already (mincore over a read-only mapping of the layer
// that is never touched, so a file cut short under us cannot fault), and
// after the window it drops (POSIX_FADV_DONTNEED) the pages that were not.
// Pages cached before the copy, which may be a running VM's working set,
// stay. A page the VM itself reads during the window may go too; it is then
// read again, never lost.
// Not thread-safe: the driver calls it between windows, from one thread.
#ifndef CLONEKIT_STORAGE_SOURCE_PAGES_H_
#define CLONEKIT_STORAGE_SOURCE_PAGES_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "clonekit/chain.h"
#include "clonekit/extent_map.h"
#include "clonekit/file.h"

namespace clonekit {

class SourcePages {
 public:
  // Probes each layer once (a 1-byte RWF_DONTCACHE read of its header).
  SourcePages(const Chain& chain, CacheUse use);
  ~SourcePages();
  SourcePages(const SourcePages&) = delete;
  SourcePages& operator=(const SourcePages&) = delete;

  // Some layer is spared by hand.
  bool active() const { return active_; }

  // Notes what the window's reads will bring in. REQUIRES: AfterWindow
  // was called for the previous window.
  void BeforeWindow(const ExtentMap& map);
  // Drops what the window's reads brought in.
  void AfterWindow();

 private:
  struct Layer {
    int fd = -1;
    const uint8_t* mapping = nullptr;  // PROT_READ, never dereferenced
    uint64_t mapped_bytes = 0;         // whole pages
    std::vector<std::pair<uint64_t, uint64_t>> reads;  // [start, end) this window, pages
    std::vector<std::pair<uint64_t, uint64_t>> drop;   // of those, not cached before
  };
  void Note(Layer& layer);

  std::vector<Layer> layers_;  // by depth; fd < 0 where not spared by hand
  bool active_ = false;
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_SOURCE_PAGES_H_
