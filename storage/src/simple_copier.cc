// The simple copier: raw bytes with pread/pwrite on the calling thread.
// Used where the kernel offers no io_uring; the same plan, the same
// zero-block skipping, the same results as the io_uring copier.
#include <vector>

#include "block_runs.h"
#include "copier.h"
#include "copy_plan.h"
#include "raw_destination.h"
#include "write_fully.h"

namespace clonekit {

namespace {

class SimpleCopier final : public Copier {
 public:
  SimpleCopier(const Chain& chain, RawDestination& destination, const CollapseOptions& options)
      : chain_(chain),
        destination_(destination),
        request_bytes_(options.request_bytes),
        sparse_block_(destination.reads_zero() ? options.sparse_block : 0),
        buffer_(options.request_bytes) {
    scratch_.cache = options.page_cache;
  }

  Status CopyWindow(const ExtentMap& map, CopySignals& signals) override {
    CLONEKIT_RETURN_IF_ERROR(destination_.ZeroWhereMapReadsZero(map));
    PlanCopy(map, request_bytes_, &plan_);
    for (const CopyJob& job : plan_.jobs) {
      if (signals.stopped()) return Status::Cancelled("interrupted");
      for (uint32_t k = 0; k < job.count; k++) {
        CLONEKIT_RETURN_IF_ERROR(ReadSegment(chain_, map, plan_.segments[job.first + k], buffer_.data(), &scratch_));
      }
      size_t cursor = 0;
      BlockRun run;
      while (NextBlockRun(buffer_.data(), job.length, job.dst, sparse_block_, &cursor, &run)) {
        if (run.zero) continue;
        CLONEKIT_RETURN_IF_ERROR(
            WriteFully(destination_.fd(), destination_.name(), buffer_.data() + run.start, run.end - run.start,
                       job.dst + run.start, destination_.uncached()));
      }
      signals.data_done.fetch_add(job.length, std::memory_order_relaxed);
    }
    if (!map.empty()) destination_.WrittenBelow(map.extents().back().end());
    return Status::OK();
  }

 private:
  const Chain& chain_;
  RawDestination& destination_;
  const uint32_t request_bytes_;
  const uint32_t sparse_block_;
  std::vector<uint8_t> buffer_;
  ReadScratch scratch_;
  CopyPlan plan_;
};

}  // namespace

std::unique_ptr<Copier> NewSimpleCopier(const Chain& chain, RawDestination& destination,
                                        const CollapseOptions& options) {
  return std::make_unique<SimpleCopier>(chain, destination, options);
}

}  // namespace clonekit
