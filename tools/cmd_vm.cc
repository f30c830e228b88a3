// `clonekit vm list|show|define|import|edit|start|stop|delete|clone|flatten`.
#include <sstream>

#include "client_commands.h"
#include "commands.h"

namespace clonekit::tools {

std::vector<CLI::App*> AddVmCommands(CLI::App& app, Context c) {
  auto a = std::shared_ptr<ClientArgs>(c, &c->args);
  auto s = std::shared_ptr<std::map<std::string, std::string>>(c, &c->values);
  auto list = std::shared_ptr<std::vector<std::string>>(c, &c->list);
  auto flags = std::shared_ptr<std::map<std::string, bool>>(c, &c->flags);
  auto chosen = std::shared_ptr<std::function<int(Api&)>>(c, &c->chosen);
  auto vm = app.add_subcommand("vm", "virtual machines");
  vm->require_subcommand(1);
  auto vm_list = vm->add_subcommand("list", "list VMs");
  vm_list->add_option("--host", (*s)["host"], "only the VMs on this host");
  vm_list->callback([=] {
    *chosen = [=](Api& api) {
      const std::string& host = (*s)["host"];
      // (a host's name is letters, digits, '.', '_' and '-': nothing to escape)
      const bool name_like = std::all_of(host.begin(), host.end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.'; });
      if (!name_like) return Fail(Status::InvalidArgument("--host " + host, "is not a host's name"));
      return Print(api.Call("GET", "/api/v1/vms" + (host.empty() ? "" : "?host=" + host)), VmTable, a->as_json);
    };
  });
  auto vm_show = vm->add_subcommand("show", "show a VM (JSON, with its XML)");
  vm_show->add_option("vm", (*s)["vm"], "id, NAME or NAMESPACE/NAME")->required();
  vm_show->callback([=] {
    *chosen = [=](Api& api) {
      Result<int64_t> id = api.VmId((*s)["vm"]);
      if (!id.ok()) return Fail(id.status());
      return Print(api.Call("GET", "/api/v1/vms/" + std::to_string(*id)), nullptr, true);
    };
  });
  auto vm_define = vm->add_subcommand("define", "define a VM from libvirt domain XML");
  vm_define->add_option("xml", (*s)["xml"], "domain XML file")->required()->check(CLI::ExistingFile);
  vm_define->add_option("--namespace", (*s)["namespace"], "namespace (default: default)");
  vm_define->add_option("--description", (*s)["description"]);
  vm_define->callback([=] {
    *chosen = [=](Api& api) {
      json body{{"xml", ReadFile((*s)["xml"])}, {"namespace", (*s)["namespace"].empty() ? "default" : (*s)["namespace"]},
                {"description", (*s)["description"]}};
      return Print(api.Call("POST", "/api/v1/vms", body), [](const json& v) {
        std::printf("defined VM '%s' (id %lld)\n", v["name"].get<std::string>().c_str(), static_cast<long long>(v["id"].get<int64_t>()));
      }, a->as_json);
    };
  });
  auto vm_import = vm->add_subcommand("import", "define a VM from existing disk chains; their layers become snapshots");
  vm_import->add_option("name", (*s)["name"])->required();
  vm_import->add_option("disks", *list, "top image of each disk's chain")->required();
  vm_import->add_option("--namespace", (*s)["namespace"]);
  vm_import->callback([=] {
    *chosen = [=](Api& api) {
      json body{{"name", (*s)["name"]}, {"namespace", (*s)["namespace"].empty() ? "default" : (*s)["namespace"]},
                {"disks", *list}};
      return Print(api.Call("POST", "/api/v1/vms/import", body), [](const json& v) {
        std::printf("imported VM '%s' (id %lld), %d snapshot(s)\n", v["name"].get<std::string>().c_str(),
                    static_cast<long long>(v["id"].get<int64_t>()), v["snapshots"].get<int>());
      }, a->as_json);
    };
  });
  auto vm_edit = vm->add_subcommand("edit", "replace a VM's definition or description (allowed while it is cloned)");
  vm_edit->add_option("vm", (*s)["vm"])->required();
  vm_edit->add_option("--xml", (*s)["xml"])->check(CLI::ExistingFile);
  CLI::Option* edit_description = vm_edit->add_option("--description", (*s)["description"]);
  vm_edit->callback([=] {
    *chosen = [=](Api& api) {
      Result<int64_t> id = api.VmId((*s)["vm"]);
      if (!id.ok()) return Fail(id.status());
      json body = json::object();
      if (!(*s)["xml"].empty()) body["xml"] = ReadFile((*s)["xml"]);
      if (edit_description->count() > 0) body["description"] = (*s)["description"];
      return Print(api.Call("PUT", "/api/v1/vms/" + std::to_string(*id), body),
                   [](const json& v) { std::printf("updated VM '%s'\n", v["name"].get<std::string>().c_str()); }, a->as_json);
    };
  });
  for (const char* verb : {"start", "stop", "delete"}) {
    auto c = vm->add_subcommand(verb, std::string(verb) + " a VM");
    c->add_option("vm", (*s)["vm"])->required();
    if (std::string(verb) == "stop") c->add_flag("--force", (*flags)["force"], "power off at once");
    c->callback([=, verb = std::string(verb)] {
      *chosen = [=](Api& api) {
        Result<int64_t> id = api.VmId((*s)["vm"]);
        if (!id.ok()) return Fail(id.status());
        const std::string path = "/api/v1/vms/" + std::to_string(*id);
        Result<json> r = verb == "delete" ? api.Call("DELETE", path)
                                          : api.Call("POST", path + "/" + verb, json{{"force", (*flags)["force"]}});
        return Print(r, [&](const json&) { std::printf("%s: done\n", verb.c_str()); }, a->as_json);
      };
    });
  }
  auto clone = vm->add_subcommand("clone", "clone a VM, from a snapshot or as it is now");
  clone->add_option("vm", (*s)["vm"], "source VM")->required();
  clone->add_option("--snapshot", (*s)["snapshot"], "snapshot to clone from (default: the current state)");
  clone->add_option("--name", (*s)["name"], "new VM name (default: SOURCE-clone)");
  clone->add_option("--namespace", (*s)["namespace"], "namespace (default: the source's)");
  clone->add_option("--host", (*s)["host"],
                    "the host to make the clone on (default: the source's); its disks go to that host's pools");
  clone->add_option("--description", (*s)["description"]);
  clone->add_option("--disk", *list, "per disk: TARGET=pool:POOL,format:raw|qcow2 (repeatable)");
  clone->add_flag("--no-start", (*flags)["no-start"], "do not start the clone when it is ready");
  clone->add_flag("--wait", (*flags)["wait"], "wait for the clone to finish, with a progress bar on a terminal");
  clone->add_flag("--live", (*flags)["live"],
                  "a running source keeps running: clone a live snapshot taken now (it stays listed)");
  auto instant = clone->add_flag("--instant", (*flags)["instant"],
                                  "define and start the clone at once on overlays of the snapshot, then make it "
                                  "standalone while it runs");
  clone->add_flag("--linked", (*flags)["linked"],
                  "the clone's disks stay overlays of the snapshot's points (vm flatten makes it standalone later)")
      ->excludes(instant);
  clone->add_option("--generalize", (*s)["generalize"],
                    "make it a new machine: default | none | ITEM,-ITEM (items: machine-id, ssh-host-keys, hostname, "
                    "cloud-init, network-bindings, mac-addresses, smbios-serial, genid, tpm; unset: new MACs, serial "
                    "and generation ID only)");
  clone->callback([=] {
    *chosen = [=](Api& api) {
      Result<int64_t> id = api.VmId((*s)["vm"]);
      if (!id.ok()) return Fail(id.status());
      json body{{"snapshot", (*s)["snapshot"]}, {"start", !(*flags)["no-start"]}, {"live", (*flags)["live"]}};
      if (!(*s)["generalize"].empty()) body["generalize"] = (*s)["generalize"];
      if ((*flags)["instant"]) body["instant"] = true;
      if ((*flags)["linked"]) body["linked"] = true;
      // Left out, the service fills in the defaults (SOURCE-clone, the source's namespace).
      if (!(*s)["name"].empty()) body["name"] = (*s)["name"];
      if (!(*s)["namespace"].empty()) body["namespace"] = (*s)["namespace"];
      if (!(*s)["host"].empty()) body["host"] = (*s)["host"];
      if (!(*s)["description"].empty()) body["description"] = (*s)["description"];
      json disks = json::object();
      for (const std::string& spec : *list) {
        const size_t eq = spec.find('=');
        if (eq == std::string::npos) return Fail(Status::InvalidArgument("--disk " + spec + ": expected TARGET=pool:P,format:F"));
        json d = json::object();
        std::stringstream parts(spec.substr(eq + 1));
        for (std::string kv; std::getline(parts, kv, ',');) {
          const size_t colon = kv.find(':');
          const std::string key = kv.substr(0, colon);
          if (colon == std::string::npos || (key != "pool" && key != "format")) {
            return Fail(Status::InvalidArgument("--disk " + spec + ": expected TARGET=pool:P,format:F"));
          }
          d[key] = kv.substr(colon + 1);
        }
        disks[spec.substr(0, eq)] = d;
      }
      body["disks"] = disks;
      Result<json> job = api.Call("POST", "/api/v1/vms/" + std::to_string(*id) + "/clone", body);
      if (!job.ok()) return Fail(job.status());
      const int64_t job_id = (*job)["id"];
      if ((*flags)["wait"]) return WaitJob(api, job_id);
      return Print(job, [&](const json& j) {
        std::printf("cloning into '%s': job %lld (clonekit job show %lld)\n", j["clone_name"].get<std::string>().c_str(),
                    static_cast<long long>(job_id), static_cast<long long>(job_id));
      }, a->as_json);
    };
  });

  auto flatten = vm->add_subcommand("flatten", "make a linked clone standalone (a running VM keeps running)");
  flatten->add_option("vm", (*s)["vm"])->required();
  flatten->add_flag("--wait", (*flags)["wait"], "wait for the flatten to finish");
  flatten->callback([=] {
    *chosen = [=](Api& api) {
      Result<int64_t> id = api.VmId((*s)["vm"]);
      if (!id.ok()) return Fail(id.status());
      Result<json> job = api.Call("POST", "/api/v1/vms/" + std::to_string(*id) + "/flatten", json::object());
      if (!job.ok()) return Fail(job.status());
      const int64_t job_id = (*job)["id"];
      if ((*flags)["wait"]) return WaitJob(api, job_id);
      return Print(job, [&](const json&) {
        std::printf("flattening: job %lld (clonekit job show %lld)\n", static_cast<long long>(job_id),
                    static_cast<long long>(job_id));
      }, a->as_json);
    };
  });

  return vm->get_subcommands([](CLI::App*) { return true; });
}

}  // namespace clonekit::tools
