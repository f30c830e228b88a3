#include "extent_reader.h"

#include <cstring>

namespace clonekit {

Status ReadExtent(const Chain& chain, const Extent& e, uint64_t skip, uint8_t* buf, size_t length,
                  ReadScratch* scratch) {
  const Image& layer = chain.layer(e.depth);
  switch (e.kind) {
    case RunKind::kData:
      return layer.ReadHost(e.host.offset + skip, buf, length, scratch->cache);
    case RunKind::kCompressed: {
      if (scratch->depth != e.depth || scratch->stream_offset != e.host.offset) {
        scratch->cluster.resize(layer.info().cluster_size);
        scratch->depth = UINT32_MAX;
        CLONEKIT_RETURN_IF_ERROR(layer.ReadCompressed(e.host, scratch->cluster.data(), &scratch->stream, scratch->cache));
        scratch->depth = e.depth;
        scratch->stream_offset = e.host.offset;
      }
      std::memcpy(buf, scratch->cluster.data() + (e.start - e.host.cluster_start) + skip, length);
      return Status::OK();
    }
    default:
      std::memset(buf, 0, length);
      return Status::OK();
  }
}

}  // namespace clonekit
