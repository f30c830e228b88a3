// The io_uring copier: raw bytes into a file or a block device.
//
// Laid out like liburing's examples/io_uring-cp.c. Each worker thread owns a
// ring and a fixed set of requests (the queue depth), each with an aligned
// buffer. A worker's loop has four phases:
//   fill:    take jobs from the window's plan while a request is idle, and
//            submit a read per segment: plain data straight into the
//            buffer, a compressed cluster's stream into the request's
//            stream buffer;
//   submit:  hand the queued SQEs to the kernel and wait for one completion;
//   reap:    for each completion, on_read or on_write (a compressed
//            stream is inflated as its read completes, on this worker's
//            core, so a cold chain keeps many stream reads in flight);
//   requeue: a short or interrupted read or write is submitted again for the
//            rest; a request whose reads are all in turns to writing its
//            non-zero runs; one whose writes are done is idle again.
// Reads and writes of different requests complete in any order. With
// CacheUse::kSpare every read and buffered write asks for RWF_DONTCACHE
// (what was cached stays, what we bring in goes), until a file says no.
#include <fcntl.h>
#include <linux/fs.h>
#include <liburing.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "block_runs.h"
#include "copier.h"
#include "copy_plan.h"
#include "first_error.h"
#include "helper_threads.h"
#include "raw_destination.h"
#include "uncached_io.h"

namespace clonekit {

namespace {

constexpr size_t kAlign = 4096;  // O_DIRECT and page alignment

// An io_uring instance, torn down with its owner.
class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() {
    if (ready_) io_uring_queue_exit(&ring_);
  }
  Status Init(unsigned entries) {
    const int ret = io_uring_queue_init(entries, &ring_, 0);
    if (ret < 0) return Status::FromErrno("io_uring", "cannot set up a ring", -ret);
    ready_ = true;
    return Status::OK();
  }
  struct io_uring* get() { return &ring_; }

 private:
  struct io_uring ring_ {};
  bool ready_ = false;
};

// `count` buffers of `each` bytes, 4 KiB aligned, freed with the pool.
class BufferPool {
 public:
  Status Init(size_t count, size_t each) {
    void* mem = nullptr;
    if (posix_memalign(&mem, kAlign, count * each) != 0) {
      return Status::IOError("io_uring", "cannot allocate I/O buffers");
    }
    mem_.reset(static_cast<uint8_t*>(mem));
    each_ = each;
    return Status::OK();
  }
  uint8_t* at(size_t i) const { return mem_.get() + i * each_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> mem_;
  size_t each_ = 0;
};

struct Settings {
  uint32_t sparse_block = 0;  // 0: write zero blocks too
  UncachedIo* target_uncached = nullptr;            // buffered writes' RWF_DONTCACHE
  std::vector<UncachedIo>* layer_uncached = nullptr;  // reads', per layer depth
  int target_fd = -1;         // buffered writes
  int direct_fd = -1;         // O_DIRECT writes (aligned ones), or -1
  bool offload = false;       // copy_file_range / reflink for plain data
  bool early_writeback = false;
  std::string target_name;
  std::function<int(bool is_write, uint32_t requested, int result)> io_hook;
};

// One window's work, shared by the workers.
struct Window {
  const Chain& chain;
  const ExtentMap& map;
  const CopyPlan& plan;
  CopySignals& signals;
  FirstError& error;
  std::atomic<size_t> next_job{0};
};

constexpr uint8_t kOwn = 0xff;  // a segment that reads its own bytes (or stream)

// One request in flight: a job, its buffer, and where its I/O stands.
struct Request {
  const CopyJob* job = nullptr;
  uint8_t* buf = nullptr;
  bool writing = false;
  uint32_t reads_pending = 0;
  uint32_t seg_done[kMaxSegmentsPerJob] = {};   // bytes read per segment (of the stream, if compressed)
  uint32_t stream_at[kMaxSegmentsPerJob] = {};  // compressed: where its stream goes in the stream buffer
  uint8_t same_stream_as[kMaxSegmentsPerJob];  // compressed: an earlier segment reading its stream, or kOwn
  uint32_t uncached_reads = 0;  // bit k: segment k's read in flight asked for RWF_DONTCACHE
  bool uncached_write = false;  // the write in flight did
  size_t scan = 0;  // where the search for the next non-zero run resumes
  BlockRun run;     // the run being written
  size_t run_done = 0;
};


// user_data: request index << 8 | segment (reads), or | kWriteTag (writes).
constexpr uint64_t kWriteTag = 0xff;
static_assert(kMaxSegmentsPerJob < kWriteTag);

class Worker {
 public:
  Worker(const Settings& settings, unsigned queue_depth, size_t buffer_bytes)
      : settings_(settings),
        requests_(queue_depth),
        streams_(queue_depth),
        buffer_bytes_(buffer_bytes),
        offload_(settings.offload) {}

  Status Init() {
    // Every segment of every request may have a read in flight at once.
    CLONEKIT_RETURN_IF_ERROR(ring_.Init(static_cast<unsigned>(requests_.size()) * kMaxSegmentsPerJob));
    CLONEKIT_RETURN_IF_ERROR(buffers_.Init(requests_.size(), buffer_bytes_));
    for (size_t i = 0; i < requests_.size(); i++) requests_[i].buf = buffers_.at(i);
    return Status::OK();
  }

  // Copies jobs of the window until none is left, or it stops.
  void Run(Window& w) {
    w_ = &w;
    idle_.clear();
    for (uint32_t i = 0; i < requests_.size(); i++) idle_.push_back(i);
    while (true) {
      Fill();
      if (inflight_ == 0) break;
      io_uring_submit_and_wait(ring_.get(), 1);
      Reap();
    }
    w_ = nullptr;
  }

 private:
  bool Stopping() const { return w_->error.failed() || w_->signals.stopped(); }
  uint32_t Index(const Request* r) const { return static_cast<uint32_t>(r - requests_.data()); }
  const CopySegment& Segment(const Request* r, uint32_t k) const { return w_->plan.segments[r->job->first + k]; }
  const Extent& ExtentOf(const CopySegment& g) const { return w_->map.extents()[g.extent]; }

  // fill: start jobs while a request is idle.
  void Fill() {
    while (!idle_.empty() && !Stopping()) {
      const size_t i = w_->next_job.fetch_add(1);
      if (i >= w_->plan.jobs.size()) return;
      Request* r = &requests_[idle_.back()];
      idle_.pop_back();
      uint8_t* buf = r->buf;
      *r = Request();
      r->buf = buf;
      r->job = &w_->plan.jobs[i];
      Start(r);
    }
  }

  void Start(Request* r) {
    if (offload_ && Offload(*r->job)) {
      Done(r);
      return;
    }
    // Room for the compressed segments' streams, side by side. Each
    // cluster is read and inflated once per request: pieces of one cluster
    // (an upper layer's subclusters over it) share the first piece's
    // stream, and the cluster this worker inflated last is not read again.
    size_t stream_bytes = 0;
    std::fill(std::begin(r->same_stream_as), std::end(r->same_stream_as), kOwn);
    for (uint32_t k = 0; k < r->job->count; k++) {
      const Extent& e = ExtentOf(Segment(r, k));
      if (e.kind != RunKind::kCompressed || InMemo(e)) continue;  // (a memo hit is served below)
      for (uint32_t j = 0; j < k; j++) {
        const Extent& o = ExtentOf(Segment(r, j));
        if (o.kind == RunKind::kCompressed && r->same_stream_as[j] == kOwn && o.depth == e.depth &&
            o.host.offset == e.host.offset) {
          r->same_stream_as[k] = static_cast<uint8_t>(j);
          break;
        }
      }
      if (r->same_stream_as[k] != kOwn) continue;
      r->stream_at[k] = static_cast<uint32_t>(stream_bytes);
      stream_bytes += e.host.compressed_size;
    }
    std::vector<uint8_t>& streams = streams_[Index(r)];
    if (streams.size() < stream_bytes) streams.resize(stream_bytes);
    for (uint32_t k = 0; k < r->job->count; k++) {
      const CopySegment& g = Segment(r, k);
      const Extent& e = ExtentOf(g);
      if (e.kind == RunKind::kCompressed && InMemo(e)) {
        std::memcpy(r->buf + g.offset, cluster_.data() + (e.start - e.host.cluster_start + g.skip), g.length);
        continue;
      }
      if (e.kind == RunKind::kCompressed && r->same_stream_as[k] != kOwn) continue;  // filled with its stream's owner
      SubmitRead(r, k);
      r->reads_pending++;
    }
    if (r->reads_pending == 0) StartWrites(r);
  }

  // Whether e's compressed cluster is the one this worker inflated last.
  bool InMemo(const Extent& e) const { return e.depth == memo_depth_ && e.host.offset == memo_offset_; }

  // The bytes segment k reads: its data, or its cluster's whole stream.
  uint32_t ReadLength(const Request* r, uint32_t k) const {
    const Extent& e = ExtentOf(Segment(r, k));
    return e.kind == RunKind::kCompressed ? e.host.compressed_size : Segment(r, k).length;
  }

  void SubmitRead(Request* r, uint32_t k) {
    const CopySegment& g = Segment(r, k);
    const Extent& e = ExtentOf(g);
    const uint32_t done = r->seg_done[k];
    const bool compressed = e.kind == RunKind::kCompressed;
    uint8_t* into = compressed ? streams_[Index(r)].data() + r->stream_at[k] : r->buf + g.offset;
    const uint64_t from = compressed ? e.host.offset : e.host.offset + g.skip;
    const int flags = (*settings_.layer_uncached)[e.depth].flags();
    struct io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    io_uring_prep_read(sqe, w_->chain.layer(e.depth).file().fd(), into + done, ReadLength(r, k) - done, from + done);
    sqe->rw_flags = flags;
    r->uncached_reads = flags ? r->uncached_reads | (1u << k) : r->uncached_reads & ~(1u << k);
    io_uring_sqe_set_data64(sqe, (uint64_t(Index(r)) << 8) | k);
    inflight_++;
  }

  // A compressed segment's stream is in: inflate the cluster and fill the
  // segment and those sharing its stream with their parts. A whole cluster
  // read for itself alone goes straight into place; otherwise the cluster
  // is inflated into the worker's memo.
  Status Inflate(Request* r, uint32_t k) {
    const CopySegment& g = Segment(r, k);
    const Extent& e = ExtentOf(g);
    const Image& layer = w_->chain.layer(e.depth);
    const uint64_t cluster = layer.info().cluster_size;
    const uint8_t* stream = streams_[Index(r)].data() + r->stream_at[k];
    bool shared = false;
    for (uint32_t j = k + 1; j < r->job->count && !shared; j++) shared = r->same_stream_as[j] == k;
    if (!shared && e.start == e.host.cluster_start && g.skip == 0 && g.length == cluster) {
      return layer.InflateCluster(e.host, stream, e.host.compressed_size, r->buf + g.offset);
    }
    if (cluster_.size() < cluster) cluster_.resize(cluster);
    memo_depth_ = UINT32_MAX;
    CLONEKIT_RETURN_IF_ERROR(layer.InflateCluster(e.host, stream, e.host.compressed_size, cluster_.data()));
    memo_depth_ = e.depth;
    memo_offset_ = e.host.offset;
    for (uint32_t j = k; j < r->job->count; j++) {
      if (j != k && r->same_stream_as[j] != k) continue;
      const CopySegment& p = Segment(r, j);
      const Extent& pe = ExtentOf(p);
      std::memcpy(r->buf + p.offset, cluster_.data() + (pe.start - pe.host.cluster_start + p.skip), p.length);
    }
    return Status::OK();
  }

  void SubmitWrite(Request* r) {
    const size_t start = r->run.start + r->run_done;
    const size_t len = r->run.end - start;
    const uint64_t at = r->job->dst + start;
    const bool aligned = settings_.direct_fd >= 0 && at % kAlign == 0 && len % kAlign == 0 && start % kAlign == 0;
    const int flags = aligned ? 0 : settings_.target_uncached->flags();
    struct io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    io_uring_prep_write(sqe, aligned ? settings_.direct_fd : settings_.target_fd, r->buf + start,
                        static_cast<unsigned>(len), at);
    sqe->rw_flags = flags;
    r->uncached_write = flags != 0;
    io_uring_sqe_set_data64(sqe, (uint64_t(Index(r)) << 8) | kWriteTag);
    inflight_++;
  }

  // The next run of non-zero blocks, skipping zero ones (the destination
  // reads as zero there). False when the request has nothing left to write.
  bool NextRun(Request* r) {
    while (NextBlockRun(r->buf, r->job->length, r->job->dst, settings_.sparse_block, &r->scan, &r->run)) {
      if (!r->run.zero) {
        r->run_done = 0;
        return true;
      }
    }
    return false;
  }

  // A request whose buffer is full turns to writing.
  void StartWrites(Request* r) {
    r->writing = true;
    r->scan = 0;
    if (NextRun(r)) {
      SubmitWrite(r);
    } else {
      Done(r);
    }
  }

  void Done(Request* r) {
    // Start writeback of the range just written: the disk works while we
    // copy, and the final fdatasync finds little left (as nbdcopy does).
    // Small ranges, as they finish: one call over the whole file blocks.
    // Not after RWF_DONTCACHE writes: the kernel starts their writeback
    // itself as each write returns, and at 1 % per layer a call per
    // 64 KiB job was a fifth of a 50 ms copy.
    if (settings_.early_writeback && r->writing && !r->uncached_write) {
      sync_file_range(settings_.target_fd, static_cast<off_t>(r->job->dst), r->job->length, SYNC_FILE_RANGE_WRITE);
    }
    w_->signals.data_done.fetch_add(r->job->length, std::memory_order_relaxed);
    Release(r);
  }

  void Release(Request* r) { idle_.push_back(Index(r)); }

  // reap: every completion now in the ring.
  void Reap() {
    struct io_uring_cqe* cqe;
    unsigned head, handled = 0;
    io_uring_for_each_cqe(ring_.get(), head, cqe) {
      handled++;
      inflight_--;
      const uint64_t tag = io_uring_cqe_get_data64(cqe);
      Request* r = &requests_[tag >> 8];
      const bool is_write = (tag & 0xff) == kWriteTag;
      const uint32_t k = static_cast<uint32_t>(tag & 0xff);
      int res = cqe->res;
      if (settings_.io_hook) {
        const uint32_t want = static_cast<uint32_t>(is_write ? r->run.end - r->run.start - r->run_done
                                                             : ReadLength(r, k) - r->seg_done[k]);
        res = settings_.io_hook(is_write, want, res);
      }
      if (is_write) {
        OnWrite(r, res);
      } else {
        OnRead(r, k, res);
      }
    }
    io_uring_cq_advance(ring_.get(), handled);
  }

  void OnRead(Request* r, uint32_t k, int res) {
    const CopySegment& g = Segment(r, k);
    const Extent& e = ExtentOf(g);
    const bool compressed = e.kind == RunKind::kCompressed;
    if (res == -EAGAIN || res == -EINTR) return SubmitRead(r, k);  // requeue: the same read again
    if (res < 0 && (r->uncached_reads & (1u << k)) &&
        (*settings_.layer_uncached)[e.depth].Refused(RWF_DONTCACHE, -res)) {
      return SubmitRead(r, k);  // requeue: again, without RWF_DONTCACHE
    }
    if (res == 0 && compressed && r->seg_done[k] > 0) {
      // A stream's size is only known to the sector: its end may lie past
      // the end of the file, which reads as zeros (as qemu reads it). One
      // that starts there is the truncated file reported below.
      std::memset(streams_[Index(r)].data() + r->stream_at[k] + r->seg_done[k], 0, ReadLength(r, k) - r->seg_done[k]);
      res = static_cast<int>(ReadLength(r, k) - r->seg_done[k]);
    }
    if (res <= 0) {
      const Image& layer = w_->chain.layer(e.depth);
      const uint64_t at = (compressed ? e.host.offset : e.host.offset + g.skip) + r->seg_done[k];
      w_->error.Set(res < 0 ? Status::FromErrno(layer.name(), "read error at byte " + std::to_string(at), -res)
                            : Status::Corruption(layer.name(), "unexpected end of file at byte " + std::to_string(at) +
                                                                   " (was the image changed while being read?)"));
      if (--r->reads_pending == 0) Release(r);
      return;
    }
    if ((r->seg_done[k] += static_cast<uint32_t>(res)) < ReadLength(r, k)) return SubmitRead(r, k);  // requeue: the rest
    if (compressed && !w_->error.failed()) w_->error.Set(Inflate(r, k));
    if (--r->reads_pending > 0) return;
    if (w_->error.failed()) {
      Release(r);
    } else {
      StartWrites(r);
    }
  }

  void OnWrite(Request* r, int res) {
    if (res == -EAGAIN || res == -EINTR) return SubmitWrite(r);  // requeue
    if (res < 0 && r->uncached_write && settings_.target_uncached->Refused(RWF_DONTCACHE, -res)) {
      return SubmitWrite(r);  // requeue: again, without RWF_DONTCACHE
    }
    if (res <= 0) {
      w_->error.Set(Status::FromErrno(settings_.target_name,
                                      "write error at byte " + std::to_string(r->job->dst + r->run.start + r->run_done),
                                      res < 0 ? -res : EIO));
      Release(r);
      return;
    }
    r->run_done += static_cast<size_t>(res);
    if (r->run.start + r->run_done < r->run.end || NextRun(r)) return SubmitWrite(r);  // the rest, or the next run
    Done(r);
  }

  // Copies a job's plain-data segments inside the kernel: a reflink
  // (FICLONERANGE) when everything is block aligned, else copy_file_range.
  // Returns false, and stops offloading, when the kernel cannot; the job is
  // then copied by hand (a partial copy is simply redone).
  bool Offload(const CopyJob& job) {
    for (uint32_t k = 0; k < job.count; k++) {
      if (ExtentOf(w_->plan.segments[job.first + k]).kind != RunKind::kData) return false;
    }
    for (uint32_t k = 0; k < job.count; k++) {
      const CopySegment& g = w_->plan.segments[job.first + k];
      const Extent& e = ExtentOf(g);
      const int in = w_->chain.layer(e.depth).file().fd();
      const uint64_t src = e.host.offset + g.skip, dst = e.start + g.skip;
      if (src % kAlign == 0 && dst % kAlign == 0 && g.length % kAlign == 0) {
        struct file_clone_range range = {in, src, g.length, dst};
        if (ioctl(settings_.target_fd, FICLONERANGE, &range) == 0) continue;
      }
      loff_t off_in = static_cast<loff_t>(src), off_out = static_cast<loff_t>(dst);
      size_t left = g.length;
      while (left > 0) {
        const ssize_t n = copy_file_range(in, &off_in, settings_.target_fd, &off_out, left, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          offload_ = false;  // EXDEV, EOPNOTSUPP, EINVAL...: stop trying
          return false;
        }
        left -= static_cast<size_t>(n);
      }
    }
    return true;
  }

  const Settings& settings_;
  Ring ring_;
  BufferPool buffers_;
  std::vector<Request> requests_;
  std::vector<uint32_t> idle_;  // indexes into requests_
  std::vector<std::vector<uint8_t>> streams_;  // per request: its compressed segments' streams
  const size_t buffer_bytes_;
  std::vector<uint8_t> cluster_;  // the memo: the cluster this worker inflated last
  uint32_t memo_depth_ = UINT32_MAX;  // its layer (UINT32_MAX: none)
  uint64_t memo_offset_ = 0;          // its stream's host offset
  unsigned inflight_ = 0;
  bool offload_;
  Window* w_ = nullptr;
};

class UringCopier final : public Copier {
 public:
  UringCopier(const Chain& chain, RawDestination& destination, const CollapseOptions& options)
      : chain_(chain), destination_(destination), request_bytes_(options.request_bytes) {
    settings_.sparse_block = destination.reads_zero() ? options.sparse_block : 0;
    settings_.target_fd = destination.fd();
    settings_.direct_fd = destination.direct_fd();
    settings_.offload = options.copy_offload && destination.direct_fd() < 0;
    settings_.early_writeback = options.early_writeback && destination.direct_fd() < 0;
    settings_.target_name = destination.name();
    settings_.io_hook = options.io_hook;
    settings_.target_uncached = destination.uncached();
    layer_uncached_.assign(chain.depth(), UncachedIo(options.page_cache));
    settings_.layer_uncached = &layer_uncached_;
  }

  Status Init(const CollapseOptions& options) {
    const unsigned n = options.workers ? options.workers : std::max(1u, std::thread::hardware_concurrency());
    const size_t buffer_bytes = (options.request_bytes + kAlign - 1) & ~(kAlign - 1);
    for (unsigned i = 0; i < n; i++) {
      workers_.push_back(std::make_unique<Worker>(settings_, options.queue_depth, buffer_bytes));
      CLONEKIT_RETURN_IF_ERROR(workers_.back()->Init());
    }
    return Status::OK();
  }

  Status CopyWindow(const ExtentMap& map, CopySignals& signals) override {
    CLONEKIT_RETURN_IF_ERROR(destination_.ZeroWhereMapReadsZero(map));
    PlanCopy(map, request_bytes_, &plan_);
    FirstError error;
    Window window{chain_, map, plan_, signals, error};
    {
      HelperThreads helpers(workers_.size() - 1, [&](size_t i) { workers_[i]->Run(window); });
      workers_[0]->Run(window);
    }
    if (error.failed()) return error.status();
    if (signals.stopped()) return Status::Cancelled("interrupted");
    if (!map.empty()) destination_.WrittenBelow(map.extents().back().end());
    return Status::OK();
  }

 private:
  const Chain& chain_;
  RawDestination& destination_;
  const uint32_t request_bytes_;
  Settings settings_;
  std::vector<UncachedIo> layer_uncached_;
  std::vector<std::unique_ptr<Worker>> workers_;
  CopyPlan plan_;
};

}  // namespace

Result<std::unique_ptr<Copier>> NewUringCopier(const Chain& chain, RawDestination& destination,
                                               const CollapseOptions& options) {
  auto copier = std::make_unique<UringCopier>(chain, destination, options);
  CLONEKIT_RETURN_IF_ERROR(copier->Init(options));
  return std::unique_ptr<Copier>(std::move(copier));
}

}  // namespace clonekit
