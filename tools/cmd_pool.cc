// `clonekit pool add|remove|list`: storage pools (root on the socket to change them).
#include <sstream>

#include "client_commands.h"
#include "commands.h"

namespace clonekit::tools {

std::vector<CLI::App*> AddPoolCommands(CLI::App& app, Context c) {
  auto a = std::shared_ptr<ClientArgs>(c, &c->args);
  auto s = std::shared_ptr<std::map<std::string, std::string>>(c, &c->values);
  auto chosen = std::shared_ptr<std::function<int(Api&)>>(c, &c->chosen);
  auto pool = app.add_subcommand("pool", "storage pools (directories clones may be written to)");
  pool->require_subcommand(1);
  auto pool_add = pool->add_subcommand("add", "add a pool");
  pool_add->add_option("name", (*s)["name"])->required();
  pool_add->add_option("dir", (*s)["dir"])->required();
  auto hosts = std::make_shared<std::vector<std::string>>();
  pool_add->add_option("--host", *hosts, "the host it is on (default: local); several: shared by them, same path on each");
  pool_add->callback([=] {
    *chosen = [=](Api& api) {
      json body = {{"name", (*s)["name"]}, {"dir", (*s)["dir"]}};
      if (!hosts->empty()) body["hosts"] = *hosts;
      return Print(api.Call("POST", "/api/v1/pools", body),
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
        for (const json& p : ps) {
          std::string hosts;
          for (const json& h : p["hosts"]) hosts += (hosts.empty() ? "" : ",") + h.get<std::string>();
          std::printf("%-16s %-40s %s\n", p["name"].get<std::string>().c_str(), p["dir"].get<std::string>().c_str(), hosts.c_str());
        }
      }, a->as_json);
    };
  });

  return {pool_add, pool_remove, pool_list};
}

}  // namespace clonekit::tools
