/* eio_fs: a read-only FUSE passthrough of one directory whose reads of one
 * file fail with EIO over one byte range, so tests see a real EIO from the
 * kernel (through read(2), io_uring, readahead) where a disk would give one.
 *
 *   eio_fs SOURCE_DIR MOUNTPOINT FILE FROM LENGTH
 *
 * Serves SOURCE_DIR's regular files (no subdirectories) at MOUNTPOINT; a
 * read of FILE that overlaps [FROM, FROM + LENGTH) fails with EIO. Runs in
 * the foreground until unmounted (fusermount3 -u MOUNTPOINT). Caching is off
 * (direct_io), so every read reaches us.
 */
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int source_dir = -1;
static const char *fault_file;
static unsigned long long fault_from, fault_length;

/* "/name" -> "name"; only names directly in the source directory. */
static const char *relative(const char *path) {
  if (path[0] != '/' || strchr(path + 1, '/')) return NULL;
  return path[1] ? path + 1 : ".";
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  const char *name = relative(path);
  if (!name) return -ENOENT;
  return fstatat(source_dir, name, st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
  (void)offset;
  (void)fi;
  (void)flags;
  if (strcmp(path, "/") != 0) return -ENOENT;
  DIR *d = fdopendir(dup(source_dir));
  if (!d) return -errno;
  rewinddir(d);
  for (struct dirent *e; (e = readdir(d));) fill(buf, e->d_name, nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  closedir(d);
  return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi) {
  const char *name = relative(path);
  if (!name) return -ENOENT;
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
  int fd = openat(source_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  fi->fh = (uint64_t)fd;
  fi->direct_io = 1;
  return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi) {
  const char *name = relative(path);
  if (name && strcmp(name, fault_file) == 0 && (unsigned long long)offset < fault_from + fault_length &&
      (unsigned long long)offset + size > fault_from) {
    return -EIO;
  }
  ssize_t n = pread((int)fi->fh, buf, size, offset);
  return n < 0 ? -errno : (int)n;
}

static int fs_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  close((int)fi->fh);
  return 0;
}


int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: eio_fs SOURCE_DIR MOUNTPOINT FILE FROM LENGTH\n");
    return 2;
  }
  source_dir = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (source_dir < 0) {
    perror(argv[1]);
    return 1;
  }
  fault_file = argv[3];
  fault_from = strtoull(argv[4], NULL, 0);
  fault_length = strtoull(argv[5], NULL, 0);
  /* -f: foreground; -s: one thread. */
  struct fuse_operations ops = {};
  ops.getattr = fs_getattr;
  ops.open = fs_open;
  ops.read = fs_read;
  ops.release = fs_release;
  ops.readdir = fs_readdir;
  char foreground[] = "-f", single[] = "-s", o[] = "-o", options[] = "ro,default_permissions";
  char *fuse_argv[] = {argv[0], argv[2], foreground, single, o, options, nullptr};
  return fuse_main(6, fuse_argv, &ops, nullptr);
}
