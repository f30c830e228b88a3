#include "http_api.h"

#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

namespace clonekit::manager {

namespace {

int HttpCode(const Status& s) {
  switch (s.code()) {
    case Status::Code::kInvalidArgument: return 400;
    case Status::Code::kNotFound: return 404;
    case Status::Code::kLocked:
    case Status::Code::kExists: return 409;
    default: return 500;
  }
}

void Reply(httplib::Response& res, const json& body, int code = 200) {
  res.status = code;
  res.set_content(body.dump(2) + "\n", "application/json");
}

void Reply(httplib::Response& res, const Status& s) {
  if (s.ok()) return Reply(res, json{{"ok", true}});
  Reply(res, json{{"error", s.message()}}, HttpCode(s));
}

void Reply(httplib::Response& res, Result<json> r, int ok_code = 200) {
  if (r.ok()) return Reply(res, *r, ok_code);
  Reply(res, r.status());
}

// The request body as a JSON object, or a 400 already written.
bool Body(const httplib::Request& req, httplib::Response& res, json* out) {
  *out = json::parse(req.body.empty() ? "{}" : req.body, nullptr, false);
  if (out->is_discarded() || !out->is_object()) {
    Reply(res, json{{"error", "the request body must be a JSON object"}}, 400);
    return false;
  }
  return true;
}

int64_t Id(const httplib::Request& req) { return std::stoll(req.matches[1].str()); }

std::string Str(const json& j, const char* key, const std::string& def = "") {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : def;
}

bool TokenOk(const httplib::Request& req, const std::string& token) {
  if (token.empty() || req.path.rfind("/api/", 0) != 0) return true;  // the page itself holds no secret
  return req.get_header_value("Authorization") == "Bearer " + token;
}

// The host part of a Host header ("[::1]:8470" -> "::1", "a:80" -> "a").
std::string HostName(const std::string& host) {
  if (!host.empty() && host[0] == '[') return host.substr(1, host.find(']') - 1);
  return host.substr(0, host.find(':'));
}

// Without a token the service trusts whoever can reach loopback, so a
// browser must not be turned against it: the Host must be a loopback name
// (a DNS-rebound name is refused), and a request from a page names its
// origin, which must be this service (no cross-site POST).
bool BrowserSafe(const httplib::Request& req, const std::string& token, const std::string& address) {
  const std::string host = req.get_header_value("Host");
  if (token.empty()) {
    const std::string name = HostName(host);
    if (name != "localhost" && name != "127.0.0.1" && name != "::1" && name != address) return false;
  }
  const std::string origin = req.get_header_value("Origin");
  return origin.empty() || req.method == "GET" || origin == "http://" + host;
}

// cpp-httplib 0.11 only binds TCP itself, but accepts on whatever listening
// socket it is given: this hands it a bound Unix socket.
class UnixListener : public httplib::Server {
 public:
  Status Bind(const std::string& path) {
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return Status::InvalidArgument(path, "socket path is too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::FromErrno(path, "socket", errno);
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      // Replace a stale socket, never a live one.
      if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        close(fd);
        return Status::Exists(path, "another clonekit service is listening here");
      }
      unlink(path.c_str());
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || chmod(path.c_str(), 0660) != 0 ||
        ::listen(fd, 64) != 0) {
      Status s = Status::FromErrno(path, "cannot listen", errno);
      close(fd);
      return s;
    }
    svr_sock_ = fd;
    return Status::OK();
  }
};

}  // namespace

ApiServer::ApiServer(Manager& manager, ServeOptions options)
    : manager_(manager), options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {
  Routes(*server_, /*check_token=*/true);
  if (!options_.unix_socket.empty()) {
    unix_server_ = std::make_unique<UnixListener>();
    Routes(*unix_server_, /*check_token=*/false);
  }
}

ApiServer::~ApiServer() {
  if (unix_server_) unlink(options_.unix_socket.c_str());
}

Status ApiServer::Bind() {
  if (!server_->bind_to_port(options_.address.c_str(), options_.port)) {
    return Status::IOError(options_.address + ":" + std::to_string(options_.port), "cannot listen (in use?)");
  }
  if (unix_server_) return static_cast<UnixListener&>(*unix_server_).Bind(options_.unix_socket);
  return Status::OK();
}

void ApiServer::Serve() {
  std::thread unix_thread;
  if (unix_server_) unix_thread = std::thread([this] { unix_server_->listen_after_bind(); });
  server_->listen_after_bind();
  if (unix_thread.joinable()) unix_thread.join();
}

void ApiServer::Stop() {
  server_->stop();
  if (unix_server_) unix_server_->stop();
}

void ApiServer::Routes(httplib::Server& s, bool check_token) {
  Manager& m = manager_;
  const std::string token = check_token ? options_.token : "";
  const std::string address = options_.address;
  s.set_pre_routing_handler([token, address, check_token](const httplib::Request& req, httplib::Response& res) {
    if (check_token && !BrowserSafe(req, token, address)) {
      Reply(res, json{{"error", "request refused: foreign Host or Origin"}}, 403);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (TokenOk(req, token)) return httplib::Server::HandlerResponse::Unhandled;
    Reply(res, json{{"error", "missing or wrong token (Authorization: Bearer TOKEN)"}}, 401);
    return httplib::Server::HandlerResponse::Handled;
  });
  // The console is a same-origin page: nothing runs or loads from elsewhere.
  s.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                         {"Content-Security-Policy",
                          "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                          "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"},
                         {"Referrer-Policy", "no-referrer"}});
  if (!options_.web_dir.empty()) s.set_mount_point("/", options_.web_dir);

  s.Get("/api/v1/health", [&m](const httplib::Request&, httplib::Response& res) {
    Reply(res, json{{"integrity", m.IntegrityCheck()}, {"hypervisor", m.HypervisorUri()}});
  });
  s.Get("/api/v1/pools", [&m](const httplib::Request&, httplib::Response& res) { Reply(res, m.Pools()); });
  s.Post("/api/v1/pools", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (Body(req, res, &b)) Reply(res, m.AddPool(Str(b, "name"), Str(b, "dir")), 201);
  });

  s.Get("/api/v1/vms", [&m](const httplib::Request& req, httplib::Response& res) {
    if (req.has_param("name")) {
      Result<int64_t> id = m.FindVm(req.has_param("namespace") ? req.get_param_value("namespace") : "default",
                                    req.get_param_value("name"));
      return id.ok() ? Reply(res, m.GetVm(*id)) : Reply(res, id.status());
    }
    Reply(res, m.ListVms());
  });
  s.Post("/api/v1/vms", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (Body(req, res, &b)) Reply(res, m.DefineVm(Str(b, "xml"), Str(b, "namespace", "default"), Str(b, "description")), 201);
  });
  s.Post("/api/v1/vms/import", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (!Body(req, res, &b)) return;
    std::vector<std::string> disks;
    if (b.contains("disks") && b["disks"].is_array()) {
      for (const json& d : b["disks"]) {
        if (d.is_string()) disks.push_back(d);
      }
    }
    Reply(res, m.ImportVm(Str(b, "name"), Str(b, "namespace", "default"), disks), 201);
  });
  s.Get(R"(/api/v1/vms/(\d+))", [&m](const httplib::Request& req, httplib::Response& res) { Reply(res, m.GetVm(Id(req))); });
  s.Put(R"(/api/v1/vms/(\d+))", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (!Body(req, res, &b)) return;
    std::optional<std::string> xml, description;
    if (b.contains("xml")) xml = Str(b, "xml");
    if (b.contains("description")) description = Str(b, "description");
    Reply(res, m.UpdateVm(Id(req), xml, description));
  });
  s.Delete(R"(/api/v1/vms/(\d+))", [&m](const httplib::Request& req, httplib::Response& res) { Reply(res, m.DeleteVm(Id(req))); });
  s.Post(R"(/api/v1/vms/(\d+)/start)", [&m](const httplib::Request& req, httplib::Response& res) { Reply(res, m.StartVm(Id(req))); });
  s.Post(R"(/api/v1/vms/(\d+)/stop)", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (Body(req, res, &b)) Reply(res, m.StopVm(Id(req), b.value("force", false)));
  });
  s.Get(R"(/api/v1/vms/(\d+)/snapshots)", [&m](const httplib::Request& req, httplib::Response& res) {
    Reply(res, m.ListSnapshots(Id(req)));
  });
  s.Post(R"(/api/v1/vms/(\d+)/snapshots)", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (Body(req, res, &b)) Reply(res, m.CreateSnapshot(Id(req), Str(b, "name")), 201);
  });
  s.Get(R"(/api/v1/vms/(\d+)/clone-defaults)", [&m](const httplib::Request& req, httplib::Response& res) {
    Reply(res, m.CloneDefaults(Id(req), req.has_param("snapshot") ? req.get_param_value("snapshot") : ""));
  });
  s.Post(R"(/api/v1/vms/(\d+)/clone)", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (!Body(req, res, &b)) return;
    CloneRequest r;
    r.source_vm = Id(req);
    r.snapshot = Str(b, "snapshot");
    r.name = Str(b, "name");
    r.ns = Str(b, "namespace");
    if (b.contains("description")) r.description = Str(b, "description");
    r.start = b.value("start", true);
    if (b.contains("disks") && b["disks"].is_object()) {
      for (const auto& [target, d] : b["disks"].items()) {
        if (d.is_object()) r.disks[target] = {Str(d, "pool"), Str(d, "format")};
      }
    }
    Reply(res, m.StartClone(r), 202);
  });

  s.Get("/api/v1/jobs", [&m](const httplib::Request&, httplib::Response& res) { Reply(res, m.ListJobs()); });
  s.Get(R"(/api/v1/jobs/(\d+))", [&m](const httplib::Request& req, httplib::Response& res) { Reply(res, m.GetJob(Id(req))); });
  s.Post(R"(/api/v1/jobs/(\d+)/cancel)", [&m](const httplib::Request& req, httplib::Response& res) {
    Reply(res, m.CancelJob(Id(req)));
  });

  // Server-sent events: every change, in order, from ?after=SEQ (or now).
  s.Get("/api/v1/events", [&m](const httplib::Request& req, httplib::Response& res) {
    auto last = std::make_shared<uint64_t>(req.has_param("after") ? std::stoull(req.get_param_value("after")) : 0);
    if (!req.has_param("after")) {
      json now = m.WaitEvents(0, 0);
      if (!now.empty()) *last = now.back()["seq"];
    }
    res.set_chunked_content_provider("text/event-stream", [&m, last](size_t, httplib::DataSink& sink) {
      json events = m.WaitEvents(*last, 10000);
      std::string out = events.empty() ? ": keep-alive\n\n" : "";
      for (const json& e : events) {
        *last = e["seq"];
        out += "id: " + std::to_string(*last) + "\nevent: " + e["kind"].get<std::string>() + "\ndata: " +
               e["data"].dump() + "\n\n";
      }
      return sink.write(out.data(), out.size());
    });
  });

  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    Reply(res, json{{"error", what}}, 500);
  });
}

}  // namespace clonekit::manager
