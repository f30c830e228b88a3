// The one record of what holds a run of guest bytes, shared by a layer's
// own runs (Image::Describe), the qcow2 table entries they come from, and
// the collapsed disk's extents (ExtentMap).
#ifndef CLONEKIT_RUN_KIND_H_
#define CLONEKIT_RUN_KIND_H_

#include <cstdint>

namespace clonekit {

enum class RunKind : uint8_t {
  kUnallocated,  // a layer: not here, look below; the disk: no layer has it (zeros)
  kZero,         // reads as zeros here (zero cluster, raw hole)
  kData,         // plain bytes at host.offset
  kCompressed,   // part of one compressed cluster
};

// Where a run's bytes live in its layer's file.
struct HostLocation {
  // kData: the run's first byte. kCompressed: the start of the cluster's
  // compressed stream. kZero: the host cluster a zero cluster still keeps.
  uint64_t offset = 0;
  bool valid = false;            // offset means something (always for kData)
  uint32_t compressed_size = 0;  // kCompressed: stream bytes to read (sector-rounded)
  uint64_t cluster_start = 0;    // kCompressed: guest offset of the whole cluster
};

}  // namespace clonekit

#endif  // CLONEKIT_RUN_KIND_H_
