#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string_view>
#include <thread>

#include "unique_fd.h"

namespace clonekit::manager {

namespace {

// The first line of what the child wrote to fd, or "".
std::string FirstLineOf(int fd) {
  std::string line;
  char buf[512];
  const ssize_t n = pread(fd, buf, sizeof buf, 0);
  if (n > 0) line.assign(buf, static_cast<size_t>(n));
  return line.substr(0, line.find('\n'));
}

// The last line that is not empty of what the child wrote to fd (ssh may
// print a banner or warnings first), printable ASCII only, or "".
std::string LastLineOf(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return "";
  const off_t from = st.st_size > 4096 ? st.st_size - 4096 : 0;
  std::string text(static_cast<size_t>(st.st_size - from), '\0');
  const ssize_t n = pread(fd, text.data(), text.size(), from);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  // (CLI11's last word is this; what it refused is the line before.)
  constexpr std::string_view kHelp = "Run with --help for more information.";
  if (text.size() > kHelp.size() && text.compare(text.size() - kHelp.size(), kHelp.size(), kHelp) == 0) {
    text.resize(text.size() - kHelp.size());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  }
  std::string line = text.substr(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return line.substr(0, 300);
}

// execvp's argv, built before fork: pointers into argv's strings.
std::vector<char*> ExecArgs(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  return args;
}

// In a child, before exec: the signals the service blocks (its stop
// signals: a thread waits for them) or ignores (SIGPIPE) are the program's
// own again. Async-signal-safe calls only.
void DefaultSignals() {
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace

Result<std::string> Capture(const std::vector<std::string>& argv, int timeout_seconds, size_t max_output) {
  UniqueFd out(open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  UniqueFd err(open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!out || !err) return Status::FromErrno("/tmp", "cannot make a file for a helper's output", errno);
  std::vector<char*> args = ExecArgs(argv);
  const pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(argv[0], "cannot start", errno);
  if (pid == 0) {
    const int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    dup2(out.get(), 1);
    dup2(err.get(), 2);
    close_range(3, ~0U, 0);  // (not the service's sockets: they would outlive it in a stuck child)
    setpgid(0, 0);           // (its own group: a timeout kills what it started too)
    DefaultSignals();
    // Output is bounded as it is written, not after: past the limit the
    // child gets SIGXFSZ.
    const struct rlimit most = {max_output + 4096, max_output + 4096};
    setrlimit(RLIMIT_FSIZE, &most);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return Status::FromErrno(argv[0], "cannot wait for it", errno);
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return Status::IOError(argv[0], "no answer within " + std::to_string(timeout_seconds) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ) return Status::IOError(argv[0], "answered more than expected");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string line = LastLineOf(err.get());
    return Status::IOError(argv[0], line.empty() ? "failed" : line);
  }
  struct stat st;
  if (fstat(out.get(), &st) != 0) return Status::FromErrno(argv[0], "cannot read its output", errno);
  if (static_cast<size_t>(st.st_size) > max_output) return Status::IOError(argv[0], "answered more than expected");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  if (!text.empty() && pread(out.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    return Status::FromErrno(argv[0], "cannot read its output", errno);
  }
  return text;
}

Status Stream(const std::vector<std::string>& argv, const std::string& input,
              const std::function<void(std::string_view)>& on_output, const std::atomic<bool>* cancel,
              int heartbeat_seconds) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return Status::FromErrno(argv[0], "cannot make a pipe", errno);
  UniqueFd in_read(in[0]), in_write(in[1]);
  if (pipe2(out, O_CLOEXEC) != 0) return Status::FromErrno(argv[0], "cannot make a pipe", errno);
  UniqueFd out_read(out[0]), out_write(out[1]);
  UniqueFd err(open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!err) return Status::FromErrno("/tmp", "cannot make a file for a helper's output", errno);
  std::vector<char*> args = ExecArgs(argv);
  const pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(argv[0], "cannot start", errno);
  if (pid == 0) {
    dup2(in_read.get(), 0);
    dup2(out_write.get(), 1);
    dup2(err.get(), 2);
    close_range(3, ~0U, 0);
    setpgid(0, 0);  // (its own group: cancel ends what it started too)
    DefaultSignals();
    const struct rlimit most = {1 << 20, 1 << 20};  // (its stderr, a file: bounded)
    setrlimit(RLIMIT_FSIZE, &most);
    execvp(args[0], args.data());
    _exit(127);
  }
  in_read.reset();
  out_write.reset();
  // The input is a line or two: the pipe's buffer takes it whole.
  const bool sent = input.empty() || write(in_write.get(), input.data(), input.size()) == static_cast<ssize_t>(input.size());
  fcntl(in_write.get(), F_SETFL, O_NONBLOCK);  // (a beat never blocks the loop)
  bool cancelled = false;
  char buf[4096];
  auto beat = std::chrono::steady_clock::now();
  for (;;) {
    if (heartbeat_seconds > 0 && std::chrono::steady_clock::now() - beat >= std::chrono::seconds(heartbeat_seconds)) {
      beat = std::chrono::steady_clock::now();
      // (a full pipe or a reader gone: nothing to do; the next beat tries again)
      const ssize_t wrote = write(in_write.get(), "\n", 1);
      (void)wrote;
    }
    if (cancel && *cancel && !cancelled) {
      cancelled = true;
      kill(-pid, SIGTERM);
      kill(pid, SIGTERM);
    }
    struct pollfd p = {out_read.get(), POLLIN, 0};
    const int r = poll(&p, 1, 100);
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    const ssize_t n = read(out_read.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the child (and all it started) closed its stdout
    on_output(std::string_view(buf, static_cast<size_t>(n)));
  }
  in_write.reset();
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (cancelled) return Status::Cancelled("cancelled");
  if (!sent) return Status::IOError(argv[0], "did not take its input");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string line = LastLineOf(err.get());
    return Status::IOError(argv[0], line.empty() ? "failed" : line);
  }
  return Status::OK();
}

Status Run(const std::vector<std::string>& argv, int pass_fd) {
  // stderr goes to an anonymous file, read back for the error line.
  UniqueFd err(open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  std::vector<char*> args = ExecArgs(argv);
  const pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(argv[0], "cannot start", errno);
  if (pid == 0) {
    if (err) dup2(err.get(), 2);
    if (pass_fd >= 0) {
      if (pass_fd == 3) {
        fcntl(3, F_SETFD, 0);
      } else {
        dup2(pass_fd, 3);  // (dup2 clears close-on-exec)
      }
    }
    close_range(pass_fd >= 0 ? 4 : 3, ~0U, 0);  // (the service's sockets stay with it)
    DefaultSignals();
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::OK();
  const std::string line = err ? FirstLineOf(err.get()) : "";
  return Status::IOError(argv[0], line.empty() ? "failed" : line);
}

}  // namespace clonekit::manager
