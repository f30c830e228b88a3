#include "manager.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>

#include "clonekit/chain_resolver.h"
#include "clonekit/collapse.h"
#include "domain_xml.h"

namespace clonekit::manager {

namespace {

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? buf : "";
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// Runs a program (no shell) and returns its exit status; stderr kept for errors.
Status Run(const std::vector<std::string>& argv) {
  std::string err_path = "/tmp/clonekit-run-XXXXXX";
  int err_fd = mkstemp(err_path.data());
  // Built before fork: the child of a threaded process may only call
  // async-signal-safe functions (no allocation) until it execs.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    if (err_fd >= 0) dup2(err_fd, 2);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::string err;
  if (err_fd >= 0) {
    std::ifstream in(err_path);
    std::getline(in, err);
    close(err_fd);
    unlink(err_path.c_str());
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::OK();
  return Status::IOError(argv[0], err.empty() ? "failed" : err);
}

// Removes a finished output and any temporary the engine left beside it.
void RemoveOutput(const std::string& path) {
  unlink(path.c_str());
  const std::string dir = DirName(path), prefix = "." + BaseName(path) + ".clonekit-";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0) unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
  }
}

}  // namespace

std::string CheckName(const std::string& what, const std::string& name) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
  if (name.empty()) return what + " name is required";
  if (!std::regex_match(name, re)) {
    return what + " name '" + name +
           "' is not valid: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit";
  }
  return "";
}

std::string CheckNamespace(const std::string& ns) {
  static const std::regex re("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?");
  if (!std::regex_match(ns, re)) {
    return "namespace '" + ns + "' is not valid: 1-63 lowercase letters, digits or '-', not at either end";
  }
  return "";
}

// ---------------------------------------------------------------- jobs --

struct Manager::RunningJob {
  int64_t id = 0;
  int64_t source_vm = 0;
  std::atomic<bool> cancel{false};
  // Live progress (the database copy is written at most once a second).
  std::atomic<double> percent{0};
  std::atomic<uint64_t> done_bytes{0}, total_bytes{0};
};

struct Manager::DiskPlan {
  std::string target, source, output;
  OutputFormat format = OutputFormat::kQcow2;
};

struct Manager::ClonePlan {
  int64_t job_id = 0, source_id = 0, clone_id = 0;
  std::string source_name, clone_name, clone_xml;
  bool start = true;
  std::vector<DiskPlan> disks;
  std::string nvram_from, nvram_to;
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

// A clone that was running when the service died: its images are partial,
// its entry half made. Undo both and say why on the job.
void Manager::Recover() {
  // The hypervisor may have lost definitions (a test driver restarts empty;
  // a host may have been rebuilt): give it back every VM it does not know.
  for (const VmRow& vm : store_->Vms()) {
    if (vm.status == "defined" && hv_->available() && hv_->State(vm.name) == "undefined") hv_->Define(vm.xml);
  }
  for (JobRow job : store_->Jobs()) {
    if (job.state != "running") continue;
    for (const json& path : json::parse(job.outputs, nullptr, false)) RemoveOutput(path.get<std::string>());
    if (job.clone_vm) store_->DeleteVm(job.clone_vm);
    job.clone_vm = 0;
    job.state = "failed";
    job.error = "interrupted: the service stopped during the clone (partial images removed on restart)";
    job.finished = NowUtc();
    if (job.source_was_running && job.source_vm) {
      if (auto src = store_->Vm(job.source_vm); src && hv_->available()) hv_->Start(src->name);
    }
    store_->UpdateJob(job);
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

std::vector<std::string> Manager::PoolDirs() {
  std::vector<std::string> dirs;
  for (const Pool& p : store_->Pools()) dirs.push_back(p.dir);
  return dirs;
}

// The pool whose directory holds `path` (the innermost one), or null.
std::optional<Pool> Manager::PoolOf(const std::string& path) {
  const std::string dir = RealPath(DirName(path));
  std::optional<Pool> found;
  if (dir.empty()) return found;
  for (const Pool& p : store_->Pools()) {
    if ((dir == p.dir || dir.rfind(p.dir + "/", 0) == 0) && (!found || p.dir.size() > found->dir.size())) found = p;
  }
  return found;
}

Status Manager::CheckInsidePools(const std::string& path, const std::string& what) {
  if (RealPath(DirName(path)).empty()) {
    return Status::InvalidArgument(what, "'" + path + "': directory does not exist");
  }
  if (PoolOf(path)) return Status::OK();
  return Status::InvalidArgument(what, "'" + path + "' is outside every storage pool (clonekit pool add NAME DIR)");
}

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

// A pool still holding a VM's disk or a running clone's output stays.
Status Manager::RemovePool(const std::string& name) {
  std::optional<Pool> pool;
  for (const Pool& p : store_->Pools()) {
    if (p.name == name) pool = p;
  }
  if (!pool) return Status::NotFound("no pool '" + name + "'");
  for (const VmRow& vm : store_->Vms()) {
    Result<DomainInfo> info = ParseDomain(vm.xml);
    if (!info.ok()) continue;
    for (const DiskSpec& d : info->disks) {
      if (d.file.rfind(pool->dir + "/", 0) == 0) {
        return Status::Locked("pool '" + name + "'", "holds disk " + d.target + " of VM '" + vm.name + "'");
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

json Manager::VmJson(const VmRow& vm, bool full) {
  json j{{"id", vm.id}, {"uuid", vm.uuid}, {"name", vm.name}, {"namespace", vm.ns},
         {"description", vm.description}, {"created", vm.created}};
  const std::vector<int64_t> locks = LockingJobs(vm.id);
  std::string detail = vm.status == "cloning" ? "shutoff" : hv_->Detail(vm.name);
  if (detail == "undefined") detail = "shutoff";
  const std::string power = Hypervisor::PowerOf(detail);
  const std::string status = vm.status == "cloning" ? "cloning" : !locks.empty() ? "locked" : detail;
  j["status"] = status;
  j["power"] = power;
  j["locked_by"] = locks;
  if (vm.status == "cloning") {
    for (const JobRow& job : store_->Jobs()) {
      if (job.clone_vm == vm.id && job.state == "running") {
        j["job"] = job.id;
        j["percent"] = JobJson(job)["percent"];
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
  if (store_->VmByName(ns, info->name)) {
    return Status::Exists("VM '" + info->name + "'", "already exists in namespace '" + ns + "'");
  }
  for (const DiskSpec& d : info->disks) {
    CLONEKIT_RETURN_IF_ERROR(CheckInsidePools(d.file, "disk " + d.target));
    if (!Exists(d.file)) return Status::InvalidArgument("disk " + d.target, "'" + d.file + "' does not exist");
  }
  VmRow vm;
  vm.uuid = info->uuid.empty() ? RandomUuid() : info->uuid;
  vm.name = info->name;
  vm.ns = ns;
  vm.description = description.empty() ? info->description : description;
  vm.status = "defined";
  Result<std::string> pinned = SetIdentity(xml, vm.uuid, vm.description);
  if (!pinned.ok()) return pinned.status();
  vm.xml = *pinned;
  CLONEKIT_RETURN_IF_ERROR(hv_->Define(vm.xml));
  Result<int64_t> id = store_->InsertVm(vm);
  if (!id.ok()) return id.status();
  vm.id = *id;
  Emit("vm", {{"id", vm.id}, {"change", "defined"}});
  return VmJson(vm, true);
}

Result<json> Manager::UpdateVm(int64_t id, const std::optional<std::string>& xml,
                               const std::optional<std::string>& description) {
  std::optional<VmRow> vm = store_->Vm(id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(id));
  if (vm->status == "cloning") return Status::Locked("VM '" + vm->name + "'", "is being cloned; wait or cancel the job");
  // Editing a locked source is allowed: clones in progress copied its
  // configuration when they started.
  if (xml) {
    Result<DomainInfo> info = ParseDomain(*xml);
    if (!info.ok()) return info.status();
    if (info->name != vm->name) return Status::InvalidArgument("VM '" + vm->name + "'", "renaming is not supported");
    if (!info->uuid.empty() && info->uuid != vm->uuid) {
      return Status::InvalidArgument("VM '" + vm->name + "'", "the UUID cannot change");
    }
    for (const DiskSpec& d : info->disks) CLONEKIT_RETURN_IF_ERROR(CheckInsidePools(d.file, "disk " + d.target));
    vm->xml = *xml;
    CLONEKIT_RETURN_IF_ERROR(hv_->Define(vm->xml));
  }
  if (description) vm->description = *description;
  CLONEKIT_RETURN_IF_ERROR(store_->UpdateVm(*vm));
  Emit("vm", {{"id", id}, {"change", "updated"}});
  return VmJson(*vm, true);
}

Result<json> Manager::ImportVm(const std::string& name, const std::string& ns, const std::vector<std::string>& paths) {
  if (paths.empty()) return Status::InvalidArgument("import needs at least one disk");
  std::vector<DiskSpec> disks;
  std::vector<std::vector<std::pair<std::string, std::string>>> layers;  // per disk: (path, format), top first
  for (size_t i = 0; i < paths.size(); i++) {
    const std::string path = RealPath(paths[i]);
    if (path.empty()) return Status::InvalidArgument("disk", "'" + paths[i] + "' does not exist");
    CLONEKIT_RETURN_IF_ERROR(CheckInsidePools(path, "disk"));
    ChainOptions copt;
    copt.allowed_backing_dirs = PoolDirs();
    OpenOptions oopt;
    oopt.force_share = true;  // only reading headers
    auto opener = NewPosixFileOpener(oopt);
    Result<std::unique_ptr<Chain>> chain = OpenChain(path, *opener, copt);
    if (!chain.ok()) return chain.status();
    std::vector<std::pair<std::string, std::string>> l;
    for (const auto& layer : (*chain)->layers()) l.push_back({layer->name(), FormatName(layer->info().format)});
    layers.push_back(l);
    disks.push_back({std::string("vd") + static_cast<char>('a' + i), path, l[0].second});
  }
  const std::string xml = MinimalDomainXml(name, RandomUuid(), disks);
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
  if (vm->status == "cloning") {
    return Status::Locked("VM '" + vm->name + "'", "is being cloned: cancel its clone job instead");
  }
  std::vector<int64_t> locks = LockingJobs(id);
  if (!locks.empty()) {
    return Status::Locked("VM '" + vm->name + "'", "is locked: clone job " + std::to_string(locks[0]) +
                                                      " is copying it; delete is refused until it ends");
  }
  if (hv_->State(vm->name) == "running") return Status::Locked("VM '" + vm->name + "'", "is running; stop it first");
  CLONEKIT_RETURN_IF_ERROR(hv_->Undefine(vm->name));
  CLONEKIT_RETURN_IF_ERROR(store_->DeleteVm(id));
  Emit("vm", {{"id", id}, {"change", "deleted"}});
  return Status::OK();
}

Status Manager::StartVm(int64_t id) {
  std::optional<VmRow> vm = store_->Vm(id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(id));
  if (vm->status == "cloning") return Status::Locked("VM '" + vm->name + "'", "is still being cloned");
  std::vector<int64_t> locks = LockingJobs(id);
  if (!locks.empty()) {
    return Status::Locked("VM '" + vm->name + "'", "is locked: clone job " + std::to_string(locks[0]) +
                                                      " is copying it; run is refused until it ends");
  }
  CLONEKIT_RETURN_IF_ERROR(hv_->Start(vm->name));
  Emit("vm", {{"id", id}, {"change", "started"}});
  return Status::OK();
}

Status Manager::StopVm(int64_t id, bool force) {
  std::optional<VmRow> vm = store_->Vm(id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(id));
  CLONEKIT_RETURN_IF_ERROR(force ? hv_->Destroy(vm->name) : hv_->Shutdown(vm->name, options_.shutdown_timeout));
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
  if (vm->status == "cloning") return Status::Locked("VM '" + vm->name + "'", "is still being cloned");
  if (hv_->State(vm->name) == "running") {
    return Status::Locked("VM '" + vm->name + "'", "is running; stop it to take a snapshot (live snapshots are not supported)");
  }
  Result<DomainInfo> info = ParseDomain(vm->xml);
  if (!info.ok()) return info.status();
  // Each disk gets a new overlay beside its current top, whose backing file
  // (the old top) becomes the snapshot point and is made read-only.
  std::map<std::string, DiskSpec> overlays;
  std::vector<std::string> created;
  Status st;
  for (const DiskSpec& d : info->disks) {
    const std::string overlay = DirName(d.file) + "/" + vm->name + "-" + d.target + "-" + name + ".qcow2";
    st = CheckInsidePools(overlay, "snapshot");
    if (st.ok() && Exists(overlay)) st = Status::Exists(overlay, "already exists");
    if (st.ok()) st = Run({"qemu-img", "create", "-q", "-f", "qcow2", "-b", BaseName(d.file), "-F", d.format, overlay});
    if (!st.ok()) break;
    created.push_back(overlay);
    overlays[d.target] = {d.target, overlay, "qcow2"};
  }
  Result<std::string> new_xml = st.ok() ? SetDisks(vm->xml, overlays) : Result<std::string>(st);
  if (st.ok() && !new_xml.ok()) st = new_xml.status();
  if (st.ok()) {
    st = store_->Write([&]() -> Status {
      SnapshotRow row{0, vm_id, name, vm->xml, ""};
      Result<int64_t> id = store_->InsertSnapshot(row);
      if (!id.ok()) return id.status();
      VmRow updated = *vm;
      updated.xml = *new_xml;
      return store_->UpdateVm(updated);
    });
  }
  if (st.ok()) st = hv_->Define(*new_xml);
  if (!st.ok()) {
    for (const std::string& f : created) unlink(f.c_str());
    return st;
  }
  for (const DiskSpec& d : info->disks) chmod(d.file.c_str(), 0444);
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
  if (vm->status == "cloning") return Status::Locked("VM '" + vm->name + "'", "is still being cloned");
  std::string xml = vm->xml;
  if (!snapshot.empty()) {
    std::optional<SnapshotRow> s = store_->Snapshot(vm_id, snapshot);
    if (!s) return Status::NotFound("VM '" + vm->name + "' has no snapshot '" + snapshot + "'");
    xml = s->xml;
  }
  Result<DomainInfo> info = ParseDomain(xml);
  if (!info.ok()) return info.status();
  const std::vector<Pool> pools = store_->Pools();
  json disks = json::array();
  for (const DiskSpec& d : info->disks) {
    const std::optional<Pool> home = PoolOf(d.file);
    const std::string pool = home ? home->name : pools.empty() ? "" : pools[0].name;
    disks.push_back({{"target", d.target}, {"source", d.file}, {"source_format", d.format},
                     {"pool", pool}, {"format", d.format}});
  }
  const std::string power = hv_->State(vm->name);
  return json{{"source", {{"id", vm->id}, {"name", vm->name}, {"namespace", vm->ns}}},
              {"snapshot", snapshot.empty() ? json(nullptr) : json(snapshot)},
              {"name", UniqueName(vm->ns, vm->name)},
              {"namespace", vm->ns},
              {"description", info->description.empty() ? vm->description : info->description},
              {"start", true},
              {"source_running", power == "running"},
              {"disks", disks},
              {"summary", Summary(*info)},
              {"configuration", xml}};
}

Result<Manager::ClonePlan> Manager::PlanClone(const CloneRequest& req) {
  Result<json> defaults = CloneDefaults(req.source_vm, req.snapshot);
  if (!defaults.ok()) return defaults.status();
  const json& d = *defaults;
  ClonePlan plan;
  plan.source_id = req.source_vm;
  plan.source_name = d["source"]["name"];
  plan.clone_name = req.name.empty() ? d["name"].get<std::string>() : req.name;
  const std::string ns = req.ns.empty() ? d["namespace"].get<std::string>() : req.ns;
  std::string err = CheckName("VM", plan.clone_name);
  if (err.empty()) err = CheckNamespace(ns);
  if (!err.empty()) return Status::InvalidArgument(err);
  if (store_->VmByName(ns, plan.clone_name)) {
    return Status::Exists("VM '" + plan.clone_name + "'", "already exists in namespace '" + ns + "'");
  }
  plan.start = req.start;
  std::map<std::string, Pool> pools;
  for (const Pool& p : store_->Pools()) pools[p.name] = p;
  std::map<std::string, DiskSpec> new_disks;
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
    dp.format = format == "raw" ? OutputFormat::kRaw : OutputFormat::kQcow2;
    std::string stem = pools[pool].dir + "/" + (ns == "default" ? "" : ns + "_") + plan.clone_name + "-" + dp.target;
    dp.output = stem + "." + format;
    for (int n = 2; Exists(dp.output); n++) dp.output = stem + "-" + std::to_string(n) + "." + format;
    new_disks[dp.target] = {dp.target, dp.output, format};
    plan.disks.push_back(dp);
  }
  for (const auto& [target, _] : req.disks) {
    if (!targets.count(target)) return Status::InvalidArgument("disk " + target, "the source has no such disk");
  }
  Result<DomainInfo> info = ParseDomain(d["configuration"].get<std::string>());
  if (!info.ok()) return info.status();
  // MACs unique across the inventory.
  std::set<std::string> macs;
  for (const VmRow& vm : store_->Vms()) {
    if (Result<DomainInfo> i = ParseDomain(vm.xml); i.ok()) macs.insert(i->macs.begin(), i->macs.end());
  }
  CloneIdentity id;
  id.name = plan.clone_name;
  id.uuid = RandomUuid();
  id.description = req.description ? *req.description : d["description"].get<std::string>();
  id.new_mac = [&macs] {
    std::string mac;
    do mac = RandomMac(); while (!macs.insert(mac).second);
    return mac;
  };
  id.disks = new_disks;
  if (!info->nvram.empty()) {
    plan.nvram_from = info->nvram;
    plan.nvram_to = DirName(info->nvram) + "/" + plan.clone_name + "_VARS.fd";
    id.nvram = plan.nvram_to;
  }
  Result<std::string> xml = MakeCloneXml(d["configuration"].get<std::string>(), id);
  if (!xml.ok()) return xml.status();
  plan.clone_xml = *xml;

  JobRow job;
  job.source_vm = req.source_vm;
  job.clone_name = plan.clone_name;
  job.snapshot = req.snapshot;
  job.state = "running";
  json outputs = json::array();
  for (const DiskPlan& dp : plan.disks) outputs.push_back(dp.output);
  job.outputs = outputs.dump();
  job.owner_pid = getpid();
  CLONEKIT_RETURN_IF_ERROR(store_->Write([&]() -> Status {
    VmRow clone;
    clone.uuid = id.uuid;
    clone.name = plan.clone_name;
    clone.ns = ns;
    clone.description = id.description;
    clone.status = "cloning";
    clone.xml = plan.clone_xml;
    Result<int64_t> cid = store_->InsertVm(clone);
    if (!cid.ok()) return cid.status();
    plan.clone_id = *cid;
    job.clone_vm = *cid;
    Result<int64_t> jid = store_->InsertJob(job);
    if (!jid.ok()) return jid.status();
    plan.job_id = *jid;
    return Status::OK();
  }));
  return plan;
}

Result<json> Manager::StartClone(const CloneRequest& request) {
  std::lock_guard<std::mutex> plan_lock(plan_mu_);
  Result<ClonePlan> plan = PlanClone(request);
  if (!plan.ok()) return plan.status();
  auto job = std::make_shared<RunningJob>();
  job->id = plan->job_id;
  job->source_vm = plan->source_id;
  Emit("vm", {{"id", plan->clone_id}, {"change", "cloning"}});
  Emit("job", {{"id", job->id}, {"state", "running"}, {"percent", 0}});
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    // Reap the threads of jobs that have ended since the last clone.
    for (int64_t id : ended_) {
      threads_[id].join();
      threads_.erase(id);
    }
    ended_.clear();
    running_[job->id] = job;
    threads_[job->id] = std::thread(&Manager::RunClone, this, job, *plan);
  }
  return GetJob(plan->job_id);
}

// Collapses every disk concurrently; progress is the data bytes copied so
// far over the allocated bytes of all disks (found by resolving the chains
// first: metadata only), monotonic, 100 only at the end.
Status Manager::CopyDisks(RunningJob& job, const ClonePlan& plan, JobRow& row) {
  ChainOptions copt;
  copt.allowed_backing_dirs = PoolDirs();
  auto opener = NewPosixFileOpener(OpenOptions{});
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
      store_->UpdateJob(row);  // throttled: synchronous=FULL costs an fsync per write
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

void Manager::FinishJob(JobRow& row, const ClonePlan& plan, const Status& status) {
  if (status.ok()) {
    row.state = "succeeded";
    row.percent = 100;
    row.done_bytes = row.total_bytes;
  } else {
    for (const DiskPlan& dp : plan.disks) RemoveOutput(dp.output);
    if (!plan.nvram_to.empty()) unlink(plan.nvram_to.c_str());
    store_->DeleteVm(plan.clone_id);
    hv_->Undefine(plan.clone_name);
    row.clone_vm = 0;
    row.state = status.IsCancelled() ? "cancelled" : "failed";
    row.error = status.message();
  }
  row.finished = NowUtc();
  store_->UpdateJob(row);
}

// A source shut down for a clone runs again once no clone of it is left:
// the first of two clones to end must not start it under the second.
void Manager::RestartSourceIfLast(const ClonePlan& plan, bool shut_down_by_job) {
  std::lock_guard<std::mutex> power(source_power_mu_);
  if (shut_down_by_job) restart_owed_.insert(plan.source_id);
  // This job is still among the source's locking jobs: it is the last one
  // when it is the only one.
  if (LockingJobs(plan.source_id).size() > 1 || restart_owed_.erase(plan.source_id) == 0) return;
  hv_->Start(plan.source_name);
}

void Manager::RunClone(std::shared_ptr<RunningJob> job, ClonePlan plan) {
  JobRow row = *store_->Job(job->id);
  Status status;
  bool was_running;
  {
    std::lock_guard<std::mutex> power(source_power_mu_);
    was_running = hv_->State(plan.source_name) == "running";
  }
  row.source_was_running = was_running;
  store_->UpdateJob(row);
  if (was_running) {
    Emit("vm", {{"id", plan.source_id}, {"change", "shutting-down"}});
    status = hv_->Shutdown(plan.source_name, options_.shutdown_timeout);
    if (!status.ok()) was_running = hv_->State(plan.source_name) != "running";  // still up: nothing to restart
  }
  if (status.ok() && job->cancel) status = Status::Cancelled("cancelled");
  if (status.ok()) status = CopyDisks(*job, plan, row);
  if (status.ok() && !plan.nvram_from.empty()) {
    status = Run({"cp", "--sparse=always", plan.nvram_from, plan.nvram_to});
  }
  VmRow clone;
  if (status.ok()) {
    clone = *store_->Vm(plan.clone_id);
    clone.status = "defined";
    status = hv_->Define(clone.xml);
    if (status.ok()) status = store_->UpdateVm(clone);
  }
  FinishJob(row, plan, status);
  if (status.ok() && plan.start && hv_->available()) {
    Status started = hv_->Start(plan.clone_name);
    if (!started.ok()) {
      row.error = "the clone was created but did not start: " + started.message();
      store_->UpdateJob(row);
    }
  }
  RestartSourceIfLast(plan, was_running);
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    running_.erase(job->id);
    ended_.push_back(job->id);
  }
  Emit("job", {{"id", row.id}, {"state", row.state}, {"percent", row.percent}, {"error", row.error}});
  Emit("vm", {{"id", plan.clone_id}, {"change", row.state == "succeeded" ? "defined" : "removed"}});
  Emit("vm", {{"id", plan.source_id}, {"change", "unlocked"}});
}

json Manager::JobJson(const JobRow& stored) {
  JobRow j = stored;
  if (j.state == "running") {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    if (auto it = running_.find(j.id); it != running_.end()) {
      j.percent = it->second->percent;
      j.done_bytes = it->second->done_bytes;
      j.total_bytes = it->second->total_bytes;
    }
  }
  json outputs = json::parse(j.outputs, nullptr, false);
  return json{{"id", j.id},
              {"source_vm", j.source_vm ? json(j.source_vm) : json(nullptr)},
              {"clone_vm", j.clone_vm ? json(j.clone_vm) : json(nullptr)},
              {"clone_name", j.clone_name},
              {"snapshot", j.snapshot.empty() ? json(nullptr) : json(j.snapshot)},
              {"state", j.state},
              {"percent", j.percent},
              {"done_bytes", j.done_bytes},
              {"total_bytes", j.total_bytes},
              {"error", j.error},
              {"outputs", outputs.is_discarded() ? json::array() : outputs},
              {"source_was_running", j.source_was_running},
              {"created", j.created},
              {"finished", j.finished}};
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
  std::lock_guard<std::mutex> lock(jobs_mu_);
  auto it = running_.find(id);
  if (it == running_.end()) {
    if (!store_->Job(id)) return Status::NotFound("no job with id " + std::to_string(id));
    return Status::InvalidArgument("job " + std::to_string(id), "is not running");
  }
  it->second->cancel = true;
  return Status::OK();
}

}  // namespace clonekit::manager
