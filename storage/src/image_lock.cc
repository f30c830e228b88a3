#include "image_lock.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace clonekit {

namespace {

constexpr int kPermBase = 100;
constexpr int kSharedBase = 200;
constexpr int kConsistentRead = 0;
constexpr int kWrite = 1;
constexpr int kResize = 3;

const char* PermName(int bit) {
  switch (bit) {
    case kConsistentRead: return "consistent read";
    case kWrite: return "write";
    case kResize: return "resize";
    default: return "write unchanged";
  }
}

int SetReadLock(int fd, off_t byte) {
  struct flock fl = {};
  fl.l_type = F_RDLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  int ret;
  do {
    ret = fcntl(fd, F_OFD_SETLK, &fl);
  } while (ret < 0 && errno == EINTR);
  return ret < 0 ? errno : 0;
}

// True when another open file description holds any lock on the byte.
bool HeldByOthers(int fd, off_t byte, int* err) {
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
    *err = errno;
    return false;
  }
  *err = 0;
  return fl.l_type != F_UNLCK;
}

}  // namespace

Status LockImageForRead(int fd, const std::string& name, bool force_share) {
  std::vector<int> bytes = {kPermBase + kConsistentRead};
  if (!force_share) {
    bytes.push_back(kSharedBase + kWrite);
    bytes.push_back(kSharedBase + kResize);
  }
  for (int byte : bytes) {
    int err = SetReadLock(fd, byte);
    if (err == EAGAIN || err == EACCES) {
      // A writer holds an exclusive lock on a byte we share.
      return Status::Locked(name, "Failed to get shared \"write\" lock: is another process (a running VM?) "
                                  "writing this image? Use -U/--force-share to read it anyway");
    }
    if (err != 0) return Status::FromErrno(name, "cannot take image lock (OFD)", err);
  }

  struct Check {
    int byte;
    int perm;
    bool shared_lock;  // wording as qemu's
  };
  std::vector<Check> checks = {{kSharedBase + kConsistentRead, kConsistentRead, false}};
  if (!force_share) {
    checks.push_back({kPermBase + kWrite, kWrite, true});
    checks.push_back({kPermBase + kResize, kResize, true});
  }
  for (const Check& c : checks) {
    int err = 0;
    bool held = HeldByOthers(fd, c.byte, &err);
    if (err != 0) return Status::FromErrno(name, "cannot test image lock (OFD)", err);
    if (held) {
      std::string what = std::string("Failed to get ") + (c.shared_lock ? "shared " : "") + "\"" +
                         PermName(c.perm) + "\" lock (byte " + std::to_string(c.byte) +
                         " held): is another process (a running VM?) using this image?";
      if (!force_share && c.perm != kConsistentRead) what += " Use -U/--force-share to read it anyway";
      return Status::Locked(name, what);
    }
  }
  return Status::OK();
}

}  // namespace clonekit
