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
  // Also serve the API on this Unix socket (mode 0660; "" = none). Local
  // clients then need file permissions, not a token.
  std::string unix_socket;
};

class ApiServer {
 public:
  ApiServer(Manager& manager, ServeOptions options);
  ~ApiServer();
  // Binds the TCP address (and the Unix socket); then Serve() until Stop().
  Status Bind();
  void Serve();
  void Stop();

 private:
  void Routes(httplib::Server& s, bool check_token);
  Status BindUnix();

  Manager& manager_;
  ServeOptions options_;
  std::unique_ptr<httplib::Server> server_;       // TCP
  std::unique_ptr<httplib::Server> unix_server_;  // the Unix socket, when asked
};

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_HTTP_API_H_
