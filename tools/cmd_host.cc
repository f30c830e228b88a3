// `clonekit host add|remove|list`: the hypervisor hosts the manager knows
// (root on the socket to change them).
#include "client_commands.h"
#include "commands.h"

namespace clonekit::tools {

namespace {

// "12.3 GiB": a size as an admin reads it.
std::string Size(const json& bytes) {
  if (!bytes.is_number()) return "?";
  double v = bytes.get<double>();
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (v >= 1024 && u < 5) v /= 1024, u++;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

void PrintHost(const json& h) {
  const std::string state = h["reachable"].get<bool>()
                                ? "reachable, libvirt " + h["libvirt_version"].get<std::string>() + " on " +
                                      h["hostname"].get<std::string>()
                                : "unreachable: " + h["error"].get<std::string>();
  std::printf("%-16s %-40s %s\n", h["name"].get<std::string>().c_str(),
              h["uri"].get<std::string>().empty() ? "(none)" : h["uri"].get<std::string>().c_str(), state.c_str());
  if (!h["pools_error"].get<std::string>().empty()) std::printf("  pools: %s\n", h["pools_error"].get<std::string>().c_str());
  for (const json& p : h["pools"]) {
    std::printf("  pool %-11s %-40s %s free of %s\n", p["name"].get<std::string>().c_str(),
                p["dir"].get<std::string>().c_str(), Size(p["free_bytes"]).c_str(), Size(p["size_bytes"]).c_str());
  }
}

}  // namespace

std::vector<CLI::App*> AddHostCommands(CLI::App& app, Context c) {
  auto a = std::shared_ptr<ClientArgs>(c, &c->args);
  auto s = std::shared_ptr<std::map<std::string, std::string>>(c, &c->values);
  auto chosen = std::shared_ptr<std::function<int(Api&)>>(c, &c->chosen);
  auto host = app.add_subcommand("host", "hypervisor hosts (libvirt connections) besides this one ('local')");
  host->require_subcommand(1);
  auto host_add = host->add_subcommand("add", "add a host once its libvirt answers");
  host_add->add_option("name", (*s)["name"])->required();
  host_add->add_option("uri", (*s)["uri"], "qemu+ssh://[USER@]HOST/system or qemu+tls://HOST/system")->required();
  host_add->add_option("--ssh", (*s)["ssh"], "USER@HOST[:PORT] its pools are reached at (default: a qemu+ssh URI's)");
  host_add->callback([=] {
    *chosen = [=](Api& api) {
      return Print(api.Call("POST", "/api/v1/hosts", {{"name", (*s)["name"]}, {"uri", (*s)["uri"]}, {"ssh", (*s)["ssh"]}}),
                   PrintHost, a->as_json);
    };
  });
  auto host_remove = host->add_subcommand("remove", "forget a host (one that holds no VM or pool)");
  host_remove->add_option("name", (*s)["name"])->required();
  auto forget = std::make_shared<bool>(false);
  host_remove->add_flag("--forget", *forget,
                        "a host that is gone for good: drop it with its VMs' and pools' entries (refused while it "
                        "answers; nothing on it is touched)");
  host_remove->callback([=] {
    *chosen = [=](Api& api) {
      if (!*forget) {
        return Print(api.Call("DELETE", "/api/v1/hosts/" + (*s)["name"]),
                     [=](const json&) { std::printf("host %s removed\n", (*s)["name"].c_str()); }, a->as_json);
      }
      return Print(api.Call("DELETE", "/api/v1/hosts/" + (*s)["name"] + "?forget=true"), [](const json& f) {
        const auto list = [](const json& items) {
          std::string out;
          for (const json& i : items) out += (out.empty() ? "" : ", ") + (i.is_string() ? i.get<std::string>() : i.dump());
          return out.empty() ? std::string("none") : out;
        };
        std::printf("host %s forgotten (its libvirt: %s): VMs %s; pools %s", f["name"].get<std::string>().c_str(),
                    f.value("why", std::string("no answer")).c_str(), list(f["vms"]).c_str(), list(f["pools"]).c_str());
        if (!f["jobs"].empty()) std::printf("; the partial files of jobs %s stay there", list(f["jobs"]).c_str());
        std::printf("\n");
      }, a->as_json);
    };
  });
  auto host_list = host->add_subcommand("list", "list hosts: reachable, libvirt version, free space per pool");
  host_list->callback([=] {
    *chosen = [=](Api& api) {
      return Print(api.Call("GET", "/api/v1/hosts"), [](const json& hs) {
        for (const json& h : hs) PrintHost(h);
      }, a->as_json);
    };
  });
  return {host_add, host_remove, host_list};
}

}  // namespace clonekit::tools
