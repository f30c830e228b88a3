#include "clonekit/chain_resolver.h"

#include <algorithm>

namespace clonekit {

namespace {

Extent MakeExtent(uint64_t start, uint64_t length, uint32_t depth, RunKind kind) {
  Extent e;
  e.start = start;
  e.length = length;
  e.depth = depth;
  e.kind = kind;
  return e;
}

}  // namespace

Status ChainResolver::Resolve(uint64_t offset, uint64_t length, ExtentMap* out) const {
  out->clear();
  const uint64_t size = virtual_size();
  if (offset >= size) return Status::OK();
  const uint64_t end = length > size - offset ? size : offset + length;

  std::vector<Range> pending = {{offset, end}};
  std::vector<Range> below;
  for (uint32_t depth = top_; depth < chain_.depth() && !pending.empty(); depth++) {
    below.clear();
    CLONEKIT_RETURN_IF_ERROR(ResolveLayer(depth, pending, &below, out));
    pending.swap(below);
  }
  out->SortAndCoalesce();
  return Status::OK();
}

// Asks layer `depth` about each pending range. What the layer holds becomes
// an extent; what it does not hold goes to `below`, except past the end of
// the backing file (or with no backing file), where qemu reads zeros and
// reports them at this depth as not present.
Status ChainResolver::ResolveLayer(uint32_t depth, const std::vector<Range>& pending,
                                   std::vector<Range>* below, ExtentMap* out) const {
  const Image& layer = chain_.layer(depth);
  const bool has_backing = depth + 1 < chain_.depth();
  const uint64_t backing_size = has_backing ? chain_.layer(depth + 1).virtual_size() : 0;

  for (const Range& range : pending) {
    uint64_t pos = range.start;
    while (pos < range.end) {
      LayerRun run;
      CLONEKIT_RETURN_IF_ERROR(layer.Describe(pos, range.end - pos, &run));
      if (run.length == 0) {
        return Status::Corruption(layer.name(), "internal: empty run at " + Hex(pos));
      }
      const uint64_t run_end = pos + run.length;
      if (run.kind != RunKind::kUnallocated) {
        Extent e = MakeExtent(pos, run.length, depth, run.kind);
        e.host = run.host;
        out->Append(e);
      } else {
        uint64_t split = std::clamp(backing_size, pos, run_end);
        if (split > pos) {
          if (!below->empty() && below->back().end == pos) {
            below->back().end = split;
          } else {
            below->push_back({pos, split});
          }
        }
        if (run_end > split) out->Append(MakeExtent(split, run_end - split, depth, RunKind::kUnallocated));
      }
      pos = run_end;
    }
  }
  return Status::OK();
}

}  // namespace clonekit
