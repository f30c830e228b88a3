// clonekit mount: the collapsed disk at every layer of a chain as read-only
// files (libfuse3), without copying anything.
//
//   MOUNTPOINT/<layer-name>.raw   one file per layer, top first
//
// Thin glue over CollapsedView: reads are answered in parallel by libfuse's
// worker threads, lseek(SEEK_DATA/SEEK_HOLE) from the extent map.
#define FUSE_USE_VERSION 312
#include <fuse3/fuse.h>

#include <errno.h>
#include <signal.h>
#include <string.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "clonekit/collapsed_view.h"
#include "commands.h"

namespace clonekit::tools {

namespace {

struct MountArgs {
  ChainArgs chain;
  std::string mountpoint;
  bool foreground = false;
  bool allow_other = false;
  unsigned threads = 16;
};

// What every callback reaches through fuse_get_context()->private_data.
struct MountedChain {
  std::unique_ptr<Chain> chain;
  std::vector<std::unique_ptr<CollapsedView>> views;
  std::vector<std::string> files;  // "/<layer-name>.raw"
  bool foreground = false;
};

MountedChain& Mounted() { return *static_cast<MountedChain*>(fuse_get_context()->private_data); }

// The view behind a path, or null (the root, or no such file).
const CollapsedView* ViewFor(const char* path) {
  MountedChain& m = Mounted();
  for (size_t i = 0; i < m.files.size(); i++) {
    if (m.files[i] == path) return m.views[i].get();
  }
  return nullptr;
}

int ReportError(const Status& status) {
  // A daemon has no terminal; the reader sees EIO either way.
  if (Mounted().foreground) std::fprintf(stderr, "clonekit: %s\n", status.message().c_str());
  return -EIO;
}

void* Init(fuse_conn_info*, fuse_config* cfg) {
  cfg->kernel_cache = 1;  // the files never change while mounted
  cfg->entry_timeout = cfg->attr_timeout = 3600;
  return fuse_get_context()->private_data;
}

int GetAttr(const char* path, struct stat* st, fuse_file_info*) {
  memset(st, 0, sizeof *st);
  if (strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
    return 0;
  }
  const CollapsedView* view = ViewFor(path);
  if (!view) return -ENOENT;
  st->st_mode = S_IFREG | 0444;
  st->st_nlink = 1;
  st->st_size = static_cast<off_t>(view->size());
  st->st_blksize = static_cast<blksize_t>(view->preferred_block());
  st->st_blocks = static_cast<blkcnt_t>((view->size() + 511) / 512);
  return 0;
}

int ReadDir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*, fuse_readdir_flags) {
  if (strcmp(path, "/") != 0) return -ENOTDIR;
  fill(buf, ".", nullptr, 0, FUSE_FILL_DIR_PLUS);
  fill(buf, "..", nullptr, 0, FUSE_FILL_DIR_PLUS);
  for (const std::string& f : Mounted().files) fill(buf, f.c_str() + 1, nullptr, 0, FUSE_FILL_DIR_PLUS);
  return 0;
}

int Open(const char* path, fuse_file_info* fi) {
  const CollapsedView* view = ViewFor(path);
  if (!view) return -ENOENT;
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
  fi->keep_cache = 1;
  fi->fh = reinterpret_cast<uint64_t>(view);
  return 0;
}

const CollapsedView& ViewOf(const fuse_file_info* fi) { return *reinterpret_cast<const CollapsedView*>(fi->fh); }

int Read(const char*, char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  const CollapsedView& view = ViewOf(fi);
  if (offset < 0) return -EINVAL;
  if (static_cast<uint64_t>(offset) >= view.size()) return 0;
  size = std::min<uint64_t>(size, view.size() - offset);
  Status st = view.Read(offset, buf, size);
  return st.ok() ? static_cast<int>(size) : ReportError(st);
}

// SEEK_DATA: the first byte at or after `offset` that some layer holds as
// data; SEEK_HOLE: the first byte that reads as zeros without data behind
// it (the end of the file counts as a hole).
off_t Lseek(const char*, off_t offset, int whence, fuse_file_info* fi) {
  const CollapsedView& view = ViewOf(fi);
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return -EINVAL;
  if (offset < 0) return -ENXIO;
  constexpr uint64_t kWindow = 1ull << 30;
  ExtentMap map;
  for (uint64_t pos = offset; pos < view.size(); pos += kWindow) {
    Status st = view.Map(pos, kWindow, &map);
    if (!st.ok()) return ReportError(st);
    for (const Extent& e : map.extents()) {
      if (e.reads_zero() == (whence == SEEK_HOLE)) return static_cast<off_t>(std::max<uint64_t>(e.start, offset));
    }
  }
  if (whence == SEEK_HOLE && static_cast<uint64_t>(offset) < view.size()) return static_cast<off_t>(view.size());
  return -ENXIO;
}

fuse_operations Operations() {
  fuse_operations ops = {};
  ops.init = Init;
  ops.getattr = GetAttr;
  ops.readdir = ReadDir;
  ops.open = Open;
  ops.read = Read;
  ops.lseek = Lseek;
  return ops;
}

int Serve(MountArgs& args, MountedChain& mounted) {
  std::vector<std::string> opts = {"clonekit", "-o", "ro,default_permissions,fsname=clonekit,subtype=clonekit"};
  if (args.allow_other) opts.insert(opts.end(), {"-o", "allow_other"});
  std::vector<char*> argv;
  for (std::string& o : opts) argv.push_back(o.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  const fuse_operations ops = Operations();
  fuse* fs = fuse_new(&fargs, &ops, sizeof ops, &mounted);
  fuse_opt_free_args(&fargs);  // fuse_new keeps its own copy
  if (!fs) return Fail(Status::InvalidArgument(args.mountpoint + ": cannot set up the FUSE file system"));
  if (fuse_mount(fs, args.mountpoint.c_str()) != 0) {
    fuse_destroy(fs);
    return Fail(Status::IOError(args.mountpoint, "cannot mount (is /dev/fuse there, and the directory empty?)"));
  }
  // libfuse only takes over signals still at their defaults: SIGINT,
  // SIGTERM and SIGHUP then end the loop and we unmount cleanly.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);
  fuse_session* se = fuse_get_session(fs);
  int rc = 1;
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_daemonize(args.foreground) == 0) {
      fuse_loop_config* config = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(config, args.threads);
      fuse_loop_cfg_set_clone_fd(config, 0);
      // A signal ending the loop is how a mount is meant to stop: the
      // loop then returns that signal's number.
      const int loop = fuse_loop_mt(fs, config);
      rc = loop == 0 || loop == SIGINT || loop == SIGTERM || loop == SIGHUP ? 0 : 1;
      fuse_loop_cfg_destroy(config);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_unmount(fs);
  fuse_destroy(fs);
  return rc;
}

}  // namespace

Runner AddMountCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("mount", "show the disk at every layer of a chain as read-only files");
  auto args = std::make_shared<MountArgs>();
  args->chain.Register(cmd, /*short_format=*/false);
  cmd->add_option("mountpoint", args->mountpoint, "an empty directory")->required();
  cmd->add_flag("-f,--foreground", args->foreground, "stay in the foreground (default: become a daemon)");
  cmd->add_flag("--allow-other", args->allow_other, "let other users read the files (needs user_allow_other)");
  cmd->add_option("--threads", args->threads, "most requests served at once")->capture_default_str();
  return [=]() {
    // libfuse changes to / before serving: keep an absolute mount point.
    char real[PATH_MAX];
    if (!realpath(args->mountpoint.c_str(), real)) {
      return Fail(Status::IOError(args->mountpoint, std::string("mount point: ") + strerror(errno)));
    }
    args->mountpoint = real;
    Result<std::unique_ptr<Chain>> chain = args->chain.Open();
    if (!chain.ok()) return Fail(chain.status());
    MountedChain mounted;
    mounted.chain = std::move(chain).value();
    mounted.foreground = args->foreground;
    for (const std::string& name : LayerNames(*mounted.chain)) mounted.files.push_back("/" + name + ".raw");
    for (uint32_t depth = 0; depth < mounted.chain->depth(); depth++) {
      mounted.views.push_back(std::make_unique<CollapsedView>(*mounted.chain, depth));
    }
    return Serve(*args, mounted);
  };
}

}  // namespace clonekit::tools
