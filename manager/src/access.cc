#include "access.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "unique_fd.h"

namespace clonekit::manager {

bool PeerAllowed(pid_t pid, uid_t* uid) {
  if (pid <= 0) return false;
  const group* g = getgrnam(kClientGroup);
  bool found = false, allowed = true;
  uid_t least = 0;
  DIR* fds = opendir("/proc/self/fd");
  if (!fds) return false;
  while (dirent* e = readdir(fds)) {
    const int fd = std::atoi(e->d_name);
    if (e->d_name[0] == '.' || fd == dirfd(fds)) continue;
    ucred cred{};
    socklen_t len = sizeof cred;
    int domain = 0;
    socklen_t dlen = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) != 0 || domain != AF_UNIX) continue;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid != pid) continue;
    found = true;
    if (cred.uid != 0) least = cred.uid;
    bool member = cred.uid == 0 || (g && cred.gid == g->gr_gid);
    if (!member && g) {
      std::vector<gid_t> groups(256);
      socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
      if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
        for (size_t i = 0; i < glen / sizeof(gid_t); i++) member = member || groups[i] == g->gr_gid;
      }
    }
    allowed = allowed && member;
  }
  closedir(fds);
  *uid = least;
  return found && allowed;
}

namespace {

Result<std::string> ReadSecret(const std::string& path, bool check_owner) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return Status::FromErrno(path, "cannot read the token file", errno);
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(path, "the token file is not a regular file");
  }
  if (check_owner && (st.st_uid != geteuid() || (st.st_mode & 077) != 0)) {
    return Status::InvalidArgument(path, "the token file must be owned by the service's user with mode 0600");
  }
  char buf[256];
  const ssize_t n = read(fd.get(), buf, sizeof buf);
  if (n < 0) return Status::FromErrno(path, "cannot read the token file", errno);
  std::string token(buf, static_cast<size_t>(n));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.size() < 16 || token.size() > 128) return Status::InvalidArgument(path, "the token must be 16-128 characters");
  return token;
}

}  // namespace

Result<std::string> LoadOrCreateToken(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) {
    if (errno == EEXIST) return ReadSecret(path, /*check_owner=*/true);
    return Status::FromErrno(path, "cannot create the token file", errno);
  }
  unsigned char raw[32];
  if (getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
    unlink(path.c_str());
    return Status::FromErrno(path, "no randomness for the token", errno);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char b : raw) {
    token += kHex[b >> 4];
    token += kHex[b & 15];
  }
  const std::string line = token + "\n";
  if (write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()) || fsync(fd.get()) != 0) {
    const int err = errno;
    unlink(path.c_str());
    return Status::FromErrno(path, "cannot write the token file", err);
  }
  return token;
}

Result<std::string> ReadToken(const std::string& path) { return ReadSecret(path, /*check_owner=*/false); }

bool TokenEquals(const std::string& presented, const std::string& token) {
  if (presented.size() != token.size() || token.empty()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < token.size(); i++) diff |= static_cast<unsigned char>(presented[i] ^ token[i]);
  return diff == 0;
}

}  // namespace clonekit::manager
