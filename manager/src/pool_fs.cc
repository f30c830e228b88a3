#include "pool_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace clonekit::manager {

namespace {

std::string Quoted(const std::string& path) { return "'" + path + "'"; }

class PoolOpener : public FileOpener {
 public:
  PoolOpener(const PoolFs& fs, OpenOptions options) : fs_(fs), options_(options) {}
  Result<std::unique_ptr<ReadableFile>> Open(const std::string& path) override {
    Result<UniqueFd> fd = fs_.OpenRead(path, "image");
    if (!fd.ok()) return fd.status();
    return AdoptFileForRead(fd->release(), path, options_);
  }

 private:
  const PoolFs& fs_;
  OpenOptions options_;
};

}  // namespace

const Pool* PoolFs::PoolOf(const std::string& path) const {
  const Pool* found = nullptr;
  for (const Pool& p : pools_) {
    if (path.size() > p.dir.size() + 1 && path.compare(0, p.dir.size(), p.dir) == 0 && path[p.dir.size()] == '/' &&
        (!found || p.dir.size() > found->dir.size())) {
      found = &p;
    }
  }
  return found;
}

std::vector<std::string> PoolFs::Dirs() const {
  std::vector<std::string> dirs;
  for (const Pool& p : pools_) dirs.push_back(p.dir);
  return dirs;
}

Result<UniqueFd> PoolFs::OpenBeneath(const std::string& path, int flags, mode_t mode, const std::string& what) const {
  if (path.empty() || path[0] != '/') return Status::InvalidArgument(what, Quoted(path) + " is not an absolute path");
  const Pool* pool = PoolOf(path);
  if (!pool) {
    return Status::InvalidArgument(what, Quoted(path) + " is outside every storage pool (clonekit pool add NAME DIR)");
  }
  UniqueFd fd(clonekit::OpenBeneath(pool->dir, path.substr(pool->dir.size() + 1), flags, mode));
  if (!fd) {
    switch (errno) {
      case ELOOP: return Status::InvalidArgument(what, Quoted(path) + " is or goes through a symlink: refused");
      case EXDEV: return Status::InvalidArgument(what, Quoted(path) + " leaves pool '" + pool->name + "': refused");
      case ENOENT: return Status::InvalidArgument(what, Quoted(path) + " does not exist");
      case EEXIST: return Status::Exists(path, "already exists");
      default: return Status::FromErrno(path, what, errno);
    }
  }
  return fd;
}

Result<UniqueFd> PoolFs::OpenRead(const std::string& path, const std::string& what) const {
  Result<UniqueFd> fd = OpenBeneath(path, O_RDONLY | O_NONBLOCK, 0, what);
  if (!fd.ok()) return fd.status();
  struct stat st;
  if (fstat(fd->get(), &st) != 0) return Status::FromErrno(path, "cannot stat", errno);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(what, Quoted(path) + " is not a regular file");
  return fd;
}

Result<UniqueFd> PoolFs::CreateExclusive(const std::string& path, mode_t mode, const std::string& what) const {
  return OpenBeneath(path, O_RDWR | O_CREAT | O_EXCL, mode, what);
}

Result<UniqueFd> PoolFs::OpenOwnedForWrite(const std::string& path, const std::string& what) const {
  Result<UniqueFd> fd = OpenBeneath(path, O_WRONLY | O_NONBLOCK, 0, what);
  if (!fd.ok()) return fd.status();
  struct stat st;
  if (fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
    return Status::InvalidArgument(what, Quoted(path) + " is not a regular file of the service's");
  }
  if (ftruncate(fd->get(), 0) != 0) return Status::FromErrno(path, "cannot truncate", errno);
  return fd;
}

Result<std::unique_ptr<Chain>> PoolFs::OpenChain(const std::string& top, std::optional<ImageFormat> top_format,
                                                bool headers_only) const {
  OpenOptions oopt;
  oopt.force_share = headers_only;
  PoolOpener opener(*this, oopt);
  ChainOptions copt;
  copt.allowed_backing_dirs = Dirs();
  copt.top_format = top_format;
  return clonekit::OpenChain(top, opener, copt);
}

}  // namespace clonekit::manager
