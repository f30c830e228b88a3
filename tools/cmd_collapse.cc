// clonekit collapse: one standalone image of the disk at a snapshot point.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>
#include <thread>

#include "clonekit/collapse.h"
#include "commands.h"

namespace clonekit::tools {

namespace {

struct CollapseArgs {
  ChainArgs chain;
  std::string destination;
  std::string output_format = "raw";
  bool compress = false;
  std::string compression_type = "zstd";
  bool progress = false;
  bool force = false;
  std::string page_cache = "spare";
  int heartbeat = 0;  // seconds; 0: stdin is not watched
  CollapseOptions tuning;  // pipeline knobs, filled by the option parser
};

// qemu-img's "    (12.34/100%)\r", redrawn when the hundredths change.
class ProgressLine {
 public:
  void Update(uint64_t done, uint64_t total) {
    int hundredths = total == 0 ? 10000 : static_cast<int>(done * 10000 / total);
    if (hundredths == last_) return;
    last_ = hundredths;
    std::printf("    (%d.%02d/100%%)\r", hundredths / 100, hundredths % 100);
    std::fflush(stdout);
  }
  void End() {
    if (last_ >= 0) std::printf("\n");
  }

 private:
  int last_ = -1;
};

// Stops the copy (as a SIGHUP would) once stdin ends or is silent for
// `seconds`: a caller on another host, feeding it a line every few
// seconds over SSH, is gone then, and no copy may outlive it.
Status WatchStdin(int seconds) try {
  std::thread([seconds] {
    char buf[256];
    for (;;) {
      struct pollfd p = {0, POLLIN, 0};
      const int r = poll(&p, 1, seconds * 1000);
      if (r < 0 && errno == EINTR) continue;
      if (r > 0) {
        const ssize_t n = read(0, buf, sizeof buf);
        if (n > 0 || (n < 0 && errno == EINTR)) continue;
      }
      g_signal = SIGHUP;
      g_interrupted = true;
      return;
    }
  }).detach();
  return Status::OK();
} catch (const std::system_error& e) {  // (out of threads: no copy without its watch)
  return Status::IOError("--heartbeat", std::string("cannot start the thread that watches stdin: ") + e.what());
}

}  // namespace

Runner AddCollapseCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("collapse", "copy the disk as seen at IMAGE into one standalone image");
  auto args = std::make_shared<CollapseArgs>();
  args->chain.Register(cmd);
  cmd->add_option("output", args->destination, "new image to create")->required();
  cmd->add_option("-O,--output-format", args->output_format, "raw or qcow2")
      ->check(CLI::IsMember({"raw", "qcow2"}))
      ->capture_default_str();
  cmd->add_flag("-c,--compress", args->compress, "write compressed clusters (qcow2 output)");
  cmd->add_option("--compression-type", args->compression_type, "zstd or zlib")
      ->check(CLI::IsMember({"zstd", "zlib"}))
      ->capture_default_str();
  cmd->add_flag("-p,--progress", args->progress, "show progress (percent of allocated bytes copied)");
  cmd->add_flag("--force", args->force, "replace an existing output file");
  CollapseOptions& t = args->tuning;
  cmd->add_option("-j,--jobs", t.workers, "copy threads, each with its own io_uring (0: online cores)")
      ->capture_default_str();
  cmd->add_option("--queue-depth", t.queue_depth, "requests in flight per thread")->capture_default_str();
  cmd->add_option("--request-size", t.request_bytes, "bytes per read request")->capture_default_str();
  cmd->add_option("-S,--sparse-size", t.sparse_block,
                  "leave all-zero blocks of this size unwritten (0: write them)")
      ->capture_default_str();
  cmd->add_flag("--direct", t.direct, "raw output: write with O_DIRECT (bypass the page cache)");
  cmd->add_flag("--copy-offload", t.copy_offload,
                "raw output: copy plain data in the kernel (reflink or copy_file_range); no -S for it");
  cmd->add_flag("-n,--no-create", t.no_create,
                "raw output: write in place into an existing file or block device (not atomic)");
  cmd->add_flag("--target-is-zero", t.target_is_zero, "with -n: the target already reads as zeros");
  cmd->add_option("--rate-limit", t.max_bytes_per_second,
                  "copy at most this many bytes of data per second (e.g. 200M; 0: no limit)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_flag("!--no-early-writeback", t.early_writeback,
                "do not start writeback while copying (everything is flushed at the end)");
  cmd->add_option("--heartbeat", args->heartbeat,
                  "stop, as if interrupted, when stdin ends or is silent this many seconds (a caller on another "
                  "host that writes a line every few seconds is gone then)")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--page-cache", args->page_cache,
                  "spare: leave the page cache as it was (what the copy reads or writes is dropped; the "
                  "running VMs keep theirs); fill: ordinary buffered I/O")
      ->check(CLI::IsMember({"spare", "fill"}))
      ->capture_default_str();
  return [=]() {
    if (args->compress && args->output_format != "qcow2") {
      return Fail(Status::InvalidArgument("-c/--compress needs -O qcow2"));
    }
    Result<std::unique_ptr<Chain>> chain = args->chain.Open();
    if (!chain.ok()) return Fail(chain.status());
    if (args->heartbeat > 0) {
      if (Status watching = WatchStdin(args->heartbeat); !watching.ok()) return Fail(watching);
    }

    CollapseOptions options = args->tuning;
    options.format = args->output_format == "qcow2" ? OutputFormat::kQcow2 : OutputFormat::kRaw;
    if (args->compress) {
      options.compression =
          args->compression_type == "zlib" ? OutputCompression::kDeflate : OutputCompression::kZstd;
    }
    options.overwrite = args->force;
    options.page_cache = args->page_cache == "fill" ? CacheUse::kFill : CacheUse::kSpare;
    options.cancel = &g_interrupted;
    ProgressLine line;
    if (args->progress) options.progress = [&](uint64_t done, uint64_t total) { line.Update(done, total); };

    Status s = Collapse(**chain, args->destination, options);
    if (args->progress) line.End();
    if (!s.ok()) {
      if (s.IsCancelled() && g_signal != 0) {
        // A new file is removed; an existing target (-n, a device, an NBD
        // export) is written in place and now holds a partial copy.
        const bool in_place = options.no_create || args->destination.find("://") != std::string::npos;
        std::fprintf(stderr, "clonekit: %s: interrupted by signal %d; %s\n", args->destination.c_str(),
                     g_signal.load(), in_place ? "the target holds a partial copy" : "nothing was written");
        return 128 + g_signal;
      }
      return Fail(s);
    }
    return 0;
  };
}

}  // namespace clonekit::tools
