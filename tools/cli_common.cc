// What both clonekit executables share: the exit-on-error line, signals
// (a second one stops at once, still removing partial outputs), the
// descriptor limit deep chains need, and the options of chain commands.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#include "clonekit/collapse.h"
#include "commands.h"

namespace clonekit::tools {

std::atomic<bool> g_interrupted{false};
std::atomic<int> g_signal{0};

int Fail(const Status& status) {
  std::fprintf(stderr, "clonekit: %s\n", status.message().c_str());
  return 1;
}

void ChainArgs::Register(CLI::App* cmd, bool short_format) {
  cmd->add_option("image", image, "image file (any layer of a chain)")->required();
  cmd->add_option(short_format ? "-f,--format" : "--format", format,
                  "format of IMAGE (raw or qcow2); detected when omitted");
  cmd->add_flag("-U,--force-share", force_share,
                "read even if another process (a running VM) writes the chain; may be inconsistent");
  cmd->add_option("--max-depth", max_depth, "longest backing chain accepted")->capture_default_str();
  cmd->add_option("--backing-dir", backing_dirs,
                  "only follow backing files inside DIR (repeatable; default: anywhere)");
  cmd->add_option("--confine", confine_dirs,
                  "read IMAGE and every backing file only inside DIR (repeatable), opened beneath it with no "
                  "symlink followed, regular files only: for chains in storage others may write to");
}

Result<std::unique_ptr<Chain>> ChainArgs::Open() const {
  ChainOptions options;
  options.max_depth = max_depth;
  options.allowed_backing_dirs = backing_dirs;
  if (!format.empty()) {
    Result<ImageFormat> f = ParseFormat(image, format);
    if (!f.ok()) return f.status();
    options.top_format = *f;
  }
  OpenOptions open;
  open.force_share = force_share;
  // (the confined opener refuses the rest whatever their real paths)
  if (options.allowed_backing_dirs.empty()) options.allowed_backing_dirs = confine_dirs;
  auto opener = confine_dirs.empty() ? NewPosixFileOpener(open) : NewConfinedFileOpener(confine_dirs, open);
  return OpenChain(image, *opener, options);
}

namespace {

void OnSignal(int sig) {
  if (g_interrupted.exchange(true)) {
    // A second signal: stop now, but still leave no partial file.
    RemovePartialOutputs();
    _exit(128 + sig);
  }
  g_signal = sig;
}

void InstallSignalHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
}

// Deep chains hold one descriptor per layer.
void RaiseFileLimit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

void ConfigureApp(CLI::App& app) {
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("clonekit ") + CLONEKIT_VERSION);
}

bool Parse(CLI::App& app, int argc, char** argv, int* rc) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *rc = app.exit(e) == 0 ? 0 : 2;
    return false;
  }
  return true;
}

void SetUpProcess() {
  InstallSignalHandlers();
  RaiseFileLimit();
}

}  // namespace clonekit::tools

