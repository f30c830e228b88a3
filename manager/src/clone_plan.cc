// Clone planning: the dialog's defaults, and a request turned into a plan
// whose every check ran and whose files are reserved, before any copy.
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

#include "clonekit/chain_resolver.h"
#include "guest_identity.h"
#include "guest_text.h"
#include "manager.h"
#include "manager_internal.h"
#include "pool_fs.h"
#include "remote_disk.h"
#include "remote_source.h"

namespace clonekit::manager {

namespace {

std::string Bytes(uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1 << 20));
  return buf;
}

// Creates *path (O_EXCL, 0600, beneath a pool), or STEM-2.EXT, STEM-3.EXT...
// when taken; *path is the file made.
Status ReserveFile(const PoolFs& fs, const std::string& what, std::string* path) {
  const std::string stem = path->substr(0, path->rfind('.'));
  const std::string ext = path->substr(path->rfind('.'));
  Status reserved;
  for (int n = 1; n <= 100; n++) {
    if (n > 1) *path = stem + "-" + std::to_string(n) + ext;
    Result<UniqueFd> fd = fs.CreateExclusive(*path, 0600, what);
    reserved = fd.status();
    if (fd.ok() || fd.status().code() != Status::Code::kExists) break;
  }
  return reserved;
}


// The report's lines for the host items decided in the definition (the
// TPM's is the job's: it copies the state when the clone is defined).
std::vector<IdentityChange> HostChanges(const DomainInfo& from, const DomainInfo& to, const GeneralizeItems& items) {
  std::vector<IdentityChange> out;
  const bool new_macs = items.Has(GeneralizeItem::kMacAddresses);
  for (size_t i = 0; i < from.interfaces.size() && i < to.interfaces.size(); i++) {
    const std::string what = "interface " + std::to_string(i + 1);
    const std::string& a = from.interfaces[i].mac;
    const std::string& b = to.interfaces[i].mac;
    if (new_macs) out.push_back({GeneralizeItem::kMacAddresses, "", what, (a.empty() ? "(none)" : a) + " -> " + b});
  }
  if (new_macs && from.interfaces.empty()) {
    out.push_back({GeneralizeItem::kMacAddresses, "", "", "no network interface in the definition"});
  }
  if (items.Has(GeneralizeItem::kSmbiosSerial)) {
    out.push_back({GeneralizeItem::kSmbiosSerial, "", "sysinfo/system serial",
                   from.smbios_serial.empty() ? "none in the definition: nothing to change"
                                              : "'" + from.smbios_serial + "' -> '" + to.smbios_serial + "'"});
  }
  if (items.Has(GeneralizeItem::kGenid)) {
    out.push_back({GeneralizeItem::kGenid, "", "genid",
                   !from.has_genid ? "no <genid> in the definition: nothing to change"
                                   : (from.genid.empty() ? "(made by libvirt)" : from.genid) + " -> " + to.genid});
  }
  return out;
}
}  // namespace

std::string Manager::UniqueName(const std::string& ns, const std::string& base) {
  std::string name = base + "-clone";
  for (int n = 2; store_->VmByName(ns, name); n++) name = base + "-clone-" + std::to_string(n);
  return name;
}

Result<CloneDefaults> Manager::Defaults(int64_t vm_id, const std::string& snapshot, const std::string& host) {
  std::optional<VmRow> vm = store_->Vm(vm_id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(vm_id));
  // Its disks do not exist yet: there is nothing to clone from.
  if (vm->status == VmStatus::kCloning) return Status::Locked("VM '" + vm->name + "'", "is still being cloned");
  // (Another host's VM: its chains are read there, so it must answer.)
  CLONEKIT_RETURN_IF_ERROR(HostReady(vm->host));
  const std::string target = host.empty() ? vm->host : host;
  if (target != kLocalHost) {
    const std::vector<HostRow> hosts = store_->Hosts();
    if (std::none_of(hosts.begin(), hosts.end(), [&](const HostRow& h) { return h.name == target; })) {
      return Status::NotFound("no host '" + target + "'");
    }
  }
  CloneDefaults d;
  d.configuration = vm->xml;
  d.description = vm->description;  // now: the entry's
  if (!snapshot.empty()) {
    std::optional<SnapshotRow> s = store_->Snapshot(vm_id, snapshot);
    if (!s) return Status::NotFound("VM '" + vm->name + "' has no snapshot '" + snapshot + "'");
    d.configuration = s->xml;
  }
  Result<DomainInfo> info = ParseDomain(d.configuration);
  if (!info.ok()) return info.status();
  if (!snapshot.empty()) d.description = info->description;  // as saved with the snapshot
  // On the source's host, each disk's own pool; on another, its first pool.
  const std::vector<Pool> there = PoolsOn(target);
  const PoolFs fs(PoolsOn(vm->host));  // (where its names are: PoolOf reads no file)
  for (const DiskSpec& disk : info->disks) {
    // (another host: its own pools first, so that all disks default alike)
    const Pool* home = target == vm->host ? fs.PoolOf(disk.file) : nullptr;
    const auto own = std::find_if(there.begin(), there.end(), [&](const Pool& p) { return !p.OnHost(vm->host); });
    const std::string pool = home ? home->name : own != there.end() ? own->name : there.empty() ? "" : there[0].name;
    d.disks.push_back({disk.target, disk.file, disk.format, pool, disk.format});
  }
  d.host = target;
  d.source_id = vm->id;
  d.source_name = vm->name;
  d.source_ns = vm->ns;
  d.source_host = vm->host;
  d.snapshot = snapshot;
  d.name = UniqueName(vm->ns, vm->name);
  d.ns = vm->ns;
  d.source_running = Hv(*vm)->State(RefOf(*vm)) == Power::kRunning;
  d.source_stops = d.source_running && snapshot.empty();
  d.summary = std::move(info).value();
  return d;
}

// The data each clone disk will write must fit its pool's free space, less
// what queued and running clones will still write there.
Status Manager::CheckSpace(const ClonePlan& plan) {
  std::map<std::string, uint64_t> need, promised;
  std::map<std::string, std::string> dir_of;
  for (const DiskPlan& d : plan.disks) {
    need[d.pool] += d.data_bytes;
    dir_of[d.pool] = DirName(d.output.empty() ? d.overlay : d.output);  // (a flatten's outputs come later)
  }
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    for (const auto& [id, job] : running_) {
      const double left = 1.0 - job->percent / 100.0;
      for (const DiskPlan& d : job->plan.disks) promised[d.pool] += static_cast<uint64_t>(double(d.data_bytes) * left);
    }
  }
  std::map<std::string, uint64_t> free_of;
  if (plan.FilesElsewhere()) {
    // Asked there, all pools in one SSH round.
    Result<RemoteHost> remote = RemoteOf(plan.files_host);
    if (!remote.ok()) return remote.status();
    std::vector<PoolSpace> spaces;
    for (const auto& [pool, bytes] : need) spaces.push_back({pool, dir_of[pool]});
    if (std::string err = RemoteSpace(*remote, &spaces); !err.empty()) return Status::IOError("host " + plan.files_host, err);
    for (const PoolSpace& p : spaces) free_of[p.name] = p.free_bytes;
  }
  for (const auto& [pool, bytes] : need) {
    struct statvfs vfs;
    if (!plan.FilesElsewhere() && statvfs(dir_of[pool].c_str(), &vfs) != 0) {
      return Status::FromErrno(dir_of[pool], "cannot read free space", errno);
    }
    const uint64_t free_bytes =
        plan.FilesElsewhere() ? free_of[pool] : static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
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
  Result<CloneDefaults> defaults = Defaults(req.source_vm, req.snapshot, req.host);
  if (!defaults.ok()) return defaults.status();
  const CloneDefaults& d = *defaults;
  std::optional<VmRow> source = store_->Vm(req.source_vm);
  if (!source) return Status::NotFound("no VM with id " + std::to_string(req.source_vm));
  if (req.snapshot.empty()) CLONEKIT_RETURN_IF_ERROR(RefuseWhileMadeStandalone(*source, "a clone of its current state"));
  ClonePlan plan;
  plan.source_id = req.source_vm;
  plan.source = RefOf(*source);
  plan.snapshot = req.snapshot;
  plan.live = req.live && req.snapshot.empty();
  plan.mode = req.mode;
  plan.host = d.host;
  plan.source_host = source->host;
  if (plan.mode == JobMode::kFlatten) return Status::InvalidArgument("a clone is full, instant or linked");
  if (plan.host != source->host || plan.SourceElsewhere()) {
    // Made on another host, or of a VM on one: only a full copy, made
    // wherever the chains are; what this service would do to the new images
    // or files on its own host does not apply.
    const std::string what = plan.host != source->host ? "a clone to host '" + plan.host + "'"
                                                       : "a clone of VM '" + source->name + "' (on host '" + source->host + "')";
    if (plan.mode != JobMode::kFull) {
      return Status::InvalidArgument(what, plan.host != source->host
                                               ? "must be a full clone: an instant or linked clone reads the source's "
                                                 "snapshot points, which are on host '" + source->host + "'"
                                               : "must be a full clone: instant and linked clones are made of VMs on "
                                                 "this service's own host only");
    }
    if (plan.live && plan.SourceElsewhere()) {
      return Status::InvalidArgument(what, "cannot keep it running (a live snapshot on host '" + source->host +
                                               "' first): take a snapshot and clone that, or let the clone shut it down");
    }
    if (req.generalize.AnyGuest()) {
      return Status::InvalidArgument(what, "may change only host items (mac-addresses, smbios-serial, genid): the "
                                           "guest items are changed in new images on this service's own host");
    }
    if (!d.summary.nvram.empty() || d.summary.emulated_tpm) {
      return Status::InvalidArgument(what, std::string("cannot take the source's ") +
                                               (d.summary.nvram.empty() ? "TPM state" : "UEFI variables (os/nvram)") +
                                               ": they are files of " +
                                               (plan.SourceElsewhere() ? "host '" + source->host + "'" : "this host"));
    }
  }
  if (plan.mode == JobMode::kInstant && !req.start) {
    return Status::InvalidArgument("an instant clone starts at once and is flattened while it runs; "
                                   "\"start\": false is for a linked clone");
  }
  if (plan.mode == JobMode::kInstant && !hv_->available()) {
    return Status::InvalidArgument("an instant clone runs while it is flattened, and no hypervisor is configured "
                                   "(a linked clone needs none)");
  }
  const std::string clone_name = req.name.empty() ? d.name : req.name;
  const std::string ns = req.ns.empty() ? d.ns : req.ns;
  std::string err = CheckName("VM", clone_name);
  if (err.empty()) err = CheckNamespace(ns);
  if (!err.empty()) return Status::InvalidArgument(err);
  if (store_->VmByName(ns, clone_name)) {
    return Status::Exists("VM '" + clone_name + "'", "already exists in namespace '" + ns + "'");
  }
  plan.libvirt_name = LibvirtName(ns, clone_name);
  plan.clone = {RandomUuid(), clone_name};
  CLONEKIT_RETURN_IF_ERROR(CheckLibvirtFree(plan.host, plan.libvirt_name, plan.clone.uuid));
  plan.start = req.start;
  const std::string& configuration = d.configuration;
  const DomainInfo* info = &d.summary;
  const PoolFs fs = Fs();
  // The source's files, by name, where they are (PoolOf reads no file).
  const PoolFs source_fs = plan.SourceElsewhere() ? PoolFs(PoolsOn(source->host)) : fs;
  std::optional<RemoteHost> source_remote;
  if (plan.SourceElsewhere()) {
    // Its files are checked there, as the copy reads them (remote_source.h).
    Result<RemoteHost> r = RemoteOf(source->host);
    if (!r.ok()) return r.status();
    source_remote = *r;
    for (const auto& [path, what] : info->host_paths) {
      if (!source_fs.PoolOf(path) || !PlainPath(path)) {
        return Status::InvalidArgument(what, path + " is not a plain path in a pool of host '" + source->host + "'");
      }
    }
  } else {
    CLONEKIT_RETURN_IF_ERROR(CheckDefinition(*info, fs));
  }
  std::map<std::string, Pool> pools;  // on the clone's host
  for (const Pool& p : PoolsOn(plan.host)) pools[p.name] = p;
  std::map<std::string, Pool> elsewhere;  // pools not on it
  for (const Pool& p : store_->Pools()) {
    if (!pools.count(p.name)) elsewhere[p.name] = p;
  }
  std::set<bool> shared;  // of the clone's pools: whether each is the source's host's too
  std::set<std::string> targets;
  for (const DiskDefault& disk : d.disks) {
    DiskPlan dp;
    dp.target = disk.target;
    dp.source = disk.source;
    dp.source_format = FormatOf(disk.source_format);
    targets.insert(dp.target);
    std::string pool = disk.pool, format = disk.format;
    if (auto it = req.disks.find(dp.target); it != req.disks.end()) {
      if (!it->second.pool.empty()) pool = it->second.pool;
      if (!it->second.format.empty()) format = it->second.format;
    }
    if (format != "raw" && format != "qcow2") {
      return Status::InvalidArgument("disk " + dp.target, "format '" + format + "' is not raw or qcow2");
    }
    if (plan.Overlays()) {
      // An overlay is qcow2 (raw has no backing file); its default is too.
      if (auto it = req.disks.find(dp.target); it != req.disks.end() && it->second.format == "raw") {
        return Status::InvalidArgument("disk " + dp.target, std::string(plan.mode == JobMode::kInstant ? "an instant" : "a linked") +
                                                                " clone's disks are qcow2 overlays, not raw");
      }
      format = "qcow2";
    }
    if (auto it = elsewhere.find(pool); it != elsewhere.end()) {
      const std::string where = it->second.hosts.empty() ? "no host" : it->second.hosts.front();
      return Status::InvalidArgument("disk " + dp.target, "pool '" + pool + "' is not on " +
                                                              (plan.host == kLocalHost ? "this host" : "host '" + plan.host + "'") +
                                                              " (it is on " + where + "): ask for the clone's host");
    }
    if (!pools.count(pool)) {
      return Status::InvalidArgument("disk " + dp.target, pool.empty() ? "host '" + plan.host + "' has no pool"
                                                                       : "no storage pool '" + pool + "'");
    }
    shared.insert(pools[pool].OnHost(source->host));
    dp.pool = pool;
    dp.format = format == "raw" ? OutputFormat::kRaw : OutputFormat::kQcow2;
    // What the copy writes: the chain's data (metadata only to find).
    if (source_remote) {
      Result<RemoteChainSize> size = MeasureRemoteChain(*source_remote, ChainOn(plan, dp));
      if (!size.ok()) return Status::InvalidArgument("disk " + dp.target, size.status().message());
      dp.data_bytes = size->data_bytes;
      dp.virtual_size = size->virtual_size;
    } else {
      Result<std::unique_ptr<Chain>> chain = fs.OpenChain(dp.source, dp.source_format, /*headers_only=*/true);
      if (!chain.ok()) return Status::InvalidArgument("disk " + dp.target, chain.status().message());
      ChainResolver resolver(**chain);
      CLONEKIT_RETURN_IF_ERROR(resolver.ResolveAll(1ull << 30, [&](const ExtentMap& map) {
        dp.data_bytes += map.data_bytes();
        return Status::OK();
      }));
      dp.virtual_size = (*chain)->virtual_size();
    }
    if (plan.mode == JobMode::kLinked) dp.data_bytes = 0;  // it writes only what its guest writes
    dp.output = pools[pool].dir + "/" + plan.libvirt_name + "-" + dp.target + "." + format;
    plan.disks.push_back(dp);
  }
  for (const auto& [target, _] : req.disks) {
    if (!targets.count(target)) return Status::InvalidArgument("disk " + target, "the source has no such disk");
  }
  const std::string source_host_text = plan.SourceElsewhere() ? "host '" + source->host + "'" : "this host";
  if (shared.size() > 1) {
    return Status::InvalidArgument("a clone to host '" + plan.host + "'", "needs its disks all in pools shared with " +
                                                                          source_host_text + " or all in pools of its own");
  }
  // Every other file the definition names (a CD-ROM, a loader, a kernel)
  // would be read there at that path: only from a pool both hosts share.
  if (plan.host != source->host) {
    std::set<std::string> copied;
    for (const DiskPlan& dp : plan.disks) copied.insert(dp.source);
    for (const auto& [path, what] : info->host_paths) {
      if (copied.count(path)) continue;
      const Pool* home = source_fs.PoolOf(path);
      if (!home || !home->OnHost(plan.host)) {
        return Status::InvalidArgument("a clone to host '" + plan.host + "'",
                                       what + " " + path + " is a file of " + source_host_text +
                                           ", not in a pool shared with '" + plan.host + "'");
      }
    }
  }
  // Pools the source's host has (its own or shared): written there, where
  // the copy runs; pools of the clone's host only: made there, over SSH.
  plan.files_host = shared.count(true) ? source->host : plan.host;
  if (plan.SourceElsewhere() && !plan.FilesElsewhere()) {
    return Status::InvalidArgument("a clone of VM '" + source->name + "' (on host '" + source->host + "')",
                                   "cannot be written into this service's own pools (it would need an NBD export "
                                   "here): choose pools of host '" + source->host + "', one shared with it, or "
                                   "another host's");
  }
  std::optional<RemoteHost> remote;
  if (plan.FilesElsewhere()) {
    Result<RemoteHost> r = RemoteOf(plan.files_host);
    if (!r.ok()) return r.status();
    remote = *r;
  }
  CLONEKIT_RETURN_IF_ERROR(CheckSpace(plan));

  // Reserve every file the job will make (O_EXCL, beneath the pool): what
  // exists is never touched, and the job records each the moment it exists.
  const auto undo = [&] {
    if (remote) {
      RemoveRemoteDisks(*remote, plan.scratch, plan.outputs, /*keep_outputs=*/false).IgnoreError();
      return;
    }
    for (const std::string& f : plan.outputs) unlink(f.c_str());
  };
  for (DiskPlan& dp : plan.disks) {
    Status reserved;
    if (remote) {
      // The job's own directory beside it there (remote_disk.h).
      dp.scratch = DirName(dp.output) + "/.clonekit-" + plan.clone.uuid + "-" + dp.target;
      reserved = ReserveRemoteDisk(*remote, dp.scratch, &dp.output);
      if (reserved.ok()) plan.scratch.push_back(dp.scratch);
    } else {
      reserved = ReserveFile(fs, "disk " + dp.target, &dp.output);
    }
    if (!reserved.ok()) {
      undo();
      return reserved;
    }
    plan.outputs.push_back(dp.output);
    dp.overlay = dp.output;
  }
  if (plan.mode == JobMode::kInstant) {
    if (Status s = ReserveRebase(fs, plan); !s.ok()) {
      undo();
      return s;
    }
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
  id.description = req.description ? *req.description : d.description;
  const GeneralizeItems& items = req.generalize;
  plan.generalize = items;
  if (items.Has(GeneralizeItem::kMacAddresses)) {
    id.new_mac = [&macs] {
      std::string mac;
      do mac = RandomMac(); while (!macs.insert(mac).second);
      return mac;
    };
  }
  if (items.Has(GeneralizeItem::kSmbiosSerial) && !info->smbios_serial.empty()) id.serial = id.uuid;
  if (items.Has(GeneralizeItem::kGenid) && info->has_genid) id.genid = RandomUuid();
  id.disks = new_disks;
  id.nvram = plan.nvram_to;
  Result<std::string> xml = MakeCloneXml(configuration, id);
  if (!xml.ok()) {
    undo();
    return xml.status();
  }
  plan.clone_xml = *xml;
  if (Result<DomainInfo> made = ParseDomain(plan.clone_xml); made.ok()) {
    plan.host_changes = HostChanges(*info, *made, items);
    for (size_t i = 0; i < info->interfaces.size() && i < made->interfaces.size(); i++) {
      if (!info->interfaces[i].mac.empty()) plan.macs.push_back({AsciiLower(info->interfaces[i].mac), AsciiLower(made->interfaces[i].mac)});
    }
  }
  plan.emulated_tpm = info->emulated_tpm;
  plan.hostname = HostnameFor(clone_name);

  // Admission: a copy slot now, else a place in the queue, else 429.
  JobRow job;
  job.source_vm = req.source_vm;
  job.clone_name = clone_name;
  job.snapshot = req.snapshot;
  job.live = plan.live;
  job.mode = plan.mode;
  job.generalize = plan.generalize;
  if (Status admitted = Admit(job); !admitted.ok()) {
    undo();
    return admitted;
  }
  job.outputs = plan.outputs;
  job.host = plan.files_host;
  job.scratch = plan.scratch;
  job.owner_pid = getpid();
  Status written = store_->Write([&]() -> Status {
    VmRow clone;
    clone.uuid = id.uuid;
    clone.name = clone_name;
    clone.ns = ns;
    clone.description = id.description;
    clone.status = VmStatus::kCloning;
    clone.xml = plan.clone_xml;
    clone.host = plan.host;
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

Status Manager::ReserveRebase(const PoolFs& fs, ClonePlan& plan) {
  for (DiskPlan& dp : plan.disks) {
    const std::string stem = dp.overlay.substr(0, dp.overlay.rfind('.'));
    dp.base = stem + "-base.qcow2";
    CLONEKIT_RETURN_IF_ERROR(ReserveFile(fs, "disk " + dp.target, &dp.base));
    plan.outputs.push_back(dp.base);
    dp.top = stem + "-top.qcow2";
    CLONEKIT_RETURN_IF_ERROR(ReserveFile(fs, "disk " + dp.target, &dp.top));
    plan.outputs.push_back(dp.top);
  }
  return Status::OK();
}

Result<JobView> Manager::Flatten(int64_t vm_id) {
  std::lock_guard<std::mutex> plan_lock(plan_mu_);
  std::optional<VmRow> vm = store_->Vm(vm_id);
  if (!vm) return Status::NotFound("no VM with id " + std::to_string(vm_id));
  if (vm->status == VmStatus::kCloning) return Status::Locked("VM '" + vm->name + "'", "is still being cloned");
  // Its disks may have been flattened outside a job (qemu finished a
  // stream after the service died): the images say.
  if (!vm->backing_snapshot || ClearBackingIfStandalone(vm_id)) {
    return Status::Exists("VM '" + vm->name + "'", "is not a linked clone: its disks stand alone");
  }
  for (const JobRow& j : store_->Jobs()) {
    if (Active(j.state) && (j.clone_vm == vm_id || j.source_vm == vm_id)) {
      return Status::Locked("VM '" + vm->name + "'", "job " + std::to_string(j.id) + " is working on it; wait for it or cancel it");
    }
  }
  Result<DomainInfo> info = ParseDomain(vm->xml);
  if (!info.ok()) return info.status();
  const PoolFs fs = Fs();
  CLONEKIT_RETURN_IF_ERROR(CheckDefinition(*info, fs));
  const bool running = hv_->State(RefOf(*vm)) == Power::kRunning;
  if (running) {
    // The switch mirrors the disk qemu runs: it must be the one the plan reads.
    Result<std::vector<DiskSpec>> tops = LibvirtDisks(RefOf(*vm), /*live=*/true);
    if (!tops.ok()) return tops.status();
    for (const DiskSpec& d : info->disks) {
      const auto same = [&](const DiskSpec& t) { return t.target == d.target && RealPath(t.file) == RealPath(d.file); };
      if (std::none_of(tops->begin(), tops->end(), same)) {
        return Status::Locked("VM '" + vm->name + "'", "disk " + d.target + " runs on another file than its definition "
                                                        "names (edited while it runs?); restart it, then flatten");
      }
    }
  }
  ClonePlan plan;
  plan.mode = JobMode::kFlatten;
  plan.source_id = plan.clone_id = vm_id;
  plan.source = plan.clone = RefOf(*vm);
  plan.libvirt_name = LibvirtName(vm->ns, vm->name);
  plan.flatten_offline = !running;
  for (const DiskSpec& d : info->disks) {
    DiskPlan dp;
    dp.target = d.target;
    dp.source = d.file;
    dp.source_format = FormatOf(d.format);
    dp.format = OutputFormat::kQcow2;
    const Pool* home = fs.PoolOf(d.file);
    dp.pool = home ? home->name : "";
    Result<std::unique_ptr<Chain>> chain = fs.OpenChain(d.file, dp.source_format, /*headers_only=*/true);
    if (!chain.ok()) return Status::InvalidArgument("disk " + d.target, chain.status().message());
    dp.virtual_size = (*chain)->virtual_size();
    dp.overlay = d.file;
    if ((*chain)->depth() == 1) continue;  // this disk stands alone already
    // Running, the chain below the top is what gets collapsed (qemu writes
    // the top); off, the whole chain, top included.
    if (!plan.flatten_offline) {
      dp.source = (*chain)->layer(1).name();
      dp.source_format = (*chain)->layer(1).info().format;
    }
    ChainResolver resolver(**chain);
    CLONEKIT_RETURN_IF_ERROR(resolver.ResolveAll(1ull << 30, [&](const ExtentMap& map) {
      dp.data_bytes += map.data_bytes();
      return Status::OK();
    }));
    plan.disks.push_back(dp);
  }
  CLONEKIT_RETURN_IF_ERROR(CheckSpace(plan));
  const auto undo = [&] {
    for (const std::string& f : plan.outputs) unlink(f.c_str());
  };
  if (!plan.flatten_offline) {
    if (Status s = ReserveRebase(fs, plan); !s.ok()) {
      undo();
      return s;
    }
  } else {
    // Each disk's new image is written beside it; the definition then
    // names it (never written over a file: the overlay goes only if ours).
    for (DiskPlan& dp : plan.disks) {
      dp.output = dp.source.substr(0, dp.source.rfind('.')) + "-flat.qcow2";
      if (Status reserved = ReserveFile(fs, "disk " + dp.target, &dp.output); !reserved.ok()) {
        undo();
        return reserved;
      }
      plan.outputs.push_back(dp.output);
    }
  }
  // The overlays the flatten replaces, removed once unused if a clone job
  // of this VM's made them (a definition edited since may name any file).
  for (const JobRow& j : store_->Jobs()) {
    if (j.clone_vm != vm_id || j.mode == JobMode::kFlatten) continue;
    for (const DiskPlan& dp : plan.disks) {
      if (std::find(j.outputs.begin(), j.outputs.end(), dp.overlay) != j.outputs.end()) plan.replaced.push_back(dp.overlay);
    }
  }
  JobRow job;
  job.source_vm = job.clone_vm = vm_id;
  job.clone_name = vm->name;
  if (std::optional<SnapshotRow> snap = store_->SnapshotById(vm->backing_snapshot)) job.snapshot = snap->name;
  job.mode = JobMode::kFlatten;
  job.generalize = GeneralizeItems::None();  // it makes no new machine
  job.outputs = plan.outputs;
  job.owner_pid = getpid();
  if (Status admitted = Admit(job); !admitted.ok()) {
    undo();
    return admitted;
  }
  Result<int64_t> jid = store_->InsertJob(job);
  if (!jid.ok()) {
    undo();
    return jid.status();
  }
  plan.job_id = *jid;
  return Launch(std::move(plan));
}

}  // namespace clonekit::manager
