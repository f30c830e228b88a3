#include "clonekit/extent_map.h"

#include <algorithm>

namespace clonekit {

bool CanMerge(const Extent& a, const Extent& b) {
  if (a.end() != b.start || a.depth != b.depth || a.kind != b.kind) return false;
  if (a.kind == RunKind::kCompressed || a.host.valid != b.host.valid) return false;
  return !a.host.valid || a.host.offset + a.length == b.host.offset;
}

void ExtentMap::Append(const Extent& extent) {
  if (extent.length == 0) return;
  if (!extents_.empty() && CanMerge(extents_.back(), extent)) {
    extents_.back().length += extent.length;
    return;
  }
  extents_.push_back(extent);
}

void ExtentMap::SortAndCoalesce() {
  std::sort(extents_.begin(), extents_.end(),
            [](const Extent& a, const Extent& b) { return a.start < b.start; });
  std::vector<Extent> merged;
  merged.reserve(extents_.size());
  for (const Extent& e : extents_) {
    if (!merged.empty() && CanMerge(merged.back(), e)) {
      merged.back().length += e.length;
    } else {
      merged.push_back(e);
    }
  }
  extents_.swap(merged);
}

uint64_t ExtentMap::data_bytes() const {
  uint64_t total = 0;
  for (const Extent& e : extents_) {
    if (!e.reads_zero()) total += e.length;
  }
  return total;
}

}  // namespace clonekit
