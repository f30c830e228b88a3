#include "uring_pipeline.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <liburing.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "extent_copier.h"
#include "image_writer.h"

namespace clonekit {

namespace {

constexpr size_t kAlign = 4096;  // O_DIRECT and page alignment

// One request in flight: a job, its buffer, and where its I/O stands.
struct Request {
  const CopyJob* job = nullptr;
  uint8_t* buf = nullptr;
  bool writing = false;
  uint32_t reads_pending = 0;
  uint32_t seg_done[UringPipeline::kMaxSegments] = {};  // bytes read per segment
  uint32_t scan = 0;       // where the search for the next non-zero run resumes
  uint32_t run_start = 0;  // current write run [run_start, run_end) of buf
  uint32_t run_end = 0;
  uint32_t run_done = 0;
};

// user_data: request index << 8 | segment (reads), or | 0xff (writes).
constexpr uint64_t kWriteTag = 0xff;

// Copies a job's plain-data segments inside the kernel: a reflink
// (FICLONERANGE) when everything is block aligned, else copy_file_range.
// Returns false, and clears *enabled, when the kernel cannot; the caller
// then copies the whole job by hand (a partial copy is simply redone).
bool Offload(const Chain& chain, const CopyPlan& plan, const CopyJob& job, const PipelineConfig& config,
             bool* enabled) {
  for (uint32_t k = 0; k < job.count; k++) {
    if (plan.segments[job.first + k].compressed) return false;
  }
  for (uint32_t k = 0; k < job.count; k++) {
    const CopySegment& g = plan.segments[job.first + k];
    int in = chain.layer(g.depth).file().fd();
    if (g.src % kAlign == 0 && g.dst % kAlign == 0 && g.length % kAlign == 0) {
      struct file_clone_range range = {in, g.src, g.length, g.dst};
      if (ioctl(config.target_fd, FICLONERANGE, &range) == 0) continue;
    }
    loff_t off_in = static_cast<loff_t>(g.src), off_out = static_cast<loff_t>(g.dst);
    size_t left = g.length;
    while (left > 0) {
      ssize_t n = copy_file_range(in, &off_in, config.target_fd, &off_out, left, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        *enabled = false;  // EXDEV, EOPNOTSUPP, EINVAL...: stop trying
        return false;
      }
      left -= static_cast<size_t>(n);
    }
  }
  return true;
}

}  // namespace

struct UringPipeline::Worker {
  struct io_uring ring;
  bool ring_ready = false;
  std::vector<Request> requests;
  std::vector<uint32_t> idle;  // indexes into requests
  uint8_t* buffers = nullptr;
  ReadScratch scratch;  // compressed stream and the last inflated cluster
  unsigned inflight = 0;
  bool offload = false;  // copy_file_range / reflink, until the kernel says no

  ~Worker() {
    if (ring_ready) io_uring_queue_exit(&ring);
    std::free(buffers);
  }
};

Result<std::unique_ptr<UringPipeline>> UringPipeline::Create(const Chain& chain, const PipelineConfig& config) {
  std::unique_ptr<UringPipeline> p(new UringPipeline(chain, config));
  unsigned n = config.workers ? config.workers : std::max(1u, std::thread::hardware_concurrency());
  p->buffer_bytes_ = (config.request_bytes + kAlign - 1) & ~(kAlign - 1);
  for (unsigned i = 0; i < n; i++) {
    auto w = std::make_unique<Worker>();
    w->offload = config.copy_offload && config.direct_fd < 0;
    // Every segment of every request may have a read in flight at once.
    int ret = io_uring_queue_init(config.queue_depth * kMaxSegments, &w->ring, 0);
    if (ret < 0) return Status::FromErrno("io_uring", "cannot set up a ring", -ret);
    w->ring_ready = true;
    if (posix_memalign(reinterpret_cast<void**>(&w->buffers), kAlign, p->buffer_bytes_ * config.queue_depth) != 0) {
      return Status::IOError("io_uring", "cannot allocate I/O buffers");
    }
    w->requests.resize(config.queue_depth);
    for (unsigned r = 0; r < config.queue_depth; r++) {
      w->requests[r].buf = w->buffers + r * p->buffer_bytes_;
      w->idle.push_back(r);
    }
    p->workers_.push_back(std::move(w));
  }
  for (auto& w : p->workers_) p->threads_.emplace_back(&UringPipeline::WorkerMain, p.get(), w.get());
  return p;
}

UringPipeline::UringPipeline(const Chain& chain, const PipelineConfig& config) : chain_(chain), config_(config) {}

UringPipeline::~UringPipeline() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void UringPipeline::Plan(const ExtentMap& map, CopyPlan* plan) const {
  const uint64_t step = config_.request_bytes;
  auto open_job = [&](uint64_t dst) {
    CopyJob job;
    job.dst = dst;
    job.first = static_cast<uint32_t>(plan->segments.size());
    plan->jobs.push_back(job);
  };
  bool have_job = false;
  for (const Extent& e : map.extents()) {
    if (e.reads_zero()) {
      have_job = false;  // a gap: the next data starts a new job
      continue;
    }
    for (uint64_t pos = e.start; pos < e.end();) {
      const uint64_t end = std::min(e.end(), (pos / step + 1) * step);  // never cross a request boundary
      CopyJob* job = have_job ? &plan->jobs.back() : nullptr;
      if (!job || job->dst + job->length != pos || pos % step == 0 || job->count == kMaxSegments) {
        open_job(pos);
        job = &plan->jobs.back();
        have_job = true;
      }
      CopySegment g;
      g.depth = e.depth;
      g.offset = job->length;
      g.length = static_cast<uint32_t>(end - pos);
      g.dst = pos;
      if (e.kind == ExtentKind::kCompressed) {
        g.compressed = true;
        g.src = e.host_offset;
        g.compressed_size = e.compressed_size;
        g.cluster_start = e.cluster_start;
      } else {
        g.src = e.host_offset + (pos - e.start);
      }
      plan->segments.push_back(g);
      job->length += g.length;
      job->count++;
      pos = end;
    }
  }
}

void UringPipeline::Fail(const Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failed_.exchange(true)) error_ = status;
}

Status UringPipeline::Run(const CopyPlan& plan, std::atomic<uint64_t>* copied, const std::atomic<bool>* cancel,
                          const std::function<void()>& tick) {
  std::unique_lock<std::mutex> lock(mu_);
  if (failed_) return error_;
  plan_ = &plan;
  next_job_ = 0;
  copied_ = copied;
  cancel_ = cancel;
  busy_ = static_cast<unsigned>(workers_.size());
  generation_++;
  work_cv_.notify_all();
  while (!done_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return busy_ == 0; })) {
    lock.unlock();
    if (tick) tick();
    lock.lock();
  }
  plan_ = nullptr;
  if (failed_) return error_;
  if (cancel && cancel->load()) return Status::Cancelled("interrupted");
  return Status::OK();
}

namespace {

// Drives one worker's requests through its ring.
struct Driver {
  struct io_uring* ring;
  const PipelineConfig& config;
  const Chain& chain;
  const CopyPlan& plan;
  std::vector<Request>& requests;

  uint32_t Index(const Request* r) const { return static_cast<uint32_t>(r - requests.data()); }

  void SubmitRead(Request* r, uint32_t k) {
    const CopySegment& g = plan.segments[r->job->first + k];
    uint32_t done = r->seg_done[k];
    struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
    io_uring_prep_read(sqe, chain.layer(g.depth).file().fd(), r->buf + g.offset + done, g.length - done,
                       g.src + done);
    io_uring_sqe_set_data64(sqe, (uint64_t(Index(r)) << 8) | k);
  }

  void SubmitWrite(Request* r) {
    uint32_t start = r->run_start + r->run_done;
    uint32_t len = r->run_end - start;
    uint64_t at = r->job->dst + start;
    bool aligned = config.direct_fd >= 0 && at % kAlign == 0 && len % kAlign == 0 && start % kAlign == 0;
    struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
    io_uring_prep_write(sqe, aligned ? config.direct_fd : config.target_fd, r->buf + start, len, at);
    io_uring_sqe_set_data64(sqe, (uint64_t(Index(r)) << 8) | kWriteTag);
  }

  // Finds the next run of blocks to write (all of it without sparse
  // detection). Returns false when the request has nothing left to write.
  bool NextRun(Request* r) {
    const uint32_t len = r->job->length;
    if (r->scan >= len) return false;
    const uint32_t block = config.target_is_zero ? config.sparse_block : 0;
    if (block == 0) {
      r->run_start = r->scan;
      r->run_end = len;
      r->run_done = 0;
      r->scan = len;
      return true;
    }
    auto block_end = [&](uint32_t pos) {
      uint64_t abs = r->job->dst + pos;
      return static_cast<uint32_t>(std::min<uint64_t>(len, pos + (block - abs % block)));
    };
    uint32_t pos = r->scan;
    while (pos < len && IsZero(r->buf + pos, block_end(pos) - pos)) pos = block_end(pos);
    if (pos >= len) {
      r->scan = len;
      return false;
    }
    uint32_t end = block_end(pos);
    while (end < len && !IsZero(r->buf + end, block_end(end) - end)) end = block_end(end);
    r->run_start = pos;
    r->run_end = end;
    r->run_done = 0;
    r->scan = end;
    return true;
  }
};

}  // namespace

void UringPipeline::WorkerMain(Worker* w) {
  uint64_t seen = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    const CopyPlan& plan = *plan_;
    Driver d{&w->ring, config_, chain_, plan, w->requests};

    auto release = [&](Request* r) { w->idle.push_back(d.Index(r)); };
    auto finish = [&](Request* r) {
      // Start writeback of the range just written: the disk works while we
      // copy, and the final fdatasync finds little left (as nbdcopy does).
      // Small ranges, as they finish: one call over the whole file blocks.
      if (config_.early_writeback && r->writing) {
        sync_file_range(config_.target_fd, static_cast<off_t>(r->job->dst), r->job->length, SYNC_FILE_RANGE_WRITE);
      }
      copied_->fetch_add(r->job->length, std::memory_order_relaxed);
      release(r);
    };
    // Moves a request whose buffer is full to its write phase.
    auto start_writes = [&](Request* r) {
      r->writing = true;
      r->scan = 0;
      if (d.NextRun(r)) {
        d.SubmitWrite(r);
        w->inflight++;
      } else {
        finish(r);
      }
    };
    auto stop = [&] { return failed_.load() || (cancel_ && cancel_->load(std::memory_order_relaxed)); };

    while (true) {
      // Refill up to the queue depth.
      while (!w->idle.empty() && !stop()) {
        size_t i = next_job_.fetch_add(1);
        if (i >= plan.jobs.size()) break;
        Request* r = &w->requests[w->idle.back()];
        w->idle.pop_back();
        uint8_t* buf = r->buf;
        *r = Request();
        r->buf = buf;
        r->job = &plan.jobs[i];
        if (w->offload && Offload(chain_, plan, *r->job, config_, &w->offload)) {
          finish(r);
          continue;
        }
        Status s;
        for (uint32_t k = 0; k < r->job->count && s.ok(); k++) {
          const CopySegment& g = plan.segments[r->job->first + k];
          if (!g.compressed) {
            d.SubmitRead(r, k);
            r->reads_pending++;
            w->inflight++;
            continue;
          }
          // Inflate here: decompression runs on every worker's core. A
          // cluster split into several pieces is inflated once.
          Extent e;
          e.start = g.dst;
          e.length = g.length;
          e.depth = g.depth;
          e.kind = ExtentKind::kCompressed;
          e.host_offset = g.src;
          e.compressed_size = g.compressed_size;
          e.cluster_start = g.cluster_start;
          s = ReadExtent(chain_, e, 0, r->buf + g.offset, g.length, &w->scratch);
        }
        if (!s.ok()) {
          Fail(s);
          if (r->reads_pending == 0) release(r);
          break;
        }
        if (r->reads_pending == 0) start_writes(r);
      }
      if (w->inflight == 0) break;
      io_uring_submit_and_wait(&w->ring, 1);

      struct io_uring_cqe* cqe;
      unsigned head, handled = 0;
      io_uring_for_each_cqe(&w->ring, head, cqe) {
        handled++;
        w->inflight--;
        const uint64_t tag = io_uring_cqe_get_data64(cqe);
        Request* r = &w->requests[tag >> 8];
        const bool is_write = (tag & 0xff) == kWriteTag;
        const uint32_t k = static_cast<uint32_t>(tag & 0xff);
        int res = cqe->res;
        if (config_.io_hook) {
          uint32_t want = is_write ? r->run_end - r->run_start - r->run_done
                                   : plan.segments[r->job->first + k].length - r->seg_done[k];
          res = config_.io_hook(is_write, want, res);
        }
        if (res == -EAGAIN || res == -EINTR) {  // try the same I/O again
          if (is_write) d.SubmitWrite(r); else d.SubmitRead(r, k);
          w->inflight++;
          continue;
        }
        if (!is_write) {
          const CopySegment& g = plan.segments[r->job->first + k];
          const Image& layer = chain_.layer(g.depth);
          if (res <= 0) {
            Fail(res < 0 ? Status::FromErrno(layer.name(), "read error at byte " + std::to_string(g.src + r->seg_done[k]), -res)
                         : Status::Corruption(layer.name(), "unexpected end of file at byte " +
                                                                std::to_string(g.src + r->seg_done[k]) +
                                                                " (was the image changed while being read?)"));
            if (--r->reads_pending == 0) release(r);
          } else if ((r->seg_done[k] += res) < g.length) {
            d.SubmitRead(r, k);  // short read: ask for the rest
            w->inflight++;
          } else if (--r->reads_pending == 0) {
            if (failed_) release(r); else start_writes(r);
          }
          continue;
        }
        if (res <= 0) {
          int err = res < 0 ? -res : EIO;
          Fail(Status::FromErrno(config_.target_name,
                                 "write error at byte " + std::to_string(r->job->dst + r->run_start + r->run_done), err));
          release(r);
          continue;
        }
        r->run_done += res;
        if (r->run_start + r->run_done < r->run_end || d.NextRun(r)) {
          d.SubmitWrite(r);  // the rest of a short write, or the next run
          w->inflight++;
        } else {
          finish(r);
        }
      }
      io_uring_cq_advance(&w->ring, handled);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (--busy_ == 0) done_cv_.notify_all();
  }
}

}  // namespace clonekit
