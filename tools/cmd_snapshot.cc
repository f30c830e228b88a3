// `clonekit snapshot create|list|delete`: new overlays, the configuration saved with each.
#include <sstream>

#include "client_commands.h"
#include "commands.h"

namespace clonekit::tools {

std::vector<CLI::App*> AddSnapshotCommands(CLI::App& app, Context c) {
  auto a = std::shared_ptr<ClientArgs>(c, &c->args);
  auto s = std::shared_ptr<std::map<std::string, std::string>>(c, &c->values);
  auto chosen = std::shared_ptr<std::function<int(Api&)>>(c, &c->chosen);
  auto snap = app.add_subcommand("snapshot", "VM snapshots (the configuration is saved with each)");
  snap->require_subcommand(1);
  auto snap_create = snap->add_subcommand(
      "create", "new overlay on every disk; the old tops become the snapshot (a running VM: live, all disks at once)");
  snap_create->add_option("vm", (*s)["vm"])->required();
  snap_create->add_option("name", (*s)["name"])->required();
  auto snap_list = snap->add_subcommand("list", "list a VM's snapshots");
  snap_list->add_option("vm", (*s)["vm"])->required();
  auto snap_run = [=](bool create) {
    return [=] {
      *chosen = [=](Api& api) {
        Result<int64_t> id = api.VmId((*s)["vm"]);
        if (!id.ok()) return Fail(id.status());
        const std::string path = "/api/v1/vms/" + std::to_string(*id) + "/snapshots";
        Result<json> r = create ? api.Call("POST", path, json{{"name", (*s)["name"]}}) : api.Call("GET", path);
        return Print(r, [](const json& snaps) {
          for (const json& sn : snaps) {
            std::printf("%-20s %-24s %s\n", sn["name"].get<std::string>().c_str(), sn["created"].get<std::string>().c_str(),
                        sn.value("consistency", "").c_str());
          }
        }, a->as_json);
      };
    };
  };
  snap_create->callback(snap_run(true));
  snap_list->callback(snap_run(false));
  auto snap_delete = snap->add_subcommand(
      "delete", "remove a snapshot point from the list (its layers stay in the VM's chain); refused while linked clones need it");
  snap_delete->add_option("vm", (*s)["vm"])->required();
  snap_delete->add_option("name", (*s)["name"])->required();
  snap_delete->callback([=] {
    *chosen = [=](Api& api) {
      Result<int64_t> id = api.VmId((*s)["vm"]);
      if (!id.ok()) return Fail(id.status());
      return Print(api.Call("DELETE", "/api/v1/vms/" + std::to_string(*id) + "/snapshots/" + (*s)["name"]),
                   [](const json&) { std::printf("snapshot deleted\n"); }, a->as_json);
    };
  });

  return {snap_create, snap_list, snap_delete};
}

}  // namespace clonekit::tools
