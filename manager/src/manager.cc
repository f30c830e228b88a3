#include "manager.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "clonekit/chain_resolver.h"
#include "clonekit/collapse.h"
#include "pool_fs.h"
#include "process.h"

namespace clonekit::manager {

namespace {

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? buf : "";
}

std::string Bytes(uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1 << 20));
  return buf;
}

DomainRef RefOf(const VmRow& vm) { return {vm.uuid, vm.name}; }

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "vda".."vdz", then "vdaa".."vdzz": a target for the i-th imported disk.
std::string ImportTarget(size_t i) {
  std::string t = "vd";
  if (i >= 26) t += static_cast<char>('a' + i / 26 - 1);
  return t + static_cast<char>('a' + i % 26);
}

constexpr size_t kMaxImportDisks = 64;

}  // namespace

// ---------------------------------------------------------------- jobs --

struct Manager::DiskPlan {
  std::string target, source, output, pool;
  OutputFormat format = OutputFormat::kQcow2;
  uint64_t data_bytes = 0;  // what the copy will write, about
};

struct Manager::ClonePlan {
  int64_t job_id = 0, source_id = 0, clone_id = 0;
  DomainRef source, clone;
  std::string libvirt_name, clone_xml;
  bool start = true;
  std::vector<DiskPlan> disks;
  std::string nvram_from, nvram_to;
  std::vector<std::string> outputs;  // every file reserved (O_EXCL) for the job
};

struct Manager::RunningJob {
  int64_t id = 0;
  int64_t source_vm = 0;
  ClonePlan plan;
  std::atomic<bool> cancel{false};
  std::atomic<bool> started{false};
  // Live progress (the database copy is written at most once a second).
  std::atomic<double> percent{0};
  std::atomic<uint64_t> done_bytes{0}, total_bytes{0};
};

Result<std::unique_ptr<Manager>> Manager::Open(const ManagerOptions& options) {
  std::unique_ptr<Manager> m(new Manager);
  m->options_ = options;
  Result<std::unique_ptr<Store>> store = Store::Open(options.db_path);
  if (!store.ok()) return store.status();
  m->store_ = std::move(store).value();
  Result<std::unique_ptr<Hypervisor>> hv = OpenHypervisor(options.hypervisor_uri);
  if (!hv.ok()) return hv.status();
  m->hv_ = std::move(hv).value();
  m->Recover();
  return m;
}

Manager::~Manager() {
  std::map<int64_t, std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    for (auto& [id, job] : running_) job->cancel = true;
    threads.swap(threads_);
  }
  for (auto& [id, t] : threads) t.join();
}

PoolFs Manager::Fs() { return PoolFs(store_->Pools()); }

// Removes exactly the files a job recorded as its own, and the engine's
// temporaries beside each.
void Manager::RemoveJobFiles(const std::vector<std::string>& outputs) {
  for (const std::string& path : outputs) {
    RemoveTemporaries(path);
    unlink(path.c_str());
  }
}

// A clone that was queued or running when the service died: its images are
// partial, its entry half made. Undo both and say why on the job.
void Manager::Recover() {
  // The hypervisor may have lost definitions (a test driver restarts empty;
  // a host may have been rebuilt): give it back every VM it does not know,
  // unless its libvirt name now belongs to another domain.
  for (const VmRow& vm : store_->Vms()) {
    if (vm.status != VmStatus::kDefined || !hv_->available() || hv_->KnowsUuid(vm.uuid)) continue;
    if (hv_->UuidOfName(LibvirtName(vm.ns, vm.name))) continue;
    if (Result<std::string> xml = ForLibvirt(vm.xml, LibvirtName(vm.ns, vm.name)); xml.ok()) {
      hv_->Define(*xml).IgnoreError();  // best effort: the VM stays listed, start will say why
    }
  }
  for (JobRow job : store_->Jobs()) {
    if (!Active(job.state)) continue;
    RemoveJobFiles(job.outputs);
    if (job.clone_vm) {
      if (std::optional<VmRow> clone = store_->Vm(job.clone_vm)) {
        // Defined in libvirt just before the crash? It is ours by UUID.
        hv_->Undefine(RefOf(*clone)).IgnoreError();  // best effort: nothing else names it
      }
      store_->DeleteVm(job.clone_vm).IgnoreError();  // the job's error says what happened
    }
    job.clone_vm = 0;
    job.state = JobState::kFailed;
    job.error = "interrupted: the service stopped during the clone (partial images removed on restart)";
    job.error_kind = "interrupted";
    job.finished = NowUtc();
    if (job.source_was_running && job.source_vm) {
      if (auto src = store_->Vm(job.source_vm); src && hv_->available()) {
        if (Status s = hv_->Start(RefOf(*src)); !s.ok()) job.error += "; the source did not start again: " + s.message();
      }
    }
    if (Status s = store_->UpdateJob(job); !s.ok()) std::fprintf(stderr, "clonekit: recovery: %s\n", s.message().c_str());
  }
}

void Manager::Emit(const std::string& kind, json data) {
  std::lock_guard<std::mutex> lock(events_mu_);
  const uint64_t seq = next_event_++;
  events_.push_back({seq, json{{"seq", seq}, {"kind", kind}, {"data", std::move(data)}}});
  if (events_.size() > 512) events_.pop_front();
  events_cv_.notify_all();
}

json Manager::WaitEvents(uint64_t after, int timeout_ms) {
  std::unique_lock<std::mutex> lock(events_mu_);
  events_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return next_event_ - 1 > after; });
  json out = json::array();
  for (const auto& [seq, e] : events_) {
    if (seq > after) out.push_back(e);
  }
  return out;
}

std::vector<int64_t> Manager::LockingJobs(int64_t vm_id) {
  std::vector<int64_t> ids;
  std::lock_guard<std::mutex> lock(jobs_mu_);
  for (const auto& [id, job] : running_) {
    if (job->source_vm == vm_id) ids.push_back(id);
  }
  return ids;
}

// ------------------------------------------------------------ pools --

// Pools are where clones are written and every disk must lie: an admin's
// choice, so the checks keep one pool from reaching into another or into
// the service's own state.
Result<json> Manager::AddPool(const std::string& name, const std::string& dir) {
  std::string err = CheckName("pool", name);
  if (!err.empty()) return Status::InvalidArgument(err);
  const std::string real = RealPath(dir);
  struct stat st;
  if (real.empty() || stat(real.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("pool '" + name + "'", "'" + dir + "' is not a directory");
  }
  const auto inside = [](const std::string& path, const std::string& dir) {
    return path == dir || path.rfind(dir == "/" ? dir : dir + "/", 0) == 0;
  };
  if (real == "/") return Status::InvalidArgument("pool '" + name + "'", "'/' cannot be a pool");
  const std::string db_dir = RealPath(DirName(options_.db_path));
  if (!db_dir.empty() && inside(db_dir, real)) {
    return Status::InvalidArgument("pool '" + name + "'", real + " holds the service's database (" + db_dir + ")");
  }
  for (const Pool& p : store_->Pools()) {
    if (p.name == name) return Status::Exists("pool '" + name + "'", "already exists");
    if (p.dir == real) return Status::Exists("pool '" + name + "'", "directory " + real + " is pool '" + p.name + "'");
    if (inside(p.dir, real)) {
      return Status::InvalidArgument("pool '" + name + "'", real + " contains pool '" + p.name + "' (" + p.dir + ")");
    }
    if (inside(real, p.dir)) {
      return Status::InvalidArgument("pool '" + name + "'", real + " is inside pool '" + p.name + "' (" + p.dir + ")");
    }
  }
  CLONEKIT_RETURN_IF_ERROR(store_->AddPool({name, real}));
  Emit("pool", {{"name", name}, {"dir", real}});
  return json{{"name", name}, {"dir", real}};
}

// A pool still holding a VM's disk stays.
Status Manager::RemovePool(const std::string& name) {
  std::optional<Pool> pool;
  for (const Pool& p : store_->Pools()) {
    if (p.name == name) pool = p;
  }
  if (!pool) return Status::NotFound("no pool '" + name + "'");
  for (const VmRow& vm : store_->Vms()) {
    Result<DomainInfo> info = ParseDomain(vm.xml);
    if (!info.ok()) continue;
    for (const auto& [path, what] : info->host_paths) {
      if (path.rfind(pool->dir + "/", 0) == 0) {
        return Status::Locked("pool '" + name + "'", "holds " + what + " of VM '" + vm.name + "'");
      }
    }
  }
  CLONEKIT_RETURN_IF_ERROR(store_->RemovePool(name));
  Emit("pool", {{"name", name}, {"change", "removed"}});
  return Status::OK();
}

json Manager::Pools() {
  json out = json::array();
  for (const Pool& p : store_->Pools()) out.push_back({{"name", p.name}, {"dir", p.dir}});
  return out;
}

// -------------------------------------------------------------- VMs --

// Every host path of a definition lies in a pool, is a regular file reached
// without a symlink, and a disk's whole backing chain does too. Run at
// define, at every edit, and again by each use (the openers are the same).
Status Manager::CheckDefinition(const DomainInfo& info, const PoolFs& fs) {
  std::set<std::string> disk_files;
  for (const DiskSpec& d : info.disks) disk_files.insert(d.file);
  for (const auto& [path, what] : info.host_paths) {
    if (!disk_files.count(path)) {
      Result<UniqueFd> fd = fs.OpenRead(path, what);
      if (!fd.ok()) return fd.status();
      continue;
    }
    OpenOptions oopt;
    oopt.force_share = true;  // only reading headers; the VM may run
    std::unique_ptr<FileOpener> opener = fs.Opener(oopt);
    ChainOptions copt;
    copt.allowed_backing_dirs = fs.Dirs();
    Result<std::unique_ptr<Chain>> chain = OpenChain(path, *opener, copt);
    if (!chain.ok()) return Status::InvalidArgument(what, chain.status().message());
  }
  return Status::OK();
}

// libvirt's names and UUIDs are host-wide: a definition may not take over a
// domain clonekit did not make (libvirt would redefine it).
Status Manager::CheckLibvirtFree(const std::string& libvirt_name, const std::string& uuid) {
  if (!hv_->available()) return Status::OK();
  if (std::optional<std::string> owner = hv_->UuidOfName(libvirt_name); owner && Lower(*owner) != Lower(uuid)) {
    return Status::Exists("VM '" + libvirt_name + "'", "libvirt already has a domain of that name (" + *owner + ")");
  }
  if (hv_->KnowsUuid(uuid)) return Status::Exists("UUID " + uuid, "libvirt already has a domain with this UUID");
  return Status::OK();
}

json Manager::VmJson(const VmRow& vm, bool full) {
  json j{{"id", vm.id}, {"uuid", vm.uuid}, {"name", vm.name}, {"namespace", vm.ns},
         {"description", vm.description}, {"created", vm.created}};
  const std::vector<int64_t> locks = LockingJobs(vm.id);
  const bool cloning = vm.status == VmStatus::kCloning;
  PowerDetail detail = cloning ? PowerDetail::kShutoff : hv_->Detail(RefOf(vm));
  if (detail == PowerDetail::kUndefined) detail = PowerDetail::kShutoff;
  j["status"] = cloning ? "cloning" : !locks.empty() ? "locked" : PowerDetailName(detail);
  j["power"] = PowerName(PowerOf(detail));
  j["locked_by"] = locks;
  if (cloning) {
    for (const JobRow& job : store_->Jobs()) {
      if (job.clone_vm == vm.id && Active(job.state)) {
        const json jj = JobJson(job);
        j["job"] = job.id;
        j["percent"] = jj["percent"];
        j["queued"] = job.state == JobState::kQueued;
        if (jj.contains("queue_position")) j["queue_position"] = jj["queue_position"];
      }
    }
  }
  Result<DomainInfo> info = ParseDomain(vm.xml);
  json disks = json::array();
  if (info.ok()) {
    for (const DiskSpec& d : info->disks) disks.push_back({{"target", d.target}, {"file", d.file}, {"format", d.format}});
    j["macs"] = info->macs;
  }
  j["disks"] = disks;
  j["snapshots"] = store_->Snapshots(vm.id).size();
  if (full) j["xml"] = vm.xml;
  return j;
}

json Manager::ListVms() {
  json out = json::array();
  for (const VmRow& vm : store_->Vms()) out.push_back(VmJson(vm, false));
  return out;
}

Result<json> Manager::GetVm(int64_t id) {
  std::optional<VmRow> vm = store_->Vm(id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(id));
  return VmJson(*vm, true);
}

Result<int64_t> Manager::FindVm(const std::string& ns, const std::string& name) {
  std::optional<VmRow> vm = store_->VmByName(ns, name);
  if (!vm) return Status::NotFound("no VM '" + name + "' in namespace '" + ns + "'");
  return vm->id;
}

Result<json> Manager::DefineVm(const std::string& xml, const std::string& ns, const std::string& description) {
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
  vm.uuid = info->uuid.empty() ? RandomUuid() : Lower(info->uuid);
  for (const VmRow& other : store_->Vms()) {
    if (Lower(other.uuid) == vm.uuid) return Status::Exists("UUID " + vm.uuid, "is VM '" + other.name + "''s already");
  }
  const std::string libvirt_name = LibvirtName(ns, info->name);
  CLONEKIT_RETURN_IF_ERROR(CheckLibvirtFree(libvirt_name, vm.uuid));
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
  return VmJson(vm, true);
}

Result<json> Manager::UpdateVm(int64_t id, const std::optional<std::string>& xml,
                               const std::optional<std::string>& description) {
  std::optional<VmRow> vm = store_->Vm(id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(id));
  if (vm->status == VmStatus::kCloning) {
    return Status::Locked("VM '" + vm->name + "'", "is being cloned; wait or cancel the job");
  }
  // Editing a locked source is allowed: clones in progress copied its
  // configuration when they started.
  VmRow updated = *vm;
  if (description) updated.description = *description;
  std::string base = vm->xml;
  if (xml) {
    Result<DomainInfo> info = ParseDomain(*xml);
    if (!info.ok()) return info.status();
    if (info->name != vm->name) return Status::InvalidArgument("VM '" + vm->name + "'", "renaming is not supported");
    if (!info->uuid.empty() && Lower(info->uuid) != Lower(vm->uuid)) {
      return Status::InvalidArgument("VM '" + vm->name + "'", "the UUID cannot change");
    }
    CLONEKIT_RETURN_IF_ERROR(CheckDefinition(*info, Fs()));
    base = *xml;
  }
  // One source of truth for the description: the entry; the XML follows it.
  Result<std::string> pinned = SetIdentity(base, vm->uuid, updated.description);
  if (!pinned.ok()) return pinned.status();
  updated.xml = *pinned;
  Result<std::string> for_libvirt = ForLibvirt(updated.xml, LibvirtName(vm->ns, vm->name));
  if (!for_libvirt.ok()) return for_libvirt.status();
  CLONEKIT_RETURN_IF_ERROR(hv_->Define(*for_libvirt));
  CLONEKIT_RETURN_IF_ERROR(store_->UpdateVm(updated));
  Emit("vm", {{"id", id}, {"change", "updated"}});
  return VmJson(updated, true);
}

Result<json> Manager::ImportVm(const std::string& name, const std::string& ns, const std::vector<std::string>& paths) {
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
    OpenOptions oopt;
    oopt.force_share = true;  // only reading headers
    std::unique_ptr<FileOpener> opener = fs.Opener(oopt);
    ChainOptions copt;
    copt.allowed_backing_dirs = fs.Dirs();
    Result<std::unique_ptr<Chain>> chain = OpenChain(paths[i], *opener, copt);
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
  const std::string xml = MinimalDomainXml(name, RandomUuid(), disks);
  Result<json> vm = DefineVm(xml, ns, "");
  if (!vm.ok()) return vm.status();
  const int64_t id = (*vm)["id"];
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
  std::vector<int64_t> locks = LockingJobs(id);
  if (!locks.empty()) {
    return Status::Locked("VM '" + vm->name + "'", "is locked: clone job " + std::to_string(locks[0]) +
                                                      " is copying it; delete is refused until it ends");
  }
  if (hv_->State(RefOf(*vm)) == Power::kRunning) {
    return Status::Locked("VM '" + vm->name + "'", "is running; stop it first");
  }
  CLONEKIT_RETURN_IF_ERROR(hv_->Undefine(RefOf(*vm)));
  CLONEKIT_RETURN_IF_ERROR(store_->DeleteVm(id));
  Emit("vm", {{"id", id}, {"change", "deleted"}});
  return Status::OK();
}

Status Manager::StartVm(int64_t id) {
  std::optional<VmRow> vm = store_->Vm(id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(id));
  if (vm->status == VmStatus::kCloning) return Status::Locked("VM '" + vm->name + "'", "is still being cloned");
  std::vector<int64_t> locks = LockingJobs(id);
  if (!locks.empty()) {
    return Status::Locked("VM '" + vm->name + "'", "is locked: clone job " + std::to_string(locks[0]) +
                                                      " is copying it; run is refused until it ends");
  }
  CLONEKIT_RETURN_IF_ERROR(hv_->Start(RefOf(*vm)));
  Emit("vm", {{"id", id}, {"change", "started"}});
  return Status::OK();
}

Status Manager::StopVm(int64_t id, bool force) {
  std::optional<VmRow> vm = store_->Vm(id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(id));
  CLONEKIT_RETURN_IF_ERROR(force ? hv_->Destroy(RefOf(*vm)) : hv_->Shutdown(RefOf(*vm), options_.shutdown_timeout));
  Emit("vm", {{"id", id}, {"change", "stopped"}});
  return Status::OK();
}

// -------------------------------------------------------- snapshots --

Result<json> Manager::CreateSnapshot(int64_t vm_id, const std::string& name) {
  std::optional<VmRow> vm = store_->Vm(vm_id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(vm_id));
  std::string err = CheckName("snapshot", name);
  if (!err.empty()) return Status::InvalidArgument(err);
  if (store_->Snapshot(vm_id, name)) return Status::Exists("snapshot '" + name + "'", "already exists");
  if (vm->status == VmStatus::kCloning) return Status::Locked("VM '" + vm->name + "'", "is still being cloned");
  if (hv_->State(RefOf(*vm)) == Power::kRunning) {
    return Status::Locked("VM '" + vm->name + "'", "is running; stop it to take a snapshot (live snapshots are not supported)");
  }
  Result<DomainInfo> info = ParseDomain(vm->xml);
  if (!info.ok()) return info.status();
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
    st = Run({"qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "./" + BaseName(d.file), "-F", d.format,
              "/dev/fd/3", std::to_string((*image)->virtual_size())},
             out->get());
    if (!st.ok()) break;
    tops.push_back(std::move(top).value());
    overlays[d.target] = {d.target, overlay, "qcow2"};
  }
  Result<std::string> new_xml = st.ok() ? SetDisks(vm->xml, overlays) : Result<std::string>(st);
  if (st.ok() && !new_xml.ok()) st = new_xml.status();
  Result<std::string> for_libvirt = st.ok() ? ForLibvirt(*new_xml, LibvirtName(vm->ns, vm->name)) : Result<std::string>(st);
  if (st.ok() && !for_libvirt.ok()) st = for_libvirt.status();
  if (st.ok()) {
    st = store_->Write([&]() -> Status {
      SnapshotRow row{0, vm_id, name, vm->xml, ""};
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
  if (!st.ok()) {
    for (const std::string& f : created) unlink(f.c_str());
    return st;
  }
  for (const UniqueFd& top : tops) fchmod(top.get(), 0444);  // through the fd: no name followed
  Emit("snapshot", {{"vm", vm_id}, {"name", name}});
  return ListSnapshots(vm_id);
}

Result<json> Manager::ListSnapshots(int64_t vm_id) {
  if (!store_->Vm(vm_id)) return Status::NotFound("no VM with id " + std::to_string(vm_id));
  json out = json::array();
  for (const SnapshotRow& s : store_->Snapshots(vm_id)) {
    json disks = json::array();
    if (Result<DomainInfo> info = ParseDomain(s.xml); info.ok()) {
      for (const DiskSpec& d : info->disks) disks.push_back({{"target", d.target}, {"file", d.file}, {"format", d.format}});
    }
    out.push_back({{"name", s.name}, {"created", s.created}, {"disks", disks}});
  }
  return out;
}

// ------------------------------------------------------------ clone --

// What the clone dialog shows of the source's configuration, read-only.
static json Summary(const DomainInfo& info) {
  json disks = json::array(), nics = json::array();
  for (const DiskSpec& d : info.disks) disks.push_back({{"target", d.target}, {"file", d.file}, {"format", d.format}});
  for (const InterfaceSpec& i : info.interfaces) {
    nics.push_back({{"mac", i.mac}, {"type", i.type}, {"source", i.source}, {"model", i.model}});
  }
  return {{"vcpus", info.vcpus}, {"memory_mib", info.memory_kib / 1024}, {"disks", disks}, {"nics", nics}};
}

std::string Manager::UniqueName(const std::string& ns, const std::string& base) {
  std::string name = base + "-clone";
  for (int n = 2; store_->VmByName(ns, name); n++) name = base + "-clone-" + std::to_string(n);
  return name;
}

Result<json> Manager::CloneDefaults(int64_t vm_id, const std::string& snapshot) {
  std::optional<VmRow> vm = store_->Vm(vm_id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(vm_id));
  // Its disks do not exist yet: there is nothing to clone from.
  if (vm->status == VmStatus::kCloning) return Status::Locked("VM '" + vm->name + "'", "is still being cloned");
  std::string xml = vm->xml;
  std::string description = vm->description;  // now: the entry's
  if (!snapshot.empty()) {
    std::optional<SnapshotRow> s = store_->Snapshot(vm_id, snapshot);
    if (!s) return Status::NotFound("VM '" + vm->name + "' has no snapshot '" + snapshot + "'");
    xml = s->xml;
  }
  Result<DomainInfo> info = ParseDomain(xml);
  if (!info.ok()) return info.status();
  if (!snapshot.empty()) description = info->description;  // as saved with the snapshot
  const std::vector<Pool> pools = store_->Pools();
  const PoolFs fs(pools);
  json disks = json::array();
  for (const DiskSpec& d : info->disks) {
    const Pool* home = fs.PoolOf(d.file);
    const std::string pool = home ? home->name : pools.empty() ? "" : pools[0].name;
    disks.push_back({{"target", d.target}, {"source", d.file}, {"source_format", d.format},
                     {"pool", pool}, {"format", d.format}});
  }
  const Power power = hv_->State(RefOf(*vm));
  return json{{"source", {{"id", vm->id}, {"name", vm->name}, {"namespace", vm->ns}}},
              {"snapshot", snapshot.empty() ? json(nullptr) : json(snapshot)},
              {"name", UniqueName(vm->ns, vm->name)},
              {"namespace", vm->ns},
              {"description", description},
              {"start", true},
              {"source_running", power == Power::kRunning},
              {"disks", disks},
              {"summary", Summary(*info)},
              {"configuration", xml}};
}

// The data each clone disk will write must fit its pool's free space, less
// what queued and running clones will still write there.
Status Manager::CheckSpace(const ClonePlan& plan) {
  std::map<std::string, uint64_t> need, promised;
  std::map<std::string, std::string> dir_of;
  for (const DiskPlan& d : plan.disks) {
    need[d.pool] += d.data_bytes;
    dir_of[d.pool] = DirName(d.output);
  }
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    for (const auto& [id, job] : running_) {
      const double left = 1.0 - job->percent / 100.0;
      for (const DiskPlan& d : job->plan.disks) promised[d.pool] += static_cast<uint64_t>(double(d.data_bytes) * left);
    }
  }
  for (const auto& [pool, bytes] : need) {
    struct statvfs vfs;
    if (statvfs(dir_of[pool].c_str(), &vfs) != 0) return Status::FromErrno(dir_of[pool], "cannot read free space", errno);
    const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    const uint64_t available = free_bytes > promised[pool] ? free_bytes - promised[pool] : 0;
    if (bytes > available) {
      return Status::NoSpace("pool '" + pool + "'", "the clone needs " + Bytes(bytes) + " but " + Bytes(free_bytes) +
                                                        " is free, " + Bytes(promised[pool]) +
                                                        " of it promised to clones in progress");
    }
  }
  return Status::OK();
}

Result<Manager::ClonePlan> Manager::PlanClone(const CloneRequest& req) {
  Result<json> defaults = CloneDefaults(req.source_vm, req.snapshot);
  if (!defaults.ok()) return defaults.status();
  const json& d = *defaults;
  std::optional<VmRow> source = store_->Vm(req.source_vm);
  if (!source) return Status::NotFound("no VM with id " + std::to_string(req.source_vm));
  ClonePlan plan;
  plan.source_id = req.source_vm;
  plan.source = RefOf(*source);
  const std::string clone_name = req.name.empty() ? d["name"].get<std::string>() : req.name;
  const std::string ns = req.ns.empty() ? d["namespace"].get<std::string>() : req.ns;
  std::string err = CheckName("VM", clone_name);
  if (err.empty()) err = CheckNamespace(ns);
  if (!err.empty()) return Status::InvalidArgument(err);
  if (store_->VmByName(ns, clone_name)) {
    return Status::Exists("VM '" + clone_name + "'", "already exists in namespace '" + ns + "'");
  }
  plan.libvirt_name = LibvirtName(ns, clone_name);
  plan.clone = {RandomUuid(), clone_name};
  CLONEKIT_RETURN_IF_ERROR(CheckLibvirtFree(plan.libvirt_name, plan.clone.uuid));
  plan.start = req.start;
  const std::string configuration = d["configuration"].get<std::string>();
  Result<DomainInfo> info = ParseDomain(configuration);
  if (!info.ok()) return info.status();
  const PoolFs fs = Fs();
  CLONEKIT_RETURN_IF_ERROR(CheckDefinition(*info, fs));
  std::map<std::string, Pool> pools;
  for (const Pool& p : store_->Pools()) pools[p.name] = p;
  std::set<std::string> targets;
  for (const json& disk : d["disks"]) {
    DiskPlan dp;
    dp.target = disk["target"];
    dp.source = disk["source"];
    targets.insert(dp.target);
    std::string pool = disk["pool"], format = disk["format"];
    if (auto it = req.disks.find(dp.target); it != req.disks.end()) {
      if (!it->second.pool.empty()) pool = it->second.pool;
      if (!it->second.format.empty()) format = it->second.format;
    }
    if (format != "raw" && format != "qcow2") {
      return Status::InvalidArgument("disk " + dp.target, "format '" + format + "' is not raw or qcow2");
    }
    if (!pools.count(pool)) return Status::InvalidArgument("disk " + dp.target, "no storage pool '" + pool + "'");
    dp.pool = pool;
    dp.format = format == "raw" ? OutputFormat::kRaw : OutputFormat::kQcow2;
    // What the copy writes: the chain's data (metadata only to find).
    OpenOptions oopt;
    oopt.force_share = true;
    std::unique_ptr<FileOpener> opener = fs.Opener(oopt);
    ChainOptions copt;
    copt.allowed_backing_dirs = fs.Dirs();
    Result<std::unique_ptr<Chain>> chain = OpenChain(dp.source, *opener, copt);
    if (!chain.ok()) return Status::InvalidArgument("disk " + dp.target, chain.status().message());
    ChainResolver resolver(**chain);
    CLONEKIT_RETURN_IF_ERROR(resolver.ResolveAll(1ull << 30, [&](const ExtentMap& map) {
      dp.data_bytes += map.data_bytes();
      return Status::OK();
    }));
    dp.output = pools[pool].dir + "/" + plan.libvirt_name + "-" + dp.target + "." + format;
    plan.disks.push_back(dp);
  }
  for (const auto& [target, _] : req.disks) {
    if (!targets.count(target)) return Status::InvalidArgument("disk " + target, "the source has no such disk");
  }
  CLONEKIT_RETURN_IF_ERROR(CheckSpace(plan));

  // Reserve every file the job will make (O_EXCL, beneath the pool): what
  // exists is never touched, and the job records each the moment it exists.
  const auto undo = [&] {
    for (const std::string& f : plan.outputs) unlink(f.c_str());
  };
  for (DiskPlan& dp : plan.disks) {
    const std::string stem = dp.output.substr(0, dp.output.rfind('.'));
    const std::string ext = dp.output.substr(dp.output.rfind('.'));
    Status reserved;
    for (int n = 1; n <= 100; n++) {
      if (n > 1) dp.output = stem + "-" + std::to_string(n) + ext;
      Result<UniqueFd> fd = fs.CreateExclusive(dp.output, 0600, "disk " + dp.target);
      reserved = fd.status();
      if (fd.ok() || fd.status().code() != Status::Code::kExists) break;
    }
    if (!reserved.ok()) {
      undo();
      return reserved;
    }
    plan.outputs.push_back(dp.output);
  }
  std::map<std::string, DiskSpec> new_disks;
  for (const DiskPlan& dp : plan.disks) new_disks[dp.target] = {dp.target, dp.output, dp.format == OutputFormat::kRaw ? "raw" : "qcow2"};
  if (!info->nvram.empty()) {
    plan.nvram_from = info->nvram;
    plan.nvram_to = DirName(info->nvram) + "/" + plan.libvirt_name + "_VARS.fd";
    Result<UniqueFd> fd = fs.CreateExclusive(plan.nvram_to, 0600, "os/nvram");
    if (!fd.ok()) {
      undo();
      return fd.status();
    }
    plan.outputs.push_back(plan.nvram_to);
  }
  // MACs unique across the inventory.
  std::set<std::string> macs;
  for (const VmRow& vm : store_->Vms()) {
    if (Result<DomainInfo> i = ParseDomain(vm.xml); i.ok()) macs.insert(i->macs.begin(), i->macs.end());
  }
  CloneIdentity id;
  id.name = clone_name;
  id.uuid = plan.clone.uuid;
  id.description = req.description ? *req.description : d["description"].get<std::string>();
  id.new_mac = [&macs] {
    std::string mac;
    do mac = RandomMac(); while (!macs.insert(mac).second);
    return mac;
  };
  id.disks = new_disks;
  id.nvram = plan.nvram_to;
  Result<std::string> xml = MakeCloneXml(configuration, id);
  if (!xml.ok()) {
    undo();
    return xml.status();
  }
  plan.clone_xml = *xml;

  // Admission: a copy slot now, else a place in the queue, else 429.
  JobRow job;
  job.source_vm = req.source_vm;
  job.clone_name = clone_name;
  job.snapshot = req.snapshot;
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    if (copying_ + static_cast<int>(queue_.size()) >= options_.max_clones) {
      if (static_cast<int>(queue_.size()) >= options_.max_queued) {
        undo();
        return Status::Busy("clone: " + std::to_string(options_.max_clones) + " clones are copying and " +
                            std::to_string(queue_.size()) + " are queued (the limit); try again later");
      }
      job.state = JobState::kQueued;
    } else {
      job.state = JobState::kRunning;
    }
  }
  job.outputs = plan.outputs;
  job.owner_pid = getpid();
  Status written = store_->Write([&]() -> Status {
    VmRow clone;
    clone.uuid = id.uuid;
    clone.name = clone_name;
    clone.ns = ns;
    clone.description = id.description;
    clone.status = VmStatus::kCloning;
    clone.xml = plan.clone_xml;
    Result<int64_t> cid = store_->InsertVm(clone);
    if (!cid.ok()) return cid.status();
    plan.clone_id = *cid;
    job.clone_vm = *cid;
    Result<int64_t> jid = store_->InsertJob(job);
    if (!jid.ok()) return jid.status();
    plan.job_id = *jid;
    return Status::OK();
  });
  if (!written.ok()) {
    undo();
    return written;
  }
  return plan;
}

Result<json> Manager::StartClone(const CloneRequest& request) {
  std::lock_guard<std::mutex> plan_lock(plan_mu_);
  Result<ClonePlan> plan = PlanClone(request);
  if (!plan.ok()) return plan.status();
  auto job = std::make_shared<RunningJob>();
  job->id = plan->job_id;
  job->source_vm = plan->source_id;
  job->plan = std::move(plan).value();
  Emit("vm", {{"id", job->plan.clone_id}, {"change", "cloning"}});
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    running_[job->id] = job;
    if (copying_ < options_.max_clones && queue_.empty()) {
      StartJob(job);
    } else {
      queue_.push_back(job);
      Emit("job", {{"id", job->id}, {"state", "queued"}, {"percent", 0}, {"queue_position", queue_.size()}});
    }
  }
  return GetJob(job->id);
}

// REQUIRES: jobs_mu_ held.
void Manager::StartJob(std::shared_ptr<RunningJob> job) {
  // Reap the threads of jobs that have ended since.
  for (int64_t id : ended_) {
    threads_[id].join();
    threads_.erase(id);
  }
  ended_.clear();
  copying_++;
  job->started = true;
  Emit("job", {{"id", job->id}, {"state", "running"}, {"percent", 0}});
  threads_[job->id] = std::thread(&Manager::RunClone, this, job);
}

// REQUIRES: jobs_mu_ held. The next queued jobs, while there are slots.
void Manager::StartQueued() {
  while (copying_ < options_.max_clones && !queue_.empty()) {
    std::shared_ptr<RunningJob> next = queue_.front();
    queue_.pop_front();
    StartJob(next);
  }
}

// Collapses every disk concurrently; progress is the data bytes copied so
// far over the allocated bytes of all disks (found by resolving the chains
// first: metadata only), monotonic, 100 only at the end.
Status Manager::CopyDisks(RunningJob& job, const ClonePlan& plan, JobRow& row) {
  const PoolFs fs = Fs();
  ChainOptions copt;
  copt.allowed_backing_dirs = fs.Dirs();
  std::unique_ptr<FileOpener> opener = fs.Opener(OpenOptions{});
  std::vector<std::unique_ptr<Chain>> chains;
  std::vector<uint64_t> allocated;
  uint64_t total = 0;
  for (const DiskPlan& dp : plan.disks) {
    Result<std::unique_ptr<Chain>> chain = OpenChain(dp.source, *opener, copt);
    if (!chain.ok()) return chain.status();
    uint64_t bytes = 0;
    ChainResolver resolver(**chain);
    CLONEKIT_RETURN_IF_ERROR(resolver.ResolveAll(1ull << 30, [&](const ExtentMap& map) {
      bytes += map.data_bytes();
      return Status::OK();
    }));
    allocated.push_back(std::max<uint64_t>(bytes, 1));
    total += allocated.back();
    chains.push_back(std::move(chain).value());
  }
  row.total_bytes = total;
  const size_t n = plan.disks.size();
  std::vector<std::atomic<uint64_t>> done(n);
  std::vector<Status> results(n);
  std::vector<std::thread> threads;
  std::atomic<size_t> finished{0};
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (size_t i = 0; i < n; i++) {
    threads.emplace_back([&, i] {
      CollapseOptions o;
      o.format = plan.disks[i].format;
      o.cancel = &job.cancel;
      o.workers = std::max<unsigned>(1, cores / static_cast<unsigned>(n));
      o.max_bytes_per_second = options_.copy_rate;
      // Into the file reserved for this disk (ours: replaced whole at the end).
      o.overwrite = true;
      o.regular_file_only = true;
      o.file_mode = 0600;
      o.data_progress = [&, i](uint64_t d) { done[i] = std::min(d, allocated[i]); };
      results[i] = Collapse(*chains[i], plan.disks[i].output, o);
      if (!results[i].ok()) job.cancel = true;  // one disk failed: stop the others
      finished++;
    });
  }
  auto last_write = std::chrono::steady_clock::now();
  while (finished < n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += done[i];
    const double pct = std::min(99.9, 100.0 * double(sum) / double(total));
    if (pct <= row.percent) continue;
    row.percent = pct;
    row.done_bytes = sum;
    job.percent = pct;
    job.done_bytes = sum;
    job.total_bytes = total;
    Emit("job", {{"id", row.id}, {"state", "running"}, {"percent", pct}, {"done_bytes", sum}, {"total_bytes", total}});
    if (std::chrono::steady_clock::now() - last_write > std::chrono::seconds(1)) {
      // Throttled (synchronous=FULL costs an fsync per write); only progress.
      store_->UpdateJob(row).IgnoreError();
      last_write = std::chrono::steady_clock::now();
    }
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) {
    if (!s.ok() && !s.IsCancelled()) return s;
  }
  for (const Status& s : results) {
    if (!s.ok()) return s;
  }
  if (job.cancel) return Status::Cancelled("cancelled");
  return Status::OK();
}

// Copies the source's NVRAM into the file reserved for the clone.
static Status CopyNvram(const PoolFs& fs, const std::string& from, const std::string& to) {
  Result<UniqueFd> in = fs.OpenRead(from, "os/nvram");
  if (!in.ok()) return in.status();
  Result<UniqueFd> out = fs.OpenOwnedForWrite(to, "os/nvram");  // our reservation
  if (!out.ok()) return out.status();
  const UniqueFd& w = *out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = read(in->get(), buf, sizeof buf);
    if (n < 0) return Status::FromErrno(from, "cannot read", errno);
    if (n == 0) break;
    if (write(w.get(), buf, static_cast<size_t>(n)) != n) return Status::FromErrno(to, "cannot write", errno);
  }
  if (fsync(w.get()) != 0) return Status::FromErrno(to, "cannot sync", errno);
  return Status::OK();
}

void Manager::FinishJob(JobRow& row, const ClonePlan& plan, const Status& status) {
  if (status.ok()) {
    row.state = JobState::kSucceeded;
    row.percent = 100;
    row.done_bytes = row.total_bytes;
  } else {
    // Exactly what this job made: its reserved files, its clone entry.
    RemoveJobFiles(plan.outputs);
    if (Status s = store_->DeleteVm(plan.clone_id); !s.ok()) {
      std::fprintf(stderr, "clonekit: job %lld: %s\n", static_cast<long long>(row.id), s.message().c_str());
    }
    row.clone_vm = 0;
    row.state = status.IsCancelled() ? JobState::kCancelled : JobState::kFailed;
    row.error = status.message();
    row.error_kind = status.IsCancelled() ? "cancelled" : status.code() == Status::Code::kNoSpace ? "no_space" : "failed";
  }
  row.finished = NowUtc();
  if (Status s = store_->UpdateJob(row); !s.ok()) {
    std::fprintf(stderr, "clonekit: job %lld: its end was not saved: %s\n", static_cast<long long>(row.id), s.message().c_str());
  }
}

// A source shut down for a clone runs again once no clone of it is left:
// the first of two clones to end must not start it under the second.
void Manager::RestartSourceIfLast(const ClonePlan& plan, bool shut_down_by_job) {
  std::lock_guard<std::mutex> power(source_power_mu_);
  if (shut_down_by_job) restart_owed_.insert(plan.source_id);
  // This job is still among the source's locking jobs: it is the last one
  // when it is the only one.
  if (LockingJobs(plan.source_id).size() > 1 || restart_owed_.erase(plan.source_id) == 0) return;
  if (Status s = hv_->Start(plan.source); !s.ok()) {
    std::fprintf(stderr, "clonekit: source %s did not start again: %s\n", plan.source.name.c_str(), s.message().c_str());
    Emit("vm", {{"id", plan.source_id}, {"change", "restart-failed"}, {"error", s.message()}});
  }
}

void Manager::RunClone(std::shared_ptr<RunningJob> job) {
  const ClonePlan& plan = job->plan;
  std::optional<JobRow> stored = store_->Job(job->id);
  JobRow row = stored ? *stored : JobRow{};
  row.id = job->id;
  row.state = JobState::kRunning;
  Status status;
  bool was_running;
  {
    std::lock_guard<std::mutex> power(source_power_mu_);
    was_running = hv_->State(plan.source) == Power::kRunning;
  }
  row.source_was_running = was_running;
  status = store_->UpdateJob(row);
  if (status.ok() && was_running) {
    Emit("vm", {{"id", plan.source_id}, {"change", "shutting-down"}});
    status = hv_->Shutdown(plan.source, options_.shutdown_timeout);
    if (!status.ok()) was_running = hv_->State(plan.source) != Power::kRunning;  // still up: nothing to restart
  }
  if (status.ok() && job->cancel) status = Status::Cancelled("cancelled");
  if (status.ok()) status = CopyDisks(*job, plan, row);
  if (status.ok() && !plan.nvram_from.empty()) status = CopyNvram(Fs(), plan.nvram_from, plan.nvram_to);
  bool defined = false;
  if (status.ok()) {
    std::optional<VmRow> clone = store_->Vm(plan.clone_id);
    if (!clone) status = Status::NotFound("the clone's entry is gone");
    Result<std::string> for_libvirt = status.ok() ? ForLibvirt(clone->xml, plan.libvirt_name) : Result<std::string>(status);
    if (status.ok()) status = for_libvirt.status();
    if (status.ok()) status = CheckLibvirtFree(plan.libvirt_name, plan.clone.uuid);
    if (status.ok()) status = hv_->Define(*for_libvirt);
    defined = status.ok();
    if (status.ok()) {
      clone->status = VmStatus::kDefined;
      status = store_->UpdateVm(*clone);
    }
  }
  if (!status.ok() && defined) hv_->Undefine(plan.clone).IgnoreError();  // ours, by UUID; the job's error says why
  FinishJob(row, plan, status);
  if (status.ok() && plan.start && hv_->available()) {
    Status started = hv_->Start(plan.clone);
    if (!started.ok()) {
      row.error = "the clone was created but did not start: " + started.message();
      row.error_kind = "start_failed";
      if (Status s = store_->UpdateJob(row); !s.ok()) std::fprintf(stderr, "clonekit: %s\n", s.message().c_str());
    }
  }
  RestartSourceIfLast(plan, was_running);
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    running_.erase(job->id);
    ended_.push_back(job->id);
    copying_--;
    StartQueued();
  }
  Emit("job", {{"id", row.id}, {"state", JobStateName(row.state)}, {"percent", row.percent}, {"error", row.error}});
  Emit("vm", {{"id", plan.clone_id}, {"change", row.state == JobState::kSucceeded ? "defined" : "removed"}});
  Emit("vm", {{"id", plan.source_id}, {"change", "unlocked"}});
}

json Manager::JobJson(const JobRow& stored) {
  JobRow j = stored;
  std::optional<size_t> position;
  if (Active(j.state)) {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    if (auto it = running_.find(j.id); it != running_.end()) {
      j.state = it->second->started ? JobState::kRunning : JobState::kQueued;
      j.percent = it->second->percent;
      j.done_bytes = it->second->done_bytes;
      j.total_bytes = it->second->total_bytes;
    }
    for (size_t i = 0; i < queue_.size(); i++) {
      if (queue_[i]->id == j.id) position = i + 1;
    }
  }
  json out{{"id", j.id},
           {"source_vm", j.source_vm ? json(j.source_vm) : json(nullptr)},
           {"clone_vm", j.clone_vm ? json(j.clone_vm) : json(nullptr)},
           {"clone_name", j.clone_name},
           {"snapshot", j.snapshot.empty() ? json(nullptr) : json(j.snapshot)},
           {"state", JobStateName(j.state)},
           {"percent", j.percent},
           {"done_bytes", j.done_bytes},
           {"total_bytes", j.total_bytes},
           {"error", j.error},
           {"error_kind", j.error_kind},
           {"outputs", j.outputs},
           {"source_was_running", j.source_was_running},
           {"created", j.created},
           {"finished", j.finished}};
  if (position) out["queue_position"] = *position;
  return out;
}

json Manager::ListJobs() {
  json out = json::array();
  for (const JobRow& j : store_->Jobs()) out.push_back(JobJson(j));
  return out;
}

Result<json> Manager::GetJob(int64_t id) {
  std::optional<JobRow> j = store_->Job(id);
  if (!j) return Status::NotFound("no job with id " + std::to_string(id));
  return JobJson(*j);
}

Status Manager::CancelJob(int64_t id) {
  std::shared_ptr<RunningJob> queued;
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    auto it = running_.find(id);
    if (it == running_.end()) {
      if (!store_->Job(id)) return Status::NotFound("no job with id " + std::to_string(id));
      return Status::InvalidArgument("job " + std::to_string(id), "is not running");
    }
    it->second->cancel = true;
    for (auto q = queue_.begin(); q != queue_.end(); ++q) {
      if ((*q)->id == id) {
        queued = *q;
        queue_.erase(q);
        running_.erase(id);
        break;
      }
    }
  }
  if (queued) {  // never started: undo its reservations here
    std::optional<JobRow> row = store_->Job(id);
    JobRow r = row ? *row : JobRow{};
    r.id = id;
    FinishJob(r, queued->plan, Status::Cancelled("cancelled while queued"));
    Emit("job", {{"id", id}, {"state", "cancelled"}, {"percent", 0}, {"error", r.error}});
    Emit("vm", {{"id", queued->plan.clone_id}, {"change", "removed"}});
    Emit("vm", {{"id", queued->plan.source_id}, {"change", "unlocked"}});
  }
  return Status::OK();
}

}  // namespace clonekit::manager
