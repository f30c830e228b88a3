// RemoteSource: clonekit on the source's host, each step one sh script
// run over SSH (host_script.h).
#include "remote_source.h"

#include <nlohmann/json.hpp>

#include <charconv>

#include "host_script.h"

namespace clonekit::manager {

namespace {

// $1 clonekit, $2 top, $3 format, then the pools. The layout as qemu-img
// map's JSON (shared locks: the VM may run). --confine: the top and every
// backing file opened beneath a pool, no symlink followed (in_pools only
// says so first, by name).
constexpr const char* kMeasure = R"sh(
set -eu
ck=$1 top=$2 fmt=$3
shift 3
in_pools "$top" "$@"
n=$#
for p in "$@"; do set -- "$@" --confine "$p"; done
shift "$n"
exec "$ck" map -U --output=json --format "$fmt" "$@" -- "$top"
)sh";

// $1 clonekit, $2 top, $3 format, $4 rate, $5 the job's directory here
// ("": an export elsewhere), $6 its output format, $7 the export's
// address ("": a directory here), then the pools. An export's key is the
// first line of stdin, kept in a private directory (mktemp's, in the
// session's TMPDIR or /tmp) for the copy only
// (libnbd reads the file more than once: a pipe will not do). clonekit
// reads the rest of stdin: it stops when it ends (the service cancelled, or
// is gone) or is silent for 30 s (the service sends a line every 5 s: a
// link that died without a word), and its progress goes to our stdout.
// The job's directory stays locked while it writes there.
constexpr const char* kCollapse = R"sh(
set -eu
ck=$1 top=$2 fmt=$3 rate=$4 d=$5 ofmt=$6 addr=$7
shift 7
in_pools "$top" "$@"
n=$#
for p in "$@"; do set -- "$@" --confine "$p"; done
shift "$n"
if [ -n "$d" ]; then
  safe_pool "$d"
  ours "$d" || { echo "$d is not the directory this job made" >&2; exit 1; }
  lock "$d"
  exec "$ck" collapse -p --heartbeat 30 --format "$fmt" -O "$ofmt" --rate-limit "$rate" "$@" -- "$top" "$d/image"
fi
IFS= read -r key
case $key in *[!0-9a-f]*|'') echo "no key for the export" >&2; exit 1 ;; esac
umask 077
t=${TMPDIR:-/tmp}
case $t in /*) ;; *) t=/tmp ;; esac
case $t in *[!A-Za-z0-9/._-]*) t=/tmp ;; esac  # (it goes into the export's URI)
k=$(mktemp -d "$t/clonekit-key.XXXXXX")
trap 'rm -rf -- "$k"' EXIT
printf 'clonekit:%s\n' "$key" >"$k/keys.psk"
"$ck" collapse -p --heartbeat 30 --format "$fmt" -O raw --target-is-zero --rate-limit "$rate" "$@" -- "$top" \
  "nbds://clonekit@$addr/disk?tls-psk-file=$k/keys.psk"
)sh";

// $1 clonekit, $2 the pool, $3 top, $4 its format, $5 the overlay. Made
// in a private directory beside it, then linked to its name (link(2):
// never over or through anything there), with "./TOP" as its backing file,
// as large as the top says (clonekit info, confined). Every directory
// from the pool down must be safe_dir: nobody else can swap the names.
constexpr const char* kOverlay = R"sh(
set -eu
umask 077
ck=$1 pool=$2 top=$3 fmt=$4 ov=$5
dir=$(dirname -- "$ov")
safe_path "$dir" "$pool"
[ "$(dirname -- "$top")" = "$dir" ] || { echo "$ov is not beside $top" >&2; exit 1; }
size=$("$ck" info -U --output=json --format "$fmt" --confine "$pool" -- "$top" |
  sed -n 's/^ *"virtual-size": *\([0-9][0-9]*\),*$/\1/p' | head -n 1)
[ -n "$size" ] || { echo "cannot read the size of $top" >&2; exit 1; }
t=$(mktemp -d -- "$dir/.clonekit-snapshot.XXXXXX")
trap 'rm -rf -- "$t"' EXIT
qemu-img create -q -f qcow2 -u -b "./$(basename -- "$top")" -F "$fmt" -- "$t/overlay" "$size"
ln -T -- "$t/overlay" "$ov"
)sh";

// $1 chmod or rm, $2 the pool, then files. Each: a regular file of ours
// (not a link) in a safe_path beneath the pool, made read-only (chmod), or
// removed (rm: an overlay this service made, on a failed snapshot).
constexpr const char* kFiles = R"sh(
set -eu
op=$1 pool=$2
shift 2
for f in "$@"; do
  safe_path "$(dirname -- "$f")" "$pool"
  { [ -f "$f" ] && [ ! -L "$f" ] && [ "$(stat -c %u -- "$f")" = "$(id -u)" ]; } ||
    { echo "$f is not a regular file of root's" >&2; exit 1; }
  if [ "$op" = rm ]; then rm -f -- "$f"; else chmod 0444 -- "$f"; fi
done
)sh";

std::vector<std::string> ChainArgs(const RemoteChain& c, std::vector<std::string> args) {
  args.insert(args.end(), c.pool_dirs.begin(), c.pool_dirs.end());
  return args;
}

}  // namespace

Result<RemoteChainSize> MeasureRemoteChain(const RemoteHost& host, const RemoteChain& chain) {
  // (A fragmented chain's map is long: one entry per extent.)
  Result<std::string> out = host.Run(
      Script(WithHostFunctions(kMeasure).c_str(), ChainArgs(chain, {chain.clonekit, chain.top, chain.format})), 120,
      64 << 20);
  if (!out.ok()) return out.status();
  const Status bad = Status::IOError("host " + host.name(), "the map of " + chain.top + " is not qemu-img map's JSON");
  const nlohmann::json map = nlohmann::json::parse(*out, nullptr, /*allow_exceptions=*/false);
  if (!map.is_array()) return bad;
  RemoteChainSize size;
  for (const nlohmann::json& e : map) {
    if (!e.is_object() || !e.contains("start") || !e.contains("length") || !e["start"].is_number_unsigned() ||
        !e["length"].is_number_unsigned()) {
      return bad;
    }
    const uint64_t start = e["start"], length = e["length"];
    if (start != size.virtual_size || __builtin_add_overflow(start, length, &size.virtual_size)) return bad;
    if (e.contains("data") && e["data"] == true) size.data_bytes += length;
  }
  return size;
}

Status CollapseOnHost(const RemoteHost& host, const RemoteChain& chain, const RemoteTarget& target, uint64_t rate,
                      const std::function<void(double)>& progress, const std::atomic<bool>* cancel) {
  const bool to_export = target.scratch.empty();
  std::vector<std::string> args = {chain.clonekit, chain.top, chain.format, std::to_string(rate), target.scratch,
                                   to_export ? "raw" : target.format, to_export ? target.export_address : ""};
  const std::string input = to_export ? target.export_key + "\n" : "";
  // clonekit -p: "    (12.34/100%)\r", redrawn as it goes; anything else
  // is dropped (at most one unfinished line is kept).
  std::string pending;
  const auto on_output = [&](std::string_view text) {
    pending.append(text.substr(0, 4096));
    for (size_t close; (close = pending.find("/100%)")) != std::string::npos; pending.erase(0, close + 6)) {
      const size_t open = pending.rfind('(', close);
      if (open == std::string::npos) continue;
      double percent = -1;
      const auto [end, ec] = std::from_chars(pending.data() + open + 1, pending.data() + close, percent);
      if (ec == std::errc() && end == pending.data() + close && percent >= 0 && percent <= 100) progress(percent / 100.0);
    }
    if (pending.size() > 256) pending.erase(0, pending.size() - 64);
  };
  return host.Stream(Script(WithHostFunctions(kCollapse).c_str(), ChainArgs(chain, args)), input, on_output, cancel,
                     /*heartbeat_seconds=*/5);
}

Status MakeRemoteOverlay(const RemoteHost& host, const std::string& clonekit, const std::string& pool_dir,
                         const std::string& top, const std::string& format, const std::string& overlay) {
  return host.Run(Script(WithHostFunctions(kOverlay).c_str(), {clonekit, pool_dir, top, format, overlay}), 60).status();
}

Status ChangeRemoteFiles(const RemoteHost& host, RemoteFileChange change, const std::string& pool_dir,
                         const std::vector<std::string>& files) {
  std::vector<std::string> args = {change == RemoteFileChange::kMakeReadOnly ? "chmod" : "rm", pool_dir};
  args.insert(args.end(), files.begin(), files.end());
  return host.Run(Script(WithHostFunctions(kFiles).c_str(), args)).status();
}

}  // namespace clonekit::manager
