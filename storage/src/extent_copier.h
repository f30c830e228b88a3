// ExtentCopier (internal): moves the bytes of resolved extents from the
// chain's layers to an ImageWriter.
//
// This is the seam the io_uring pipeline replaces; the simple copier here
// reads each data extent in 1 MiB pieces, front to back, on one thread.
#ifndef CLONEKIT_STORAGE_EXTENT_COPIER_H_
#define CLONEKIT_STORAGE_EXTENT_COPIER_H_

#include <atomic>
#include <functional>

#include "clonekit/chain.h"
#include "clonekit/extent_map.h"
#include "image_writer.h"

namespace clonekit {

struct CopyControl {
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(uint64_t copied_bytes)> progress;  // cumulative
};

class ExtentCopier {
 public:
  virtual ~ExtentCopier() = default;
  // Copies every data/compressed extent of `map`, ascending.
  virtual Status Copy(const Chain& chain, const ExtentMap& map, ImageWriter& writer,
                      const CopyControl& control) = 0;
};

std::unique_ptr<ExtentCopier> NewSimpleCopier();

// Buffers reused across reads; remembers the last inflated cluster, so the
// pieces of one compressed cluster inflate it once.
struct ReadScratch {
  std::vector<uint8_t> stream;
  std::vector<uint8_t> cluster;
  uint32_t depth = UINT32_MAX;
  uint64_t host_offset = 0;
};

// Reads `length` bytes of extent e starting `skip` bytes into it.
Status ReadExtent(const Chain& chain, const Extent& e, uint64_t skip, uint8_t* buf, size_t length,
                  ReadScratch* scratch);

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_EXTENT_COPIER_H_
