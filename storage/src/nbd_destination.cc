// The NBD copier: raw bytes into an NBD export (how a clone reaches storage
// on another host). The export is written in place, like `-n`: it is the disk.
//
// A window becomes tasks: the plan's jobs (data to read and write) and the
// ranges that read as zero (WRITE_ZEROES, or nothing on a target that
// already reads as zero). Each connection runs on its own thread: it takes
// tasks in turn, reads a job's segments, issues the writes asynchronously
// and keeps up to queue_depth commands in flight, polling libnbd only when
// the queue is full. Several connections are used only when the server says
// that they all see the same disk (multi-conn).
#include "nbd_destination.h"

#include <libnbd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "block_runs.h"
#include "copier.h"
#include "copy_plan.h"
#include "first_error.h"
#include "helper_threads.h"

namespace clonekit {

namespace {

// One zero command covers at most this much (the protocol's count is 32-bit).
constexpr uint64_t kMaxZero = 1ull << 30;
constexpr unsigned kDefaultConnections = 4;  // as nbdcopy
// A server that has not finished the handshake by then is not answering.
constexpr std::chrono::seconds kConnectDeadline(20);
// A peer that acknowledges nothing for this long is gone (a host switched
// off, a link cut): the kernel ends the connection instead of retrying for
// a quarter of an hour, and the copy fails. Keepalives find it while idle.
constexpr unsigned kPeerSilenceMs = 15000;

// On a TCP connection only (a Unix socket refuses these; that is fine).
void BoundPeerSilence(int fd) {
  const int on = 1, idle = 5, interval = 1, count = 5;
  const unsigned silence = kPeerSilenceMs;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &silence, sizeof silence);
}

// A job of the plan, or a range to zero.
struct Task {
  uint64_t offset = 0;
  uint64_t length = 0;
  const CopyJob* job = nullptr;  // null: zero the range
};

class NbdCopier;

// A command's context: the buffer it sends (shared by the pieces of one
// job), and the data bytes it settles when it completes.
struct Command {
  std::shared_ptr<std::vector<uint8_t>> buffer;
  NbdCopier* copier;
  uint64_t offset;
  uint64_t data_bytes;
};

class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (h_) nbd_close(h_);
  }
  Status Open(const std::string& uri) {
    h_ = nbd_create();
    if (!h_) return Status::IOError(uri, nbd_get_error());
    // nbds:// with a pre-shared key names the key's file (tls-psk-file=):
    // libnbd reads it only when told it may; the URI is the caller's own.
    if (nbd_set_uri_allow_local_file(h_, true) == -1) return Status::IOError(uri, nbd_get_error());
    // Asynchronously, so that a server that never answers (an address
    // nobody has, a host switched off) fails within the deadline.
    if (nbd_aio_connect_uri(h_, uri.c_str()) == -1) return Status::IOError(uri, nbd_get_error());
    const auto deadline = std::chrono::steady_clock::now() + kConnectDeadline;
    while (nbd_aio_is_connecting(h_) == 1) {
      if (std::chrono::steady_clock::now() > deadline) {
        return Status::IOError(uri, "no answer within " + std::to_string(kConnectDeadline.count()) + " s");
      }
      if (const int fd = nbd_aio_get_fd(h_); fd >= 0) BoundPeerSilence(fd);
      if (nbd_poll(h_, 500) == -1) return Status::IOError(uri, nbd_get_error());
    }
    if (nbd_aio_is_ready(h_) != 1) {
      const char* why = nbd_get_error();
      return Status::IOError(uri, why ? why : "the server ended the connection");
    }
    return Status::OK();
  }
  nbd_handle* handle() const { return h_; }

 private:
  nbd_handle* h_ = nullptr;
};

class NbdCopier final : public Copier {
 public:
  NbdCopier(const Chain& chain, const std::string& uri, const CollapseOptions& options)
      : chain_(chain), uri_(uri), options_(options) {}

  Status Connect();
  Status CopyWindow(const ExtentMap& map, CopySignals& signals) override;
  Status Finish() override;

  // libnbd's completion callback.
  static int OnComplete(void* user_data, int* error);

 private:
  void PlanWindow(const ExtentMap& map);
  void Worker(nbd_handle* h);
  Status IssueJob(nbd_handle* h, const CopyJob& job, ReadScratch* scratch);
  Status Issue(nbd_handle* h, std::shared_ptr<std::vector<uint8_t>> buf, const uint8_t* data, uint64_t offset,
               uint64_t length, bool zero, uint64_t data_bytes);
  Status WaitBelow(nbd_handle* h, unsigned limit);
  Status Failed(const std::string& what) const { return Status::IOError(uri_, what); }
  bool Stopping() const { return error_.failed() || signals_->stopped(); }

  const Chain& chain_;
  const std::string uri_;
  const CollapseOptions& options_;
  std::vector<std::unique_ptr<Connection>> connections_;
  bool can_zero_ = false;

  // The window being copied.
  const ExtentMap* map_ = nullptr;
  CopySignals* signals_ = nullptr;
  CopyPlan plan_;
  std::vector<Task> tasks_;
  std::atomic<size_t> next_task_{0};
  FirstError error_;
};

int NbdCopier::OnComplete(void* user_data, int* error) {
  auto* c = static_cast<Command*>(user_data);
  if (*error) {
    c->copier->error_.Set(
        c->copier->Failed("write at offset " + std::to_string(c->offset) + " failed: " + strerror(*error)));
  } else {
    c->copier->signals_->data_done.fetch_add(c->data_bytes, std::memory_order_relaxed);
  }
  return 1;  // retire the command
}

void FreeCommand(void* user_data) { delete static_cast<Command*>(user_data); }

Status NbdCopier::Connect() {
  auto first = std::make_unique<Connection>();
  CLONEKIT_RETURN_IF_ERROR(first->Open(uri_));
  nbd_handle* h = first->handle();
  const int64_t size = nbd_get_size(h);
  if (size < 0) return Failed(nbd_get_error());
  if (nbd_is_read_only(h) == 1) return Failed("the export is read-only");
  if (static_cast<uint64_t>(size) < chain_.virtual_size()) {
    return Failed("the export is smaller (" + std::to_string(size) + " bytes) than the disk (" +
                  std::to_string(chain_.virtual_size()) + " bytes)");
  }
  can_zero_ = nbd_can_zero(h) == 1;
  const bool multi_conn = nbd_can_multi_conn(h) == 1;
  unsigned wanted = options_.workers ? options_.workers : kDefaultConnections;
  if (!multi_conn) wanted = 1;
  connections_.push_back(std::move(first));
  while (connections_.size() < wanted) {
    auto more = std::make_unique<Connection>();
    CLONEKIT_RETURN_IF_ERROR(more->Open(uri_));
    connections_.push_back(std::move(more));
  }
  return Status::OK();
}

// The plan's jobs, then the ranges that read as zero (merged, in commands of
// at most kMaxZero) unless the target already reads as zero.
void NbdCopier::PlanWindow(const ExtentMap& map) {
  PlanCopy(map, options_.request_bytes, &plan_);
  tasks_.clear();
  next_task_ = 0;
  for (const CopyJob& job : plan_.jobs) tasks_.push_back({job.dst, job.length, &job});
  if (options_.target_is_zero) return;
  for (const Extent& e : map.extents()) {
    if (!e.reads_zero()) continue;
    for (uint64_t pos = e.start; pos < e.end();) {
      Task* last = tasks_.empty() || tasks_.back().job ? nullptr : &tasks_.back();
      if (last && last->offset + last->length == pos && last->length < kMaxZero) {
        const uint64_t n = std::min(kMaxZero - last->length, e.end() - pos);
        last->length += n;
        pos += n;
      } else {
        const uint64_t n = std::min(kMaxZero, e.end() - pos);
        tasks_.push_back({pos, n, nullptr});
        pos += n;
      }
    }
  }
}

Status NbdCopier::WaitBelow(nbd_handle* h, unsigned limit) {
  while (nbd_aio_in_flight(h) >= static_cast<int>(limit)) {
    if (nbd_poll(h, -1) == -1) return Failed(nbd_get_error());
  }
  return error_.status();
}

Status NbdCopier::Issue(nbd_handle* h, std::shared_ptr<std::vector<uint8_t>> buf, const uint8_t* data,
                        uint64_t offset, uint64_t length, bool zero, uint64_t data_bytes) {
  CLONEKIT_RETURN_IF_ERROR(WaitBelow(h, options_.queue_depth));
  if (zero && !can_zero_) {
    // No WRITE_ZEROES: send zeros, at most one request's worth at a time.
    for (uint64_t pos = offset; pos < offset + length; pos += options_.request_bytes) {
      const uint64_t n = std::min<uint64_t>(options_.request_bytes, offset + length - pos);
      auto zeros = std::make_shared<std::vector<uint8_t>>(n);
      CLONEKIT_RETURN_IF_ERROR(Issue(h, zeros, zeros->data(), pos, n, false, data_bytes ? n : 0));
    }
    return Status::OK();
  }
  auto* c = new Command{std::move(buf), this, offset, data_bytes};
  nbd_completion_callback cb = {};
  cb.callback = OnComplete;
  cb.user_data = c;
  cb.free = FreeCommand;
  const int64_t cookie = zero ? nbd_aio_zero(h, length, offset, cb, 0) : nbd_aio_pwrite(h, data, length, offset, cb, 0);
  if (cookie == -1) return Failed(nbd_get_error());  // libnbd has called FreeCommand
  return Status::OK();
}

// Reads one job and writes its non-zero runs; its all-zero blocks become
// zero commands (or nothing on a zeroed target).
Status NbdCopier::IssueJob(nbd_handle* h, const CopyJob& job, ReadScratch* scratch) {
  auto buf = std::make_shared<std::vector<uint8_t>>(job.length);
  for (uint32_t k = 0; k < job.count; k++) {
    CLONEKIT_RETURN_IF_ERROR(ReadSegment(chain_, *map_, plan_.segments[job.first + k], buf->data(), scratch));
  }
  size_t cursor = 0;
  BlockRun run;
  while (NextBlockRun(buf->data(), job.length, job.dst, options_.sparse_block, &cursor, &run)) {
    const uint64_t len = run.end - run.start;
    if (!run.zero) {
      CLONEKIT_RETURN_IF_ERROR(Issue(h, buf, buf->data() + run.start, job.dst + run.start, len, false, len));
    } else if (options_.target_is_zero) {
      signals_->data_done.fetch_add(len, std::memory_order_relaxed);
    } else {
      CLONEKIT_RETURN_IF_ERROR(Issue(h, nullptr, nullptr, job.dst + run.start, len, true, len));
    }
  }
  return Status::OK();
}

void NbdCopier::Worker(nbd_handle* h) {
  Status status;
  ReadScratch scratch;
  scratch.cache = options_.page_cache;
  while (status.ok() && !Stopping()) {
    const size_t i = next_task_++;
    if (i >= tasks_.size()) break;
    const Task& t = tasks_[i];
    status = t.job ? IssueJob(h, *t.job, &scratch) : Issue(h, nullptr, nullptr, t.offset, t.length, true, 0);
  }
  // Wait for everything in flight, even after an error: the buffers are ours.
  Status drained = WaitBelow(h, 1);
  error_.Set(status);
  error_.Set(drained);
}

Status NbdCopier::CopyWindow(const ExtentMap& map, CopySignals& signals) {
  map_ = &map;
  signals_ = &signals;
  PlanWindow(map);
  {
    // (A connection whose thread cannot be made stays idle: the others
    // take its tasks.)
    HelperThreads helpers(connections_.size() - 1, [this](size_t i) { Worker(connections_[i]->handle()); });
    Worker(connections_[0]->handle());
  }
  if (error_.failed()) return error_.status();
  if (signals.stopped()) return Status::Cancelled("interrupted");
  return Status::OK();
}

Status NbdCopier::Finish() {
  for (auto& c : connections_) {
    if (nbd_can_flush(c->handle()) == 1 && nbd_flush(c->handle(), 0) == -1) return Failed(nbd_get_error());
  }
  for (auto& c : connections_) nbd_shutdown(c->handle(), 0);
  return Status::OK();
}

}  // namespace

bool IsNbdUri(const std::string& destination) {
  for (const char* scheme : {"nbd://", "nbds://", "nbd+unix://", "nbds+unix://", "nbd+vsock://", "nbds+vsock://"}) {
    if (destination.rfind(scheme, 0) == 0) return true;
  }
  return false;
}

Result<std::unique_ptr<Copier>> NewNbdCopier(const Chain& chain, const std::string& uri,
                                             const CollapseOptions& options) {
  auto copier = std::make_unique<NbdCopier>(chain, uri, options);
  CLONEKIT_RETURN_IF_ERROR(copier->Connect());
  return std::unique_ptr<Copier>(std::move(copier));
}

}  // namespace clonekit
