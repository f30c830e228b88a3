#include "clonekit/collapsed_view.h"

#include <fcntl.h>

#include <algorithm>
#include <set>

#include "extent_reader.h"

namespace clonekit {

CollapsedView::CollapsedView(const Chain& chain, uint32_t depth)
    : chain_(chain), depth_(depth), resolver_(chain, depth) {}

uint64_t CollapsedView::preferred_block() const {
  const uint64_t cluster = layer().info().cluster_size;
  return cluster ? cluster : 64 << 10;
}

Status CollapsedView::Read(uint64_t offset, void* buf, size_t length) const {
  if (offset > size() || length > size() - offset) {
    return Status::InvalidArgument(layer().name() + ": read of " + std::to_string(length) + " bytes at " +
                                   Hex(offset) + " is past the end of the disk (" + Hex(size()) + ")");
  }
  ExtentMap map;
  CLONEKIT_RETURN_IF_ERROR(resolver_.Resolve(offset, length, &map));
  uint8_t* out = static_cast<uint8_t*>(buf);
  ReadScratch scratch;  // per call: compressed clusters inflate once per read
  for (const Extent& e : map.extents()) {
    CLONEKIT_RETURN_IF_ERROR(ReadExtent(chain_, e, 0, out + (e.start - offset), e.length, &scratch));
  }
  return Status::OK();
}

Status CollapsedView::Prefetch(uint64_t offset, uint64_t length) const {
  ExtentMap map;
  CLONEKIT_RETURN_IF_ERROR(resolver_.Resolve(offset, length, &map));
  for (const Extent& e : map.extents()) {
    if (e.kind != RunKind::kData && e.kind != RunKind::kCompressed) continue;
    const uint64_t len = e.kind == RunKind::kData ? e.length : e.host.compressed_size;
    // Advice only: a failure changes nothing the client can see.
    posix_fadvise(chain_.layer(e.depth).file().fd(), static_cast<off_t>(e.host.offset),
                  static_cast<off_t>(len), POSIX_FADV_WILLNEED);
  }
  return Status::OK();
}

std::vector<std::string> LayerNames(const Chain& chain) {
  std::vector<std::string> names;
  std::set<std::string> taken;
  for (const auto& layer : chain.layers()) {
    const std::string& path = layer->name();
    const size_t slash = path.rfind('/');
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    if (!taken.insert(name).second) {
      name += "~" + std::to_string(names.size());
      taken.insert(name);
    }
    names.push_back(name);
  }
  return names;
}

}  // namespace clonekit
