#include "api_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>

#include "access.h"

namespace clonekit::tools {

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

std::string Escape(CURL* c, const std::string& s) {
  char* e = curl_easy_escape(c, s.c_str(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

}  // namespace

ApiClient::ApiClient(ClientOptions o) : socket_(o.socket), token_file_(o.token_file) {
  std::string servers = o.server.empty() ? Env("CLONEKIT_SERVER") : o.server;
  for (size_t at = 0; at < servers.size();) {
    const size_t comma = std::min(servers.find(',', at), servers.size());
    if (comma > at) servers_.push_back(servers.substr(at, comma - at));
    at = comma + 1;
  }
  if (socket_.empty()) socket_ = Env("CLONEKIT_SOCKET");
  if (socket_.empty()) socket_ = kDefaultSocket;
  if (token_file_.empty()) token_file_ = Env("CLONEKIT_TOKEN_FILE");
  if (token_file_.empty()) token_file_ = kDefaultTokenFile;
}

Result<std::string> ApiClient::Token() const { return manager::ReadToken(token_file_); }

Result<json> ApiClient::Call(const std::string& method, const std::string& path, const json& body) {
  if (servers_.size() <= 1) return CallOne(servers_.empty() ? "" : servers_.front(), method, path, body);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (;;) {
    for (size_t i = 0; i < servers_.size(); i++) {
      const size_t at = (current_ + i) % servers_.size();
      bool connected = false;
      Result<json> r = CallOne(servers_[at], method, path, body, &connected);
      if (connected) {
        current_ = at;
        return r;
      }
      if (std::chrono::steady_clock::now() >= give_up && i + 1 == servers_.size()) return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

Result<json> ApiClient::CallOne(const std::string& server, const std::string& method, const std::string& path,
                                const json& body, bool* connected) {
  std::unique_ptr<CURL, CurlDeleter> c(curl_easy_init());
  if (!c) return Status::IOError("libcurl", "cannot start a request");
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  const auto add_header = [&](const std::string& h) { headers.reset(curl_slist_append(headers.release(), h.c_str())); };
  std::string where;
  if (server.empty()) {
    curl_easy_setopt(c.get(), CURLOPT_UNIX_SOCKET_PATH, socket_.c_str());
    curl_easy_setopt(c.get(), CURLOPT_URL, ("http://localhost" + path).c_str());
    where = socket_;
  } else {
    Result<std::string> token = Token();
    if (!token.ok()) return token.status();
    add_header("Authorization: Bearer " + *token);
    curl_easy_setopt(c.get(), CURLOPT_URL, ("http://" + server + path).c_str());
    curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT, 5L);
    where = server;
  }
  const std::string payload = body.is_null() ? "{}" : body.dump();
  if (method != "GET" && method != "DELETE") {
    add_header("Content-Type: application/json");
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
  }
  curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers.get());
  std::string reply;
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &reply);
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT, 120L);
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  const CURLcode rc = curl_easy_perform(c.get());
  // Sent, or possibly sent: the request reached a service.
  curl_off_t connect_us = 0;
  curl_easy_getinfo(c.get(), CURLINFO_CONNECT_TIME_T, &connect_us);
  if (connected) *connected = rc == CURLE_OK || connect_us > 0;
  if (rc != CURLE_OK) {
    return Status::IOError(where, std::string("cannot reach the clonekit service (") + curl_easy_strerror(rc) +
                                      "); start it with: clonekit serve");
  }
  long code = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &code);
  json j = json::parse(reply, nullptr, false);
  if (j.is_discarded()) return Status::IOError(path, "the service sent a reply that is not JSON (HTTP " + std::to_string(code) + ")");
  if (code >= 400) {
    const std::string msg = j.is_object() && j.contains("error") && j["error"].is_string()
                                ? j["error"].get<std::string>()
                                : "HTTP " + std::to_string(code);
    if (code == 403) return Status::PermissionDenied(msg);
    if (code == 404) return Status::NotFound(msg);
    return Status::InvalidArgument(msg);
  }
  return j;
}

Result<int64_t> ApiClient::VmId(const std::string& ref) {
  if (!ref.empty() && ref.size() < 19 && ref.find_first_not_of("0123456789") == std::string::npos) return std::stoll(ref);
  const size_t slash = ref.find('/');
  const std::string ns = slash == std::string::npos ? "default" : ref.substr(0, slash);
  const std::string name = slash == std::string::npos ? ref : ref.substr(slash + 1);
  std::unique_ptr<CURL, CurlDeleter> c(curl_easy_init());
  Result<json> vm = Call("GET", "/api/v1/vms?namespace=" + Escape(c.get(), ns) + "&name=" + Escape(c.get(), name));
  if (!vm.ok()) return vm.status();
  return (*vm)["id"].get<int64_t>();
}

}  // namespace clonekit::tools
