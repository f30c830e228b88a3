// UringPipeline (internal): the parallel copy engine for raw destinations.
//
// Worker threads (one io_uring each, as in liburing's io_uring-cp.c: a fixed
// queue depth, refilled on completion) take copy jobs from a shared list.
// Each job reads one piece of a data extent into a preallocated aligned
// buffer and writes it at its own destination offset, so reads and writes
// complete in any order. Compressed clusters are inflated by the worker that
// read them, so decompression uses every worker's core. All-zero blocks are
// not written when the destination already reads as zeros.
#ifndef CLONEKIT_STORAGE_URING_PIPELINE_H_
#define CLONEKIT_STORAGE_URING_PIPELINE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "clonekit/chain.h"
#include "clonekit/extent_map.h"

namespace clonekit {

struct PipelineConfig {
  unsigned workers = 0;             // 0: one per online core
  unsigned queue_depth = 16;        // requests in flight per worker
  uint32_t request_bytes = 1 << 20; // bytes per read request (buffer size)
  uint32_t sparse_block = 4096;     // 0: write zero blocks too (qemu-img -S 0)
  bool target_is_zero = true;       // destination already reads as zeros
  int target_fd = -1;               // buffered writes
  int direct_fd = -1;               // O_DIRECT writes (aligned), or -1
  bool copy_offload = false;        // copy_file_range for plain data
  // Start writeback of each finished range at once (sync_file_range), so
  // the final fdatasync finds little left and the disk works meanwhile.
  bool early_writeback = true;
  std::string target_name;
  // Test hook: sees every completion (is_write, requested bytes, result)
  // and returns the result to act on; lets tests force short I/O.
  std::function<int(bool is_write, uint32_t requested, int result)> io_hook;
};

// Where some bytes of a job come from: plain data at `src` of layer
// `depth`, or (compressed) part of one compressed cluster.
struct CopySegment {
  uint32_t depth = 0;
  uint32_t offset = 0;  // in the job's buffer
  uint32_t length = 0;
  bool compressed = false;
  uint64_t src = 0;              // host offset (data) or compressed stream offset
  uint32_t compressed_size = 0;  // compressed only
  uint64_t cluster_start = 0;    // compressed only: guest offset of the cluster
  uint64_t dst = 0;              // guest offset of the segment's first byte
};

// One request: `length` contiguous bytes for destination offset `dst`,
// gathered from segments [first, first + count) -- extents of different
// layers that sit side by side on the disk -- and written at once.
struct CopyJob {
  uint64_t dst = 0;
  uint32_t length = 0;
  uint32_t first = 0;
  uint32_t count = 0;
};

// A window's work: jobs and the segments they point into.
struct CopyPlan {
  std::vector<CopyJob> jobs;
  std::vector<CopySegment> segments;
  void clear() {
    jobs.clear();
    segments.clear();
  }
};

class UringPipeline {
 public:
  static Result<std::unique_ptr<UringPipeline>> Create(const Chain& chain, const PipelineConfig& config);
  ~UringPipeline();

  // Copies every job; returns when all completed or on the first error.
  // `copied` grows by each job's length as its writes complete.
  // `tick` is called about every 100 ms while waiting (for progress).
  Status Run(const CopyPlan& plan, std::atomic<uint64_t>* copied, const std::atomic<bool>* cancel,
             const std::function<void()>& tick = {});

  // Cuts the data extents of `map` into jobs of at most request_bytes that
  // never cross a request-aligned boundary.
  void Plan(const ExtentMap& map, CopyPlan* plan) const;

  static constexpr uint32_t kMaxSegments = 32;

 private:
  struct Worker;
  UringPipeline(const Chain& chain, const PipelineConfig& config);
  void WorkerMain(Worker* worker);
  void Fail(const Status& status);

  const Chain& chain_;
  PipelineConfig config_;
  size_t buffer_bytes_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  unsigned busy_ = 0;
  const CopyPlan* plan_ = nullptr;
  std::atomic<size_t> next_job_{0};
  std::atomic<uint64_t>* copied_ = nullptr;
  const std::atomic<bool>* cancel_ = nullptr;
  std::atomic<bool> failed_{false};
  Status error_;
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_URING_PIPELINE_H_
