// ApiServer: the manager's JSON REST API and change feed over HTTP
// (cpp-httplib), on a Unix socket (the default door, peers checked by the
// kernel) and on TCP (always behind the bearer token). Routes only check
// the caller, decode, call Manager and encode; see docs/api.md, "Security
// model".
//
// Thread-safety: one ApiServer per process; Serve() runs on one thread and
// Stop() may be called from any other. Every connection gets its own thread
// (up to a cap), so that open event streams never starve the API.
#ifndef CLONEKIT_MANAGER_HTTP_API_H_
#define CLONEKIT_MANAGER_HTTP_API_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>

#include "manager.h"

namespace httplib {
class Server;
}

namespace clonekit::manager {

struct ServeOptions {
  std::string address = "127.0.0.1";
  int port = 8470;      // 0: no TCP listener
  std::string token;    // required (Bearer) on every TCP request to /api/
  std::string web_dir;  // static files for the web console ("" = none)
  // The Unix socket (mode 0660, group clonekit when it exists; "" = none).
  std::string unix_socket;
  size_t max_body_bytes = 1 << 20;
  int max_event_streams = 256;
};

class ApiServer {
 public:
  ApiServer(Manager& manager, ServeOptions options);
  ~ApiServer();
  // Binds the TCP address and the Unix socket. A failure leaves nothing of
  // another service touched (its socket file stays).
  [[nodiscard]] Status Bind();
  void Serve();
  void Stop();

 private:
  void Routes(httplib::Server& s, bool tcp);

  Manager& manager_;
  ServeOptions options_;
  std::unique_ptr<httplib::Server> server_;       // TCP
  std::unique_ptr<httplib::Server> unix_server_;  // the Unix socket, when asked
  bool socket_bound_ = false;                     // we made the socket file: remove it at the end
  dev_t socket_dev_ = 0;
  ino_t socket_ino_ = 0;
  std::atomic<int> event_streams_{0};
};

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_HTTP_API_H_
