// The clonekit subcommands; each registers itself on the CLI11 app.
#ifndef CLONEKIT_TOOLS_COMMANDS_H_
#define CLONEKIT_TOOLS_COMMANDS_H_

#include <CLI/CLI.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "clonekit/chain.h"

namespace clonekit::tools {

// Options every command that opens a chain understands.
struct ChainArgs {
  std::string image;
  std::string format;  // -f: top image format; detected when empty
  bool force_share = false;
  size_t max_depth = 1024;
  std::vector<std::string> backing_dirs;  // --backing-dir
  std::vector<std::string> confine_dirs;  // --confine
  // short_format: -f means --format (mount keeps -f for --foreground, as FUSE tools do).
  void Register(CLI::App* cmd, bool short_format = true);
  Result<std::unique_ptr<Chain>> Open() const;
};

using Runner = std::function<int()>;

Runner AddInfoCommand(CLI::App& app);
Runner AddMapCommand(CLI::App& app);
Runner AddCollapseCommand(CLI::App& app);
Runner AddMountCommand(CLI::App& app);
Runner AddServeCommand(CLI::App& app);
// pool, vm, snapshot, job: clients of the service.
Runner AddManagerCommands(CLI::App& app);

// Set by SIGINT/SIGTERM.
extern std::atomic<bool> g_interrupted;
extern std::atomic<int> g_signal;

// Prints "clonekit: message" on one line to stderr and returns 1.
int Fail(const Status& status);

// Signal handlers (SIGINT/SIGTERM/SIGHUP set g_interrupted) and the
// descriptor limit raised for deep chains; call first in main.
void SetUpProcess();

// One subcommand required, and --version.
void ConfigureApp(CLI::App& app);
// Parses the command line; false (with *rc: 0 after --help or --version,
// 2 on a usage error, its message printed) when there is nothing to run.
bool Parse(CLI::App& app, int argc, char** argv, int* rc);

}  // namespace clonekit::tools

#endif  // CLONEKIT_TOOLS_COMMANDS_H_
