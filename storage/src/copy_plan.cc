#include "copy_plan.h"

#include <algorithm>

namespace clonekit {

void PlanCopy(const ExtentMap& map, uint32_t request_bytes, CopyPlan* plan) {
  plan->clear();
  const uint64_t step = request_bytes;
  const std::vector<Extent>& extents = map.extents();
  bool open = false;  // whether plan->jobs.back() may still grow
  for (uint32_t i = 0; i < extents.size(); i++) {
    const Extent& e = extents[i];
    if (e.reads_zero()) {
      open = false;
      continue;
    }
    for (uint64_t pos = e.start; pos < e.end();) {
      const uint64_t end = std::min(e.end(), (pos / step + 1) * step);
      if (!open || pos % step == 0 || plan->jobs.back().dst + plan->jobs.back().length != pos ||
          plan->jobs.back().count == kMaxSegmentsPerJob) {
        CopyJob job;
        job.dst = pos;
        job.first = static_cast<uint32_t>(plan->segments.size());
        plan->jobs.push_back(job);
        open = true;
      }
      CopyJob& job = plan->jobs.back();
      CopySegment g;
      g.extent = i;
      g.offset = job.length;
      g.length = static_cast<uint32_t>(end - pos);
      g.skip = pos - e.start;
      plan->segments.push_back(g);
      job.length += g.length;
      job.count++;
      pos = end;
    }
  }
}

Status ReadSegment(const Chain& chain, const ExtentMap& map, const CopySegment& segment, uint8_t* buf,
                   ReadScratch* scratch) {
  return ReadExtent(chain, map.extents()[segment.extent], segment.skip, buf + segment.offset, segment.length,
                    scratch);
}

}  // namespace clonekit
