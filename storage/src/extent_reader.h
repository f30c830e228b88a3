// The extent reader (internal): the bytes of one extent of a collapsed disk.
//
// Every copier and the servers read through here: plain data from the
// layer's file, compressed clusters inflated (once per cluster, however many
// pieces of it are asked for), zeros for the rest. A ReadScratch belongs to
// one thread at a time.
#ifndef CLONEKIT_STORAGE_EXTENT_READER_H_
#define CLONEKIT_STORAGE_EXTENT_READER_H_

#include <cstdint>
#include <vector>

#include "clonekit/chain.h"
#include "clonekit/extent_map.h"

namespace clonekit {

// Buffers reused across reads; remembers the last inflated cluster, so the
// pieces of one compressed cluster inflate it once.
struct ReadScratch {
  CacheUse cache = CacheUse::kFill;  // how the reads treat the page cache
  std::vector<uint8_t> stream;
  std::vector<uint8_t> cluster;
  uint32_t depth = UINT32_MAX;
  uint64_t stream_offset = 0;  // of the cluster held in `cluster`
};

// Reads `length` bytes of extent e starting `skip` bytes into it.
// REQUIRES: skip + length <= e.length.
[[nodiscard]] Status ReadExtent(const Chain& chain, const Extent& e, uint64_t skip, uint8_t* buf, size_t length,
                                ReadScratch* scratch);

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_EXTENT_READER_H_
