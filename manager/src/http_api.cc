#include "http_api.h"

#include <grp.h>
#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "access.h"
#include "api_json.h"
#include "unique_fd.h"

namespace clonekit::manager {

namespace {

// Who sent the request. On the Unix socket cpp-httplib puts the peer's pid
// (SO_PEERCRED) in the remote port.
Caller CallerOf(const httplib::Request& req, bool tcp) {
  if (tcp) return Caller{Caller::Door::kTcp, static_cast<uid_t>(-1)};
  uid_t uid = static_cast<uid_t>(-1);
  if (!PeerAllowed(static_cast<pid_t>(req.remote_port), &uid)) return Caller{Caller::Door::kUnixSocket, static_cast<uid_t>(-1)};
  return Caller{Caller::Door::kUnixSocket, uid};
}

void Reply(httplib::Response& res, const json& body, int code = 200) {
  res.status = code;
  res.set_content(body.dump(2, ' ', false, json::error_handler_t::replace) + "\n", "application/json");
}

void Reply(httplib::Response& res, const Status& s) {
  if (s.ok()) return Reply(res, json{{"ok", true}});
  Reply(res, ErrorJson(s), HttpCode(s));
}

// A view encoded, or its error.
template <typename T, typename Encode>
void Reply(httplib::Response& res, Result<T> r, Encode encode, int ok_code = 200) {
  if (r.ok()) return Reply(res, encode(*r), ok_code);
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

// A path id: the routes' patterns only match digits; a number too large is
// no VM or job of ours.
int64_t Id(const httplib::Request& req) {
  const std::string s = req.matches[1].str();
  return s.size() > 18 ? -1 : std::stoll(s);
}

// The host part of a Host header ("[::1]:8470" -> "::1", "a:80" -> "a").
std::string HostName(const std::string& host) {
  if (!host.empty() && host[0] == '[') return host.substr(1, host.find(']') - 1);
  return host.substr(0, host.find(':'));
}

bool IsLoopbackName(const std::string& name) {
  return name == "localhost" || name == "127.0.0.1" || name == "::1";
}

// A browser must not be turned against the service even with a token in
// its storage: on loopback the Host must be a loopback name (a DNS-rebound
// name is refused), and a request from a page names its origin, which must
// be this service (no cross-site request).
bool BrowserSafe(const httplib::Request& req, const std::string& address) {
  const std::string host = req.get_header_value("Host");
  if (IsLoopbackName(address) && !IsLoopbackName(HostName(host))) return false;
  const std::string origin = req.get_header_value("Origin");
  return origin.empty() || origin == "http://" + host;
}

bool JsonContentType(const httplib::Request& req) {
  std::string type = req.get_header_value("Content-Type");
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  return type == "application/json";
}

// Whether this thread is the reserve one (below): it does not serve the
// change feed, whose stream would hold it for as long as the client stays.
thread_local bool on_reserve_thread = false;

// One thread per connection, so that a long-lived event stream holds only
// its own thread; at most kMaxThreads at once, later connections wait for
// one to end, and past kMaxPending the service stops accepting (a flood is
// slowed by the kernel's backlog, never runs the service out of sockets).
// When no thread can be made (pthread_create's EAGAIN: out of threads) a
// connection waits in the same queue, bounded alike, and the reserve
// thread, made at the start, serves it if no connection thread does first:
// the accepting thread never serves one, and nothing throws (the service
// died at the first connection).
class ConnectionThreads : public httplib::TaskQueue {
 public:
  static constexpr int kMaxThreads = 512;
  static constexpr size_t kMaxPending = 256;
  ConnectionThreads() : reserve_([this] { Reserve(); }) {}
  ~ConnectionThreads() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    work_.notify_all();
    reserve_.join();
  }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (active_ < kMaxThreads) {
      // (Shared: a thread that cannot be made takes its copy with it.)
      auto task = std::make_shared<std::function<void()>>(std::move(fn));
      try {
        std::thread thread([this, task] { Run(std::move(*task)); });
        active_++;
        thread.detach();
        return;
      } catch (const std::system_error& e) {
        std::fprintf(stderr, "clonekit: out of threads (%s): a connection waits for the reserve thread\n", e.what());
        fn = std::move(*task);
      }
    }
    // Runs on the accepting thread: waiting here stops accepting, and the
    // kernel's backlog pushes back on a flood (no unbounded queue of open
    // sockets).
    room_.wait(lock, [&] { return pending_.size() < kMaxPending; });
    pending_.push_back(std::move(fn));
    work_.notify_one();
  }
  void shutdown() override {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return active_ == 0 && pending_.empty() && !reserve_busy_; });
  }

 private:
  // A connection thread serves its connection, then whatever waits.
  void Run(std::function<void()> fn) {
    for (;;) {
      fn();
      std::lock_guard<std::mutex> lock(mu_);
      if (pending_.empty()) {
        if (--active_ == 0) done_.notify_all();
        return;
      }
      fn = std::move(pending_.front());
      pending_.pop_front();
      room_.notify_one();
    }
  }
  void Reserve() {
    on_reserve_thread = true;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      work_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (stopping_) return;
      std::function<void()> fn = std::move(pending_.front());
      pending_.pop_front();
      room_.notify_one();
      reserve_busy_ = true;
      lock.unlock();
      fn();
      lock.lock();
      reserve_busy_ = false;
      done_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable done_, room_, work_;
  std::deque<std::function<void()>> pending_;
  int active_ = 0;
  bool reserve_busy_ = false;
  bool stopping_ = false;
  std::thread reserve_;  // (last: it starts once the rest is set)
};

// Only SO_REUSEADDR: cpp-httplib's default SO_REUSEPORT would let a second
// service bind the same port and take half the requests.
void ListenSocketOptions(int sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

// cpp-httplib 0.11 only binds TCP itself, but accepts on whatever listening
// socket it is given: this hands it a bound Unix socket.
class UnixListener : public httplib::Server {
 public:
  Status Bind(const std::string& path, dev_t* dev, ino_t* ino) {
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return Status::InvalidArgument(path, "socket path is too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return Status::FromErrno(path, "socket", errno);
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) return Status::Exists(path, "exists and is not a socket");
      // Replace a stale socket, never a live one.
      UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        return Status::Exists(path, "another clonekit service is listening here");
      }
      unlink(path.c_str());
    }
    // The socket file is born 0600 (umask), then opened to the group.
    const mode_t old = umask(0177);
    const int bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    umask(old);
    if (bound != 0) return Status::FromErrno(path, "cannot listen", errno);
    if (const group* g = getgrnam(kClientGroup)) {
      if (chown(path.c_str(), 0, g->gr_gid) != 0) return Status::FromErrno(path, "cannot give the socket to group clonekit", errno);
    }
    if (chmod(path.c_str(), 0660) != 0 || ::listen(fd.get(), 64) != 0 || stat(path.c_str(), &st) != 0) {
      Status s = Status::FromErrno(path, "cannot listen", errno);
      unlink(path.c_str());
      return s;
    }
    *dev = st.st_dev;
    *ino = st.st_ino;
    svr_sock_ = fd.release();
    return Status::OK();
  }

};

}  // namespace

ApiServer::ApiServer(Manager& manager, ServeOptions options)
    : manager_(manager), options_(std::move(options)) {
  if (options_.port != 0) {
    server_ = std::make_unique<httplib::Server>();
    Routes(*server_, /*tcp=*/true);
  }
  if (!options_.unix_socket.empty()) {
    unix_server_ = std::make_unique<UnixListener>();
    Routes(*unix_server_, /*tcp=*/false);
  }
}

ApiServer::~ApiServer() {
  // Only the socket file this service made: a failed start must not remove
  // a live service's socket.
  struct stat st;
  if (socket_bound_ && lstat(options_.unix_socket.c_str(), &st) == 0 && st.st_dev == socket_dev_ &&
      st.st_ino == socket_ino_) {
    unlink(options_.unix_socket.c_str());
  }
}

Status ApiServer::Bind() {
  if (server_ && !server_->bind_to_port(options_.address.c_str(), options_.port)) {
    return Status::IOError(options_.address + ":" + std::to_string(options_.port), "cannot listen (in use?)");
  }
  if (unix_server_) {
    CLONEKIT_RETURN_IF_ERROR(
        static_cast<UnixListener&>(*unix_server_).Bind(options_.unix_socket, &socket_dev_, &socket_ino_));
    socket_bound_ = true;
  }
  return Status::OK();
}

void ApiServer::Serve() {
  std::thread unix_thread;
  if (unix_server_) unix_thread = std::thread([this] { unix_server_->listen_after_bind(); });
  if (server_) server_->listen_after_bind();
  if (unix_thread.joinable()) unix_thread.join();
}

void ApiServer::Stop() {
  if (server_) server_->stop();
  if (unix_server_) unix_server_->stop();
}

void ApiServer::Routes(httplib::Server& s, bool tcp) {
  Manager& m = manager_;
  const std::string token = options_.token;
  const std::string address = options_.address;
  s.new_task_queue = [] { return new ConnectionThreads; };
  s.set_socket_options(ListenSocketOptions);
  s.set_payload_max_length(options_.max_body_bytes);
  s.set_pre_routing_handler([token, address, tcp](const httplib::Request& req, httplib::Response& res) {
    if (tcp && !BrowserSafe(req, address)) {
      Reply(res, json{{"error", "request refused: foreign Host or Origin"}}, 403);
      return httplib::Server::HandlerResponse::Handled;
    }
    const bool api = req.path.rfind("/api/", 0) == 0;  // the page itself holds no secret
    if (!tcp && CallerOf(req, tcp).uid == static_cast<uid_t>(-1)) {
      Reply(res, Status::PermissionDenied("refused: only root and group clonekit may use this socket"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (tcp && api) {
      std::string presented = req.get_header_value("Authorization");
      if (presented.rfind("Bearer ", 0) != 0 || !TokenEquals(presented.substr(7), token)) {
        Reply(res, json{{"error", "missing or wrong token (Authorization: Bearer TOKEN; see the token file)"}}, 401);
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    // No form or text/plain post (which a page may send anywhere) gets in.
    if (api && (req.method == "POST" || req.method == "PUT") && !JsonContentType(req)) {
      Reply(res, json{{"error", "the request body must be sent as Content-Type: application/json"}}, 415);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // The console is a same-origin page: nothing runs or loads from elsewhere.
  s.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                         {"Content-Security-Policy",
                          "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                          "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"},
                         {"Referrer-Policy", "no-referrer"}});
  if (!options_.web_dir.empty()) s.set_mount_point("/", options_.web_dir);

  s.Get("/api/v1/health", [&m](const httplib::Request&, httplib::Response& res) {
    Reply(res, json{{"integrity", m.IntegrityCheck()}, {"hypervisor", m.HypervisorUri()}, {"database", m.DatabaseEngine()}});
  });
  // Root on the socket gets a fresh answer; others may get one up to 10 s old.
  s.Get("/api/v1/hosts", [&m, tcp](const httplib::Request& req, httplib::Response& res) {
    Reply(res, EncodeHosts(m.Hosts(CallerOf(req, tcp).admin())));
  });
  s.Post("/api/v1/hosts", [&m, tcp](const httplib::Request& req, httplib::Response& res) {
    if (!CallerOf(req, tcp).admin()) return Reply(res, Status::PermissionDenied("hosts: adding one needs root on the Unix socket"));
    json b;
    if (!Body(req, res, &b)) return;
    Result<HostRequest> r = DecodeHost(b);
    Reply(res, r.ok() ? m.AddHost(r->name, r->uri, r->ssh) : Result<HostView>(r.status()), EncodeHost, 201);
  });
  s.Delete(R"(/api/v1/hosts/([A-Za-z0-9._-]+))", [&m, tcp](const httplib::Request& req, httplib::Response& res) {
    if (!CallerOf(req, tcp).admin()) return Reply(res, Status::PermissionDenied("hosts: removing one needs root on the Unix socket"));
    // ?forget=true: a host that is gone, with its VMs' and pools' entries.
    const std::string forget = req.has_param("forget") ? req.get_param_value("forget") : "false";
    if (forget != "true" && forget != "false") {
      return Reply(res, Status::InvalidArgument("parameter 'forget'", "must be true or false"));
    }
    if (forget == "true") return Reply(res, m.ForgetHost(req.matches[1].str()), EncodeForgottenHost);
    Reply(res, m.RemoveHost(req.matches[1].str()));
  });
  s.Get("/api/v1/pools", [&m](const httplib::Request&, httplib::Response& res) { Reply(res, EncodePools(m.Pools())); });
  s.Post("/api/v1/pools", [&m, tcp](const httplib::Request& req, httplib::Response& res) {
    if (!CallerOf(req, tcp).admin()) return Reply(res, Status::PermissionDenied("pools: adding one needs root on the Unix socket"));
    json b;
    if (!Body(req, res, &b)) return;
    Result<PoolRequest> r = DecodePool(b);
    Reply(res, r.ok() ? m.AddPool(r->name, r->dir, r->hosts) : Result<Pool>(r.status()), EncodePool, 201);
  });
  s.Delete(R"(/api/v1/pools/([A-Za-z0-9._-]+))", [&m, tcp](const httplib::Request& req, httplib::Response& res) {
    if (!CallerOf(req, tcp).admin()) return Reply(res, Status::PermissionDenied("pools: removing one needs root on the Unix socket"));
    Reply(res, m.RemovePool(req.matches[1].str()));
  });

  s.Get("/api/v1/vms", [&m](const httplib::Request& req, httplib::Response& res) {
    if (req.has_param("name")) {
      Result<int64_t> id = m.FindVm(req.has_param("namespace") ? req.get_param_value("namespace") : "default",
                                    req.get_param_value("name"));
      return id.ok() ? Reply(res, m.GetVm(*id), EncodeVm) : Reply(res, id.status());
    }
    Reply(res, EncodeVms(m.ListVms(req.has_param("host") ? std::optional<std::string>(req.get_param_value("host"))
                                                         : std::nullopt)));
  });
  s.Post("/api/v1/vms", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (!Body(req, res, &b)) return;
    Result<DefineRequest> r = DecodeDefine(b);
    Reply(res, r.ok() ? m.DefineVm(r->xml, r->ns, r->description) : Result<VmView>(r.status()), EncodeVm, 201);
  });
  s.Post("/api/v1/vms/import", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (!Body(req, res, &b)) return;
    Result<ImportRequest> r = DecodeImport(b);
    Reply(res, r.ok() ? m.ImportVm(r->name, r->ns, r->disks) : Result<VmView>(r.status()), EncodeVm, 201);
  });
  s.Get(R"(/api/v1/vms/(\d+))", [&m](const httplib::Request& req, httplib::Response& res) { Reply(res, m.GetVm(Id(req)), EncodeVm); });
  s.Put(R"(/api/v1/vms/(\d+))", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (!Body(req, res, &b)) return;
    Result<UpdateRequest> r = DecodeUpdate(b);
    Reply(res, r.ok() ? m.UpdateVm(Id(req), r->xml, r->description, r->vcpus, r->memory_mib) : Result<VmView>(r.status()),
          EncodeVm);
  });
  s.Delete(R"(/api/v1/vms/(\d+))", [&m](const httplib::Request& req, httplib::Response& res) { Reply(res, m.DeleteVm(Id(req))); });
  s.Post(R"(/api/v1/vms/(\d+)/start)", [&m](const httplib::Request& req, httplib::Response& res) { Reply(res, m.StartVm(Id(req))); });
  s.Post(R"(/api/v1/vms/(\d+)/stop)", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (!Body(req, res, &b)) return;
    Result<bool> force = DecodeStop(b);
    Reply(res, force.ok() ? m.StopVm(Id(req), *force) : force.status());
  });
  s.Get(R"(/api/v1/vms/(\d+)/snapshots)", [&m](const httplib::Request& req, httplib::Response& res) {
    Reply(res, m.ListSnapshots(Id(req)), EncodeSnapshots);
  });
  s.Post(R"(/api/v1/vms/(\d+)/snapshots)", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (!Body(req, res, &b)) return;
    Result<std::string> name = DecodeSnapshot(b);
    Reply(res, name.ok() ? m.CreateSnapshot(Id(req), *name) : Result<std::vector<SnapshotView>>(name.status()),
          EncodeSnapshots, 201);
  });
  s.Delete(R"(/api/v1/vms/(\d+)/snapshots/([^/]+))", [&m](const httplib::Request& req, httplib::Response& res) {
    Reply(res, m.DeleteSnapshot(Id(req), req.matches[2].str()));
  });
  s.Post(R"(/api/v1/vms/(\d+)/flatten)", [&m](const httplib::Request& req, httplib::Response& res) {
    Reply(res, m.Flatten(Id(req)), EncodeJob, 202);
  });
  s.Get(R"(/api/v1/vms/(\d+)/clone-defaults)", [&m](const httplib::Request& req, httplib::Response& res) {
    Reply(res,
          m.Defaults(Id(req), req.has_param("snapshot") ? req.get_param_value("snapshot") : "",
                     req.has_param("host") ? req.get_param_value("host") : ""),
          EncodeDefaults);
  });
  s.Post(R"(/api/v1/vms/(\d+)/clone)", [&m](const httplib::Request& req, httplib::Response& res) {
    json b;
    if (!Body(req, res, &b)) return;
    Result<CloneRequest> r = DecodeClone(b);
    if (!r.ok()) return Reply(res, r.status());
    r->source_vm = Id(req);
    Reply(res, m.StartClone(*r), EncodeJob, 202);
  });

  s.Get("/api/v1/jobs", [&m](const httplib::Request&, httplib::Response& res) { Reply(res, EncodeJobs(m.ListJobs())); });
  s.Get(R"(/api/v1/jobs/(\d+))", [&m](const httplib::Request& req, httplib::Response& res) { Reply(res, m.GetJob(Id(req)), EncodeJob); });
  s.Post(R"(/api/v1/jobs/(\d+)/cancel)", [&m](const httplib::Request& req, httplib::Response& res) {
    Reply(res, m.CancelJob(Id(req)));
  });

  // Server-sent events: every change, in order, from ?after=SEQ (or now).
  // Each stream holds one connection thread, never an API worker; at most
  // max_event_streams at once.
  s.Get("/api/v1/events", [this, &m](const httplib::Request& req, httplib::Response& res) {
    uint64_t after = 0;
    if (req.has_param("after")) {
      const std::string a = req.get_param_value("after");
      if (a.empty() || a.size() > 19 || a.find_first_not_of("0123456789") != std::string::npos) {
        return Reply(res, Status::InvalidArgument("after", "must be an event number"));
      }
      after = std::stoull(a);
    }
    if (on_reserve_thread) {
      return Reply(res, Status::Busy("events: the service is out of threads; try again later"));
    }
    if (event_streams_.fetch_add(1) >= options_.max_event_streams) {
      event_streams_--;
      return Reply(res, Status::Busy("events: too many open event streams (" +
                                     std::to_string(options_.max_event_streams) + "); close one"));
    }
    // No number, or one this service has not reached (from a service on a
    // host whose clock is ahead): from now.
    auto last = std::make_shared<uint64_t>(req.has_param("after") ? std::min(after, m.LastEvent()) : m.LastEvent());
    res.set_chunked_content_provider(
        "text/event-stream",
        [&m, last](size_t, httplib::DataSink& sink) {
          json events = m.WaitEvents(*last, 10000);
          std::string out = events.empty() ? ": keep-alive\n\n" : "";
          for (const json& e : events) {
            *last = e["seq"];
            out += "id: " + std::to_string(*last) + "\nevent: " + e["kind"].get<std::string>() + "\ndata: " +
                   e["data"].dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
          }
          return sink.write(out.data(), out.size());
        },
        [this](bool) { event_streams_--; });
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
