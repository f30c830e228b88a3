#include "extent_copier.h"

#include <cstring>

namespace clonekit {

Status ReadExtent(const Chain& chain, const Extent& e, uint64_t skip, uint8_t* buf, size_t length,
                  ReadScratch* scratch) {
  const Image& layer = chain.layer(e.depth);
  switch (e.kind) {
    case ExtentKind::kData:
      return layer.ReadHost(e.host_offset + skip, buf, length);
    case ExtentKind::kCompressed: {
      if (scratch->depth != e.depth || scratch->host_offset != e.host_offset) {
        scratch->cluster.resize(layer.info().cluster_size);
        scratch->depth = UINT32_MAX;
        LayerRun run;
        run.kind = RunKind::kCompressed;
        run.host_offset = e.host_offset;
        run.compressed_size = e.compressed_size;
        run.cluster_start = e.cluster_start;
        CLONEKIT_RETURN_IF_ERROR(layer.ReadCompressed(run, scratch->cluster.data(), &scratch->stream));
        scratch->depth = e.depth;
        scratch->host_offset = e.host_offset;
      }
      std::memcpy(buf, scratch->cluster.data() + (e.start - e.cluster_start) + skip, length);
      return Status::OK();
    }
    default:
      std::memset(buf, 0, length);
      return Status::OK();
  }
}

namespace {

constexpr size_t kChunk = 1 << 20;

class SimpleCopier final : public ExtentCopier {
 public:
  Status Copy(const Chain& chain, const ExtentMap& map, ImageWriter& writer,
              const CopyControl& control) override {
    std::vector<uint8_t> buf(kChunk);
    ReadScratch scratch;
    uint64_t copied = 0;
    for (const Extent& e : map.extents()) {
      if (e.reads_zero()) continue;
      for (uint64_t skip = 0; skip < e.length;) {
        if (control.cancel && control.cancel->load(std::memory_order_relaxed)) {
          return Status::Cancelled("interrupted");
        }
        // Compressed extents lie inside one cluster (<= 2 MiB): read whole.
        size_t n = e.kind == ExtentKind::kCompressed ? e.length : std::min<uint64_t>(kChunk, e.length - skip);
        if (buf.size() < n) buf.resize(n);
        CLONEKIT_RETURN_IF_ERROR(ReadExtent(chain, e, skip, buf.data(), n, &scratch));
        CLONEKIT_RETURN_IF_ERROR(writer.Write(e.start + skip, buf.data(), n));
        skip += n;
        copied += n;
        if (control.progress) control.progress(copied);
      }
    }
    return Status::OK();
  }
};

}  // namespace

std::unique_ptr<ExtentCopier> NewSimpleCopier() { return std::make_unique<SimpleCopier>(); }

}  // namespace clonekit
