// ExtentMap: the collapsed view of a chain, as sorted non-overlapping
// extents that each say which layer provides the bytes and how.
#ifndef CLONEKIT_EXTENT_MAP_H_
#define CLONEKIT_EXTENT_MAP_H_

#include <cstdint>
#include <vector>

namespace clonekit {

enum class ExtentKind : uint8_t {
  kData,         // plain bytes at host_offset in layer `depth`
  kCompressed,   // part of one compressed cluster of layer `depth`
  kZero,         // a layer says "zeros" (zero cluster, raw hole)
  kUnallocated,  // no layer has it (or a short backing file ends): zeros
};

struct Extent {
  uint64_t start = 0;
  uint64_t length = 0;
  uint32_t depth = 0;  // 0 = the snapshot point itself, as in qemu-img map
  ExtentKind kind = ExtentKind::kUnallocated;
  bool offset_valid = false;
  uint64_t host_offset = 0;      // first byte, when offset_valid / compressed stream
  uint32_t compressed_size = 0;  // kCompressed
  uint64_t cluster_start = 0;    // kCompressed: guest offset of the cluster

  uint64_t end() const { return start + length; }
  bool present() const { return kind != ExtentKind::kUnallocated; }
  bool reads_zero() const { return kind == ExtentKind::kZero || kind == ExtentKind::kUnallocated; }
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
