// nbdkit-clonekit-plugin: serves the disk as seen at each layer of a qcow2
// backing chain, read-only, without copying it.
//
//   nbdkit clonekit file=TOP.qcow2 [max-depth=N] [force-share=true]
//
// Thin glue: the chain is opened once (holding the same OFD read locks as
// `clonekit collapse`), each layer becomes a CollapsedView, and the
// callbacks below only translate between nbdkit and those views. The views
// are thread-safe, so the plugin runs in nbdkit's fully parallel model.
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include <nbdkit-plugin.h>

#include <errno.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "clonekit/chain.h"
#include "clonekit/collapsed_view.h"

namespace {

using clonekit::Chain;
using clonekit::CollapsedView;
using clonekit::Status;

struct Config {
  std::string file;
  size_t max_depth = 1024;
  bool force_share = false;
  uint64_t cache_bytes = 64 << 20;
  std::vector<std::string> backing_dirs;
};

// Process-wide state: the configuration, then the opened chain and one view
// (and export name) per layer. Written only before serving starts.
Config g_config;
std::unique_ptr<Chain> g_chain;
std::vector<std::unique_ptr<CollapsedView>> g_views;
std::vector<std::string> g_names;
std::vector<std::string> g_descriptions;

// Never describe a range larger than this in one extents reply, so that a
// badly fragmented disk cannot make one request build a huge list.
constexpr uint64_t kMaxExtentsSpan = 256ull << 20;
// A CACHE request is resolved this much at a time (a map of a 512-byte
// cluster image costs about 220 bytes a cluster while it lives).
constexpr uint64_t kCacheWindow = 16ull << 20;

int Error(const Status& status) {
  nbdkit_error("%s", status.message().c_str());
  errno = status.code() == clonekit::Status::Code::kInvalidArgument ? EINVAL : EIO;
  return -1;
}

void Load() {
  // Deep chains hold one descriptor per layer.
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

void Unload() {
  g_views.clear();
  g_chain.reset();
}

int ConfigKey(const char* key, const char* value) {
  const std::string k = key;
  if (k == "file") {
    // nbdkit changes to / when it becomes a daemon: keep an absolute path.
    char* path = nbdkit_absolute_path(value);
    if (!path) return -1;
    g_config.file = path;
    free(path);
  } else if (k == "max-depth") {
    uint32_t depth = 0;
    if (nbdkit_parse_uint32_t("max-depth", value, &depth) == -1) return -1;
    if (depth == 0) {
      nbdkit_error("max-depth must be at least 1");
      return -1;
    }
    g_config.max_depth = depth;
  } else if (k == "force-share") {
    int r = nbdkit_parse_bool(value);
    if (r == -1) return -1;
    g_config.force_share = r;
  } else if (k == "cache") {
    int64_t bytes = nbdkit_parse_size(value);
    if (bytes == -1) return -1;
    g_config.cache_bytes = static_cast<uint64_t>(bytes);
  } else if (k == "backing-dir") {
    char* path = nbdkit_absolute_path(value);
    if (!path) return -1;
    g_config.backing_dirs.push_back(path);
    free(path);
  } else {
    nbdkit_error("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

int ConfigComplete() {
  if (g_config.file.empty()) {
    nbdkit_error("you must supply the file=TOP.qcow2 parameter");
    return -1;
  }
  return 0;
}

// Opens the chain before nbdkit forks or accepts a client, so a bad image
// stops the server at once with the engine's one-line message.
int GetReady() {
  clonekit::ChainOptions options;
  options.max_depth = g_config.max_depth;
  options.metadata_cache_bytes = g_config.cache_bytes;
  options.allowed_backing_dirs = g_config.backing_dirs;
  clonekit::OpenOptions open;
  open.force_share = g_config.force_share;
  auto opener = clonekit::NewPosixFileOpener(open);
  clonekit::Result<std::unique_ptr<Chain>> chain = clonekit::OpenChain(g_config.file, *opener, options);
  if (!chain.ok()) return Error(chain.status());
  g_chain = std::move(chain).value();
  g_names = clonekit::LayerNames(*g_chain);
  for (uint32_t depth = 0; depth < g_chain->depth(); depth++) {
    g_views.push_back(std::make_unique<CollapsedView>(*g_chain, depth));
    const clonekit::Image& layer = g_chain->layer(depth);
    g_descriptions.push_back("layer " + std::to_string(depth) + " of the chain (0 = top): " + layer.name() +
                             " (" + clonekit::FormatName(layer.info().format) + ")");
  }
  return 0;
}

void DumpPlugin() {
  std::printf("clonekit_version=%s\n", CLONEKIT_VERSION);
  std::printf("clonekit_extents=yes\n");
  std::printf("clonekit_zstd=yes\n");
}

int ListExports(int, int, struct nbdkit_exports* exports) {
  for (size_t i = 0; i < g_names.size(); i++) {
    if (nbdkit_add_export(exports, g_names[i].c_str(), g_descriptions[i].c_str()) == -1) return -1;
  }
  return 0;
}

const char* DefaultExport(int, int) { return g_names.empty() ? "" : g_names[0].c_str(); }

// The handle is the view of the layer the client named.
void* Open(int) {
  const std::string name = nbdkit_export_name() ? nbdkit_export_name() : "";
  if (name.empty()) return g_views[0].get();
  for (size_t i = 0; i < g_names.size(); i++) {
    if (g_names[i] == name) return g_views[i].get();
  }
  std::string known;
  for (const std::string& n : g_names) known += (known.empty() ? "" : ", ") + n;
  nbdkit_error("no export '%s': the exports are the chain's layers: %s", name.c_str(), known.c_str());
  return nullptr;
}

const CollapsedView& View(void* handle) { return *static_cast<const CollapsedView*>(handle); }

const char* ExportDescription(void* handle) {
  for (size_t i = 0; i < g_views.size(); i++) {
    if (g_views[i].get() == handle) return g_descriptions[i].c_str();
  }
  return nullptr;
}

int64_t GetSize(void* handle) { return static_cast<int64_t>(View(handle).size()); }

int BlockSize(void* handle, uint32_t* minimum, uint32_t* preferred, uint32_t* maximum) {
  *minimum = 1;  // any byte range can be read
  *preferred = static_cast<uint32_t>(std::clamp<uint64_t>(View(handle).preferred_block(), 4096, 2 << 20));
  *maximum = 0xffffffff;
  return 0;
}

int CanWrite(void*) { return 0; }
int CanMultiConn(void*) { return 1; }  // read-only: every connection sees the same bytes
int CanExtents(void*) { return 1; }
int CanCache(void*) { return NBDKIT_CACHE_NATIVE; }
int IsRotational(void*) { return 0; }

int Pread(void* handle, void* buf, uint32_t count, uint64_t offset, uint32_t) {
  Status st = View(handle).Read(offset, buf, count);
  return st.ok() ? 0 : Error(st);
}

// Data extents are reported as data, even when their bytes happen to be
// zero; ranges no layer holds, zero clusters and the tail past a short
// backing file read as zeros and are holes (as qemu-nbd reports them).
int Extents(void* handle, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents* out) {
  const uint64_t span = (flags & NBDKIT_FLAG_REQ_ONE) ? std::min<uint64_t>(count, 64 << 20)
                                                      : std::min<uint64_t>(count, kMaxExtentsSpan);
  clonekit::ExtentMap map;
  Status st = View(handle).Map(offset, span, &map);
  if (!st.ok()) return Error(st);
  for (const clonekit::Extent& e : map.extents()) {
    const uint32_t type = e.reads_zero() ? (NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) : 0;
    if (nbdkit_add_extent(out, e.start, e.length, type) == -1) return -1;
    if (flags & NBDKIT_FLAG_REQ_ONE) break;
  }
  return 0;
}

// A cache request may span 4 GiB: it is resolved one window at a time (as
// block status is bounded), so that one request cannot make the server map the whole
// range at once (a 1 GiB CACHE on 512-byte clusters took 225 MiB).
int Cache(void* handle, uint32_t count, uint64_t offset, uint32_t) {
  for (uint64_t done = 0; done < count;) {
    const uint64_t n = std::min<uint64_t>(count - done, kCacheWindow);
    Status st = View(handle).Prefetch(offset + done, n);
    if (!st.ok()) return Error(st);
    done += n;
  }
  return 0;
}

// Filled by name: C++ has no out-of-order designated initializers.
struct nbdkit_plugin MakePlugin() {
  struct nbdkit_plugin p = {};
  p.name = "clonekit";
  p.longname = "clonekit: the collapsed disk at each layer of a qcow2 backing chain";
  p.version = CLONEKIT_VERSION;
  p.description = "Read-only export of a qcow2/raw backing chain, one export per layer.";
  p.load = Load;
  p.unload = Unload;
  p.config = ConfigKey;
  p.config_complete = ConfigComplete;
  p.config_help =
      "file=TOP.qcow2     (required) the chain's top image\n"
      "max-depth=N        longest chain accepted (default 1024)\n"
      "force-share=BOOL   serve even if a running VM writes the chain\n"
      "cache=SIZE         memory for L2 tables, whole chain (default 64M)\n"
      "backing-dir=DIR    only follow backing files inside DIR (repeatable)";
  p.magic_config_key = "file";
  p.get_ready = GetReady;
  p.dump_plugin = DumpPlugin;
  p.list_exports = ListExports;
  p.default_export = DefaultExport;
  p.open = Open;
  p.export_description = ExportDescription;
  p.get_size = GetSize;
  p.block_size = BlockSize;
  p.can_write = CanWrite;
  p.can_multi_conn = CanMultiConn;
  p.can_extents = CanExtents;
  p.can_cache = CanCache;
  p.is_rotational = IsRotational;
  p.pread = Pread;
  p.extents = Extents;
  p.cache = Cache;
  return p;
}

struct nbdkit_plugin plugin = MakePlugin();

}  // namespace

NBDKIT_REGISTER_PLUGIN(plugin)
