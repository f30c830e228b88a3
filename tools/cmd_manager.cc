// The manager's commands: `clonekit serve` runs the service; pool, vm,
// snapshot and job talk to it over its REST API (docs/api.md).
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "access.h"
#include "api_client.h"
#include "commands.h"
#include "http_api.h"
#include "manager.h"

namespace clonekit::tools {

using manager::json;

namespace {

struct ClientArgs {
  ClientOptions where;
  bool as_json = false;
};

// SIGINT, SIGTERM and SIGHUP stop the service: they are blocked in every
// thread and taken by one thread with sigwait, which stops the HTTP server
// from ordinary code (not from a signal handler).
sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
  return set;
}

using Api = ApiClient;

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
  std::printf("%-4s %-12s %-24s %-9s %s\n", "ID", "NAMESPACE", "NAME", "STATUS", "DISKS");
  for (const json& v : vms) {
    std::string status = v["status"];
    if (v.contains("percent")) status += " " + std::to_string(static_cast<int>(v["percent"].get<double>())) + "%";
    std::printf("%-4lld %-12s %-24s %-9s %zu\n", static_cast<long long>(v["id"].get<int64_t>()),
                v["namespace"].get<std::string>().c_str(), v["name"].get<std::string>().c_str(), status.c_str(),
                v["disks"].size());
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

// Follows a job until it ends: a bar on a terminal, the outcome always.
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
  cmd->add_option("--server", a.where.server, "use TCP to HOST:PORT instead (default $CLONEKIT_SERVER), with the token");
  cmd->add_option("--token-file", a.where.token_file,
                  std::string("the token for TCP (default $CLONEKIT_TOKEN_FILE or ") + kDefaultTokenFile + ")");
  cmd->add_flag("--json", a.as_json, "print the service's JSON");
}

}  // namespace

// The console built beside this binary when it runs from the build tree,
// else the installed one; "" when neither exists.
std::string DefaultWebDir() {
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  const std::string build_root = CLONEKIT_BUILD_ROOT;
  const std::string dir = self.rfind(build_root + "/", 0) == 0 ? CLONEKIT_BUILD_WEB_DIR : CLONEKIT_INSTALL_WEB_DIR;
  return !dir.empty() && std::filesystem::is_regular_file(dir + "/index.html", ec) ? dir : "";
}

Runner AddServeCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "run the manager service (REST API, clone jobs)");
  auto opts = std::make_shared<manager::ManagerOptions>();
  auto serve = std::make_shared<manager::ServeOptions>();
  opts->db_path = "/var/lib/clonekit/clonekit.db";
  cmd->add_option("--db", opts->db_path, "SQLite state file")->capture_default_str();
  cmd->add_option("--hypervisor", opts->hypervisor_uri, "libvirt URI (e.g. qemu:///system); none: VMs cannot run");
  cmd->add_option("--shutdown-timeout", opts->shutdown_timeout, "seconds a running source may take to shut down")
      ->capture_default_str();
  cmd->add_option("--copy-rate", opts->copy_rate, "limit each disk copy to this many bytes/s (e.g. 100M)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--max-clones", opts->max_clones, "copies at once; later clones wait, queued")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--max-queued", opts->max_queued, "queued clones at most; more are refused (HTTP 429)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd->add_option("--listen", serve->address, "address to listen on")->capture_default_str();
  cmd->add_option("--port", serve->port, "TCP port")->capture_default_str();
  auto token_file = std::make_shared<std::string>();
  cmd->add_option("--token-file", *token_file,
                  "the TCP door's bearer token, made (0600) at the first start (default: 'token' beside --db)");
  serve->web_dir = DefaultWebDir();
  cmd->add_option("--web", serve->web_dir, "serve the web console from this directory (\"\": none)")
      ->capture_default_str();
  serve->unix_socket = kDefaultSocket;
  cmd->add_option("--socket", serve->unix_socket,
                  "the Unix socket: root and group clonekit, no token (\"\": none)")
      ->capture_default_str();
  return [=]() {
    // Everything the service makes (database, token, clones, sockets) is
    // private unless it widens it on purpose.
    umask(077);
    if (serve->unix_socket == kDefaultSocket && mkdir("/run/clonekit", 0755) != 0 && errno != EEXIST) {
      return Fail(Status::FromErrno("/run/clonekit", "cannot make the socket's directory (--socket PATH)", errno));
    }
    const std::string db_dir = std::filesystem::path(opts->db_path).parent_path().string();
    Result<std::string> token = manager::LoadOrCreateToken(
        !token_file->empty() ? *token_file : (db_dir.empty() ? "." : db_dir) + "/token");
    if (!token.ok()) return Fail(token.status());
    serve->token = *token;
    const sigset_t stop_signals = StopSignals();
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before any thread exists
    Result<std::unique_ptr<manager::Manager>> m = manager::Manager::Open(*opts);
    if (!m.ok()) return Fail(m.status());
    manager::ApiServer server(**m, *serve);
    std::thread([&server, stop_signals] {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      server.Stop();
    }).detach();
    Status bound = server.Bind();
    if (!bound.ok()) return Fail(bound);
    std::fprintf(stderr, "clonekit: serving on http://%s:%d%s%s (state %s)\n", serve->address.c_str(), serve->port,
                 serve->unix_socket.empty() ? "" : " and ", serve->unix_socket.c_str(), opts->db_path.c_str());
    server.Serve();
    return 0;  // ~Manager cancels clones still running
  };
}

Runner AddManagerCommands(CLI::App& app) {
  auto a = std::make_shared<ClientArgs>();
  auto s = std::make_shared<std::map<std::string, std::string>>();  // positional and option values
  auto list = std::make_shared<std::vector<std::string>>();
  auto flags = std::make_shared<std::map<std::string, bool>>();
  auto chosen = std::make_shared<std::function<int(Api&)>>();

  auto pool = app.add_subcommand("pool", "storage pools (directories clones may be written to)");
  pool->require_subcommand(1);
  auto pool_add = pool->add_subcommand("add", "add a pool");
  pool_add->add_option("name", (*s)["name"])->required();
  pool_add->add_option("dir", (*s)["dir"])->required();
  pool_add->callback([=] {
    *chosen = [=](Api& api) {
      return Print(api.Call("POST", "/api/v1/pools", {{"name", (*s)["name"]}, {"dir", (*s)["dir"]}}),
                   [](const json& p) { std::printf("pool %s: %s\n", p["name"].get<std::string>().c_str(), p["dir"].get<std::string>().c_str()); },
                   a->as_json);
    };
  });
  auto pool_remove = pool->add_subcommand("remove", "remove a pool that holds no VM's disk (its files stay)");
  pool_remove->add_option("name", (*s)["name"])->required();
  pool_remove->callback([=] {
    *chosen = [=](Api& api) {
      return Print(api.Call("DELETE", "/api/v1/pools/" + (*s)["name"]),
                   [=](const json&) { std::printf("pool %s removed\n", (*s)["name"].c_str()); }, a->as_json);
    };
  });
  auto pool_list = pool->add_subcommand("list", "list pools");
  pool_list->callback([=] {
    *chosen = [=](Api& api) {
      return Print(api.Call("GET", "/api/v1/pools"), [](const json& ps) {
        for (const json& p : ps) std::printf("%-16s %s\n", p["name"].get<std::string>().c_str(), p["dir"].get<std::string>().c_str());
      }, a->as_json);
    };
  });

  auto vm = app.add_subcommand("vm", "virtual machines");
  vm->require_subcommand(1);
  vm->add_subcommand("list", "list VMs")->callback([=] {
    *chosen = [=](Api& api) { return Print(api.Call("GET", "/api/v1/vms"), VmTable, a->as_json); };
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
  clone->add_option("--description", (*s)["description"]);
  clone->add_option("--disk", *list, "per disk: TARGET=pool:POOL,format:raw|qcow2 (repeatable)");
  clone->add_flag("--no-start", (*flags)["no-start"], "do not start the clone when it is ready");
  clone->add_flag("--wait", (*flags)["wait"], "wait for the clone to finish, with a progress bar on a terminal");
  clone->callback([=] {
    *chosen = [=](Api& api) {
      Result<int64_t> id = api.VmId((*s)["vm"]);
      if (!id.ok()) return Fail(id.status());
      json body{{"snapshot", (*s)["snapshot"]}, {"start", !(*flags)["no-start"]}};
      // Left out, the service fills in the defaults (SOURCE-clone, the source's namespace).
      if (!(*s)["name"].empty()) body["name"] = (*s)["name"];
      if (!(*s)["namespace"].empty()) body["namespace"] = (*s)["namespace"];
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

  auto snap = app.add_subcommand("snapshot", "VM snapshots (the configuration is saved with each)");
  snap->require_subcommand(1);
  auto snap_create = snap->add_subcommand("create", "new overlay on every disk; the old tops become the snapshot");
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
          for (const json& sn : snaps) std::printf("%-20s %s\n", sn["name"].get<std::string>().c_str(), sn["created"].get<std::string>().c_str());
        }, a->as_json);
      };
    };
  };
  snap_create->callback(snap_run(true));
  snap_list->callback(snap_run(false));

  auto console = app.add_subcommand("console", "print the web console's address, with the token (root: reads the token file)");
  console->callback([=] {
    *chosen = [=](Api& api) {
      Result<std::string> token = api.Token();
      if (!token.ok()) return Fail(token.status());
      const std::string server = a->where.server.empty() ? (getenv("CLONEKIT_SERVER") ? getenv("CLONEKIT_SERVER") : "127.0.0.1:8470")
                                                         : a->where.server;
      std::printf("http://%s/#token=%s\n", server.c_str(), token->c_str());
      return 0;
    };
  });

  auto job = app.add_subcommand("job", "clone jobs");
  job->require_subcommand(1);
  job->add_subcommand("list", "list jobs")->callback([=] {
    *chosen = [=](Api& api) { return Print(api.Call("GET", "/api/v1/jobs"), JobTable, a->as_json); };
  });
  for (const char* verb : {"show", "cancel", "wait"}) {
    auto c = job->add_subcommand(verb, std::string(verb) + " a job");
    c->add_option("id", (*s)["job"])->required();
    c->callback([=, verb = std::string(verb)] {
      *chosen = [=](Api& api) {
        const std::string path = "/api/v1/jobs/" + (*s)["job"];
        if (verb == "wait") return WaitJob(api, std::stoll((*s)["job"]));
        if (verb == "cancel") {
          return Print(api.Call("POST", path + "/cancel"), [](const json&) { std::printf("cancel requested\n"); }, a->as_json);
        }
        return Print(api.Call("GET", path), nullptr, true);
      };
    });
  }

  for (CLI::App* c : {console, pool_add, pool_remove, pool_list, vm_show, vm_define, vm_import, vm_edit, clone, snap_create, snap_list}) {
    AddClientOptions(c, *a);
  }
  for (CLI::App* parent : {vm, job}) {
    for (CLI::App* c : parent->get_subcommands([](CLI::App*) { return true; })) {
      if (!c->get_option_no_throw("--server")) AddClientOptions(c, *a);
    }
  }
  return [=]() {
    if (!*chosen) return 2;
    Api api(a->where);
    return (*chosen)(api);
  };
}

}  // namespace clonekit::tools
