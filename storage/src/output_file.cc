#include "output_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
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

void RemoveTemporaries(const std::string& destination) {
  const std::string prefix = TemporaryPrefix(destination);
  DIR* d = opendir(DirectoryOf(destination).c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0 && std::strlen(e->d_name) == prefix.size() + 6) {
      unlinkat(dirfd(d), e->d_name, 0);  // (unlinkat never follows a symlink)
    }
  }
  closedir(d);
}

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
  std::string temp = DirectoryOf(destination) + "/" + TemporaryPrefix(destination) + "XXXXXX";
  std::vector<char> name(temp.begin(), temp.end());
  name.push_back('\0');
  int fd = mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(destination, "cannot create temporary output", errno);
  fchmod(fd, static_cast<mode_t>(mode));
  temp.assign(name.data());
  int slot = ClaimSlot(temp);
  return std::unique_ptr<OutputFile>(new OutputFile(destination, temp, fd, overwrite, slot));
}

OutputFile::OutputFile(std::string destination, std::string temp, int fd, bool overwrite, int slot)
    : destination_(std::move(destination)), temp_(std::move(temp)), fd_(fd), overwrite_(overwrite), slot_(slot) {}

OutputFile::~OutputFile() {
  if (fd_ >= 0) close(fd_);
  if (!committed_) unlink(temp_.c_str());
  ReleaseSlot(slot_);
}

Status OutputFile::Commit() {
  if (fdatasync(fd_) < 0) return Status::FromErrno(destination_, "fdatasync failed", errno);
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
