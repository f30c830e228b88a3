#include "output_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>

#include "clonekit/collapse.h"

namespace clonekit {

namespace {

// Paths of temporaries in progress, readable from a signal handler.
constexpr int kSlots = 16;
char g_partial_paths[kSlots][PATH_MAX];
std::atomic<bool> g_slot_used[kSlots];

int ClaimSlot(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kSlots; i++) {
    bool expected = false;
    if (g_slot_used[i].compare_exchange_strong(expected, true)) {
      std::memcpy(g_partial_paths[i], path.c_str(), path.size() + 1);
      return i;
    }
  }
  return -1;
}

void ReleaseSlot(int slot) {
  if (slot >= 0) g_slot_used[slot].store(false);
}

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

// The temporary's name beside `destination`: ".NAME.clonekit-XXXXXX".
std::string TemporaryPrefix(const std::string& destination) { return "." + BaseOf(destination) + ".clonekit-"; }

namespace {

// Whether `name` is one of our temporaries: ".NAME.clonekit-" and the six
// characters mkostemp adds.
bool IsTemporaryName(const char* name) {
  static constexpr char kTag[] = ".clonekit-";
  const size_t n = std::strlen(name), tag = sizeof(kTag) - 1;
  if (name[0] != '.' || n < 1 + 1 + tag + 6) return false;
  return std::memcmp(name + n - 6 - tag, kTag, tag) == 0;
}

// Removes the temporary `name` in `dir` if its writer is gone: a live
// collapse holds an exclusive flock on it until it commits or exits, and
// the kernel drops the lock with the process, however it died. A temporary
// gets its name only once it is locked (see OutputFile::Create), so an
// unlocked one is never a live one. Never follows a symlink, opens nothing
// but a regular file, and unlinks only the file it locked.
void RemoveIfStale(int dir, const char* name) {
  struct stat before;
  if (fstatat(dir, name, &before, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(before.st_mode)) return;
  // Only a file this user made, with no other name: a look-alike someone
  // else planted, or a hard link to another file, is not ours to remove.
  if (before.st_uid != geteuid() || before.st_nlink != 1) return;
  const int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_dev == before.st_dev && st.st_ino == before.st_ino &&
      flock(fd, LOCK_EX | LOCK_NB) == 0) {
    struct stat now;
    if (fstatat(dir, name, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
      unlinkat(dir, name, 0);
    }
  }
  close(fd);
}

// Every stale temporary in `directory` (for one destination, if `only` is set).
void RemoveStale(const std::string& directory, const std::string* only) {
  DIR* d = opendir(directory.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    if (!IsTemporaryName(e->d_name)) continue;
    if (only && (std::strncmp(e->d_name, only->c_str(), only->size()) != 0 ||
                 std::strlen(e->d_name) != only->size() + 6)) {
      continue;
    }
    RemoveIfStale(dirfd(d), e->d_name);
  }
  closedir(d);
}

}  // namespace

void RemoveTemporaries(const std::string& destination) {
  const std::string prefix = TemporaryPrefix(destination);
  RemoveStale(DirectoryOf(destination), &prefix);
}

void RemoveStaleTemporaries(const std::string& directory) { RemoveStale(directory, nullptr); }

void RemovePartialOutputs() {
  for (int i = 0; i < kSlots; i++) {
    if (g_slot_used[i].load()) unlink(g_partial_paths[i]);
  }
}

Result<std::unique_ptr<OutputFile>> OutputFile::Create(const std::string& destination, bool overwrite, unsigned mode) {
  struct stat st;
  if (lstat(destination.c_str(), &st) == 0) {
    if (!overwrite) return Status::Exists(destination, "destination exists (use --force to replace it)");
    if (!S_ISREG(st.st_mode)) {
      return Status::InvalidArgument(destination + ": only a regular file can be replaced");
    }
  }
  // Temporaries that collapses killed mid-copy left here (kill -9, power
  // loss) go first; live ones are locked and stay.
  RemoveStaleTemporaries(DirectoryOf(destination));
  // Made as ".NAME.clonekit-XXXXXX.new", a name no scan takes, locked, and
  // only then renamed to ".NAME.clonekit-XXXXXX": a scan never meets a
  // temporary of ours between its creation and its lock.
  std::string temp = DirectoryOf(destination) + "/" + TemporaryPrefix(destination) + "XXXXXX";
  std::vector<char> name(temp.begin(), temp.end());
  for (char c : std::string(".new")) name.push_back(c);
  name.push_back('\0');
  int fd = mkostemps(name.data(), 4, O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(destination, "cannot create temporary output", errno);
  const std::string fresh(name.data());
  temp = fresh.substr(0, fresh.size() - 4);
  // Held until the fd closes: marks the temporary as live (see RemoveIfStale).
  if (flock(fd, LOCK_EX | LOCK_NB) != 0 ||
      renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, temp.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    close(fd);
    unlink(fresh.c_str());
    return Status::FromErrno(destination, "cannot set up the temporary output", err);
  }
  fchmod(fd, static_cast<mode_t>(mode));
  int slot = ClaimSlot(temp);
  return std::unique_ptr<OutputFile>(new OutputFile(destination, temp, fd, overwrite, slot));
}

OutputFile::OutputFile(std::string destination, std::string temp, int fd, bool overwrite, int slot)
    : destination_(std::move(destination)), temp_(std::move(temp)), fd_(fd), overwrite_(overwrite), slot_(slot) {}

// Whether the temporary's name still refers to the file we write.
bool OutputFile::NameIsOurs() const {
  struct stat ours, named;
  return fstat(fd_, &ours) == 0 && lstat(temp_.c_str(), &named) == 0 && ours.st_dev == named.st_dev &&
         ours.st_ino == named.st_ino;
}

OutputFile::~OutputFile() {
  // Only our own file is removed: a name someone replaced is theirs.
  if (!committed_ && NameIsOurs()) unlink(temp_.c_str());
  if (fd_ >= 0) close(fd_);
  ReleaseSlot(slot_);
}

Status OutputFile::Commit() {
  if (fdatasync(fd_) < 0) return Status::FromErrno(destination_, "fdatasync failed", errno);
  // The name must still be our file: never move someone else's into place.
  if (!NameIsOurs()) {
    return Status::IOError(destination_, "the temporary output was removed or replaced while being written");
  }
  unsigned flags = overwrite_ ? 0 : RENAME_NOREPLACE;
  if (renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, destination_.c_str(), flags) < 0) {
    return Status::FromErrno(destination_, "cannot move the finished image into place", errno);
  }
  committed_ = true;
  ReleaseSlot(slot_);
  slot_ = -1;
  int dir = open(DirectoryOf(destination_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return Status::FromErrno(destination_, "cannot open directory to sync it", errno);
  int ret = fsync(dir);
  int err = errno;
  close(dir);
  if (ret < 0) return Status::FromErrno(destination_, "directory fsync failed", err);
  return Status::OK();
}

}  // namespace clonekit
