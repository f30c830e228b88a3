// clonekit: collapse, inspect, map and mount qcow2/raw backing chains.
//
// The management service and its clients (serve, console, pool, vm,
// snapshot, job) are a second executable, clonekit-manager, that this one
// hands over to with exec: they link libvirt, SQLite, an HTTP server, curl
// and TLS, about 60 shared libraries whose loading took 10 ms of every
// `clonekit map` (a map at depth 256 takes 40 ms). The storage commands
// start as fast as qemu-img does.
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "commands.h"

namespace clonekit::tools {
namespace {

struct ManagerCommand {
  const char* name;
  const char* help;
};
constexpr ManagerCommand kManagerCommands[] = {
    {"serve", "run the manager service (REST API, clone jobs)"},
    {"console", "print the web console's address, with the token"},
    {"host", "hypervisor hosts (libvirt connections) besides this one"},
    {"pool", "storage pools (directories clones may be written to)"},
    {"vm", "virtual machines"},
    {"snapshot", "VM snapshots (the configuration is saved with each)"},
    {"job", "clone jobs"},
};

bool IsManagerCommand(const char* word) {
  for (const ManagerCommand& c : kManagerCommands) {
    if (std::strcmp(word, c.name) == 0) return true;
  }
  return false;
}

// Runs clonekit-manager with our own arguments: the one beside this
// executable (a build tree, or an install that keeps them together), else
// the installed one. Returns only on failure.
int HandOverToManager(char** argv) {
  std::string beside;
  char self[PATH_MAX] = "";
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string dir(self);
    beside = dir.substr(0, dir.rfind('/') + 1) + "clonekit-manager";
  }
  int err = ENOENT;
  for (const std::string& path : {beside, std::string(CLONEKIT_MANAGER_PATH)}) {
    if (path.empty()) continue;
    execv(path.c_str(), argv);
    err = errno;
    if (err != ENOENT) {
      std::fprintf(stderr, "clonekit: cannot run %s: %s\n", path.c_str(), std::strerror(err));
      return 1;
    }
  }
  std::fprintf(stderr, "clonekit: cannot run clonekit-manager (looked beside %s and at %s): %s\n", self,
               CLONEKIT_MANAGER_PATH, std::strerror(err));
  return 1;
}

}  // namespace
}  // namespace clonekit::tools

int main(int argc, char** argv) {
  using namespace clonekit::tools;
  if (argc > 1 && IsManagerCommand(argv[1])) return HandOverToManager(argv);
  SetUpProcess();

  CLI::App app{"clonekit: collapse qcow2/raw backing chains into standalone images", "clonekit"};
  ConfigureApp(app);
  Runner info = AddInfoCommand(app);
  Runner map = AddMapCommand(app);
  Runner collapse = AddCollapseCommand(app);
  Runner mount = AddMountCommand(app);
  // Listed in --help; never parsed here (handed over above).
  for (const ManagerCommand& c : kManagerCommands) app.add_subcommand(c.name, c.help)->allow_extras();
  if (int rc = 0; !Parse(app, argc, argv, &rc)) return rc;
  if (app.got_subcommand("info")) return info();
  if (app.got_subcommand("map")) return map();
  if (app.got_subcommand("mount")) return mount();
  if (app.got_subcommand("collapse")) return collapse();
  return HandOverToManager(argv);
}
