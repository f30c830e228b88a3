// ApiServer: the manager's JSON REST API and change feed over HTTP
// (cpp-httplib). Routes only parse, call Manager and encode; see docs/api.md.
#ifndef CLONEKIT_MANAGER_HTTP_API_H_
#define CLONEKIT_MANAGER_HTTP_API_H_

#include <memory>
#include <string>

#include "manager.h"

namespace httplib {
class Server;
}

namespace clonekit::manager {

struct ServeOptions {
  std::string address = "127.0.0.1";
  int port = 8470;
  std::string token;    // required (Bearer) when set; must be set off loopback
  std::string web_dir;  // static files for the web console ("" = none)
};

class ApiServer {
 public:
  ApiServer(Manager& manager, ServeOptions options);
  ~ApiServer();
  // Serves until Stop(); fails at once if the address cannot be bound.
  Status Run();
  void Stop();

 private:
  void Routes();

  Manager& manager_;
  ServeOptions options_;
  std::unique_ptr<httplib::Server> server_;
};

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_HTTP_API_H_
