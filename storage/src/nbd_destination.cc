// The copy is split into tasks (a chunk of data, or a range to zero) that
// the connections take in turn. Each connection runs on its own thread: it
// reads a chunk through a CollapsedView, issues the write asynchronously and
// keeps up to queue_depth commands in flight, polling libnbd only when the
// queue is full. Several connections are used only when the server says
// that they all see the same disk (multi-conn).
#include "nbd_destination.h"

#include <libnbd.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "clonekit/chain_resolver.h"
#include "clonekit/collapsed_view.h"
#include "image_writer.h"

namespace clonekit {

namespace {

// One zero command covers at most this much (the protocol's count is 32-bit).
constexpr uint64_t kMaxZero = 1ull << 30;
constexpr unsigned kDefaultConnections = 4;  // as nbdcopy

struct Task {
  uint64_t offset;
  uint64_t length;
  bool zero;  // a range to zero (no data to read)
};

// The outcome of the commands in flight, shared with libnbd's callbacks.
struct Outcome {
  std::mutex mu;
  int error = 0;
  uint64_t error_offset = 0;
  std::atomic<uint64_t> done{0};  // bytes of the disk settled
};

// A command's context: the buffer it sends (shared by the pieces of one
// chunk) and what to account when it completes.
struct Command {
  std::shared_ptr<std::vector<uint8_t>> buffer;
  Outcome* outcome;
  uint64_t offset;
  uint64_t length;
};

int OnComplete(void* user_data, int* error) {
  auto* c = static_cast<Command*>(user_data);
  if (*error) {
    std::lock_guard<std::mutex> lock(c->outcome->mu);
    if (!c->outcome->error) {
      c->outcome->error = *error;
      c->outcome->error_offset = c->offset;
    }
  } else {
    c->outcome->done += c->length;
  }
  return 1;  // retire the command
}

void FreeCommand(void* user_data) { delete static_cast<Command*>(user_data); }

class Connection {
 public:
  ~Connection() {
    if (h_) nbd_close(h_);
  }
  Status Open(const std::string& uri) {
    h_ = nbd_create();
    if (!h_) return Status::IOError(uri, nbd_get_error());
    if (nbd_connect_uri(h_, uri.c_str()) == -1) return Status::IOError(uri, nbd_get_error());
    return Status::OK();
  }
  nbd_handle* handle() const { return h_; }

 private:
  nbd_handle* h_ = nullptr;
};

class NbdCopy {
 public:
  NbdCopy(const Chain& chain, const std::string& uri, const CollapseOptions& options)
      : chain_(chain), view_(chain, 0), uri_(uri), options_(options) {}

  Status Run(CollapseStats* stats);

 private:
  Status Connect();
  void PlanWindow(const ExtentMap& map);
  Status RunWindow();
  void Worker(nbd_handle* h);
  Status IssueChunk(nbd_handle* h, const Task& task);
  Status Issue(nbd_handle* h, std::shared_ptr<std::vector<uint8_t>> buf, const uint8_t* data, uint64_t offset,
               uint64_t length, bool zero);
  Status WaitBelow(nbd_handle* h, unsigned limit);
  Status Failed(const std::string& what) const { return Status::IOError(uri_, what); }
  bool Cancelled() const { return options_.cancel && options_.cancel->load(); }

  const Chain& chain_;
  const CollapsedView view_;
  const std::string uri_;
  const CollapseOptions& options_;
  std::vector<std::unique_ptr<Connection>> connections_;
  bool can_zero_ = false;
  std::vector<Task> tasks_;
  std::atomic<size_t> next_task_{0};
  Outcome outcome_;
  std::mutex status_mu_;
  Status worker_status_;
  uint64_t data_bytes_ = 0;
};

Status NbdCopy::Connect() {
  auto first = std::make_unique<Connection>();
  CLONEKIT_RETURN_IF_ERROR(first->Open(uri_));
  nbd_handle* h = first->handle();
  const int64_t size = nbd_get_size(h);
  if (size < 0) return Failed(nbd_get_error());
  if (nbd_is_read_only(h) == 1) return Failed("the export is read-only");
  if (static_cast<uint64_t>(size) < view_.size()) {
    return Failed("the export is smaller (" + std::to_string(size) + " bytes) than the disk (" +
                  std::to_string(view_.size()) + " bytes)");
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

// Data and compressed extents become chunks of request_bytes; ranges that
// read as zero become zero tasks, unless the target already reads as zero.
void NbdCopy::PlanWindow(const ExtentMap& map) {
  tasks_.clear();
  next_task_ = 0;
  for (const Extent& e : map.extents()) {
    const bool zero = e.reads_zero();
    if (zero && options_.target_is_zero) {
      outcome_.done += e.length;
      continue;
    }
    const uint64_t step = zero ? kMaxZero : options_.request_bytes;
    for (uint64_t pos = e.start; pos < e.end(); pos += step) {
      const uint64_t len = std::min(step, e.end() - pos);
      if (!zero && !tasks_.empty() && !tasks_.back().zero && tasks_.back().offset + tasks_.back().length == pos &&
          tasks_.back().length + len <= options_.request_bytes) {
        tasks_.back().length += len;  // small extents of several layers share a chunk
      } else if (zero && !tasks_.empty() && tasks_.back().zero &&
                 tasks_.back().offset + tasks_.back().length == pos && tasks_.back().length + len <= kMaxZero) {
        tasks_.back().length += len;
      } else {
        tasks_.push_back({pos, len, zero});
      }
    }
  }
}

Status NbdCopy::WaitBelow(nbd_handle* h, unsigned limit) {
  while (nbd_aio_in_flight(h) >= static_cast<int>(limit)) {
    if (nbd_poll(h, -1) == -1) return Failed(nbd_get_error());
  }
  std::lock_guard<std::mutex> lock(outcome_.mu);
  if (outcome_.error) {
    return Failed("write at offset " + std::to_string(outcome_.error_offset) +
                  " failed: " + strerror(outcome_.error));
  }
  return Status::OK();
}

Status NbdCopy::Issue(nbd_handle* h, std::shared_ptr<std::vector<uint8_t>> buf, const uint8_t* data,
                      uint64_t offset, uint64_t length, bool zero) {
  CLONEKIT_RETURN_IF_ERROR(WaitBelow(h, options_.queue_depth));
  if (zero && !can_zero_) {
    // No WRITE_ZEROES: send zeros, at most one request's worth at a time.
    for (uint64_t pos = offset; pos < offset + length; pos += options_.request_bytes) {
      const uint64_t n = std::min<uint64_t>(options_.request_bytes, offset + length - pos);
      auto zeros = std::make_shared<std::vector<uint8_t>>(n);
      CLONEKIT_RETURN_IF_ERROR(Issue(h, zeros, zeros->data(), pos, n, false));
    }
    return Status::OK();
  }
  auto* c = new Command{std::move(buf), &outcome_, offset, length};
  nbd_completion_callback cb = {};
  cb.callback = OnComplete;
  cb.user_data = c;
  cb.free = FreeCommand;
  const int64_t cookie = zero ? nbd_aio_zero(h, length, offset, cb, 0) : nbd_aio_pwrite(h, data, length, offset, cb, 0);
  if (cookie == -1) return Failed(nbd_get_error());  // libnbd has called FreeCommand
  return Status::OK();
}

// Reads one chunk and writes its non-zero runs; all-zero blocks of
// sparse_block bytes become zero commands (or nothing on a zeroed target).
Status NbdCopy::IssueChunk(nbd_handle* h, const Task& task) {
  auto buf = std::make_shared<std::vector<uint8_t>>(task.length);
  CLONEKIT_RETURN_IF_ERROR(view_.Read(task.offset, buf->data(), task.length));
  const uint64_t block = options_.sparse_block ? options_.sparse_block : task.length;
  uint64_t run_start = 0;
  bool run_zero = false;
  for (uint64_t pos = 0; pos <= task.length; pos += block) {
    const bool end = pos >= task.length;
    const bool zero = !end && options_.sparse_block && IsZero(buf->data() + pos, std::min(block, task.length - pos));
    if (pos > run_start && (end || zero != run_zero)) {
      const uint64_t len = pos - run_start;
      if (!run_zero) {
        CLONEKIT_RETURN_IF_ERROR(Issue(h, buf, buf->data() + run_start, task.offset + run_start, len, false));
      } else if (options_.target_is_zero) {
        outcome_.done += len;
      } else {
        CLONEKIT_RETURN_IF_ERROR(Issue(h, nullptr, nullptr, task.offset + run_start, len, true));
      }
      run_start = pos;
    }
    if (pos == run_start) run_zero = zero;
    if (end) break;
  }
  return Status::OK();
}

void NbdCopy::Worker(nbd_handle* h) {
  Status status;
  while (status.ok() && !Cancelled()) {
    const size_t i = next_task_++;
    if (i >= tasks_.size()) break;
    const Task& t = tasks_[i];
    status = t.zero ? Issue(h, nullptr, nullptr, t.offset, t.length, true) : IssueChunk(h, t);
  }
  // Wait for everything in flight, even after an error: the buffers are ours.
  Status drained = WaitBelow(h, 1);
  if (status.ok()) status = drained;
  if (!status.ok()) {
    std::lock_guard<std::mutex> lock(status_mu_);
    if (worker_status_.ok()) worker_status_ = status;
    next_task_ = tasks_.size();  // the others stop taking tasks
  }
}

Status NbdCopy::RunWindow() {
  std::vector<std::thread> threads;
  std::atomic<size_t> finished{0};
  for (auto& c : connections_) {
    threads.emplace_back([this, &c, &finished] {
      Worker(c->handle());
      finished++;
    });
  }
  while (finished < threads.size()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (options_.progress) options_.progress(outcome_.done, view_.size());
  }
  for (auto& t : threads) t.join();
  return worker_status_;
}

Status NbdCopy::Run(CollapseStats* stats) {
  CLONEKIT_RETURN_IF_ERROR(Connect());
  ChainResolver resolver(chain_);
  ExtentMap map;
  for (uint64_t pos = 0; pos < view_.size(); pos += options_.window_bytes) {
    if (Cancelled()) return Status::Cancelled("interrupted");
    CLONEKIT_RETURN_IF_ERROR(resolver.Resolve(pos, options_.window_bytes, &map));
    data_bytes_ += map.data_bytes();
    PlanWindow(map);
    CLONEKIT_RETURN_IF_ERROR(RunWindow());
  }
  if (Cancelled()) return Status::Cancelled("interrupted");
  for (auto& c : connections_) {
    if (nbd_can_flush(c->handle()) == 1 && nbd_flush(c->handle(), 0) == -1) return Failed(nbd_get_error());
  }
  for (auto& c : connections_) nbd_shutdown(c->handle(), 0);
  if (options_.progress) options_.progress(view_.size(), view_.size());
  if (stats) stats->data_bytes = data_bytes_;
  return Status::OK();
}

}  // namespace

bool IsNbdUri(const std::string& destination) {
  for (const char* scheme : {"nbd://", "nbds://", "nbd+unix://", "nbds+unix://", "nbd+vsock://", "nbds+vsock://"}) {
    if (destination.rfind(scheme, 0) == 0) return true;
  }
  return false;
}

Status CollapseToNbd(const Chain& chain, const std::string& uri, const CollapseOptions& options,
                     CollapseStats* stats) {
  NbdCopy copy(chain, uri, options);
  return copy.Run(stats);
}

}  // namespace clonekit
