#include "tpm_state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "unique_fd.h"

namespace clonekit::manager {

namespace {

constexpr int kMaxDepth = 4;                 // <uuid>/tpm2/<files>: a little room
constexpr uint64_t kMaxStateBytes = 64 << 20;  // a TPM's state is kilobytes

// The names in a directory (without "." and ".."), or why not.
Result<std::vector<std::string>> Entries(int dir_fd, const std::string& path) {
  std::vector<std::string> out;
  int fd = dup(dir_fd);
  if (fd < 0) return Status::FromErrno(path, "cannot read", errno);
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return Status::FromErrno(path, "cannot read", errno);
  }
  errno = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
    errno = 0;
  }
  const int err = errno;
  closedir(d);
  if (err != 0) return Status::FromErrno(path, "cannot read", err);
  return out;
}

// Owner and mode (no setuid, setgid or sticky bit) of `st` onto `fd`.
bool SameOwner(int fd, const struct stat& st) {
  return fchown(fd, st.st_uid, st.st_gid) == 0 && fchmod(fd, st.st_mode & 0777) == 0;
}

Status CopyTree(int from_dir, int to_dir, const std::string& path, int depth, uint64_t* bytes) {
  if (depth > kMaxDepth) return Status::InvalidArgument(path, "is nested too deep for a TPM state");
  Result<std::vector<std::string>> names = Entries(from_dir, path);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    const std::string sub = path + "/" + name;
    struct stat st;
    if (fstatat(from_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // a running swtpm's temporary file, renamed away
      return Status::FromErrno(sub, "cannot stat", errno);
    }
    if (S_ISDIR(st.st_mode)) {
      UniqueFd in(openat(from_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!in) return Status::FromErrno(sub, "cannot open", errno);
      // What was opened, not what the name was a moment before.
      if (fstat(in.get(), &st) != 0) return Status::FromErrno(sub, "cannot stat", errno);
      if (mkdirat(to_dir, name.c_str(), 0700) != 0) return Status::FromErrno(sub, "cannot make its copy", errno);
      UniqueFd out(openat(to_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!out) return Status::FromErrno(sub, "cannot open its copy", errno);
      CLONEKIT_RETURN_IF_ERROR(CopyTree(in.get(), out.get(), sub, depth + 1, bytes));
      if (!SameOwner(out.get(), st)) return Status::FromErrno(sub, "cannot set its copy's owner", errno);
    } else if (S_ISREG(st.st_mode)) {
      UniqueFd in(openat(from_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (!in && errno == ENOENT) continue;
      if (!in) return Status::FromErrno(sub, "cannot open", errno);
      if (fstat(in.get(), &st) != 0) return Status::FromErrno(sub, "cannot stat", errno);
      // A hard link planted by swtpm's user could name any file of the
      // host's; its copy would be theirs.
      if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        return Status::InvalidArgument(sub, "is not a plain file (a hard link or swapped): not copied");
      }
      *bytes += static_cast<uint64_t>(st.st_size);
      if (*bytes > kMaxStateBytes) return Status::InvalidArgument(sub, "makes the TPM state larger than 64 MiB: not copied");
      UniqueFd out(openat(to_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out) return Status::FromErrno(sub, "cannot make its copy", errno);
      char buf[65536];
      // At most the size it had when counted: a file that grows meanwhile
      // does not get past the cap.
      for (off_t left = st.st_size; left > 0;) {
        ssize_t n = read(in.get(), buf, static_cast<size_t>(std::min<off_t>(left, sizeof buf)));
        if (n < 0) return Status::FromErrno(sub, "cannot read", errno);
        if (n == 0) break;
        left -= n;
        for (ssize_t off = 0; off < n;) {
          ssize_t w = write(out.get(), buf + off, n - off);
          if (w < 0) return Status::FromErrno(sub, "cannot write its copy", errno);
          off += w;
        }
      }
      if (!SameOwner(out.get(), st) || fsync(out.get()) != 0) {
        return Status::FromErrno(sub, "cannot finish its copy", errno);
      }
    } else {
      return Status::InvalidArgument(sub, "is neither a file nor a directory: not copied");
    }
  }
  return Status::OK();
}

void RemoveTree(int dir_fd, int depth) {
  if (depth > kMaxDepth) return;
  Result<std::vector<std::string>> names = Entries(dir_fd, "");
  if (!names.ok()) return;
  for (const std::string& name : *names) {
    UniqueFd sub(openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub) {
      RemoveTree(sub.get(), depth + 1);
      unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR);
    } else {
      unlinkat(dir_fd, name.c_str(), 0);
    }
  }
}

}  // namespace

Result<bool> CopyTpmState(const std::string& dir, const std::string& from_uuid, const std::string& to_uuid) {
  UniqueFd base(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!base) {
    if (errno == ENOENT) return false;  // no TPM has ever run here
    return Status::FromErrno(dir, "cannot open", errno);
  }
  UniqueFd from(openat(base.get(), from_uuid.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!from) {
    if (errno == ENOENT) return false;
    return Status::FromErrno(dir + "/" + from_uuid, "cannot open", errno);
  }
  struct stat st;
  if (fstat(from.get(), &st) != 0) return Status::FromErrno(dir + "/" + from_uuid, "cannot stat", errno);
  if (mkdirat(base.get(), to_uuid.c_str(), 0700) != 0) {
    return Status::FromErrno(dir + "/" + to_uuid, "cannot make the clone's TPM state", errno);
  }
  UniqueFd to(openat(base.get(), to_uuid.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  uint64_t bytes = 0;
  Status s = to ? CopyTree(from.get(), to.get(), dir + "/" + from_uuid, 1, &bytes)
                : Status::FromErrno(dir + "/" + to_uuid, "cannot open", errno);
  if (s.ok() && !SameOwner(to.get(), st)) {
    s = Status::FromErrno(dir + "/" + to_uuid, "cannot set its owner", errno);
  }
  if (!s.ok()) {
    RemoveTpmState(dir, to_uuid);
    return s;
  }
  return true;
}

void RemoveTpmState(const std::string& dir, const std::string& uuid) {
  if (uuid.empty() || uuid.find('/') != std::string::npos || uuid[0] == '.') return;
  UniqueFd base(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!base) return;
  UniqueFd sub(openat(base.get(), uuid.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!sub) return;
  RemoveTree(sub.get(), 1);
  unlinkat(base.get(), uuid.c_str(), AT_REMOVEDIR);
}

}  // namespace clonekit::manager
