// ApiClient: the CLI's side of the manager's REST API, over libcurl. By
// default it talks over the service's Unix socket (the kernel tells the
// service who we are); with a server address it uses TCP and the bearer
// token read from the token file.
//
// Thread-safety: one client per thread. Lifetime: holds no connection
// between calls.
#ifndef CLONEKIT_TOOLS_API_CLIENT_H_
#define CLONEKIT_TOOLS_API_CLIENT_H_

#include <nlohmann/json.hpp>

#include <string>

#include "clonekit/status.h"

namespace clonekit::tools {

using json = nlohmann::ordered_json;

inline constexpr const char* kDefaultSocket = "/run/clonekit/clonekit.sock";
inline constexpr const char* kDefaultTokenFile = "/var/lib/clonekit/token";

struct ClientOptions {
  std::string socket;      // "" = $CLONEKIT_SOCKET, else kDefaultSocket
  std::string server;      // HOST:PORT; "" = $CLONEKIT_SERVER, else the socket
  std::string token_file;  // for TCP: "" = $CLONEKIT_TOKEN_FILE, else kDefaultTokenFile
};

class ApiClient {
 public:
  explicit ApiClient(ClientOptions options);

  // The decoded reply, or a Status holding the service's one-line error.
  [[nodiscard]] Result<json> Call(const std::string& method, const std::string& path, const json& body = nullptr);

  // A VM reference: an id, NAME (namespace "default") or NAMESPACE/NAME.
  [[nodiscard]] Result<int64_t> VmId(const std::string& ref);

  // "http://HOST:PORT" of the TCP door (for the console's address).
  std::string BaseUrl() const { return "http://" + server_; }
  [[nodiscard]] Result<std::string> Token() const;

 private:
  std::string socket_, server_, token_file_;
};

}  // namespace clonekit::tools

#endif  // CLONEKIT_TOOLS_API_CLIENT_H_
