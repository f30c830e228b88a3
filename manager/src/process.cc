#include "process.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "unique_fd.h"

namespace clonekit::manager {

Status Run(const std::vector<std::string>& argv, int pass_fd) {
  // stderr goes to an anonymous file, read back for the error line.
  UniqueFd err(open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
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
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::OK();
  std::string line;
  if (err) {
    char buf[512];
    const ssize_t n = pread(err.get(), buf, sizeof buf, 0);
    if (n > 0) line.assign(buf, static_cast<size_t>(n));
    line = line.substr(0, line.find('\n'));
  }
  return Status::IOError(argv[0], line.empty() ? "failed" : line);
}

}  // namespace clonekit::manager
