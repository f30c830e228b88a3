// The clients of the manager's service: every group registered, the
// client options on every leaf, and the chosen action run with one client.
#include "client_commands.h"
#include "commands.h"

namespace clonekit::tools {

Runner AddManagerCommands(CLI::App& app) {
  auto c = std::make_shared<ClientContext>();
  for (auto add : {AddHostCommands, AddPoolCommands, AddVmCommands, AddSnapshotCommands, AddJobCommands}) {
    for (CLI::App* leaf : add(app, c)) {
      if (!leaf->get_option_no_throw("--server")) AddClientOptions(leaf, c->args);
    }
  }
  return [c]() {
    // Taken out of the context: the action holds the context, and a context
    // holding its action would never be freed.
    std::function<int(Api&)> chosen = std::move(c->chosen);
    c->chosen = nullptr;
    if (!chosen) return 2;
    Api api(c->args.where);
    return chosen(api);
  };
}

}  // namespace clonekit::tools
