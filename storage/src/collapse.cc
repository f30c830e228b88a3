#include "clonekit/collapse.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "clonekit/chain_resolver.h"
#include "extent_copier.h"
#include "image_writer.h"
#include "nbd_destination.h"
#include "output_file.h"
#include "qcow2_copier.h"
#include "qcow2_writer.h"
#include "raw_destination.h"
#include "uring_pipeline.h"

namespace clonekit {

namespace {

// Replacing a layer of the chain being read would destroy the source.
Status RefuseSourceAsDestination(const Chain& chain, const std::string& destination) {
  struct stat st;
  if (stat(destination.c_str(), &st) != 0) return Status::OK();
  FileIdentity id{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  for (const auto& layer : chain.layers()) {
    if (layer->file().identity() == id) {
      return Status::InvalidArgument(destination + ": is a layer of the source chain; refusing to overwrite it");
    }
  }
  return Status::OK();
}

Status CheckOptions(const CollapseOptions& o) {
  if (o.format == OutputFormat::kQcow2) {
    if (o.no_create || o.direct || o.target_is_zero) {
      return Status::InvalidArgument("-n, --direct and --target-is-zero apply to raw output only");
    }
  } else if (o.compression != OutputCompression::kNone) {
    return Status::InvalidArgument("compression needs qcow2 output (-O qcow2)");
  }
  if (o.target_is_zero && !o.no_create) {
    return Status::InvalidArgument("--target-is-zero needs -n (or an NBD destination)");
  }
  if (o.sparse_block % 512 != 0) return Status::InvalidArgument("-S must be a multiple of 512");
  if (o.queue_depth == 0 || o.queue_depth > 4096) return Status::InvalidArgument("--queue-depth must be 1..4096");
  if (o.request_bytes < 4096 || o.request_bytes > (32u << 20) || o.request_bytes % 4096) {
    return Status::InvalidArgument("request size must be a multiple of 4 KiB between 4 KiB and 32 MiB");
  }
  if (o.window_bytes < o.request_bytes || o.window_bytes % (64 << 10)) {
    return Status::InvalidArgument("window must be a multiple of 64 KiB, at least one request");
  }
  return Status::OK();
}

bool Cancelled(const CollapseOptions& o) { return o.cancel && o.cancel->load(); }

// Resolves the disk window by window, so memory stays bounded by one
// window's extents whatever the virtual size, and hands each to `copy`.
// A window of about a quarter second of data at the rate limit (at least
// one request), or the configured window without a limit.
uint64_t WindowBytes(const CollapseOptions& options) {
  if (!options.max_bytes_per_second) return options.window_bytes;
  const uint64_t quarter = options.max_bytes_per_second / 4 / (64 << 10) * (64 << 10);
  const uint64_t unit = 64 << 10;  // windows stay whole output clusters
  const uint64_t least = (std::max<uint64_t>(options.request_bytes, unit) + unit - 1) / unit * unit;
  return std::min(std::max(quarter, least), std::max(options.window_bytes, least));
}

template <typename CopyWindow>
Status ForEachWindow(const Chain& chain, const CollapseOptions& options, CopyWindow&& copy) {
  ChainResolver resolver(chain);
  ExtentMap map;
  const uint64_t size = chain.virtual_size();
  const uint64_t window = WindowBytes(options);
  const auto start = std::chrono::steady_clock::now();
  uint64_t data = 0;
  for (uint64_t pos = 0; pos < size; pos += window) {
    if (Cancelled(options)) return Status::Cancelled("interrupted");
    CLONEKIT_RETURN_IF_ERROR(resolver.Resolve(pos, window, &map));
    CLONEKIT_RETURN_IF_ERROR(copy(pos, map));
    data += map.data_bytes();
    if (options.max_bytes_per_second) {
      // Sleep in short steps so that a cancel is still seen promptly.
      const auto due = start + std::chrono::microseconds(data * 1000000 / options.max_bytes_per_second);
      while (std::chrono::steady_clock::now() < due && !Cancelled(options)) {
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            due - std::chrono::steady_clock::now(), std::chrono::milliseconds(20)));
      }
    }
  }
  return Status::OK();
}

// The io_uring pipeline; where the kernel offers no io_uring (disabled by
// sysctl or seccomp), the simple copier does the same job on one thread.
Status CopyRawWindows(const Chain& chain, RawDestination& out, const CollapseOptions& options,
                      std::atomic<uint64_t>& copied) {
  PipelineConfig config;
  config.workers = options.workers;
  config.queue_depth = options.queue_depth;
  config.request_bytes = options.request_bytes;
  config.sparse_block = options.sparse_block;
  config.target_is_zero = out.reads_zero();
  config.target_fd = out.fd();
  config.direct_fd = out.direct_fd();
  config.copy_offload = options.copy_offload;
  config.early_writeback = options.early_writeback && out.direct_fd() < 0;
  config.target_name = out.name();
  config.io_hook = options.io_hook;
  const uint64_t size = chain.virtual_size();
  uint64_t window_start = 0;
  uint64_t copied_before = 0;  // data bytes of the finished windows
  auto tick = [&] {
    if (options.progress) options.progress(window_start + copied.load(), size);
    if (options.data_progress) options.data_progress(copied_before + copied.load());
  };

  Result<std::unique_ptr<UringPipeline>> pipeline = UringPipeline::Create(chain, config);
  std::unique_ptr<ImageWriter> fallback;
  std::unique_ptr<ExtentCopier> simple;
  if (!pipeline.ok()) {
    Result<std::unique_ptr<ImageWriter>> w =
        NewFdWriter(out.fd(), out.name(), out.reads_zero() ? options.sparse_block : 0);
    if (!w.ok()) return w.status();
    fallback = std::move(w).value();
    simple = NewSimpleCopier();
  }
  CopyPlan plan;
  Status status = ForEachWindow(chain, options, [&](uint64_t pos, const ExtentMap& map) -> Status {
    window_start = pos;
    copied_before += copied.exchange(0);
    for (const Extent& e : map.extents()) {
      if (e.reads_zero()) CLONEKIT_RETURN_IF_ERROR(out.Zero(e.start, e.length));
    }
    if (fallback) {
      CopyControl control;
      control.cancel = options.cancel;
      control.progress = [&](uint64_t done) {
        copied = done;
        tick();
      };
      CLONEKIT_RETURN_IF_ERROR(simple->Copy(chain, map, *fallback, control));
    } else {
      plan.clear();
      (*pipeline)->Plan(map, &plan);
      CLONEKIT_RETURN_IF_ERROR((*pipeline)->Run(plan, &copied, options.cancel, tick));
    }
    window_start = map.empty() ? pos : map.extents().back().end();
    copied_before += copied.exchange(0);
    tick();
    return Status::OK();
  });
  copied = copied_before;  // from here on: the total
  return status;
}

Status CollapseToRaw(const Chain& chain, const std::string& destination, const CollapseOptions& options,
                     CollapseStats* stats) {
  Result<std::unique_ptr<RawDestination>> dest = RawDestination::Open(destination, chain.virtual_size(), options);
  if (!dest.ok()) return dest.status();
  std::atomic<uint64_t> copied{0};
  CLONEKIT_RETURN_IF_ERROR(CopyRawWindows(chain, **dest, options, copied));
  if (Cancelled(options)) return Status::Cancelled("interrupted");
  CLONEKIT_RETURN_IF_ERROR((*dest)->Commit());
  if (stats) stats->data_bytes = copied;
  return Status::OK();
}

Status CollapseToQcow2(const Chain& chain, const std::string& destination, const CollapseOptions& options,
                       CollapseStats* stats) {
  const uint64_t size = chain.virtual_size();
  Result<std::unique_ptr<OutputFile>> out = OutputFile::Create(destination, options.overwrite, options.file_mode);
  if (!out.ok()) return out.status();
  Result<std::unique_ptr<Qcow2Writer>> writer =
      Qcow2Writer::Create((*out)->fd(), destination, size, options.compression);
  if (!writer.ok()) return writer.status();
  std::atomic<uint64_t> copied{0};
  CLONEKIT_RETURN_IF_ERROR(ForEachWindow(chain, options, [&](uint64_t pos, const ExtentMap& map) -> Status {
    // Copy on the worker threads while this thread reports progress.
    Status status;
    const uint64_t before = copied;
    std::atomic<bool> done{false};
    std::thread copier([&] {
      status = CopyToQcow2(chain, map, **writer, options.workers, options.cancel, &copied);
      done = true;
    });
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (options.progress) options.progress(pos + (copied - before), size);
      if (options.data_progress) options.data_progress(copied);
    }
    copier.join();
    CLONEKIT_RETURN_IF_ERROR(status);
    const uint64_t window_end = std::min(size, pos + WindowBytes(options));
    if (options.progress) options.progress(window_end, size);
    if (options.data_progress) options.data_progress(copied);
    return (*writer)->CompleteBelow(window_end);
  }));
  CLONEKIT_RETURN_IF_ERROR((*writer)->Finish());
  if (Cancelled(options)) return Status::Cancelled("interrupted");
  CLONEKIT_RETURN_IF_ERROR((*out)->Commit());
  if (stats) stats->data_bytes = copied;
  return Status::OK();
}

}  // namespace

Status Collapse(const Chain& chain, const std::string& destination, const CollapseOptions& options,
                CollapseStats* stats) {
  if (stats) stats->virtual_size = chain.virtual_size();
  if (IsNbdUri(destination)) {
    // An export is always written in place: -n is implied.
    if (options.format != OutputFormat::kRaw) {
      return Status::InvalidArgument(destination + ": an NBD export takes the raw disk (-O raw)");
    }
    CollapseOptions in_place = options;
    in_place.no_create = true;
    CLONEKIT_RETURN_IF_ERROR(CheckOptions(in_place));
    return CollapseToNbd(chain, destination, in_place, stats);
  }
  CLONEKIT_RETURN_IF_ERROR(CheckOptions(options));
  CLONEKIT_RETURN_IF_ERROR(RefuseSourceAsDestination(chain, destination));
  return options.format == OutputFormat::kRaw ? CollapseToRaw(chain, destination, options, stats)
                                              : CollapseToQcow2(chain, destination, options, stats);
}

}  // namespace clonekit
