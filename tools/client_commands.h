// The clients of the manager's service (pool, vm, snapshot, job,
// console): one file per command group over ApiClient, sharing the parsed
// values and the chosen action through a ClientContext.
#ifndef CLONEKIT_TOOLS_CLIENT_COMMANDS_H_
#define CLONEKIT_TOOLS_CLIENT_COMMANDS_H_

#include <CLI/CLI.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api_client.h"

namespace clonekit::tools {

struct ClientArgs {
  ClientOptions where;
  bool as_json = false;
};

using Api = ApiClient;

// What the command line said; the chosen command's action runs after
// parsing, with the client made from args.
struct ClientContext {
  ClientArgs args;
  std::map<std::string, std::string> values;  // positional and option values
  std::vector<std::string> list;
  std::map<std::string, bool> flags;
  std::function<int(Api&)> chosen;
};
using Context = std::shared_ptr<ClientContext>;

// Each adds its group and returns its leaf commands (they get the client
// options: --socket, --server, --token-file, --json).
std::vector<CLI::App*> AddHostCommands(CLI::App& app, Context c);
std::vector<CLI::App*> AddPoolCommands(CLI::App& app, Context c);
std::vector<CLI::App*> AddVmCommands(CLI::App& app, Context c);
std::vector<CLI::App*> AddSnapshotCommands(CLI::App& app, Context c);
std::vector<CLI::App*> AddJobCommands(CLI::App& app, Context c);

// Output: the JSON (--json or no human form) or the human form; 1 and the
// one-line error on failure.
int Print(const Result<json>& r, const std::function<void(const json&)>& human, bool as_json);
std::string ReadFile(const std::string& path);
void VmTable(const json& vms);
void JobTable(const json& jobs);
// Follows a job until it ends: a bar on a terminal, the outcome always.
int WaitJob(Api& api, int64_t id);
void AddClientOptions(CLI::App* cmd, ClientArgs& a);

}  // namespace clonekit::tools

#endif  // CLONEKIT_TOOLS_CLIENT_COMMANDS_H_
