// A FileOpener confined to directories: every open beneath one of them,
// no symlink followed, regular files only (file.h).
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "clonekit/file.h"

namespace clonekit {

int OpenBeneath(const std::string& dir, const std::string& relative, int flags, mode_t mode) {
  const int dir_fd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return -1;
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_NOFOLLOW | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const int fd = static_cast<int>(syscall(SYS_openat2, dir_fd, relative.c_str(), &how, sizeof how));
  const int err = errno;
  close(dir_fd);
  errno = err;
  return fd;
}

namespace {

class ConfinedFileOpener final : public FileOpener {
 public:
  ConfinedFileOpener(std::vector<std::string> dirs, const OpenOptions& options)
      : dirs_(std::move(dirs)), options_(options) {
    for (std::string& d : dirs_) {
      while (d.size() > 1 && d.back() == '/') d.pop_back();
    }
  }

  Result<std::unique_ptr<ReadableFile>> Open(const std::string& path) override {
    const std::string quoted = "'" + path + "'";
    const std::string* home = nullptr;
    for (const std::string& d : dirs_) {
      if (path.size() > d.size() + 1 && path.compare(0, d.size(), d) == 0 && path[d.size()] == '/' &&
          (!home || d.size() > home->size())) {
        home = &d;
      }
    }
    if (!home) return Status::InvalidArgument(quoted + " is outside every directory it may be read from");
    const int fd = OpenBeneath(*home, path.substr(home->size() + 1), O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
      switch (errno) {
        case ELOOP: return Status::InvalidArgument(quoted + " is or goes through a symlink: refused");
        case EXDEV: return Status::InvalidArgument(quoted + " leaves " + *home + ": refused");
        default: return Status::FromErrno(path, "cannot open", errno);
      }
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      close(fd);
      return Status::InvalidArgument(quoted + " is not a regular file");
    }
    return AdoptFileForRead(fd, path, options_);
  }

 private:
  std::vector<std::string> dirs_;
  OpenOptions options_;
};

}  // namespace

std::unique_ptr<FileOpener> NewConfinedFileOpener(std::vector<std::string> dirs, const OpenOptions& options) {
  return std::make_unique<ConfinedFileOpener>(std::move(dirs), options);
}

}  // namespace clonekit
