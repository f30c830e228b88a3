// `clonekit serve`: the manager's service in the foreground.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "access.h"
#include "api_client.h"
#include "commands.h"
#include "http_api.h"
#include "manager.h"

namespace clonekit::tools {

namespace {

// SIGINT, SIGTERM and SIGHUP stop the service: they are blocked in every
// thread and taken by one thread with sigwait, which stops the HTTP server
// from ordinary code (not from a signal handler).
sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
  return set;
}

}  // namespace

// The console built beside this binary when it runs from the build tree,
// else the installed one; "" when neither exists.
std::string DefaultWebDir() {
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  const std::string build_root = CLONEKIT_BUILD_ROOT;
  const std::string dir = self.rfind(build_root + "/", 0) == 0 ? CLONEKIT_BUILD_WEB_DIR : CLONEKIT_INSTALL_WEB_DIR;
  return !dir.empty() && std::filesystem::is_regular_file(dir + "/index.html", ec) ? dir : "";
}

// clonekit's own path on every host, as on this one: beside this program
// in a build tree, else where it is installed.
std::string DefaultRemoteClonekit() {
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  const std::string build_root = CLONEKIT_BUILD_ROOT;
  if (self.rfind(build_root + "/", 0) == 0) return std::filesystem::path(self).parent_path() / "clonekit";
  return CLONEKIT_INSTALL_PATH;
}

Runner AddServeCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "run the manager service (REST API, clone jobs)");
  auto opts = std::make_shared<manager::ManagerOptions>();
  auto serve = std::make_shared<manager::ServeOptions>();
  opts->db_path = "/var/lib/clonekit/clonekit.db";
  cmd->add_option("--db", opts->db_path,
                  "the state: a SQLite file, or postgresql://USER@HOST/DB shared with a standby service "
                  "(password in ~/.pgpass)")
      ->capture_default_str();
  cmd->add_option("--hypervisor", opts->hypervisor_uri, "libvirt URI (e.g. qemu:///system); none: VMs cannot run");
  cmd->add_option("--shutdown-timeout", opts->shutdown_timeout, "seconds a running source may take to shut down")
      ->capture_default_str();
  cmd->add_option("--copy-rate", opts->copy_rate, "limit each disk copy to this many bytes/s (e.g. 100M)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--tpm-state-dir", opts->tpm_state_dir,
                  "where libvirt's swtpm keeps each domain's TPM state (copied for a clone's new UUID)")
      ->capture_default_str();
  auto nbd_ports = std::make_shared<std::string>("10810-10899");
  cmd->add_option("--nbd-ports", *nbd_ports,
                  "FIRST-LAST: ports a clone to another host may open there for its NBD export (TLS, a key per copy)")
      ->capture_default_str()
      ->check([](const std::string& text) -> std::string {
        int first = 0, last = 0;
        char end = 0;
        if (std::sscanf(text.c_str(), "%d-%d%c", &first, &last, &end) != 2 || first < 1024 || last > 65535 || first > last) {
          return "expected FIRST-LAST, 1024 <= FIRST <= LAST <= 65535";
        }
        return "";
      })
      // (the lambda keeps the string the option writes into alive: CLI11 holds it by reference)
      ->each([opts, nbd_ports](const std::string& text) {
        std::sscanf(text.c_str(), "%d-%d", &opts->nbd_ports.first, &opts->nbd_ports.last);
      });
  opts->remote_clonekit = DefaultRemoteClonekit();
  cmd->add_option("--remote-clonekit", opts->remote_clonekit,
                  "clonekit's path on the other hosts, which run it to read their VMs' chains (default: its path "
                  "here: the same package on every host)")
      ->capture_default_str()
      ->check([](const std::string& path) { return path.empty() || path[0] == '/' ? "" : "must be an absolute path"; });
  cmd->add_option("--max-clones", opts->max_clones, "copies at once; later clones wait, queued")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--max-queued", opts->max_queued, "queued clones at most; more are refused (HTTP 429)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd->add_option("--listen", serve->address, "address to listen on")->capture_default_str();
  cmd->add_option("--port", serve->port, "TCP port")->capture_default_str();
  auto token_file = std::make_shared<std::string>();
  cmd->add_option("--token-file", *token_file,
                  "the TCP door's bearer token, made (0600) at the first start (default: 'token' beside a --db "
                  "file, /var/lib/clonekit/token with PostgreSQL; give an active and a standby service the same one)");
  serve->web_dir = DefaultWebDir();
  cmd->add_option("--web", serve->web_dir, "serve the web console from this directory (\"\": none)")
      ->capture_default_str();
  serve->unix_socket = kDefaultSocket;
  cmd->add_option("--socket", serve->unix_socket,
                  "the Unix socket: root and group clonekit, no token (\"\": none)")
      ->capture_default_str();
  return [=]() {
    // Everything the service makes (database, token, clones, sockets) is
    // private unless it widens it on purpose.
    umask(077);
    if (serve->unix_socket == kDefaultSocket && mkdir("/run/clonekit", 0755) != 0 && errno != EEXIST) {
      return Fail(Status::FromErrno("/run/clonekit", "cannot make the socket's directory (--socket PATH)", errno));
    }
    const bool shared = manager::PostgresDatabase::IsUrl(opts->db_path);
    const std::string db_dir = shared ? "/var/lib/clonekit" : std::filesystem::path(opts->db_path).parent_path().string();
    const std::string token_path = !token_file->empty() ? *token_file : (db_dir.empty() ? "." : db_dir) + "/token";
    Result<std::string> token = manager::LoadOrCreateToken(token_path);
    if (shared) opts->state_dir = std::filesystem::path(token_path).parent_path().string();
    if (!token.ok()) return Fail(token.status());
    serve->token = *token;
    // A helper that ends before it read what we send it (ssh to a host
    // that dropped) is an error to report, not the end of the service.
    signal(SIGPIPE, SIG_IGN);
    const sigset_t stop_signals = StopSignals();
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before any thread exists
    // A stop before the service serves (a standby waiting for its turn,
    // recovery) ends it at once: a standby has nothing to finish, and
    // recovery runs again at the next start.
    static std::atomic<manager::ApiServer*> serving{nullptr};
    std::thread([stop_signals] {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      if (manager::ApiServer* s = serving.load()) {
        s->Stop();
      } else {
        std::_Exit(128 + sig);  // as if the signal had ended it
      }
    }).detach();
    auto waited = std::make_shared<std::atomic<bool>>(false);
    opts->role_events.standby = [waited](const std::string& message) {
      *waited = true;
      std::fprintf(stderr, "clonekit: standby: %s\n", message.c_str());
    };
    // Fencing: without its connection this service is no longer the
    // active one; another may be recovering its jobs already.
    opts->role_events.lost = [](const std::string& message) {
      std::fprintf(stderr, "clonekit: %s; stopping (a standby service takes over)\n", message.c_str());
      std::_Exit(75);
    };
    Result<std::unique_ptr<manager::Manager>> m = manager::Manager::Open(*opts);
    if (!m.ok()) return Fail(m.status());
    if (*waited) std::fprintf(stderr, "clonekit: active: took over %s\n", (*m)->DatabaseName().c_str());
    manager::ApiServer server(**m, *serve);
    Status bound = server.Bind();
    if (!bound.ok()) return Fail(bound);
    serving = &server;
    std::fprintf(stderr, "clonekit: serving on http://%s:%d%s%s (state %s)\n", serve->address.c_str(), serve->port,
                 serve->unix_socket.empty() ? "" : " and ", serve->unix_socket.c_str(), (*m)->DatabaseName().c_str());
    server.Serve();
    serving = nullptr;
    return 0;  // ~Manager cancels clones still running
  };
}

}  // namespace clonekit::tools
