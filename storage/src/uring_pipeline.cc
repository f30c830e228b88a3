#include "uring_pipeline.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <liburing.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstring>

#include "extent_copier.h"
#include "image_writer.h"

namespace clonekit {

namespace {

constexpr size_t kAlign = 4096;  // O_DIRECT and page alignment

// One request in flight: a job, its buffer, and where its I/O stands.
struct Request {
  CopyJob job;
  uint8_t* buf = nullptr;
  bool writing = false;
  uint32_t read_done = 0;  // bytes read so far
  uint32_t scan = 0;       // where the search for the next non-zero run resumes
  uint32_t run_start = 0;  // current write run [run_start, run_end) of buf
  uint32_t run_end = 0;
  uint32_t run_done = 0;
};

// Copies a plain data job inside the kernel: a reflink (FICLONERANGE) when
// everything is block aligned, else copy_file_range. Returns false, and
// clears *enabled, when the kernel cannot; the caller then copies by hand
// from where this stopped (nothing is half done: a partial copy is redone).
bool Offload(const Image& layer, const CopyJob& job, const PipelineConfig& config, bool* enabled) {
  int in = layer.file().fd();
  if (job.src % kAlign == 0 && job.dst % kAlign == 0 && job.length % kAlign == 0) {
    struct file_clone_range range = {in, job.src, job.length, job.dst};
    if (ioctl(config.target_fd, FICLONERANGE, &range) == 0) return true;
  }
  loff_t off_in = static_cast<loff_t>(job.src), off_out = static_cast<loff_t>(job.dst);
  size_t left = job.length;
  while (left > 0) {
    ssize_t n = copy_file_range(in, &off_in, config.target_fd, &off_out, left, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *enabled = false;  // EXDEV, EOPNOTSUPP, EINVAL...: stop trying
      return false;
    }
    left -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

struct UringPipeline::Worker {
  struct io_uring ring;
  bool ring_ready = false;
  std::vector<Request> requests;
  std::vector<Request*> idle;
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
  uint64_t max_cluster = 0;
  for (const auto& layer : chain.layers()) max_cluster = std::max(max_cluster, layer->info().cluster_size);
  p->buffer_bytes_ = std::max<size_t>(config.request_bytes, max_cluster);
  p->buffer_bytes_ = (p->buffer_bytes_ + kAlign - 1) & ~(kAlign - 1);
  for (unsigned i = 0; i < n; i++) {
    auto w = std::make_unique<Worker>();
    w->offload = config.copy_offload && config.direct_fd < 0;
    int ret = io_uring_queue_init(config.queue_depth, &w->ring, 0);
    if (ret < 0) return Status::FromErrno("io_uring", "cannot set up a ring", -ret);
    w->ring_ready = true;
    if (posix_memalign(reinterpret_cast<void**>(&w->buffers), kAlign, p->buffer_bytes_ * config.queue_depth) != 0) {
      return Status::IOError("io_uring", "cannot allocate I/O buffers");
    }
    w->requests.resize(config.queue_depth);
    for (unsigned r = 0; r < config.queue_depth; r++) {
      w->requests[r].buf = w->buffers + r * p->buffer_bytes_;
      w->idle.push_back(&w->requests[r]);
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

void UringPipeline::AppendJobs(const ExtentMap& map, std::vector<CopyJob>* jobs) const {
  const uint64_t step = config_.request_bytes;
  for (const Extent& e : map.extents()) {
    if (e.reads_zero()) continue;
    if (e.kind == ExtentKind::kCompressed) {
      CopyJob job;
      job.dst = e.start;
      job.length = static_cast<uint32_t>(e.length);
      job.depth = e.depth;
      job.compressed = true;
      job.src = e.host_offset;
      job.compressed_size = e.compressed_size;
      job.cluster_start = e.cluster_start;
      jobs->push_back(job);
      continue;
    }
    for (uint64_t pos = e.start; pos < e.end();) {
      uint64_t end = std::min(e.end(), (pos / step + 1) * step);  // request-aligned pieces
      CopyJob job;
      job.dst = pos;
      job.length = static_cast<uint32_t>(end - pos);
      job.depth = e.depth;
      job.src = e.host_offset + (pos - e.start);
      jobs->push_back(job);
      pos = end;
    }
  }
}

void UringPipeline::Fail(const Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failed_.exchange(true)) error_ = status;
}

Status UringPipeline::Run(const std::vector<CopyJob>& jobs, std::atomic<uint64_t>* copied,
                          const std::atomic<bool>* cancel, const std::function<void()>& tick) {
  std::unique_lock<std::mutex> lock(mu_);
  if (failed_) return error_;
  jobs_ = &jobs;
  next_job_ = 0;
  copied_ = copied;
  cancel_ = cancel;
  busy_ = static_cast<unsigned>(workers_.size());
  generation_++;
  work_cv_.notify_all();
  while (!done_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return busy_ == 0; })) {
    if (tick) {
      lock.unlock();
      tick();
      lock.lock();
    }
  }
  jobs_ = nullptr;
  if (failed_) return error_;
  if (cancel && cancel->load()) return Status::Cancelled("interrupted");
  return Status::OK();
}

namespace {

// The context a worker needs to drive one request.
struct Driver {
  struct io_uring* ring;
  const PipelineConfig& config;
  const Chain& chain;

  int ReadFd(const Request& r) const { return chain.layer(r.job.depth).file().fd(); }

  void SubmitRead(Request* r) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
    io_uring_prep_read(sqe, ReadFd(*r), r->buf + r->read_done, r->job.length - r->read_done,
                       r->job.src + r->read_done);
    io_uring_sqe_set_data(sqe, r);
  }

  void SubmitWrite(Request* r) {
    uint32_t start = r->run_start + r->run_done;
    uint32_t len = r->run_end - start;
    uint64_t at = r->job.dst + start;
    bool aligned = config.direct_fd >= 0 && at % kAlign == 0 && len % kAlign == 0 && start % kAlign == 0;
    struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
    io_uring_prep_write(sqe, aligned ? config.direct_fd : config.target_fd, r->buf + start, len, at);
    io_uring_sqe_set_data(sqe, r);
  }

  // Finds the next run of blocks to write (all of it without sparse
  // detection). Returns false when the request has nothing left to write.
  bool NextRun(Request* r) {
    const uint32_t len = r->job.length;
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
      uint64_t abs = r->job.dst + pos;
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
  Driver d{&w->ring, config_, chain_};
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    const std::vector<CopyJob>& jobs = *jobs_;

    auto finish = [&](Request* r) {
      if (config_.early_writeback && r->writing) {
        sync_file_range(config_.target_fd, static_cast<off_t>(r->job.dst), r->job.length, SYNC_FILE_RANGE_WRITE);
      }
      copied_->fetch_add(r->job.length, std::memory_order_relaxed);
      w->idle.push_back(r);
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
        if (i >= jobs.size()) break;
        Request* r = w->idle.back();
        w->idle.pop_back();
        *r = Request{jobs[i], r->buf};
        const Image& layer = chain_.layer(r->job.depth);
        if (r->job.compressed) {
          // Inflate here: decompression runs on every worker's core. A
          // cluster split into several extents is inflated once.
          Extent e;
          e.start = r->job.dst;
          e.length = r->job.length;
          e.depth = r->job.depth;
          e.kind = ExtentKind::kCompressed;
          e.host_offset = r->job.src;
          e.compressed_size = r->job.compressed_size;
          e.cluster_start = r->job.cluster_start;
          Status s = ReadExtent(chain_, e, 0, r->buf, r->job.length, &w->scratch);
          if (!s.ok()) {
            Fail(s);
            w->idle.push_back(r);
            break;
          }
          start_writes(r);
        } else if (w->offload && Offload(layer, r->job, config_, &w->offload)) {
          finish(r);
        } else {
          d.SubmitRead(r);
          w->inflight++;
        }
      }
      if (w->inflight == 0) break;
      io_uring_submit_and_wait(&w->ring, 1);

      struct io_uring_cqe* cqe;
      unsigned head, handled = 0;
      io_uring_for_each_cqe(&w->ring, head, cqe) {
        handled++;
        w->inflight--;
        Request* r = static_cast<Request*>(io_uring_cqe_get_data(cqe));
        int res = cqe->res;
        if (config_.io_hook) {
          uint32_t want = r->writing ? r->run_end - r->run_start - r->run_done : r->job.length - r->read_done;
          res = config_.io_hook(r->writing, want, res);
        }
        const Image& layer = chain_.layer(r->job.depth);
        if (res == -EAGAIN || res == -EINTR) {  // try the same I/O again
          if (r->writing) d.SubmitWrite(r); else d.SubmitRead(r);
          w->inflight++;
          continue;
        }
        if (!r->writing) {
          if (res < 0) {
            Fail(Status::FromErrno(layer.name(), "read error at byte " + std::to_string(r->job.src + r->read_done), -res));
            w->idle.push_back(r);
          } else if (res == 0) {
            Fail(Status::Corruption(layer.name(), "unexpected end of file at byte " +
                                                      std::to_string(r->job.src + r->read_done) +
                                                      " (was the image changed while being read?)"));
            w->idle.push_back(r);
          } else if ((r->read_done += res) < r->job.length) {
            d.SubmitRead(r);  // short read: ask for the rest
            w->inflight++;
          } else {
            start_writes(r);
          }
          continue;
        }
        if (res <= 0) {
          int err = res < 0 ? -res : EIO;
          Fail(Status::FromErrno(config_.target_name,
                                 "write error at byte " + std::to_string(r->job.dst + r->run_start + r->run_done), err));
          w->idle.push_back(r);
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
