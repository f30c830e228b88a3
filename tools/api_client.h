// ApiClient: the CLI's side of the manager's REST API, over libcurl. By
// default it talks over the service's Unix socket (the kernel tells the
// service who we are); with a server address it uses TCP and the bearer
// token read from the token file.
//
// The server may be a list, "HOST:PORT,HOST:PORT": an active service and
// its standbys on one PostgreSQL (a standby opens no port). A request goes
// to the one that answered last; one that cannot be connected to is passed
// over for the next, and while none answers the round is retried for up to
// 15 s (a standby takes over in about a second). Only a request that never
// reached a service is sent again: a connected one that then fails is an
// error, as a clone must not be asked twice.
//
// Thread-safety: one client per thread. Lifetime: holds no connection
// between calls.
#ifndef CLONEKIT_TOOLS_API_CLIENT_H_
#define CLONEKIT_TOOLS_API_CLIENT_H_

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "clonekit/status.h"

namespace clonekit::tools {

using json = nlohmann::ordered_json;

inline constexpr const char* kDefaultSocket = "/run/clonekit/clonekit.sock";
inline constexpr const char* kDefaultTokenFile = "/var/lib/clonekit/token";

struct ClientOptions {
  std::string socket;      // "" = $CLONEKIT_SOCKET, else kDefaultSocket
  std::string server;      // HOST:PORT[,HOST:PORT...]; "" = $CLONEKIT_SERVER, else the socket
  std::string token_file;  // for TCP: "" = $CLONEKIT_TOKEN_FILE, else kDefaultTokenFile
};

class ApiClient {
 public:
  explicit ApiClient(ClientOptions options);

  // The decoded reply, or a Status holding the service's one-line error.
  [[nodiscard]] Result<json> Call(const std::string& method, const std::string& path, const json& body = nullptr);

  // A VM reference: an id, NAME (namespace "default") or NAMESPACE/NAME.
  [[nodiscard]] Result<int64_t> VmId(const std::string& ref);

  // "http://HOST:PORT" of the TCP door (for the console's address): the
  // first of a list.
  std::string BaseUrl() const { return "http://" + (servers_.empty() ? std::string() : servers_.front()); }
  [[nodiscard]] Result<std::string> Token() const;

 private:
  // One request to one service ("" = the socket); *connected says whether
  // it reached one.
  Result<json> CallOne(const std::string& server, const std::string& method, const std::string& path,
                       const json& body, bool* connected = nullptr);

  std::string socket_, token_file_;
  std::vector<std::string> servers_;  // empty: the Unix socket
  size_t current_ = 0;                // the one that answered last

};

}  // namespace clonekit::tools

#endif  // CLONEKIT_TOOLS_API_CLIENT_H_
