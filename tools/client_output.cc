#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "client_commands.h"
#include "commands.h"

namespace clonekit::tools {

int Print(const Result<json>& r, const std::function<void(const json&)>& human, bool as_json) {
  if (!r.ok()) return Fail(r.status());
  if (as_json || !human) {
    std::printf("%s\n", const_cast<Result<json>&>(r)->dump(2).c_str());
  } else {
    human(const_cast<Result<json>&>(r).value());
  }
  return 0;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void VmTable(const json& vms) {
  std::printf("%-4s %-12s %-24s %-11s %-5s %s\n", "ID", "NAMESPACE", "NAME", "STATUS", "DISKS", "HOST");
  for (const json& v : vms) {
    std::string status = v["status"];
    if (v.contains("percent")) status += " " + std::to_string(static_cast<int>(v["percent"].get<double>())) + "%";
    std::printf("%-4lld %-12s %-24s %-11s %-5zu %s\n", static_cast<long long>(v["id"].get<int64_t>()),
                v["namespace"].get<std::string>().c_str(), v["name"].get<std::string>().c_str(), status.c_str(),
                v["disks"].size(), v.value("host", "local").c_str());
  }
}

void JobTable(const json& jobs) {
  std::printf("%-4s %-10s %7s %-24s %s\n", "ID", "STATE", "PERCENT", "CLONE", "ERROR");
  for (const json& j : jobs) {
    std::printf("%-4lld %-10s %6.1f%% %-24s %s\n", static_cast<long long>(j["id"].get<int64_t>()),
                j["state"].get<std::string>().c_str(), j["percent"].get<double>(),
                j["clone_name"].get<std::string>().c_str(), j["error"].get<std::string>().c_str());
  }
}

int WaitJob(Api& api, int64_t id) {
  const bool tty = isatty(1);
  while (true) {
    Result<json> job = api.Call("GET", "/api/v1/jobs/" + std::to_string(id));
    if (!job.ok()) return Fail(job.status());
    const std::string state = (*job)["state"];
    const double pct = (*job)["percent"];
    if (tty) {
      const int filled = static_cast<int>(pct / 100 * 40);
      std::printf("\r[%s%s] %5.1f%%", std::string(filled, '#').c_str(), std::string(40 - filled, '.').c_str(), pct);
      std::fflush(stdout);
    }
    if (state != "running") {
      if (tty) std::printf("\n");
      if (state == "succeeded") {
        std::printf("job %lld succeeded: VM '%s' (id %lld)\n", static_cast<long long>(id),
                    (*job)["clone_name"].get<std::string>().c_str(),
                    static_cast<long long>((*job)["clone_vm"].is_null() ? 0 : (*job)["clone_vm"].get<int64_t>()));
        // What made it a new machine, one line per change.
        for (const json& c : job->value("identity_changes", json::array())) {
          std::string where = c.value("disk", "");
          where += (where.empty() ? "" : ":") + c.value("path", "");
          std::printf("  %-16s %-40s %s\n", c.value("item", "").c_str(), where.c_str(), c.value("change", "").c_str());
        }
        return 0;
      }
      std::fprintf(stderr, "clonekit: job %lld %s: %s\n", static_cast<long long>(id), state.c_str(),
                   (*job)["error"].get<std::string>().c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void AddClientOptions(CLI::App* cmd, ClientArgs& a) {
  cmd->add_option("--socket", a.where.socket,
                  std::string("the service's Unix socket (default $CLONEKIT_SOCKET or ") + kDefaultSocket + ")");
  cmd->add_option("--server", a.where.server, "use TCP to HOST:PORT instead (default $CLONEKIT_SERVER), with the token; HOST:PORT,HOST:PORT: an active service and its standbys");
  cmd->add_option("--token-file", a.where.token_file,
                  std::string("the token for TCP (default $CLONEKIT_TOKEN_FILE or ") + kDefaultTokenFile + ")");
  cmd->add_flag("--json", a.as_json, "print the service's JSON");
}

}  // namespace clonekit::tools
