// The manager's private records, shared by its files (manager.cc: VMs,
// pools, snapshots, recovery; clone_plan.cc: defaults and planning;
// clone_jobs.cc: running, finishing, cancelling). Not for other users.
#ifndef CLONEKIT_MANAGER_MANAGER_INTERNAL_H_
#define CLONEKIT_MANAGER_MANAGER_INTERNAL_H_

#include <algorithm>
#include <atomic>
#include <string>
#include <string_view>
#include <vector>

#include "clonekit/collapse.h"
#include "generalize.h"
#include "host_uri.h"
#include "manager.h"

namespace clonekit::manager {

struct Manager::DiskPlan {
  std::string target, source, output, pool;
  ImageFormat source_format = ImageFormat::kQcow2;  // as the definition says
  OutputFormat format = OutputFormat::kQcow2;
  uint64_t data_bytes = 0;  // what the copy will write, about
  uint64_t virtual_size = 0;
  // A running VM made standalone (an instant clone, a flatten while it
  // runs): `source`'s chain is collapsed into `base`, a new `top` is made
  // on it, and the disk, on `overlay` until then, is switched to `top`.
  // Both reserved (O_EXCL) with the plan.
  std::string overlay, base, top;
  // A disk made on another host: the job's directory there (remote_disk.h).
  std::string scratch;
};

struct Manager::ClonePlan {
  int64_t job_id = 0, source_id = 0, clone_id = 0;
  DomainRef source, clone;
  // The host the clone is defined on; the host whose chains the copy
  // reads (the source's: the collapse runs there, remote_source.h); the
  // host its files are made on: the source's when its pools are there
  // (its own, or shared with the clone's host), else the clone's, whose
  // NBD export of each new image the copy writes into (remote_disk.h).
  // Any host but 'local' is reached over SSH.
  std::string host = kLocalHost;
  std::string source_host = kLocalHost;
  std::string files_host = kLocalHost;
  bool FilesElsewhere() const { return files_host != kLocalHost; }
  bool SourceElsewhere() const { return source_host != kLocalHost; }
  std::vector<std::string> scratch;  // the job's directories on files_host, by disk
  std::string libvirt_name, clone_xml;
  bool start = true;
  std::vector<DiskPlan> disks;
  std::string nvram_from, nvram_to;
  std::vector<std::string> outputs;  // every file reserved (O_EXCL) for the job
  std::string snapshot;              // "" = the source's current state
  bool live = false;                 // CloneRequest::live
  JobMode mode = JobMode::kFull;
  // A flatten job of a VM that is off: it collapses each overlay's chain
  // (source) into a reserved file beside it (output), which the definition
  // then names, so the VM may not start meanwhile.
  bool flatten_offline = false;
  // Files of the VM's that a flatten replaces, made by the clone job that
  // made the VM: removed once nothing uses them.
  std::vector<std::string> replaced;
  // What makes it a new machine (generalize.h): the items, the report's
  // host lines decided here, and what the guest items need.
  GeneralizeItems generalize;
  std::vector<IdentityChange> host_changes;
  std::vector<std::pair<std::string, std::string>> macs;  // source -> clone, lowercase
  std::string hostname;
  bool emulated_tpm = false;

  // A clone of the current state reads the disks the source writes: it is
  // shut down for the copy (or, live, instant and linked, snapshotted). A
  // snapshot's points are read-only files that a running source only reads
  // as backing files, so it keeps running.
  bool StopsSource() const { return mode != JobMode::kFlatten && snapshot.empty(); }
  // Instant and linked clones of the current state take a snapshot first,
  // whether the source runs or not: their overlays need read-only points.
  bool TakesSnapshot() const { return StopsSource() && (mode == JobMode::kInstant || mode == JobMode::kLinked); }
  bool Overlays() const { return mode == JobMode::kInstant || mode == JobMode::kLinked; }
};

struct Manager::RunningJob {
  int64_t id = 0;
  int64_t source_vm = 0;
  ClonePlan plan;
  std::atomic<bool> cancel{false};
  // A live clone's source runs on: the job copies the snapshot it took.
  std::atomic<bool> on_snapshot{false};
  // Set once the clone is defined: from then on it is kept whatever happens.
  std::atomic<bool> clone_defined{false};
  std::atomic<bool> started{false};
  // The clone's TPM state this job copied (removed if the job fails).
  bool tpm_state_made = false;
  // Copy progress counts for this share of the job (the rest is the
  // guest's generalization).
  double copy_share = 1.0;
  std::atomic<double> generalized{0};  // 0..1 of the guest's part
  // Live progress (the database copy is written at most once a second).
  std::atomic<double> percent{0};
  std::atomic<uint64_t> done_bytes{0}, total_bytes{0};
};

inline DomainRef RefOf(const VmRow& vm) { return {vm.uuid, vm.name}; }
// A definition's disk format ("raw" or "qcow2", checked by the model).
inline ImageFormat FormatOf(const std::string& format) {
  return format == "raw" ? ImageFormat::kRaw : ImageFormat::kQcow2;
}
std::string RealPath(const std::string& path);
// An absolute path with no empty, "." or ".." component: another host's
// file named by it is in the pool its name says (checked by name only here).
inline bool PlainPath(const std::string& path) {
  if (path.empty() || path[0] != '/' || path.back() == '/') return false;
  for (size_t at = 1, end; at <= path.size(); at = end + 1) {
    end = std::min(path.find('/', at), path.size());
    const std::string_view part(path.data() + at, end - at);
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}
// The free and total space of these pools of a host (pools[i].dir there),
// asked in one SSH round; "" or why not.
std::string RemoteSpace(const RemoteHost& remote, std::vector<PoolSpace>* pools);
// What a job's error says while its files on another host wait for it
// (RetryPendingCleanups says "were removed when it answered again" then):
// a failed clone's partial files, or a defined clone's scratch directories.
constexpr const char* kPendingTail = " are removed when it answers again";
constexpr const char* kRemovedTail = " were removed when it answered again";
inline std::string PendingNote(const std::string& host, bool kept = false) {
  return std::string("; ") + (kept ? "the job's own directories" : "its partial files") + " on host '" + host + "'" +
         kPendingTail;
}
// Writes a new, empty qcow2 image of `size` bytes into `fd` (a file the
// service made: `path` names it in errors) whose backing file is `backing`
// (read by qemu relative to the image's directory unless absolute) in
// `backing_format`, and syncs it. qemu-img never opens a name: the image
// goes to /dev/fd/3, and the backing file is not read (-u).
Status WriteOverlay(int fd, const std::string& path, const std::string& backing, const std::string& backing_format,
                    uint64_t size);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_MANAGER_INTERNAL_H_
