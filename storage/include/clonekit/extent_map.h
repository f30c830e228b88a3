// ExtentMap: the collapsed view of a chain, as sorted non-overlapping
// extents that each say which layer provides the bytes and how (the same
// RunKind and HostLocation a layer describes its own runs with).
#ifndef CLONEKIT_EXTENT_MAP_H_
#define CLONEKIT_EXTENT_MAP_H_

#include <cstdint>
#include <vector>

#include "clonekit/run_kind.h"

namespace clonekit {

struct Extent {
  uint64_t start = 0;
  uint64_t length = 0;
  uint32_t depth = 0;  // 0 = the snapshot point itself, as in qemu-img map
  RunKind kind = RunKind::kUnallocated;  // kUnallocated: no layer has it (zeros)
  HostLocation host;                     // in layer `depth`'s file

  uint64_t end() const { return start + length; }
  bool present() const { return kind != RunKind::kUnallocated; }
  bool reads_zero() const { return kind == RunKind::kZero || kind == RunKind::kUnallocated; }
};

class ExtentMap {
 public:
  const std::vector<Extent>& extents() const { return extents_; }
  bool empty() const { return extents_.empty(); }
  void clear() { extents_.clear(); }

  // Appends an extent that starts where the last one ends, merging it into
  // the last one when both describe contiguous bytes of the same kind.
  void Append(const Extent& extent);

  // Sorts by start and merges neighbours (used after resolving layer by layer).
  void SortAndCoalesce();

  // Bytes that must be copied (data and compressed extents).
  uint64_t data_bytes() const;

 private:
  std::vector<Extent> extents_;
};

// Whether b continues a in the same layer with the same meaning.
bool CanMerge(const Extent& a, const Extent& b);

}  // namespace clonekit

#endif  // CLONEKIT_EXTENT_MAP_H_
