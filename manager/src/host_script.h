// The sh text every step on another host shares (remote_disk.cc,
// remote_source.cc): each step is `sh -c SCRIPT sh ARGS...` over SSH, the
// script fixed and ours, the arguments its positional parameters.
#ifndef CLONEKIT_MANAGER_HOST_SCRIPT_H_
#define CLONEKIT_MANAGER_HOST_SCRIPT_H_

#include <string>
#include <vector>

namespace clonekit::manager {

// sh -c SCRIPT sh ARGS...: the script is ours and fixed; the arguments are
// its positional parameters, each quoted by RemoteHost.
inline std::vector<std::string> Script(const char* script, std::vector<std::string> args) {
  std::vector<std::string> argv = {"sh", "-c", script, "sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// The functions the scripts share (prepended by WithHostFunctions).
//   safe_dir D: D is a directory (not a link) that only root (or the SSH
//     user) may write to, or sticky: nobody else can rename or replace
//     what root made there.
//   safe_pool D: safe_dir of D's directory (the pool): nobody else can
//     rename, replace or plant the job's directory there.
//   safe_path D POOL: safe_dir of D and of every directory above it up to
//     POOL: nobody else can swap any of them for a link elsewhere.
//   ours D: D is that directory, as the job made it (a directory, not a
//     link, the SSH user's, mode 0700).
//   lock D: one script at a time on D (fd 9; qemu-nbd does not inherit it).
//   serves PID: whether PID is the qemu-nbd serving $d/image (a pid file
//     may name a process that ended, and its number be taken since).
//   stop_export: stops $d's qemu-nbd (it flushes on SIGTERM), and waits.
//   in_pools F DIR...: F is a regular file (not a link) whose real path
//     is inside one of the DIRs (the host's pools).
inline constexpr const char* kHostFunctions = R"sh(
safe_dir() {
  { [ -d "$1" ] && [ ! -L "$1" ]; } || { echo "$1 is not a directory" >&2; return 1; }
  st=$(stat -c '%u %a' -- "$1") || return 1
  set -- "$1" $st
  [ "$2" = 0 ] || [ "$2" = "$(id -u)" ] || { echo "$1 is not root's" >&2; return 1; }
  mode=$((0$3))
  [ $((mode & 022)) = 0 ] || [ $((mode & 01000)) != 0 ] ||
    { echo "others may write to $1 (mode $3, not sticky)" >&2; return 1; }
}
safe_pool() { safe_dir "$(dirname -- "$1")"; }
safe_path() {
  p=$1
  while safe_dir "$p"; do
    [ "$p" != "$2" ] || return 0
    case $p in "$2"/*) p=$(dirname -- "$p") ;; *) echo "$1 is not inside $2" >&2; return 1 ;; esac
  done
  return 1
}
ours() { [ -d "$1" ] && [ ! -L "$1" ] && [ "$(stat -c '%u %a' -- "$1")" = "$(id -u) 700" ]; }
lock() { exec 9<"$1" && flock -w 60 9; }
serves() { [ -r "/proc/$1/cmdline" ] && tr '\0' '\n' <"/proc/$1/cmdline" | grep -qxF -- "$d/image"; }
stop_export() {
  pid=$(cat -- "$d/pid" 2>/dev/null) || return 0
  case $pid in ''|*[!0-9]*) return 0 ;; esac
  serves "$pid" || return 0
  kill "$pid" 2>/dev/null || true
  i=0
  while serves "$pid"; do
    i=$((i + 1))
    if [ "$i" -gt 50 ]; then kill -9 "$pid" 2>/dev/null || true; fi
    sleep 0.1
  done
}
in_pools() {
  f=$1
  shift
  { [ -f "$f" ] && [ ! -L "$f" ]; } || { echo "$f is not a regular file" >&2; return 1; }
  real=$(realpath -e -- "$f") || return 1
  for p in "$@"; do
    case $real in "$p"/*) return 0 ;; esac
  done
  echo "$f is not in a pool of this host" >&2
  return 1
}
)sh";

inline std::string WithHostFunctions(const char* script) { return std::string(kHostFunctions) + script; }

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_HOST_SCRIPT_H_
