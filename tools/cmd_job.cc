// `clonekit job list|show|cancel|wait` and `clonekit console` (the web console's address).
#include <sstream>

#include "client_commands.h"
#include "commands.h"

namespace clonekit::tools {

std::vector<CLI::App*> AddJobCommands(CLI::App& app, Context c) {
  auto a = std::shared_ptr<ClientArgs>(c, &c->args);
  auto s = std::shared_ptr<std::map<std::string, std::string>>(c, &c->values);
  auto chosen = std::shared_ptr<std::function<int(Api&)>>(c, &c->chosen);
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

  return [&] { auto v = job->get_subcommands([](CLI::App*) { return true; }); v.push_back(console); return v; }();
}

}  // namespace clonekit::tools
