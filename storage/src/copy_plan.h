// The copy plan (internal): a window's extents cut into requests.
//
// Every copier works in requests: a buffer's worth of contiguous disk bytes
// read from the layers (possibly several extents of different layers side by
// side) and written at once. PlanCopy is the one place that cuts them; it is
// pure, so it is unit-tested on its own. Segments name the extent they come
// from rather than copying its fields: the window's ExtentMap must outlive
// the plan.
#ifndef CLONEKIT_STORAGE_COPY_PLAN_H_
#define CLONEKIT_STORAGE_COPY_PLAN_H_

#include <cstdint>
#include <vector>

#include "clonekit/chain.h"
#include "clonekit/extent_map.h"
#include "extent_reader.h"

namespace clonekit {

// The bytes of one extent that fill part of a request's buffer.
struct CopySegment {
  uint32_t extent = 0;  // index into the window's ExtentMap
  uint32_t offset = 0;  // in the request's buffer
  uint32_t length = 0;
  uint64_t skip = 0;    // bytes into the extent
};

// One request: `length` contiguous bytes for disk offset `dst`, gathered
// from segments [first, first + count).
struct CopyJob {
  uint64_t dst = 0;
  uint32_t length = 0;
  uint32_t first = 0;
  uint32_t count = 0;
};

struct CopyPlan {
  std::vector<CopyJob> jobs;
  std::vector<CopySegment> segments;
  void clear() {
    jobs.clear();
    segments.clear();
  }
};

// Most segments in one job: a bound on the reads one request has in flight.
constexpr uint32_t kMaxSegmentsPerJob = 32;

// Replaces *plan with the data and compressed extents of `map` cut into jobs
// of at most `request_bytes` that never cross a multiple of request_bytes
// (so a request never straddles an output cluster of that size). Extents
// that touch share a job; a range that reads as zero ends it.
// REQUIRES: request_bytes > 0; map sorted (as the resolver makes it).
void PlanCopy(const ExtentMap& map, uint32_t request_bytes, CopyPlan* plan);

// Reads a segment into buf + segment.offset.
[[nodiscard]] Status ReadSegment(const Chain& chain, const ExtentMap& map, const CopySegment& segment, uint8_t* buf,
                                 ReadScratch* scratch);

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_COPY_PLAN_H_
