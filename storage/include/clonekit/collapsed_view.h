// CollapsedView: the disk as seen at one layer of a chain, readable at any
// offset from many threads at once, without copying anything.
//
// This is what the nbdkit plugin and the FUSE mount serve. Each read resolves
// its own range through the chain (the layers' L2 caches are shared and
// thread-safe) and then reads the bytes from the layers that hold them, so
// no lock is held on the read path.
#ifndef CLONEKIT_COLLAPSED_VIEW_H_
#define CLONEKIT_COLLAPSED_VIEW_H_

#include <cstdint>
#include <string>
#include <vector>

#include "clonekit/chain.h"
#include "clonekit/chain_resolver.h"
#include "clonekit/extent_map.h"

namespace clonekit {

class CollapsedView {
 public:
  // The view at layer `depth` of `chain` (0: the top); chain must outlive it.
  CollapsedView(const Chain& chain, uint32_t depth);

  const Image& layer() const { return chain_.layer(depth_); }
  uint64_t size() const { return resolver_.virtual_size(); }
  // Cluster size of the layer (64 KiB for raw), the natural I/O unit.
  uint64_t preferred_block() const;

  // Reads [offset, offset + length), which must lie inside the disk.
  Status Read(uint64_t offset, void* buf, size_t length) const;

  // The extents of [offset, offset + length), clamped to the disk.
  Status Map(uint64_t offset, uint64_t length, ExtentMap* out) const {
    return resolver_.Resolve(offset, length, out);
  }

  // Asks the kernel to start reading the layers' bytes behind the range.
  Status Prefetch(uint64_t offset, uint64_t length) const;

 private:
  const Chain& chain_;
  const uint32_t depth_;
  const ChainResolver resolver_;
};

// One name per layer, for exports and file names: the layer's file name,
// or, when an upper layer already has that name, "NAME~DEPTH".
std::vector<std::string> LayerNames(const Chain& chain);

}  // namespace clonekit

#endif  // CLONEKIT_COLLAPSED_VIEW_H_
