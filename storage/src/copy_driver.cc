#include "copy_driver.h"

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <system_error>
#include <thread>

#include "clonekit/chain_resolver.h"
#include "source_pages.h"

namespace clonekit {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kTick = std::chrono::milliseconds(50);
constexpr uint64_t kByHandWindowBytes = 128ull << 20;

bool CancelRequested(const CollapseOptions& o) { return o.cancel && o.cancel->load(); }

uint64_t ZeroBytes(const ExtentMap& map) {
  uint64_t total = 0;
  for (const Extent& e : map.extents()) {
    if (e.reads_zero()) total += e.length;
  }
  return total;
}

// While a copy spares the page cache, the kernel's readahead on the layers
// is off: pages it reads ahead are ordinary cached pages, which the
// RWF_DONTCACHE read that later consumes them would find cached and keep.
// (The copy reads in large requests and many at once; readahead adds
// little to it.)
class NoReadahead {
 public:
  NoReadahead(const Chain& chain, CacheUse cache) : chain_(chain), on_(cache == CacheUse::kSpare) {
    if (on_) Advise(POSIX_FADV_RANDOM);
  }
  ~NoReadahead() {
    if (on_) Advise(POSIX_FADV_NORMAL);
  }

 private:
  void Advise(int advice) const {
    for (const auto& layer : chain_.layers()) {
      if (layer->file().fd() >= 0) posix_fadvise(layer->file().fd(), 0, 0, advice);  // advice only
    }
  }
  const Chain& chain_;
  const bool on_;
};

}  // namespace

uint64_t DriverWindowBytes(const CollapseOptions& options) {
  if (!options.max_bytes_per_second) return options.window_bytes;
  const uint64_t unit = 64 << 10;  // windows stay whole output clusters
  const uint64_t quarter = options.max_bytes_per_second / 4 / unit * unit;
  const uint64_t least = (std::max<uint64_t>(options.request_bytes, unit) + unit - 1) / unit * unit;
  return std::min(std::max(quarter, least), std::max(options.window_bytes, least));
}

Status DriveCopy(const Chain& chain, Copier& copier, const CollapseOptions& options, uint64_t* data_bytes) {
  ChainResolver resolver(chain);
  ExtentMap map;
  CopySignals signals;
  const NoReadahead no_readahead(chain, options.page_cache);
  SourcePages source_pages(chain, options.page_cache);
  const uint64_t size = chain.virtual_size();
  // Sparing by hand drops a window's pages after it: smaller windows keep
  // fewer of them in the cache at once.
  const uint64_t window =
      source_pages.active() ? std::min(DriverWindowBytes(options), kByHandWindowBytes) : DriverWindowBytes(options);
  const Clock::time_point start = Clock::now();
  // Progress within a window: its zero ranges count as settled at once,
  // its data as the copier reports it; at its end, the whole window.
  uint64_t settled = 0;
  auto report = [&](uint64_t done) {
    if (options.progress) options.progress(done, size);
    if (options.data_progress) options.data_progress(signals.data_done.load());
  };

  for (uint64_t pos = 0; pos < size; pos += window) {
    if (CancelRequested(options)) return Status::Cancelled("interrupted");
    CLONEKIT_RETURN_IF_ERROR(resolver.Resolve(pos, window, &map));
    const uint64_t window_end = map.empty() ? pos : map.extents().back().end();
    const uint64_t data_before = signals.data_done.load();
    const uint64_t zero = ZeroBytes(map);
    source_pages.BeforeWindow(map);

    std::future<Status> copied;
    try {
      copied = std::async(std::launch::async, [&] { return copier.CopyWindow(map, signals); });
    } catch (const std::system_error& e) {  // no thread to be had: say so, never terminate a service
      return Status::IOError("copy", std::string("cannot start the copy thread: ") + e.what());
    }
    while (copied.wait_for(kTick) != std::future_status::ready) {
      if (CancelRequested(options)) signals.stop = true;
      settled = std::max(settled, std::min(window_end, pos + zero + (signals.data_done.load() - data_before)));
      report(settled);
    }
    CLONEKIT_RETURN_IF_ERROR(copied.get());
    source_pages.AfterWindow();
    if (CancelRequested(options)) return Status::Cancelled("interrupted");
    settled = window_end;
    report(settled);

    if (options.max_bytes_per_second) {
      // Sleep in short steps so that a cancel is still seen promptly.
      // (In double: bytes x 10^6 overflows 64 bits past 18 TB.)
      const auto due = start + std::chrono::microseconds(static_cast<int64_t>(
                                   static_cast<double>(signals.data_done.load()) * 1e6 /
                                   static_cast<double>(options.max_bytes_per_second)));
      while (Clock::now() < due && !CancelRequested(options)) {
        std::this_thread::sleep_for(std::min<Clock::duration>(due - Clock::now(), kTick));
      }
    }
  }
  if (CancelRequested(options)) return Status::Cancelled("interrupted");
  CLONEKIT_RETURN_IF_ERROR(copier.Finish());
  report(size);
  if (data_bytes) *data_bytes = signals.data_done.load();
  return Status::OK();
}

}  // namespace clonekit
