// ChainResolver: which layer provides each byte of the collapsed disk.
//
// The resolver walks the chain once from the top down, carrying only the
// ranges still unresolved. Each layer is asked about those ranges alone, so
// a range settled by an upper layer never costs a lookup below it, and an
// unallocated L2 table skips its whole span at once. The cost is therefore
// the metadata actually read, not depth x clusters (docs/architecture.md).
#ifndef CLONEKIT_CHAIN_RESOLVER_H_
#define CLONEKIT_CHAIN_RESOLVER_H_

#include "clonekit/chain.h"
#include "clonekit/extent_map.h"

namespace clonekit {

class ChainResolver {
 public:
  // Resolves the disk as seen at layer `top` of the chain (0: the chain's
  // top); extents name layers by their depth in the whole chain. Resolve
  // keeps no state between calls: threads may share one resolver.
  explicit ChainResolver(const Chain& chain, uint32_t top = 0) : chain_(chain), top_(top) {}

  uint64_t virtual_size() const { return chain_.layer(top_).virtual_size(); }

  // Replaces *out with the extents covering [offset, offset + length) of the
  // top layer's virtual disk (clamped to its size), sorted and coalesced.
  Status Resolve(uint64_t offset, uint64_t length, ExtentMap* out) const;

  // The whole disk, window by window; `sink` sees each window's map in order.
  template <typename Sink>
  Status ResolveAll(uint64_t window, Sink&& sink) {
    ExtentMap map;
    for (uint64_t pos = 0; pos < virtual_size(); pos += window) {
      CLONEKIT_RETURN_IF_ERROR(Resolve(pos, window, &map));
      CLONEKIT_RETURN_IF_ERROR(sink(map));
    }
    return Status::OK();
  }

 private:
  struct Range {
    uint64_t start;
    uint64_t end;
  };
  Status ResolveLayer(uint32_t depth, const std::vector<Range>& pending, std::vector<Range>* below,
                      ExtentMap* out) const;

  const Chain& chain_;
  const uint32_t top_;
};

}  // namespace clonekit

#endif  // CLONEKIT_CHAIN_RESOLVER_H_
