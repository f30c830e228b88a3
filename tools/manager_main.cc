// clonekit-manager: the management service and its clients. Users run it
// as `clonekit serve|console|pool|vm|snapshot|job ...`; clonekit hands
// those commands over with exec, so argv[0] is still clonekit.
#include <cstdio>

#include "commands.h"

int main(int argc, char** argv) {
  using namespace clonekit::tools;
  SetUpProcess();

  CLI::App app{"clonekit: manage VMs, snapshots and clone jobs", "clonekit"};
  ConfigureApp(app);
  Runner serve = AddServeCommand(app);
  Runner manage = AddManagerCommands(app);
  if (int rc = 0; !Parse(app, argc, argv, &rc)) return rc;
  if (app.got_subcommand("serve")) return serve();
  return manage();
}
