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

// Walks layer `depth` once across the pending ranges. What the layer holds
// becomes an extent; what it does not hold goes to `below`, except past the
// end of the backing file (or with no backing file), where qemu reads zeros
// and reports them at this depth as not present.
//
// Deep in a chain of small snapshots the pending ranges are thousands of
// gaps of a cluster or two, and one Describe per gap per layer was most of
// the cost of a map at depth 256. So the walk first lets the layer skip what
// it does not hold (SkipUnallocated: one step may cover many gaps) and asks
// Describe only where the layer may hold something, bounded by the pending
// range: table entries under resolved ranges are never decoded, as qemu
// never reads them either.
Status ChainResolver::ResolveLayer(uint32_t depth, const std::vector<Range>& pending,
                                   std::vector<Range>* below, ExtentMap* out) const {
  if (pending.empty()) return Status::OK();
  const Image& layer = chain_.layer(depth);
  const bool has_backing = depth + 1 < chain_.depth();
  const uint64_t backing_size = has_backing ? chain_.layer(depth + 1).virtual_size() : 0;
  const uint64_t limit = pending.back().end;

  // [start, end) is not in this layer.
  auto pass_down = [&](uint64_t start, uint64_t end) {
    const uint64_t split = std::clamp(backing_size, start, end);
    if (split > start) {
      if (!below->empty() && below->back().end == start) {
        below->back().end = split;
      } else {
        below->push_back({start, split});
      }
    }
    if (end > split) out->Append(MakeExtent(split, end - split, depth, RunKind::kUnallocated));
  };

  size_t next = 0;  // the first pending range not yet wholly walked
  uint64_t pos = pending[0].start;
  while (next < pending.size()) {
    pos = std::max(pos, pending[next].start);
    uint64_t held = pos;
    CLONEKIT_RETURN_IF_ERROR(layer.SkipUnallocated(pos, limit, &held));
    if (held > pos) {
      for (; next < pending.size() && pending[next].start < held; next++) {
        pass_down(std::max(pending[next].start, pos), std::min(pending[next].end, held));
        if (pending[next].end > held) break;  // the range goes on past the skip
      }
      pos = held;
      continue;
    }
    LayerRun run;
    CLONEKIT_RETURN_IF_ERROR(layer.Describe(pos, pending[next].end - pos, &run));
    if (run.length == 0) {
      return Status::Corruption(layer.name(), "internal: empty run at " + Hex(pos));
    }
    if (run.kind == RunKind::kUnallocated) {
      pass_down(pos, pos + run.length);
    } else {
      Extent e = MakeExtent(pos, run.length, depth, run.kind);
      e.host = run.host;
      out->Append(e);
    }
    pos += run.length;
    if (pos >= pending[next].end) next++;
  }
  return Status::OK();
}

}  // namespace clonekit
