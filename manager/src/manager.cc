#include "manager.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "clonekit/chain_resolver.h"
#include "host_uri.h"
#include "manager_internal.h"
#include "pool_fs.h"
#include "tpm_state.h"
#include "process.h"
#include "remote_source.h"

namespace clonekit::manager {

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? buf : "";
}

namespace {

// "vda".."vdz", then "vdaa".."vdzz": a target for the i-th imported disk.
std::string ImportTarget(size_t i) {
  std::string t = "vd";
  if (i >= 26) t += static_cast<char>('a' + i / 26 - 1);
  return t + static_cast<char>('a' + i % 26);
}

constexpr size_t kMaxImportDisks = 64;

}  // namespace

Result<std::unique_ptr<Manager>> Manager::Open(const ManagerOptions& options) {
  std::unique_ptr<Manager> m(new Manager);
  m->options_ = options;
  if (m->options_.remote_clonekit.empty()) {  // (clonekit beside this program)
    std::error_code ec;
    m->options_.remote_clonekit = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "clonekit";
  }
  Result<std::unique_ptr<Store>> store = Store::Open(options.db_path, options.role_events);
  if (!store.ok()) return store.status();
  m->store_ = std::move(store).value();
  m->events_.StartNumbering();  // (this service is the database's one writer from here)
  Result<std::unique_ptr<Hypervisor>> hv = OpenHypervisor(options.hypervisor_uri);
  if (!hv.ok()) return hv.status();
  m->hv_ = std::move(hv).value();
  CLONEKIT_RETURN_IF_ERROR(m->Recover());
  RemoveStaleKeyDirs();
  m->janitor_ = std::thread([p = m.get()] {
    std::unique_lock<std::mutex> lock(p->janitor_mu_);
    while (!p->janitor_cv_.wait_for(lock, kCleanupRetry, [p] { return p->janitor_stop_; })) {
      lock.unlock();
      p->RetryQueued();  // (first: the cleanups may wait on SSH)
      p->RetryPendingCleanups();
      lock.lock();
    }
  });
  return m;
}

Manager::~Manager() {
  if (janitor_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(janitor_mu_);
      janitor_stop_ = true;
    }
    janitor_cv_.notify_all();
    janitor_.join();
  }
  std::map<int64_t, std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    for (auto& [id, job] : running_) job->cancel = true;
    // Nothing starts now: a job ending here would start the next queued
    // one on a thread nobody joins (and reap threads moved out below).
    // Their rows stay queued; the next start fails them (Recover).
    queue_.clear();
    ended_.clear();
    threads.swap(threads_);
  }
  for (auto& [id, t] : threads) t.join();
}

PoolFs Manager::Fs() { return PoolFs(LocalPools()); }

std::vector<Pool> Manager::LocalPools() { return PoolsOn(kLocalHost); }

std::vector<Pool> Manager::PoolsOn(const std::string& host) {
  std::vector<Pool> out;
  for (Pool& p : store_->Pools()) {
    if (p.OnHost(host)) out.push_back(std::move(p));
  }
  return out;
}

std::shared_ptr<Hypervisor> Manager::HvOn(const std::string& host) {
  if (host == kLocalHost) return hv_;
  std::lock_guard<std::mutex> lock(remote_hv_mu_);
  std::shared_ptr<Hypervisor>& hv = remote_hv_[host];
  if (!hv) {
    std::string uri;
    for (const HostRow& h : store_->Hosts()) {
      if (h.name == host) uri = h.uri;
    }
    if (uri.empty()) {
      // Not registered (now: a host removed while this was asked): nothing
      // runs there. Not kept, so a host added again under the name is used.
      remote_hv_.erase(host);
      Result<std::unique_ptr<Hypervisor>> none = OpenHypervisor("");
      return std::move(none).value();
    }
    hv = RemoteHypervisor(uri);
  }
  return hv;
}

Status Manager::RefuseOnOtherHost(const VmRow& vm, const std::string& what) {
  if (vm.host == kLocalHost) return Status::OK();
  return Status::InvalidArgument("VM '" + vm.name + "'", "is on host '" + vm.host + "': " + what +
                                                             " checks its files, which this service does only on "
                                                             "its own host ('local')");
}

// Removes exactly the files a job recorded as its own, and the engine's
// temporaries beside each.
void Manager::RemoveJobFiles(const std::vector<std::string>& outputs) {
  for (const std::string& path : outputs) {
    RemoveTemporaries(path);
    unlink(path.c_str());
  }
}

// A clone that was queued or running when the service died: its images are
// partial, its entry half made. Undo both and say why on the job. A read
// that fails stops it (and the service's start): what it removes depends
// on what it reads, and the next start does it all again.
Status Manager::Recover() {
  // The hypervisor may have lost definitions (a test driver restarts empty;
  // a host may have been rebuilt): give it back every VM it does not know,
  // unless its libvirt name now belongs to another domain.
  // (VMs on this host only: another host may be down now, and its own
  // libvirt keeps its definitions.)
  for (const VmRow& vm : store_->Vms()) {
    if (vm.host != kLocalHost) continue;
    if (vm.status != VmStatus::kDefined || !hv_->available() || hv_->KnowsUuid(vm.uuid)) continue;
    if (hv_->UuidOfName(LibvirtName(vm.ns, vm.name))) continue;
    if (Result<std::string> xml = ForLibvirt(vm.xml, LibvirtName(vm.ns, vm.name)); xml.ok()) {
      hv_->Define(*xml).IgnoreError();  // best effort: the VM stays listed, start will say why
    }
  }
  Result<std::vector<JobRow>> jobs = store_->CheckedJobs();
  if (!jobs.ok()) return jobs.status();
  for (JobRow job : *jobs) {
    if (!Active(job.state)) continue;
    // A clone already defined (an instant clone being flattened, a VM a
    // flatten job worked on) is the user's VM: kept, its images too; only
    // a flatten's scratch copies go.
    std::optional<VmRow> clone;
    if (job.clone_vm) {
      Result<std::optional<VmRow>> read = store_->CheckedVm(job.clone_vm);
      if (!read.ok()) return read.status();
      clone = *read;
    }
    const bool kept = clone && clone->status == VmStatus::kDefined;
    // (Another host's files: its outputs go, or for a clone already
    // defined there only the job's own directories.)
    const bool here = job.host == kLocalHost;
    if (!kept || !here) RemoveJobOutputs(job, job.host, job.outputs, job.scratch, /*keep_outputs=*/kept);
    // A disk may have been switched (or not) to its new top just before
    // the end: qemu, if it still runs the VM, says which (adopted); if the
    // VM is off too, nobody can, and every file stays for the admin.
    const bool unknown = kept && here && !job.switching.empty() && hv_->State(RefOf(*clone)) != Power::kRunning;
    if (kept && here) AdoptSwitchedDisks(*clone, job.outputs);
    if (kept && here && !unknown) RemoveUnused(clone->id, job.outputs);
    if (clone && !kept) {
      // Defined in libvirt just before the crash? It is ours by UUID.
      if (HostAnswers(clone->host)) Hv(*clone)->Undefine(RefOf(*clone)).IgnoreError();  // best effort: nothing else names it
      RemoveTpmState(options_.tpm_state_dir, clone->uuid);  // a new random UUID: only this job made it
      store_->DeleteVm(job.clone_vm).IgnoreError();  // the job's error says what happened
    }
    if (!kept) job.clone_vm = 0;
    if (!kept) job.identity_changes.clear();  // they went with the images
    job.state = JobState::kFailed;
    job.error = kept ? "interrupted: the service stopped during the job; the VM is kept"
                     : job.cleanup_pending ? "interrupted: the service stopped during the clone"
                                           : "interrupted: the service stopped during the clone (partial images removed on restart)";
    if (job.cleanup_pending) job.error += PendingNote(job.host, kept);
    if (unknown) {
      const size_t eq = job.switching.find('=');
      job.error += "; disk " + job.switching.substr(0, eq) + " was being switched to " + job.switching.substr(eq + 1) +
                   " when the VM stopped too: its definition still names its old top, which may miss the writes since; "
                   "both files are kept";
    }
    // A switch adopted above may have made it standalone: the images say.
    if (kept && !ClearBackingIfStandalone(clone->id)) {
      if (std::optional<VmRow> now = store_->Vm(clone->id)) job.error += "; " + LinkedWhy(*now);
    }
    job.error_kind = "interrupted";
    job.finished = NowUtc();
    if (job.source_was_running && job.source_vm) {
      if (auto src = store_->Vm(job.source_vm); src && Hv(*src)->available()) {
        if (Status s = Hv(*src)->Start(RefOf(*src)); !s.ok()) job.error += "; the source did not start again: " + s.message();
      }
    }
    if (Status s = store_->UpdateJob(job); !s.ok()) std::fprintf(stderr, "clonekit: recovery: %s\n", s.message().c_str());
  }
  return Status::OK();
}

// A VM a job was making standalone while it ran, after the service died:
// qemu may still be copying (stopped here where it is: the disk stays on
// its old top), or may have switched a disk the store does not know of
// yet (adopted, if the new top is one of the job's files).
void Manager::AdoptSwitchedDisks(const VmRow& vm, const std::vector<std::string>& outputs) {
  if (hv_->State(RefOf(vm)) != Power::kRunning) return;
  Result<DomainInfo> stored = ParseDomain(vm.xml);
  if (!stored.ok()) return;
  for (const DiskSpec& d : stored->disks) hv_->AbortDiskJob(RefOf(vm), d.target).IgnoreError();  // none: fine
  Result<std::vector<DiskSpec>> running = LibvirtDisks(RefOf(vm), /*live=*/true);
  if (!running.ok()) return;
  std::map<std::string, DiskSpec> adopt;
  for (const DiskSpec& d : *running) {
    for (const DiskSpec& s : stored->disks) {
      if (s.target == d.target && s.file != d.file &&
          std::find(outputs.begin(), outputs.end(), d.file) != outputs.end()) {
        adopt[d.target] = {d.target, d.file, "qcow2"};
      }
    }
  }
  if (!adopt.empty()) SwitchDefinition(vm.id, adopt).IgnoreError();  // best effort: the job's error says it was interrupted
}

void Manager::Emit(const std::string& kind, json data) { events_.Emit(kind, std::move(data)); }

json Manager::WaitEvents(uint64_t after, int timeout_ms) { return events_.After(after, timeout_ms); }
uint64_t Manager::LastEvent() { return events_.Last(); }

std::vector<int64_t> Manager::JobsReading(int64_t vm_id, bool power_locking_only) {
  std::vector<int64_t> ids;
  std::lock_guard<std::mutex> lock(jobs_mu_);
  for (const auto& [id, job] : running_) {
    const bool locks_power = job->plan.mode == JobMode::kFlatten ? job->plan.flatten_offline
                                                                  : job->plan.StopsSource() && !job->on_snapshot;
    if (job->source_vm == vm_id && (locks_power || !power_locking_only)) ids.push_back(id);
  }
  return ids;
}

// ------------------------------------------------------------ pools --

// Pools are where clones are written and every disk must lie: an admin's
// choice, so the checks keep one pool from reaching into another or into
// the service's own state.
Result<Pool> Manager::AddPool(const std::string& name, const std::string& dir, std::vector<std::string> hosts) {
  // One change of hosts and pools at a time: what is checked here (the
  // hosts exist, no overlap) still holds at the insert, seconds of SSH later.
  std::lock_guard<std::mutex> registry(registry_mu_);
  std::string err = CheckName("pool", name);
  if (!err.empty()) return Status::InvalidArgument(err);
  const std::string subject = "pool '" + name + "'";
  if (hosts.empty()) hosts = {kLocalHost};
  std::sort(hosts.begin(), hosts.end());
  if (std::adjacent_find(hosts.begin(), hosts.end()) != hosts.end()) return Status::InvalidArgument(subject, "names a host twice");
  const auto inside = [](const std::string& path, const std::string& dir) {
    return path == dir || path.rfind(dir == "/" ? dir : dir + "/", 0) == 0;
  };
  // The directory's canonical path, the same on every host.
  std::string real;
  for (const std::string& host : hosts) {
    std::string here;
    if (host == kLocalHost) {
      here = RealPath(dir);
      struct stat st;
      if (here.empty() || stat(here.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return Status::InvalidArgument(subject, "'" + dir + "' is not a directory");
      }
      if (here == "/") return Status::InvalidArgument(subject, "'/' cannot be a pool");
      const std::string db_dir = RealPath(!options_.state_dir.empty() ? options_.state_dir : DirName(options_.db_path));
      if (!db_dir.empty() && inside(db_dir, here)) {
        return Status::InvalidArgument(subject, here + " holds the service's database (" + db_dir + ")");
      }
    } else {
      Result<RemoteHost> remote = RemoteOf(host);
      if (!remote.ok()) return remote.status();
      // The path is one argument of a command the host's shell reads: what
      // a POSIX shell's quoting keeps whole, and only that (no control
      // characters, no backslash, which some shells read inside quotes).
      if (dir.empty() || dir[0] != '/' || dir.size() > 4096 ||
          std::any_of(dir.begin(), dir.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\'; })) {
        return Status::InvalidArgument(subject, "a pool on another host is an absolute path without control characters or '\\'");
      }
      Result<std::string> answer = remote->Run({"realpath", "-z", "-e", "--", dir});
      if (!answer.ok()) return Status::InvalidArgument(subject, answer.status().message());
      // (An answer is data: exactly one absolute path, as strict as the question.)
      here = answer->empty() || answer->back() != '\0' ? "" : answer->substr(0, answer->size() - 1);
      if (here.empty() || here[0] != '/' || here.size() > 4096 || here.find('\0') != std::string::npos ||
          std::any_of(here.begin(), here.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\'; })) {
        return Status::InvalidArgument(subject, "host " + host + " answered no usable path for '" + dir + "'");
      }
      if (!remote->Run({"test", "-d", here}).ok()) {
        return Status::InvalidArgument(subject, "'" + dir + "' is not a directory on host " + host);
      }
    }
    if (here == "/") return Status::InvalidArgument(subject, "'/' cannot be a pool");
    if (!real.empty() && here != real) {
      return Status::InvalidArgument(subject, "'" + dir + "' is " + real + " on one host and " + here + " on " + host +
                                                  ": a shared pool has the same path on each");
    }
    real = here;
  }
  if (hosts.size() > 1) CLONEKIT_RETURN_IF_ERROR(CheckSharedStorage(subject, real, hosts));
  for (const Pool& p : store_->Pools()) {
    if (p.name == name) return Status::Exists(subject, "already exists");
    const bool shares_a_host = std::any_of(hosts.begin(), hosts.end(), [&](const std::string& h) { return p.OnHost(h); });
    if (!shares_a_host) continue;
    if (p.dir == real) return Status::Exists(subject, "directory " + real + " is pool '" + p.name + "'");
    if (inside(p.dir, real)) {
      return Status::InvalidArgument(subject, real + " contains pool '" + p.name + "' (" + p.dir + ")");
    }
    if (inside(real, p.dir)) {
      return Status::InvalidArgument(subject, real + " is inside pool '" + p.name + "' (" + p.dir + ")");
    }
  }
  const Pool pool{name, real, hosts};
  CLONEKIT_RETURN_IF_ERROR(store_->AddPool(pool));
  ForgetHosts();
  Emit("pool", {{"name", name}, {"dir", real}, {"hosts", hosts}});
  return pool;
}

// A shared pool is one file system on every host: a file the first host
// writes into the directory (a new random name, O_EXCL) must read back the
// same on each of the others. The same path on two hosts' own disks is not
// a shared pool (a clone written there would be missing on the other).
Status Manager::CheckSharedStorage(const std::string& subject, const std::string& dir,
                                   const std::vector<std::string>& hosts) {
  const std::string token = RandomUuid();
  const std::string marker = dir + "/.clonekit-shared-check-" + token;
  const auto on = [&](const std::string& host, const std::vector<std::string>& argv) -> Result<std::string> {
    Result<RemoteHost> remote = RemoteOf(host);
    if (!remote.ok()) return remote.status();
    return remote->Run(argv);
  };
  const std::string& writer = hosts.front();
  if (writer == kLocalHost) {
    UniqueFd fd(open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd || write(fd.get(), token.data(), token.size()) != static_cast<ssize_t>(token.size())) {
      return Status::FromErrno(marker, "cannot write the check of a shared pool", errno);
    }
  } else {
    Result<std::string> made = on(writer, {"sh", "-c", "set -C; umask 077; printf %s \"$2\" >\"$1\"", "sh", marker, token});
    if (!made.ok()) return Status::InvalidArgument(subject, made.status().message());
  }
  Status seen;
  for (size_t i = 1; i < hosts.size() && seen.ok(); i++) {
    std::string read;
    if (hosts[i] == kLocalHost) {
      UniqueFd fd(open(marker.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      char buf[64];
      const ssize_t n = fd ? ::read(fd.get(), buf, sizeof buf) : -1;
      if (n > 0) read.assign(buf, static_cast<size_t>(n));
    } else if (Result<std::string> r = on(hosts[i], {"sh", "-c", "cat -- \"$1\" 2>/dev/null || true", "sh", marker}); r.ok()) {
      read = *r;
    } else {
      seen = Status::InvalidArgument(subject, r.status().message());
    }
    if (seen.ok() && read != token) {
      seen = Status::InvalidArgument(subject, dir + " on host " + hosts[i] + " is not the same storage as on host " +
                                                  writer + " (a file written there is not seen): a shared pool is one "
                                                  "file system mounted at the same path on each");
    }
  }
  if (writer == kLocalHost) {
    unlink(marker.c_str());
  } else {
    on(writer, {"rm", "-f", "--", marker}).status().IgnoreError();
  }
  return seen;
}

// A pool still holding a VM's disk stays.
Status Manager::RemovePool(const std::string& name) {
  std::lock_guard<std::mutex> registry(registry_mu_);
  std::optional<Pool> pool;
  for (const Pool& p : store_->Pools()) {
    if (p.name == name) pool = p;
  }
  if (!pool) return Status::NotFound("no pool '" + name + "'");
  for (const VmRow& vm : store_->Vms()) {
    Result<DomainInfo> info = ParseDomain(vm.xml);
    if (!info.ok()) continue;
    for (const auto& [path, what] : info->host_paths) {
      if (pool->OnHost(kLocalHost) && path.rfind(pool->dir + "/", 0) == 0) {
        return Status::Locked("pool '" + name + "'", "holds " + what + " of VM '" + vm.name + "'");
      }
    }
  }
  CLONEKIT_RETURN_IF_ERROR(store_->RemovePool(name));
  ForgetHosts();
  Emit("pool", {{"name", name}, {"change", "removed"}});
  return Status::OK();
}

std::vector<Pool> Manager::Pools() { return store_->Pools(); }

// -------------------------------------------------------------- VMs --

// Every host path of a definition lies in a pool, is a regular file reached
// without a symlink, and a disk's whole backing chain does too. Run at
// define, at every edit, and again by each use (the openers are the same).
Status Manager::CheckDefinition(const DomainInfo& info, const PoolFs& fs) {
  std::map<std::string, std::string> disk_format;  // file -> the format the definition gives it
  for (const DiskSpec& d : info.disks) disk_format[d.file] = d.format;
  for (const auto& [path, what] : info.host_paths) {
    if (!disk_format.count(path)) {
      Result<UniqueFd> fd = fs.OpenRead(path, what);
      if (!fd.ok()) return fd.status();
      continue;
    }
    Result<std::unique_ptr<Chain>> chain = fs.OpenChain(path, FormatOf(disk_format[path]), /*headers_only=*/true);
    if (!chain.ok()) return Status::InvalidArgument(what, chain.status().message());
  }
  return Status::OK();
}

// libvirt's names and UUIDs are host-wide: a definition may not take over a
// domain clonekit did not make (libvirt would redefine it).
Status Manager::CheckLibvirtFree(const std::string& host, const std::string& libvirt_name, const std::string& uuid) {
  CLONEKIT_RETURN_IF_ERROR(HostReady(host));
  const std::shared_ptr<Hypervisor> hv = HvOn(host);
  if (!hv->available()) return Status::OK();
  if (std::optional<std::string> owner = hv->UuidOfName(libvirt_name); owner && CanonicalUuid(*owner) != CanonicalUuid(uuid)) {
    return Status::Exists("VM '" + libvirt_name + "'", "libvirt already has a domain of that name (" + *owner + ")");
  }
  if (hv->KnowsUuid(uuid)) return Status::Exists("UUID " + uuid, "libvirt already has a domain with this UUID");
  return Status::OK();
}

VmView Manager::ViewOf(const VmRow& vm, bool full) {
  VmView v;
  v.vm = vm;
  v.full = full;
  v.locked_by = PowerLockingJobs(vm.id);
  v.read_by = ReadingJobs(vm.id);
  const bool cloning = vm.status == VmStatus::kCloning;
  const std::shared_ptr<Hypervisor> hv = Hv(vm);
  v.detail = cloning ? PowerDetail::kShutoff : !HostAnswers(vm.host) ? PowerDetail::kUnreachable : hv->Detail(RefOf(vm));
  if (v.detail == PowerDetail::kUndefined) v.detail = PowerDetail::kShutoff;
  // What may be done to it now, and why not: the console draws this and
  // decides nothing itself.
  const bool running = PowerOf(v.detail) == Power::kRunning;
  const auto action = [](const char* why) { return why ? Action{false, why} : Action{}; };
  const char* lock_why =
      cloning ? "It is still being cloned" : !v.locked_by.empty() ? "Locked while it is being cloned" : nullptr;
  v.actions.start = action(lock_why ? lock_why : running ? "It is running" : !hv->available() ? "No hypervisor is configured"
                                             : v.detail == PowerDetail::kUnreachable ? "Its host does not answer" : nullptr);
  v.actions.shutdown = action(cloning ? lock_why : !running ? "It is not running" : nullptr);
  v.actions.force_off = v.actions.shutdown;
  const char* elsewhere = vm.host != kLocalHost ? "Its disks are on another host" : nullptr;
  v.actions.clone = action(cloning ? lock_why : v.detail == PowerDetail::kUnreachable ? "Its host does not answer" : nullptr);
  v.actions.edit = action(cloning ? lock_why : elsewhere);
  v.actions.remove = action(lock_why                ? lock_why
                            : !v.read_by.empty() ? "A clone is reading its snapshot points"
                            : running            ? "Shut it down first"
                                                 : nullptr);
  v.actions.cancel_clone = action(cloning ? nullptr : "No clone of it is being made");
  // A clone being made, or a linked clone being made standalone (an
  // instant clone's copy, a flatten): its job and progress.
  // (Looked up among the jobs in memory: the list draws every VM.)
  if (std::optional<int64_t> id = cloning || vm.backing_snapshot ? JobMaking(vm.id, false) : std::nullopt) {
    if (std::optional<JobRow> job = store_->Job(*id)) {
      const JobView jv = ViewOf(*job);
      v.job = job->id;
      v.percent = jv.job.percent;
      v.queued = jv.job.state == JobState::kQueued;
      v.queue_position = jv.queue_position;
    }
  }
  if (Result<DomainInfo> info = ParseDomain(vm.xml); info.ok()) v.info = *info;
  v.snapshots = store_->Snapshots(vm.id).size();
  if (vm.backing_snapshot) {
    VmView::LinkedTo to;
    if (std::optional<SnapshotRow> snap = store_->SnapshotById(vm.backing_snapshot)) {
      to.vm = snap->vm_id;
      to.snapshot = snap->name;
      if (std::optional<VmRow> source = store_->Vm(snap->vm_id)) to.vm_name = source->name;
    }
    v.linked_to = to;
  }
  v.actions.flatten = action(cloning                ? lock_why
                             : !vm.backing_snapshot ? "Its disks stand alone"
                             : v.job                ? "A job is making it standalone"
                             : !v.read_by.empty()   ? "A job is working on it"
                                                    : nullptr);
  return v;
}

std::vector<VmView> Manager::ListVms(const std::optional<std::string>& host) {
  std::vector<VmView> out;
  for (const VmRow& vm : store_->Vms()) {
    if (!host || vm.host == *host) out.push_back(ViewOf(vm, false));
  }
  return out;
}

Result<VmView> Manager::GetVm(int64_t id) {
  std::optional<VmRow> vm = store_->Vm(id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(id));
  return ViewOf(*vm, true);
}

Result<int64_t> Manager::FindVm(const std::string& ns, const std::string& name) {
  std::optional<VmRow> vm = store_->VmByName(ns, name);
  if (!vm) return Status::NotFound("no VM '" + name + "' in namespace '" + ns + "'");
  return vm->id;
}

Result<VmView> Manager::DefineVm(const std::string& xml, const std::string& ns, const std::string& description) {
  Result<DomainInfo> info = ParseDomain(xml);
  if (!info.ok()) return info.status();
  std::string err = CheckName("VM", info->name);
  if (err.empty()) err = CheckNamespace(ns);
  if (!err.empty()) return Status::InvalidArgument(err);
  // Every check before any side effect: the store, libvirt, the files.
  if (store_->VmByName(ns, info->name)) {
    return Status::Exists("VM '" + info->name + "'", "already exists in namespace '" + ns + "'");
  }
  VmRow vm;
  vm.uuid = info->uuid.empty() ? RandomUuid() : CanonicalUuid(info->uuid);  // one spelling per UUID
  for (const VmRow& other : store_->Vms()) {
    if (CanonicalUuid(other.uuid) == vm.uuid) return Status::Exists("UUID " + vm.uuid, "belongs to VM '" + other.name + "' already");
  }
  const std::string libvirt_name = LibvirtName(ns, info->name);
  CLONEKIT_RETURN_IF_ERROR(CheckLibvirtFree(kLocalHost, libvirt_name, vm.uuid));
  CLONEKIT_RETURN_IF_ERROR(CheckDefinition(*info, Fs()));
  vm.name = info->name;
  vm.ns = ns;
  vm.description = description.empty() ? info->description : description;
  vm.status = VmStatus::kDefined;
  Result<std::string> pinned = SetIdentity(xml, vm.uuid, vm.description);
  if (!pinned.ok()) return pinned.status();
  vm.xml = *pinned;
  Result<std::string> for_libvirt = ForLibvirt(vm.xml, libvirt_name);
  if (!for_libvirt.ok()) return for_libvirt.status();
  Result<int64_t> id = store_->InsertVm(vm);
  if (!id.ok()) return id.status();
  vm.id = *id;
  if (Status defined = hv_->Define(*for_libvirt); !defined.ok()) {
    store_->DeleteVm(vm.id).IgnoreError();  // undo our own row; the define error is the one to report
    return defined;
  }
  Emit("vm", {{"id", vm.id}, {"change", "defined"}});
  return ViewOf(vm, true);
}

Result<VmView> Manager::UpdateVm(int64_t id, const std::optional<std::string>& xml,
                               const std::optional<std::string>& description, std::optional<uint64_t> vcpus,
                               std::optional<uint64_t> memory_mib) {
  std::optional<VmRow> vm = store_->Vm(id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(id));
  if (vm->status == VmStatus::kCloning) {
    return Status::Locked("VM '" + vm->name + "'", "is being cloned; wait or cancel the job");
  }
  CLONEKIT_RETURN_IF_ERROR(RefuseWhileMadeStandalone(*vm, "edit"));
  if (xml || vcpus || memory_mib) CLONEKIT_RETURN_IF_ERROR(RefuseOnOtherHost(*vm, "a change of its definition"));
  // Editing a locked source is allowed: clones in progress copied its
  // configuration when they started.
  VmRow updated = *vm;
  if (description) updated.description = *description;
  std::string base = vm->xml;
  if (xml) {
    Result<DomainInfo> info = ParseDomain(*xml);
    if (!info.ok()) return info.status();
    if (info->name != vm->name) return Status::InvalidArgument("VM '" + vm->name + "'", "renaming is not supported");
    if (!info->uuid.empty() && CanonicalUuid(info->uuid) != CanonicalUuid(vm->uuid)) {
      return Status::InvalidArgument("VM '" + vm->name + "'", "the UUID cannot change");
    }
    CLONEKIT_RETURN_IF_ERROR(CheckDefinition(*info, Fs()));
    base = *xml;
  }
  if (vcpus || memory_mib) {
    Result<std::string> sized =
        SetResources(base, vcpus, memory_mib ? std::optional<uint64_t>(*memory_mib * 1024) : std::nullopt);
    if (!sized.ok()) return sized.status();
    base = *sized;
  }
  // One source of truth for the description: the entry; the XML follows it.
  Result<std::string> pinned = SetIdentity(base, vm->uuid, updated.description);
  if (!pinned.ok()) return pinned.status();
  updated.xml = *pinned;
  Result<std::string> for_libvirt = ForLibvirt(updated.xml, LibvirtName(vm->ns, vm->name));
  if (!for_libvirt.ok()) return for_libvirt.status();
  CLONEKIT_RETURN_IF_ERROR(Hv(*vm)->Define(*for_libvirt));
  CLONEKIT_RETURN_IF_ERROR(store_->UpdateVm(updated));
  Emit("vm", {{"id", id}, {"change", "updated"}});
  return ViewOf(updated, true);
}

Result<VmView> Manager::ImportVm(const std::string& name, const std::string& ns, const std::vector<std::string>& paths) {
  if (paths.empty()) return Status::InvalidArgument("import needs at least one disk");
  if (paths.size() > kMaxImportDisks) {
    return Status::InvalidArgument("import", std::to_string(paths.size()) + " disks: at most " +
                                                 std::to_string(kMaxImportDisks));
  }
  const PoolFs fs = Fs();
  std::vector<DiskSpec> disks;
  std::vector<std::vector<std::pair<std::string, std::string>>> layers;  // per disk: (path, format), top first
  for (size_t i = 0; i < paths.size(); i++) {
    const std::string target = ImportTarget(i);
    // An import takes what is there: the only place a top's format is probed.
    Result<std::unique_ptr<Chain>> chain = fs.OpenChain(paths[i], std::nullopt, /*headers_only=*/true);
    if (!chain.ok()) return Status::InvalidArgument("disk " + target, chain.status().message());
    std::vector<std::pair<std::string, std::string>> l;
    for (const auto& layer : (*chain)->layers()) l.push_back({layer->name(), FormatName(layer->info().format)});
    layers.push_back(l);
    disks.push_back({target, paths[i], l[0].second});
  }
  // The layers below the tops become snapshots, oldest first, when every
  // disk has the same depth (layer k of each disk belongs together).
  const size_t depth = layers[0].size();
  for (const auto& l : layers) {
    if (l.size() != depth) {
      return Status::InvalidArgument("import", "the disks' chains have different depths (" + std::to_string(depth) +
                                                   " and " + std::to_string(l.size()) +
                                                   "): their layers cannot be paired as snapshots");
    }
  }
  // (A machine without KVM runs it under TCG: a definition that starts.)
  const std::string xml = MinimalDomainXml(name, RandomUuid(), disks, access("/dev/kvm", R_OK | W_OK) == 0);
  Result<VmView> vm = DefineVm(xml, ns, "");
  if (!vm.ok()) return vm.status();
  const int64_t id = vm->vm.id;
  std::set<std::string> used;
  for (size_t k = depth; k-- > 1;) {
    std::map<std::string, DiskSpec> at;
    for (size_t i = 0; i < disks.size(); i++) at[disks[i].target] = {disks[i].target, layers[i][k].first, layers[i][k].second};
    std::string snap = BaseName(layers[0][k].first);
    snap = snap.substr(0, snap.rfind('.') == 0 ? snap.size() : snap.rfind('.'));
    if (!CheckName("snapshot", snap).empty() || used.count(snap)) snap = "layer-" + std::to_string(depth - 1 - k);
    used.insert(snap);
    Result<std::string> sx = SetDisks(xml, at);
    if (!sx.ok()) return sx.status();
    SnapshotRow row;
    row.vm_id = id;
    row.name = snap;
    row.xml = *sx;
    Result<int64_t> sid = store_->InsertSnapshot(row);
    if (!sid.ok()) return sid.status();
  }
  return GetVm(id);
}

Status Manager::DeleteVm(int64_t id) {
  std::optional<VmRow> vm = store_->Vm(id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(id));
  if (vm->status == VmStatus::kCloning) {
    return Status::Locked("VM '" + vm->name + "'", "is being cloned: cancel its clone job instead");
  }
  std::vector<int64_t> locks = ReadingJobs(id);
  if (!locks.empty()) {
    return Status::Locked("VM '" + vm->name + "'", "is locked: clone job " + std::to_string(locks[0]) +
                                                      " is copying it; delete is refused until it ends");
  }
  // (the job's files would outlive the entry that says whose they are)
  CLONEKIT_RETURN_IF_ERROR(RefuseWhileMadeStandalone(*vm, "delete"));
  const PowerDetail power = HostAnswers(vm->host) ? Hv(*vm)->Detail(RefOf(*vm)) : PowerDetail::kUnreachable;
  if (PowerOf(power) == Power::kRunning) return Status::Locked("VM '" + vm->name + "'", "is running; stop it first");
  if (power == PowerDetail::kUnreachable) {
    return Status::Locked("VM '" + vm->name + "'", "its host '" + vm->host + "' does not answer; delete it once it does");
  }
  for (const SnapshotRow& snap : store_->Snapshots(id)) {
    if (std::string clones = ClonesBackedBy(snap.id); !clones.empty()) {
      return Status::Exists("VM '" + vm->name + "'", "its snapshot '" + snap.name + "' is the backing of linked clones " +
                                                         clones + "; flatten or delete them first");
    }
  }
  CLONEKIT_RETURN_IF_ERROR(Hv(*vm)->Undefine(RefOf(*vm)));
  CLONEKIT_RETURN_IF_ERROR(store_->DeleteVm(id));
  Emit("vm", {{"id", id}, {"change", "deleted"}});
  return Status::OK();
}

Status Manager::StartVm(int64_t id) {
  std::optional<VmRow> vm = store_->Vm(id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(id));
  if (vm->status == VmStatus::kCloning) return Status::Locked("VM '" + vm->name + "'", "is still being cloned");
  std::vector<int64_t> locks = PowerLockingJobs(id);
  if (!locks.empty()) {
    return Status::Locked("VM '" + vm->name + "'", "is locked: clone job " + std::to_string(locks[0]) +
                                                      " is copying it; run is refused until it ends");
  }
  // The store's definition is the VM's: libvirt gets it again first, so a
  // redefinition that failed after a snapshot or a switch cannot start it
  // on files it no longer uses.
  CLONEKIT_RETURN_IF_ERROR(HostReady(vm->host));
  const std::shared_ptr<Hypervisor> hv = Hv(*vm);
  if (hv->available() && hv->State(RefOf(*vm)) != Power::kRunning) {
    Result<std::string> for_libvirt = ForLibvirt(vm->xml, LibvirtName(vm->ns, vm->name));
    if (!for_libvirt.ok()) return for_libvirt.status();
    // (never over a domain of that name clonekit did not make)
    if (std::optional<std::string> owner = hv->UuidOfName(LibvirtName(vm->ns, vm->name));
        owner && CanonicalUuid(*owner) != CanonicalUuid(vm->uuid)) {
      return Status::Exists("VM '" + vm->name + "'", "libvirt has another domain of its name (" + *owner + ")");
    }
    CLONEKIT_RETURN_IF_ERROR(hv->Define(*for_libvirt));
  }
  CLONEKIT_RETURN_IF_ERROR(hv->Start(RefOf(*vm)));
  Emit("vm", {{"id", id}, {"change", "started"}});
  return Status::OK();
}

Status Manager::StopVm(int64_t id, bool force) {
  std::optional<VmRow> vm = store_->Vm(id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(id));
  CLONEKIT_RETURN_IF_ERROR(HostReady(vm->host));
  const std::shared_ptr<Hypervisor> hv = Hv(*vm);
  CLONEKIT_RETURN_IF_ERROR(force ? hv->Destroy(RefOf(*vm)) : hv->Shutdown(RefOf(*vm), options_.shutdown_timeout));
  Emit("vm", {{"id", id}, {"change", "stopped"}});
  return Status::OK();
}

// -------------------------------------------------------- snapshots --

Result<std::vector<SnapshotView>> Manager::CreateSnapshot(int64_t vm_id, const std::string& name) {
  return TakeSnapshot(vm_id, name, /*for_job=*/0);
}

Result<std::vector<SnapshotView>> Manager::TakeSnapshot(int64_t vm_id, const std::string& name, int64_t for_job) {
  std::optional<VmRow> vm = store_->Vm(vm_id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(vm_id));
  std::string err = CheckName("snapshot", name);
  if (!err.empty()) return Status::InvalidArgument(err);
  if (store_->Snapshot(vm_id, name)) return Status::Exists("snapshot '" + name + "'", "already exists");
  if (vm->status == VmStatus::kCloning) return Status::Locked("VM '" + vm->name + "'", "is still being cloned");
  CLONEKIT_RETURN_IF_ERROR(RefuseWhileMadeStandalone(*vm, "a snapshot"));
  CLONEKIT_RETURN_IF_ERROR(HostReady(vm->host));
  // A running VM gets a live snapshot: libvirt switches its disks to the
  // new overlays at one instant while it runs.
  const bool live = Hv(*vm)->State(RefOf(*vm)) == Power::kRunning;
  std::vector<int64_t> locks = PowerLockingJobs(vm_id);
  locks.erase(std::remove(locks.begin(), locks.end(), for_job), locks.end());
  if (live && !locks.empty()) {
    return Status::Locked("VM '" + vm->name + "'", "is being shut down for clone job " + std::to_string(locks[0]) +
                                                      "; take the snapshot after it");
  }
  Result<DomainInfo> info = ParseDomain(vm->xml);
  if (!info.ok()) return info.status();
  if (vm->host != kLocalHost) return SnapshotOnHost(*vm, name, *info, live);
  const PoolFs fs = Fs();
  CLONEKIT_RETURN_IF_ERROR(CheckDefinition(*info, fs));
  // Each disk gets a new overlay beside its current top, whose backing file
  // (the old top) becomes the snapshot point and is made read-only. The
  // overlay is created O_EXCL beneath the pool and handed to qemu-img as
  // /dev/fd/3, so no name is followed between our check and its write.
  std::map<std::string, DiskSpec> overlays;
  std::vector<std::string> created;
  std::vector<UniqueFd> tops;
  Status st;
  for (const DiskSpec& d : info->disks) {
    const std::string overlay =
        DirName(d.file) + "/" + LibvirtName(vm->ns, vm->name) + "-" + d.target + "-" + name + ".qcow2";
    Result<UniqueFd> top = fs.OpenRead(d.file, "disk " + d.target);
    if (!top.ok()) {
      st = top.status();
      break;
    }
    struct stat tst;
    fstat(top->get(), &tst);
    OpenOptions oopt;
    oopt.force_share = true;
    Result<std::unique_ptr<ReadableFile>> file = AdoptFileForRead(dup(top->get()), d.file, oopt);
    Result<std::unique_ptr<Image>> image =
        file.ok() ? OpenImage(std::move(file).value(), d.format == "raw" ? ImageFormat::kRaw : ImageFormat::kQcow2)
                  : Result<std::unique_ptr<Image>>(file.status());
    if (!image.ok()) {
      st = image.status();
      break;
    }
    Result<UniqueFd> out = fs.CreateExclusive(overlay, 0600, "snapshot");
    if (!out.ok()) {
      st = out.status();
      break;
    }
    created.push_back(overlay);
    // "./NAME": a backing name qemu can only read as a file beside the overlay.
    st = WriteOverlay(out->get(), overlay, "./" + BaseName(d.file), d.format, (*image)->virtual_size());
    if (!st.ok()) break;
    tops.push_back(std::move(top).value());
    overlays[d.target] = {d.target, overlay, "qcow2"};
  }
  Result<std::string> new_xml = st.ok() ? SetDisks(vm->xml, overlays) : Result<std::string>(st);
  if (st.ok() && !new_xml.ok()) st = new_xml.status();
  Result<std::string> for_libvirt = st.ok() ? ForLibvirt(*new_xml, LibvirtName(vm->ns, vm->name)) : Result<std::string>(st);
  if (st.ok() && !for_libvirt.ok()) st = for_libvirt.status();
  Consistency consistency = Consistency::kOffline;
  bool switched = false;  // the running VM writes to the overlays now: never remove them
  if (st.ok() && live) {
    std::vector<DiskOverlay> list;
    for (const auto& [target, spec] : overlays) list.push_back({target, spec.file});
    bool quiesced = false;
    st = hv_->SnapshotDisks(RefOf(*vm), list, &quiesced);
    switched = st.ok();
    consistency = quiesced ? Consistency::kApplication : Consistency::kCrash;
  }
  if (st.ok()) {
    st = store_->Write([&]() -> Status {
      SnapshotRow row{0, vm_id, name, vm->xml, "", consistency};
      Result<int64_t> id = store_->InsertSnapshot(row);
      if (!id.ok()) return id.status();
      VmRow updated = *vm;
      updated.xml = *new_xml;
      return store_->UpdateVm(updated);
    });
    if (st.ok()) {
      st = hv_->Define(*for_libvirt);
      if (!st.ok()) std::fprintf(stderr, "clonekit: snapshot %s: libvirt kept the old definition: %s\n", name.c_str(), st.message().c_str());
      st = Status::OK();  // the store holds the new definition; the next start or edit redefines it
    }
  }
  if (!st.ok() && switched) {
    return Status::IOError("VM '" + vm->name + "'", "its disks now write to the snapshot's new overlays, but the "
                                                    "snapshot could not be recorded: " + st.message());
  }
  if (!st.ok()) {
    for (const std::string& f : created) unlink(f.c_str());
    return st;
  }
  for (const UniqueFd& top : tops) fchmod(top.get(), 0444);  // through the fd: no name followed
  Emit("snapshot", {{"vm", vm_id}, {"name", name}, {"consistency", ConsistencyName(consistency)}});
  return ListSnapshots(vm_id);
}

// A VM on another host: each disk's overlay is made there beside its top
// (remote_source.h: in a private directory, then linked to its name, in
// directories only root may write to), and that host's libvirt switches
// the disks to them (running or not, disk-only, the files reused); the old
// tops, the snapshot's points, are then made read-only there.
Result<std::vector<SnapshotView>> Manager::SnapshotOnHost(const VmRow& vm, const std::string& name,
                                                          const DomainInfo& info, bool live) {
  const PoolFs fs(PoolsOn(vm.host));  // (names only: the files are there)
  for (const auto& [path, what] : info.host_paths) {
    if (!fs.PoolOf(path) || !PlainPath(path)) {
      return Status::InvalidArgument(what, path + " is not a plain path in a pool of host '" + vm.host + "'");
    }
  }
  Result<RemoteHost> remote = RemoteOf(vm.host);
  if (!remote.ok()) return remote.status();
  std::vector<DiskOverlay> list;
  std::map<std::string, DiskSpec> overlays;
  std::map<std::string, std::vector<std::string>> points, made;  // by pool directory
  const auto undo = [&] {
    for (const auto& [pool, files] : made) ChangeRemoteFiles(*remote, RemoteFileChange::kRemove, pool, files).IgnoreError();
  };
  for (const DiskSpec& d : info.disks) {
    const std::string overlay =
        DirName(d.file) + "/" + LibvirtName(vm.ns, vm.name) + "-" + d.target + "-" + name + ".qcow2";
    const std::string pool = fs.PoolOf(d.file)->dir;
    if (Status s = MakeRemoteOverlay(*remote, options_.remote_clonekit, pool, d.file, d.format, overlay); !s.ok()) {
      undo();
      return Status::IOError("disk " + d.target, s.message());
    }
    made[pool].push_back(overlay);
    points[pool].push_back(d.file);
    list.push_back({d.target, overlay});
    overlays[d.target] = {d.target, overlay, "qcow2"};
  }
  Result<std::string> new_xml = SetDisks(vm.xml, overlays);
  Result<std::string> for_libvirt = new_xml.ok() ? ForLibvirt(*new_xml, LibvirtName(vm.ns, vm.name)) : new_xml;
  bool quiesced = false;
  Status st = for_libvirt.ok() ? Hv(vm)->SnapshotDisks(RefOf(vm), list, &quiesced) : for_libvirt.status();
  if (!st.ok()) {
    undo();  // (the domain is unchanged: still on its old tops)
    return st;
  }
  const Consistency consistency = !live ? Consistency::kOffline : quiesced ? Consistency::kApplication : Consistency::kCrash;
  st = store_->Write([&]() -> Status {
    SnapshotRow row{0, vm.id, name, vm.xml, "", consistency};
    Result<int64_t> id = store_->InsertSnapshot(row);
    if (!id.ok()) return id.status();
    VmRow updated = vm;
    updated.xml = *new_xml;
    return store_->UpdateVm(updated);
  });
  if (!st.ok()) {
    return Status::IOError("VM '" + vm.name + "'", "its disks now write to the snapshot's new overlays on host '" +
                                                       vm.host + "', but the snapshot could not be recorded: " + st.message());
  }
  // (libvirt's definition names the overlays already; this one is the store's.)
  if (Status s = Hv(vm)->Define(*for_libvirt); !s.ok()) {
    std::fprintf(stderr, "clonekit: snapshot %s: host %s kept libvirt's definition: %s\n", name.c_str(), vm.host.c_str(),
                 s.message().c_str());
  }
  for (const auto& [pool, files] : points) {
    if (Status s = ChangeRemoteFiles(*remote, RemoteFileChange::kMakeReadOnly, pool, files); !s.ok()) {
      std::fprintf(stderr, "clonekit: snapshot %s: its points stay writable: %s\n", name.c_str(), s.message().c_str());
    }
  }
  Emit("snapshot", {{"vm", vm.id}, {"name", name}, {"consistency", ConsistencyName(consistency)}});
  return ListSnapshots(vm.id);
}

std::optional<int64_t> Manager::JobMaking(int64_t vm_id, bool standalone_only) {
  std::lock_guard<std::mutex> lock(jobs_mu_);
  for (const auto& [id, job] : running_) {
    const bool standalone = job->plan.mode == JobMode::kFlatten || job->plan.mode == JobMode::kInstant;
    if (job->plan.clone_id == vm_id && (standalone || !standalone_only)) return id;
  }
  return std::nullopt;
}

Status Manager::RefuseWhileMadeStandalone(const VmRow& vm, const char* what) {
  if (std::optional<int64_t> job = JobMaking(vm.id, /*standalone_only=*/true)) {
    return Status::Locked("VM '" + vm.name + "'", std::string(what) + " is refused while job " + std::to_string(*job) +
                                                     " is making it standalone; cancel it or wait for it");
  }
  return Status::OK();
}

// "'a' (id 5), 'b' (id 6)": the VMs backed by the snapshot, "" for none.
std::string Manager::ClonesBackedBy(int64_t snapshot_id) {
  std::string out;
  for (const VmRow& c : store_->VmsBackedBy(snapshot_id)) {
    out += (out.empty() ? "'" : ", '") + c.name + "' (id " + std::to_string(c.id) + ")";
  }
  return out;
}

Status Manager::DeleteSnapshot(int64_t vm_id, const std::string& name) {
  if (std::string err = CheckName("snapshot", name); !err.empty()) return Status::InvalidArgument(err);
  std::lock_guard<std::mutex> plan_lock(plan_mu_);  // no clone of it is being planned meanwhile
  std::optional<VmRow> vm = store_->Vm(vm_id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(vm_id));
  std::optional<SnapshotRow> snap = store_->Snapshot(vm_id, name);
  if (!snap) return Status::NotFound("VM '" + vm->name + "' has no snapshot '" + name + "'");
  if (std::string clones = ClonesBackedBy(snap->id); !clones.empty()) {
    return Status::Exists("snapshot '" + name + "' of VM '" + vm->name + "'",
                          "is the backing of linked clones " + clones + "; flatten or delete them first");
  }
  for (const JobRow& j : store_->Jobs()) {
    if (Active(j.state) && j.source_vm == vm_id && j.snapshot == name) {
      return Status::Locked("snapshot '" + name + "' of VM '" + vm->name + "'",
                            "clone job " + std::to_string(j.id) + " is reading it; delete is refused until it ends");
    }
  }
  CLONEKIT_RETURN_IF_ERROR(store_->DeleteSnapshot(snap->id));
  Emit("snapshot", {{"vm", vm_id}, {"name", name}, {"change", "deleted"}});
  return Status::OK();
}

Result<std::vector<SnapshotView>> Manager::ListSnapshots(int64_t vm_id) {
  if (!store_->Vm(vm_id)) return Status::NotFound("no VM with id " + std::to_string(vm_id));
  std::vector<SnapshotView> out;
  for (const SnapshotRow& s : store_->Snapshots(vm_id)) {
    SnapshotView v{s.name, s.created, {}, s.consistency};
    if (Result<DomainInfo> info = ParseDomain(s.xml); info.ok()) v.disks = info->disks;
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace clonekit::manager
