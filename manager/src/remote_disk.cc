// RemoteDisk: the steps on the target host, each one sh script run over SSH.
#include "remote_disk.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <random>

#include "host_script.h"
#include "names.h"
#include "unique_fd.h"

namespace clonekit::manager {

namespace {

// The key's directory here: /tmp/clonekit-nbd-PID-XXXXXX.
constexpr const char* kKeyDirPrefix = "/tmp/clonekit-nbd-";

// $1 scratch, $2 output, $3 its stem, $4 its extension. A failure leaves
// nothing.
constexpr const char* kReserve = R"sh(
set -eu
umask 077
d=$1 out=$2 stem=$3 ext=$4
safe_pool "$d"
mkdir -m 0700 -- "$d"
trap 'rm -f -- "$d/reserved"; rmdir -- "$d"' EXIT
: >"$d/reserved"
n=1
until ln -T -- "$d/reserved" "$out" 2>/dev/null; do
  # Only a name that is taken makes us try the next; any other failure is
  # ln's to say.
  if [ ! -e "$out" ] && [ ! -L "$out" ]; then ln -T -- "$d/reserved" "$out"; fi
  n=$((n + 1))
  if [ "$n" -gt 100 ]; then echo "no free name like $2" >&2; exit 1; fi
  out=$stem-$n$ext
done
trap - EXIT
printf '%s' "$out"
)sh";

// $1 scratch, $2 format, $3 size, $4 the TLS object, $5... ports to try.
// --persistent: a stranger who connects and leaves first does not end it.
constexpr const char* kServe = R"sh(
set -eu
umask 077
d=$1 fmt=$2 size=$3 tls=$4
shift 4
safe_pool "$d"
ours "$d" || { echo "$d is not the directory this job made" >&2; exit 1; }
lock "$d"
addr=$(printf '%s\n' "${SSH_CONNECTION:-}" | cut -d' ' -f3)
[ -n "$addr" ] || { echo "SSH_CONNECTION does not say which address was reached" >&2; exit 1; }
[ -e "$d/image" ] || qemu-img create -q -f "$fmt" -- "$d/image" "$size"
if [ ! -e "$d/keys.psk" ]; then
  key=$(od -An -vtx1 -N32 /dev/urandom | tr -d ' \n')
  printf 'clonekit:%s\n' "$key" >"$d/keys.psk"
fi
stop_export
for port in "$@"; do
  rm -f -- "$d/pid"
  if qemu-nbd --fork --persistent --pid-file="$d/pid" --format="$fmt" --bind="$addr" --port="$port" \
      --export-name=disk --shared=0 --object "$tls" --tls-creds=tls0 -- "$d/image" 2>"$d/err" 9<&-; then
    printf '%s %s %s\n' "$addr" "$port" "$(cut -d: -f2 "$d/keys.psk")"
    exit 0
  fi
  grep -q "Address already in use" "$d/err" || { tail -n 1 "$d/err" >&2; exit 1; }
done
echo "qemu-nbd: every port tried is in use ($*)" >&2
exit 1
)sh";

// $1 scratch, $2 output. (The collapse flushed the export before it
// returned OK: what qemu-nbd writes on SIGTERM is already on disk.) The
// image is root's alone whoever wrote it (clonekit's own file is 0644).
constexpr const char* kFinish = R"sh(
set -eu
d=$1 out=$2
safe_pool "$d"
ours "$d" || { echo "$d is not the directory this job made" >&2; exit 1; }
lock "$d"
stop_export
[ "$out" -ef "$d/reserved" ] || { echo "$out is no longer the name this job reserved" >&2; exit 1; }
chmod 0600 -- "$d/image"
sync -- "$d/image"
ln -T -- "$d/image" "$d/done"
mv -T -- "$d/image" "$out"
sync -- "$(dirname -- "$out")"
)sh";

// $1 keep outputs (1) or not (0), then pairs: scratch, output. A directory
// that is gone was removed before; one that is not ours is left alone
// (and said).
constexpr const char* kRemove = R"sh(
set -u
keep=$1
shift
failed=0
while [ $# -ge 2 ]; do
  d=$1 out=$2
  shift 2
  [ -e "$d" ] || [ -L "$d" ] || continue
  if ! safe_pool "$d" || ! ours "$d" || ! lock "$d"; then
    echo "$d is not the directory this job made: left as it is" >&2
    failed=1
    continue
  fi
  stop_export
  if [ "$keep" = 0 ] && { [ "$out" -ef "$d/reserved" ] || [ "$out" -ef "$d/done" ]; }; then
    rm -f -- "$out" || failed=1
  fi
  rm -rf -- "$d" || failed=1
  exec 9<&-
done
exit $failed
)sh";

}  // namespace

Status ReserveRemoteDisk(const RemoteHost& host, const std::string& scratch, std::string* output) {
  const size_t dot = output->rfind('.');
  const size_t slash = output->rfind('/');
  const bool has_ext = dot != std::string::npos && (slash == std::string::npos || dot > slash);
  const std::string stem = has_ext ? output->substr(0, dot) : *output;
  const std::string ext = has_ext ? output->substr(dot) : "";
  Result<std::string> got = host.Run(Script(WithHostFunctions(kReserve).c_str(), {scratch, *output, stem, ext}));
  if (!got.ok()) return got.status();
  // One of the names asked for, nothing else.
  bool expected = *got == *output;
  for (int n = 2; n <= 100 && !expected; n++) expected = *got == stem + "-" + std::to_string(n) + ext;
  if (!expected) return Status::IOError("host " + host.name(), "reserving " + *output + " answered another name");
  *output = *got;
  return Status::OK();
}

RemoteExport::RemoteExport(RemoteExport&& other) noexcept
    : uri_(std::move(other.uri_)),
      address_(std::move(other.address_)),
      key_dir_(std::exchange(other.key_dir_, "")),
      key_(std::move(other.key_)) {}

RemoteExport& RemoteExport::operator=(RemoteExport&& other) noexcept {
  if (this != &other) {
    RemoveKey();
    uri_ = std::move(other.uri_);
    address_ = std::move(other.address_);
    key_dir_ = std::exchange(other.key_dir_, "");
    key_ = std::move(other.key_);
  }
  return *this;
}

RemoteExport::~RemoteExport() { RemoveKey(); }

void RemoteExport::RemoveKey() {
  if (key_dir_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(key_dir_, ignored);
  key_dir_.clear();
}

Result<RemoteExport> ServeRemoteDisk(const RemoteHost& host, const std::string& scratch, const std::string& format,
                                     uint64_t size, PortRange ports, ExportWriter writer) {
  // qemu's option syntax: a comma in a value is written twice.
  std::string dir;
  for (char c : scratch) dir += c == ',' ? std::string(",,") : std::string(1, c);
  const std::string tls = "tls-creds-psk,id=tls0,endpoint=server,dir=" + dir;
  std::vector<std::string> args = {scratch, format, std::to_string(size), tls};
  std::random_device random;
  std::uniform_int_distribution<int> pick(ports.first, ports.last);
  for (int i = 0; i < 5; i++) args.push_back(std::to_string(pick(random)));
  Result<std::string> answer = host.Run(Script(WithHostFunctions(kServe).c_str(), args), 60);
  if (!answer.ok()) return answer.status();
  // "ADDRESS PORT KEY\n": an IP address, a port we offered, 64 hex digits.
  const auto bad = [&] { return Status::IOError("host " + host.name(), "starting its NBD export answered something else"); };
  const std::string& a = *answer;
  const size_t sp1 = a.find(' '), sp2 = a.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos || a.size() != sp2 + 1 + 64 + 1 || a.back() != '\n') return bad();
  const std::string addr = a.substr(0, sp1), port = a.substr(sp1 + 1, sp2 - sp1 - 1), key = a.substr(sp2 + 1, 64);
  unsigned char bin[16];
  const bool v6 = inet_pton(AF_INET6, addr.c_str(), bin) == 1;
  if (!v6 && inet_pton(AF_INET, addr.c_str(), bin) != 1) return bad();
  if (std::find(args.begin() + 4, args.end(), port) == args.end()) return bad();
  if (key.find_first_not_of("0123456789abcdef") != std::string::npos) return bad();

  RemoteExport e;
  e.address_ = (v6 ? "[" + addr + "]" : addr) + ":" + port;
  e.key_ = key;
  if (writer == ExportWriter::kAnotherHost) return e;
  // Named by this process, so that a later start can tell a dead one's.
  std::string dir_template = std::string(kKeyDirPrefix) + std::to_string(getpid()) + "-XXXXXX";  // (mkdtemp's)
  if (!mkdtemp(dir_template.data())) return Status::FromErrno("/tmp", "cannot make a directory for the key", errno);
  e.key_dir_ = dir_template;
  const std::string key_file = e.key_dir_ + "/keys.psk";
  UniqueFd fd(open(key_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return Status::FromErrno(key_file, "cannot create", errno);
  const std::string line = "clonekit:" + key + "\n";
  if (write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    return Status::FromErrno(key_file, "cannot write", errno);
  }
  e.uri_ = "nbds://clonekit@" + e.address_ + "/disk?tls-psk-file=" + key_file;
  return e;
}

void RemoveStaleKeyDirs() {
  const std::string prefix = BaseName(kKeyDirPrefix);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(DirName(kKeyDirPrefix), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    long pid = 0;
    if (std::sscanf(name.c_str() + prefix.size(), "%ld-", &pid) != 1 || pid <= 0) continue;
    if (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to ask)
    // Only a directory of ours, never through a symlink.
    struct stat st;
    if (lstat(entry.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) continue;
    std::filesystem::remove_all(entry.path(), ec);
  }
}

Status FinishRemoteDisk(const RemoteHost& host, const std::string& scratch, const std::string& output) {
  return host.Run(Script(WithHostFunctions(kFinish).c_str(), {scratch, output}), 60).status();
}

Status RemoveRemoteDisks(const RemoteHost& host, const std::vector<std::string>& scratch,
                         const std::vector<std::string>& outputs, bool keep_outputs) {
  if (scratch.empty()) return Status::OK();
  std::vector<std::string> args = {keep_outputs ? "1" : "0"};
  for (size_t i = 0; i < scratch.size(); i++) {
    args.push_back(scratch[i]);
    args.push_back(i < outputs.size() ? outputs[i] : "");
  }
  return host.Run(Script(WithHostFunctions(kRemove).c_str(), args), 60).status();
}

}  // namespace clonekit::manager
