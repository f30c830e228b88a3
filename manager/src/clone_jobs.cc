// Clone jobs: admission (a copy slot or the queue), the job thread (shut
// the source down, copy every disk, define the clone, restart the source),
// its end, and cancel.
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <system_error>
#include <thread>

#include "clonekit/chain_resolver.h"
#include "clonekit/collapse.h"
#include "guest_identity.h"
#include "guest_text.h"
#include "manager.h"
#include "manager_internal.h"
#include "pool_fs.h"
#include "process.h"
#include "remote_disk.h"
#include "remote_source.h"
#include "tpm_state.h"

namespace clonekit::manager {

namespace {

// Every file the chains of these disks read, resolved; nullopt when a
// chain cannot be opened.
std::optional<std::set<std::string>> ChainFiles(const PoolFs& fs, const std::vector<DiskSpec>& disks) {
  std::set<std::string> files;
  for (const DiskSpec& d : disks) {
    Result<std::unique_ptr<Chain>> chain = fs.OpenChain(d.file, FormatOf(d.format), /*headers_only=*/true);
    if (!chain.ok()) return std::nullopt;
    for (size_t i = 0; i < (*chain)->depth(); i++) files.insert(RealPath((*chain)->layer(i).name()));
  }
  return files;
}

std::optional<std::set<std::string>> ChainFiles(const PoolFs& fs, const std::string& xml) {
  Result<DomainInfo> info = ParseDomain(xml);
  if (!info.ok()) return std::nullopt;
  return ChainFiles(fs, info->disks);
}

// Every file a definition uses: its disks' chains and its other host
// paths (NVRAM, loader, kernel...), resolved; nullopt when unreadable.
std::optional<std::set<std::string>> UsedFiles(const PoolFs& fs, const std::string& xml) {
  Result<DomainInfo> info = ParseDomain(xml);
  if (!info.ok()) return std::nullopt;
  std::optional<std::set<std::string>> files = ChainFiles(fs, info->disks);
  if (!files) return std::nullopt;
  for (const auto& [path, what] : info->host_paths) {
    if (std::string real = RealPath(path); !real.empty()) files->insert(real);
  }
  return files;
}

}  // namespace

Result<JobView> Manager::StartClone(const CloneRequest& request) {
  std::lock_guard<std::mutex> plan_lock(plan_mu_);
  Result<ClonePlan> plan = PlanClone(request);
  if (!plan.ok()) return plan.status();
  Emit("vm", {{"id", plan->clone_id}, {"change", "cloning"}});
  return Launch(std::move(plan).value());
}

// A planned job (admitted, its row written) starts now or waits in the queue.
Result<JobView> Manager::Launch(ClonePlan plan) {
  auto job = std::make_shared<RunningJob>();
  job->id = plan.job_id;
  job->source_vm = plan.source_id;
  job->plan = std::move(plan);
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    running_[job->id] = job;
    if (!(copying_ < options_.max_clones && queue_.empty() && StartJob(job))) {
      queue_.push_back(job);
      Emit("job", {{"id", job->id}, {"state", "queued"}, {"percent", 0}, {"queue_position", queue_.size()}});
    }
  }
  return GetJob(job->id);
}

// REQUIRES: none of jobs_mu_. Queued (no slot, room in the queue), running
// (a slot), or refused (Busy, nothing written).
Status Manager::Admit(JobRow& job) {
  std::lock_guard<std::mutex> lock(jobs_mu_);
  if (copying_ + static_cast<int>(queue_.size()) >= options_.max_clones) {
    if (static_cast<int>(queue_.size()) >= options_.max_queued) {
      return Status::Busy(std::string(JobModeName(job.mode)) + ": " + std::to_string(options_.max_clones) +
                          " jobs are copying and " + std::to_string(queue_.size()) +
                          " are queued (the limit); try again later");
    }
    job.state = JobState::kQueued;
  } else {
    job.state = JobState::kRunning;
  }
  return Status::OK();
}

// REQUIRES: jobs_mu_ held. False when no thread could be made for it
// (EAGAIN: this process or the system is out of threads): it is not
// started, the caller queues it, and the janitor tries again.
bool Manager::StartJob(std::shared_ptr<RunningJob> job) {
  // Reap the threads of jobs that have ended since.
  for (int64_t id : ended_) {
    if (auto t = threads_.find(id); t != threads_.end()) {
      t->second.join();
      threads_.erase(t);
    }
  }
  ended_.clear();
  std::thread thread;
  try {
    // (Its EndJob waits for jobs_mu_: it cannot end before it is listed below.)
    thread = std::thread(job->plan.mode == JobMode::kFlatten ? &Manager::RunFlatten : &Manager::RunClone, this, job);
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "clonekit: job %lld stays queued: cannot start its thread: %s\n",
                 static_cast<long long>(job->id), e.what());
    return false;
  }
  copying_++;
  job->started = true;
  threads_[job->id] = std::move(thread);
  Emit("job", {{"id", job->id}, {"state", "running"}, {"percent", 0}});
  return true;
}

// REQUIRES: jobs_mu_ held. The next queued jobs, while there are slots
// (and threads for them).
void Manager::StartQueued() {
  while (copying_ < options_.max_clones && !queue_.empty()) {
    if (!StartJob(queue_.front())) return;
    queue_.pop_front();
  }
}

void Manager::RetryQueued() {
  std::lock_guard<std::mutex> lock(jobs_mu_);
  StartQueued();
}

// Runs copy(i, done) for every disk at once, done being disk i's data
// bytes copied so far; progress is their sum over the allocated bytes of
// all disks (found by resolving the chains first: metadata only),
// monotonic, 100 only at the end. The first disk to fail stops the others.
Status Manager::CopyAll(RunningJob& job, JobRow& row, const std::vector<uint64_t>& allocated,
                        const std::function<Status(size_t, std::atomic<uint64_t>&)>& copy) {
  const size_t n = allocated.size();
  uint64_t total = 0;
  for (uint64_t a : allocated) total += a;
  row.total_bytes = total;
  std::vector<std::atomic<uint64_t>> done(n);
  std::vector<Status> results(n);
  std::vector<std::thread> threads;
  std::atomic<size_t> finished{0};
  Status no_thread;
  const auto disk = [n](size_t i) { return "disk " + std::to_string(i + 1) + " of " + std::to_string(n); };
  for (size_t i = 0; i < n; i++) {
    try {
      threads.emplace_back([&, i] {
        try {
          results[i] = copy(i, done[i]);
        } catch (const std::exception& e) {  // (nothing may escape a thread: it would end the service)
          results[i] = Status::IOError(disk(i), e.what());
        }
        if (!results[i].ok()) job.cancel = true;  // one disk failed: stop the others
        finished++;
      });
    } catch (const std::system_error& e) {
      // Out of threads (EAGAIN): the disks already copying stop, and the
      // job fails naming why (it is not cancelled).
      no_thread = Status::IOError(disk(i), std::string("cannot start its copy thread: ") + e.what());
      job.cancel = true;
      finished += n - i;
      break;
    }
  }
  auto last_write = std::chrono::steady_clock::now();
  while (finished < n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += std::min<uint64_t>(done[i], allocated[i]);
    Progress(job, row, sum, total, &last_write);
  }
  for (auto& t : threads) t.join();
  if (!no_thread.ok()) return no_thread;
  for (const Status& s : results) {
    if (!s.ok() && !s.IsCancelled()) return s;
  }
  for (const Status& s : results) {
    if (!s.ok()) return s;
  }
  if (job.cancel) return Status::Cancelled("cancelled");
  return Status::OK();
}

// One line naming the host a copy into an export there failed on (not the
// export's key file).
static Status CopyToFailed(const Status& failed, const std::string& host, const std::string& target,
                           const RemoteExport& e) {
  if (failed.ok() || failed.IsCancelled()) return failed;
  std::string why = failed.message();
  if (why.rfind(e.uri(), 0) == 0) why = why.substr(std::min(why.size(), e.uri().size() + 2));
  return Status::IOError("host " + host, "disk " + target + ": the copy to " + e.address() + " stopped: " + why);
}

// Collapses every disk here, into its reserved file, or (files made on
// another host) into the NBD export of its new image there, which lives
// as long as this copy.
Status Manager::CopyDisks(RunningJob& job, const ClonePlan& plan, JobRow& row, bool into_base) {
  if (plan.SourceElsewhere()) return CopyDisksFromHost(job, plan, row);
  const PoolFs fs = Fs();
  std::vector<std::unique_ptr<Chain>> chains;
  std::vector<uint64_t> allocated;
  for (const DiskPlan& dp : plan.disks) {
    // Counted again (not the plan's count): a running source wrote on until
    // its shutdown, and a queued job may start much later.
    Result<std::unique_ptr<Chain>> chain = fs.OpenChain(dp.source, dp.source_format, /*headers_only=*/false);
    if (!chain.ok()) return chain.status();
    uint64_t bytes = 0;
    ChainResolver resolver(**chain);
    CLONEKIT_RETURN_IF_ERROR(resolver.ResolveAll(1ull << 30, [&](const ExtentMap& map) {
      bytes += map.data_bytes();
      return Status::OK();
    }));
    allocated.push_back(std::max<uint64_t>(bytes, 1));
    chains.push_back(std::move(chain).value());
  }
  std::optional<RemoteHost> remote;
  std::vector<RemoteExport> exports;
  if (plan.FilesElsewhere()) {
    Result<RemoteHost> r = RemoteOf(plan.files_host);
    if (!r.ok()) return r.status();
    remote = *r;
    for (const DiskPlan& dp : plan.disks) {
      Result<RemoteExport> e = ServeRemoteDisk(*remote, dp.scratch, dp.format == OutputFormat::kRaw ? "raw" : "qcow2",
                                               dp.virtual_size, options_.nbd_ports, ExportWriter::kThisService);
      if (!e.ok()) return e.status();
      exports.push_back(std::move(e).value());
    }
  }
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t n = plan.disks.size();
  CLONEKIT_RETURN_IF_ERROR(CopyAll(job, row, allocated, [&](size_t i, std::atomic<uint64_t>& done) {
    CollapseOptions o;
    o.format = plan.disks[i].format;
    o.cancel = &job.cancel;
    o.workers = std::max<unsigned>(1, cores / static_cast<unsigned>(n));
    o.max_bytes_per_second = options_.copy_rate;
    // Into the file reserved for this disk (ours: replaced whole at the end).
    o.overwrite = true;
    o.regular_file_only = true;
    o.file_mode = 0600;
    o.data_progress = [&](uint64_t d) { done = d; };
    if (!remote) return Collapse(*chains[i], into_base ? plan.disks[i].base : plan.disks[i].output, o);
    // The export is the new image's disk, which reads as zeros.
    o.format = OutputFormat::kRaw;
    o.overwrite = o.regular_file_only = false;
    o.target_is_zero = true;
    return CopyToFailed(Collapse(*chains[i], exports[i].uri(), o), plan.files_host, plan.disks[i].target, exports[i]);
  }));
  for (size_t i = 0; remote && i < n; i++) {
    CLONEKIT_RETURN_IF_ERROR(FinishRemoteDisk(*remote, plan.disks[i].scratch, plan.disks[i].output));
  }
  return Status::OK();
}

RemoteChain Manager::ChainOn(const ClonePlan& plan, const DiskPlan& dp) {
  RemoteChain c;
  c.clonekit = options_.remote_clonekit;
  c.top = dp.source;
  c.format = dp.source_format == ImageFormat::kRaw ? "raw" : "qcow2";
  for (const Pool& p : PoolsOn(plan.source_host)) c.pool_dirs.push_back(p.dir);
  return c;
}

// A VM on another host: clonekit runs there (remote_source.h), into the
// job's directory there (files on the same host) or into the export of
// each new image on the host the files are made on.
Status Manager::CopyDisksFromHost(RunningJob& job, const ClonePlan& plan, JobRow& row) {
  Result<RemoteHost> source = RemoteOf(plan.source_host);
  if (!source.ok()) return source.status();
  const bool same_host = plan.files_host == plan.source_host;
  Result<RemoteHost> files = RemoteOf(plan.files_host);
  if (!files.ok()) return files.status();
  std::vector<uint64_t> allocated;
  for (const DiskPlan& dp : plan.disks) {
    // (Measured again, as CopyDisks counts again.)
    Result<RemoteChainSize> size = MeasureRemoteChain(*source, ChainOn(plan, dp));
    if (!size.ok()) return size.status();
    allocated.push_back(std::max<uint64_t>(size->data_bytes, 1));
  }
  std::vector<RemoteExport> exports;
  for (size_t i = 0; !same_host && i < plan.disks.size(); i++) {
    const DiskPlan& dp = plan.disks[i];
    Result<RemoteExport> e = ServeRemoteDisk(*files, dp.scratch, dp.format == OutputFormat::kRaw ? "raw" : "qcow2",
                                             dp.virtual_size, options_.nbd_ports, ExportWriter::kAnotherHost);
    if (!e.ok()) return e.status();
    exports.push_back(std::move(e).value());
  }
  CLONEKIT_RETURN_IF_ERROR(CopyAll(job, row, allocated, [&](size_t i, std::atomic<uint64_t>& done) {
    const DiskPlan& dp = plan.disks[i];
    RemoteTarget target;
    if (same_host) {
      target.scratch = dp.scratch;
      target.format = dp.format == OutputFormat::kRaw ? "raw" : "qcow2";
    } else {
      target.export_address = exports[i].address();
      target.export_key = exports[i].key();
    }
    const auto progress = [&](double f) { done = static_cast<uint64_t>(f * double(allocated[i])); };
    Status s = CollapseOnHost(*source, ChainOn(plan, dp), target, options_.copy_rate, progress, &job.cancel);
    if (s.ok() || s.IsCancelled()) return s;
    // One line: the source's host, the disk, where it was copying to.
    std::string why = s.message();
    if (const std::string said = "host " + plan.source_host + ": "; why.rfind(said, 0) == 0) why = why.substr(said.size());
    return Status::IOError("host " + plan.source_host,
                           "disk " + dp.target +
                               (same_host ? ": " : ": the copy to host '" + plan.files_host + "' (" + exports[i].address() + ") stopped: ") +
                               why);
  }));
  for (const DiskPlan& dp : plan.disks) {
    CLONEKIT_RETURN_IF_ERROR(FinishRemoteDisk(*files, dp.scratch, dp.output));
  }
  return Status::OK();
}

// Monotonic progress, 100 only at the job's end: the live copy on the job,
// an event, and the database's copy at most once a second.
void Manager::Progress(RunningJob& job, JobRow& row, uint64_t done, uint64_t total,
                       std::chrono::steady_clock::time_point* last_write) {
  const double copied = double(done) / double(std::max<uint64_t>(total, 1));
  const double pct = std::min(99.9, 100.0 * (job.copy_share * copied + (1.0 - job.copy_share) * job.generalized));
  if (pct <= row.percent) return;
  row.percent = pct;
  row.done_bytes = done;
  row.total_bytes = total;
  job.percent = pct;
  job.done_bytes = done;
  job.total_bytes = total;
  Emit("job", {{"id", row.id}, {"state", "running"}, {"percent", pct}, {"done_bytes", done}, {"total_bytes", total}});
  if (std::chrono::steady_clock::now() - *last_write > std::chrono::seconds(1)) {
    // Throttled (synchronous=FULL costs an fsync per write); only progress.
    store_->UpdateJob(row).IgnoreError();
    *last_write = std::chrono::steady_clock::now();
  }
}

// Makes a running VM standalone without stopping it. clonekit collapses
// each disk's backing chain (read-only: a snapshot's points) into a new
// flat base, makes a new top on it, and has qemu mirror the disk's current
// top (only what the guest wrote since it started: small) into that new
// top and switch the disk to it at once (libvirt block copy, shallow, then
// pivot). bench/instant.sh measured this against qemu's block stream and
// picked it (docs/performance.md). Each switched disk is recorded at once
// (the definition names its new top), so a later failure leaves every
// disk whole on one top or the other. Cancel stops the copy or the mirror
// where it is; the disk stays on its old top.
Status Manager::RebaseRunning(RunningJob& job, int64_t vm_id, JobRow& row) {
  const ClonePlan& plan = job.plan;
  CLONEKIT_RETURN_IF_ERROR(CopyDisks(job, plan, row, /*into_base=*/true));
  const PoolFs fs = Fs();
  for (const DiskPlan& dp : plan.disks) {
    Result<UniqueFd> out = fs.OpenOwnedForWrite(dp.top, "disk " + dp.target);  // our reservation
    if (!out.ok()) return out.status();
    // "./NAME": the base beside it, found by qemu whatever the pool's path.
    CLONEKIT_RETURN_IF_ERROR(WriteOverlay(out->get(), dp.top, "./" + BaseName(dp.base), "qcow2", dp.virtual_size));
  }
  const DomainRef vm = plan.clone;
  for (const DiskPlan& dp : plan.disks) {
    if (job.cancel) return Status::Cancelled("cancelled");
    row.switching = dp.target + "=" + dp.top;
    CLONEKIT_RETURN_IF_ERROR(store_->UpdateJob(row));
    CLONEKIT_RETURN_IF_ERROR(hv_->MirrorDisk(vm, dp.target, dp.top));
    Status switched = Status::IOError("disk " + dp.target, "the mirror did not catch up");
    for (int pivots = 0;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (job.cancel) {
        hv_->AbortDiskJob(vm, dp.target).IgnoreError();  // the disk stays on its old top
        return Status::Cancelled("cancelled");
      }
      Result<DiskJobProgress> p = hv_->DiskJob(vm, dp.target);
      if (!p.ok()) switched = p.status();
      if (!p.ok() || !p->active) break;  // gone: the VM stopped, or qemu ended it
      if (p->done != p->end) continue;
      // Caught up; the guest may write again before the pivot: qemu then
      // refuses it for now, and the next round tries again.
      switched = hv_->PivotDisk(vm, dp.target);
      if (!switched.ok() && RunsOn(vm, dp.target, dp.top)) switched = Status::OK();  // it did, whatever it said
      if (switched.ok() || ++pivots >= 100) break;
    }
    if (!switched.ok()) {
      hv_->AbortDiskJob(vm, dp.target).IgnoreError();
      return Status::IOError("disk " + dp.target, "could not switch the running disk to its standalone image: " +
                                                      switched.message());
    }
    // The running disk reads top -> base now: so does the definition.
    CLONEKIT_RETURN_IF_ERROR(SwitchDefinition(vm_id, {{dp.target, {dp.target, dp.top, "qcow2"}}}));
    row.switching.clear();
    store_->UpdateJob(row).IgnoreError();  // (the definition is the record now)
  }
  return Status::OK();
}

Result<std::vector<DiskSpec>> Manager::LibvirtDisks(const DomainRef& vm, bool live) {
  Result<std::string> xml = hv_->DomainXml(vm, live);
  if (!xml.ok()) return xml.status();
  return RunningDisks(*xml);
}

// Whether the running domain's disk `target` is on `file` now.
bool Manager::RunsOn(const DomainRef& vm, const std::string& target, const std::string& file) {
  Result<std::vector<DiskSpec>> disks = LibvirtDisks(vm, /*live=*/true);
  if (!disks.ok()) return false;
  for (const DiskSpec& d : *disks) {
    if (d.target == target) return RealPath(d.file) == RealPath(file);
  }
  return false;
}

// A clone of the current state copies (or, instant or linked, overlays)
// the points of the snapshot its job took: each disk's source is the
// snapshot's file for that disk.
Status Manager::SourcesFromSnapshot(RunningJob& job, const std::string& snapshot) {
  std::optional<SnapshotRow> snap = store_->Snapshot(job.plan.source_id, snapshot);
  if (!snap) return Status::NotFound("the snapshot '" + snapshot + "' the job took is gone");
  Result<DomainInfo> info = ParseDomain(snap->xml);
  if (!info.ok()) return info.status();
  for (DiskPlan& dp : job.plan.disks) {
    const auto it = std::find_if(info->disks.begin(), info->disks.end(), [&](const DiskSpec& d) { return d.target == dp.target; });
    if (it == info->disks.end()) return Status::NotFound("disk " + dp.target + " is not in the snapshot the job took");
    dp.source = it->file;
    dp.source_format = FormatOf(it->format);
  }
  return Status::OK();
}

// Points the VM's disks (by target) at new files, in the store and libvirt.
Status Manager::SwitchDefinition(int64_t vm_id, const std::map<std::string, DiskSpec>& disks) {
  std::optional<VmRow> vm = store_->Vm(vm_id);
  if (!vm) return Status::NotFound("the VM's entry is gone");
  Result<std::string> xml = SetDisks(vm->xml, disks);
  if (!xml.ok()) return xml.status();
  vm->xml = *xml;
  CLONEKIT_RETURN_IF_ERROR(store_->UpdateVm(*vm));
  Result<std::string> for_libvirt = ForLibvirt(*xml, LibvirtName(vm->ns, vm->name));
  // Failing, libvirt keeps the old definition until the next start through
  // clonekit, which defines the store's first.
  if (for_libvirt.ok()) hv_->Define(*for_libvirt).IgnoreError();
  return Status::OK();
}

void Manager::RemoveUnused(int64_t vm_id, const std::vector<std::string>& candidates) {
  const PoolFs fs = Fs();
  std::set<std::string> used;
  const auto use = [&](const std::optional<std::set<std::string>>& files) {
    if (files) used.insert(files->begin(), files->end());
    return files.has_value();
  };
  // Every definition and snapshot in the store: a file may have become
  // another's backing (a snapshot point, a linked clone's) meanwhile.
  for (const VmRow& vm : store_->Vms()) {
    // A VM on another host in its own pools: none of its files is here
    // (and none of the candidates is its: its clone copied every disk).
    if (vm.host != kLocalHost && !UsedFiles(fs, vm.xml)) continue;
    if (!use(UsedFiles(fs, vm.xml))) return;  // cannot tell: remove nothing
    for (const SnapshotRow& snap : store_->Snapshots(vm.id)) {
      if (!use(UsedFiles(fs, snap.xml))) return;
    }
  }
  // And what libvirt runs now and would start next time (its definition
  // may lag the store's if a redefinition failed).
  std::optional<VmRow> vm = store_->Vm(vm_id);
  for (const bool live : {true, false}) {
    if (!vm || !hv_->available() || (live && hv_->State(RefOf(*vm)) != Power::kRunning)) continue;
    Result<std::vector<DiskSpec>> disks = LibvirtDisks(RefOf(*vm), live);
    if (!disks.ok() || !use(ChainFiles(fs, *disks))) return;
  }
  for (const std::string& f : candidates) {
    const std::string real = RealPath(f);
    if (!real.empty() && used.count(real)) continue;
    RemoveTemporaries(f);
    unlink(f.c_str());
  }
}

void Manager::RemoveJobOutputs(JobRow& row, const std::string& host, const std::vector<std::string>& outputs,
                               const std::vector<std::string>& scratch, bool keep_outputs) {
  if (host == kLocalHost) {
    if (!keep_outputs) RemoveJobFiles(outputs);
    return;
  }
  Result<RemoteHost> remote = RemoteOf(host);
  const Status removed = remote.ok() ? RemoveRemoteDisks(*remote, scratch, outputs, keep_outputs) : remote.status();
  if (removed.ok()) return;
  row.cleanup_pending = true;
  std::fprintf(stderr, "clonekit: job %lld: %s (tried again every %lld s)\n", static_cast<long long>(row.id),
               removed.message().c_str(), static_cast<long long>(kCleanupRetry.count()));
}

void Manager::RetryPendingCleanups() {
  for (JobRow job : store_->Jobs()) {
    if (!job.cleanup_pending || Active(job.state)) continue;
    // (A clone that was defined keeps its images: only the job's directories go.)
    const bool kept = job.clone_vm != 0;
    Result<RemoteHost> remote = RemoteOf(job.host);
    if (!remote.ok() || !RemoveRemoteDisks(*remote, job.scratch, job.outputs, kept).ok()) continue;
    job.cleanup_pending = false;
    if (const size_t at = job.error.rfind(kPendingTail); at != std::string::npos) {
      job.error.replace(at, std::string(kPendingTail).size(), kRemovedTail);
    }
    if (Status s = store_->UpdateJob(job); !s.ok()) {
      std::fprintf(stderr, "clonekit: job %lld: %s\n", static_cast<long long>(job.id), s.message().c_str());
      continue;
    }
    Emit("job", {{"id", job.id}, {"state", JobStateName(job.state)}, {"error", job.error}, {"cleanup_pending", false}});
  }
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

void Manager::FinishJob(JobRow& row, const ClonePlan& plan, const Status& status, bool keep_clone) {
  if (status.ok()) {
    row.state = JobState::kSucceeded;
    row.percent = 100;
    row.done_bytes = row.total_bytes;
  } else {
    // Exactly what this job made: its reserved files, its clone entry. A
    // clone already defined is the user's VM now (a flatten's reserved
    // files are only its scratch copies).
    if (!keep_clone) {
      if (Status s = store_->DeleteVm(plan.clone_id); !s.ok()) {
        std::fprintf(stderr, "clonekit: job %lld: %s\n", static_cast<long long>(row.id), s.message().c_str());
      }
      row.clone_vm = 0;
    }
    row.state = status.IsCancelled() ? JobState::kCancelled : JobState::kFailed;
    row.error = status.message();
    if (!keep_clone) {
      RemoveJobOutputs(row, row.host, plan.outputs, plan.scratch);
      if (row.cleanup_pending) row.error += PendingNote(row.host);
    }
    // What generalizing changed went with the images.
    if (!keep_clone) row.identity_changes.clear();
    if (keep_clone) {
      if (std::optional<VmRow> clone = store_->Vm(plan.clone_id); clone && clone->backing_snapshot) {
        row.error += ": " + LinkedWhy(*clone);
      }
    }
    if (row.error_kind.empty()) {
      row.error_kind = status.IsCancelled() ? "cancelled" : status.code() == Status::Code::kNoSpace ? "no_space" : "failed";
    }
  }
  if (keep_clone) {
    // The VM keeps what it uses; the job's other files (a copy not
    // switched to, the overlay a switch replaced) go.
    std::vector<std::string> candidates = plan.outputs;
    candidates.insert(candidates.end(), plan.replaced.begin(), plan.replaced.end());
    RemoveUnused(plan.clone_id, candidates);
  }
  row.finished = NowUtc();
  if (Status s = store_->UpdateJob(row); !s.ok()) {
    std::fprintf(stderr, "clonekit: job %lld: its end was not saved: %s\n", static_cast<long long>(row.id), s.message().c_str());
  }
}

std::string Manager::LinkedWhy(const VmRow& clone) {
  std::string of = "a snapshot";
  if (std::optional<SnapshotRow> snap = store_->SnapshotById(clone.backing_snapshot)) {
    std::optional<VmRow> source = store_->Vm(snap->vm_id);
    of = "snapshot '" + snap->name + "' of VM '" + (source ? source->name : "?") + "'";
  }
  return "VM '" + clone.name + "' stays a linked clone of " + of + " (POST /api/v1/vms/" + std::to_string(clone.id) +
         "/flatten makes it standalone)";
}

bool Manager::ClearBackingIfStandalone(int64_t vm_id) {
  std::optional<VmRow> vm = store_->Vm(vm_id);
  if (!vm) return false;
  if (!vm->backing_snapshot) return true;
  std::optional<SnapshotRow> snap = store_->SnapshotById(vm->backing_snapshot);
  if (!snap) return false;
  // What the images themselves say now (qemu may hold them: shared locks).
  const PoolFs fs = Fs();
  const std::optional<std::set<std::string>> points = ChainFiles(fs, snap->xml);
  const std::optional<std::set<std::string>> reads = ChainFiles(fs, vm->xml);
  if (!points || !reads) return false;
  for (const std::string& f : *reads) {
    if (points->count(f)) return false;
  }
  vm->backing_snapshot = 0;
  if (!store_->UpdateVm(*vm).ok()) return false;
  Emit("vm", {{"id", vm_id}, {"change", "standalone"}});
  return true;
}

Status WriteOverlay(int fd, const std::string& path, const std::string& backing, const std::string& backing_format,
                    uint64_t size) {
  CLONEKIT_RETURN_IF_ERROR(Run({"qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", backing_format,
                                "/dev/fd/3", std::to_string(size)},
                               fd));
  if (fsync(fd) != 0) return Status::FromErrno(path, "cannot sync", errno);
  return Status::OK();
}

// An instant or linked clone's disks: new qcow2 images in the files the
// plan reserved, each backed by its snapshot point (an absolute path: the
// point may lie in another pool) and as large as it.
Status Manager::MakeOverlays(const ClonePlan& plan) {
  const PoolFs fs = Fs();
  for (const DiskPlan& dp : plan.disks) {
    Result<UniqueFd> out = fs.OpenOwnedForWrite(dp.output, "disk " + dp.target);  // our reservation
    if (!out.ok()) return out.status();
    CLONEKIT_RETURN_IF_ERROR(WriteOverlay(out->get(), dp.output, dp.source,
                                          dp.source_format == ImageFormat::kRaw ? "raw" : "qcow2", dp.virtual_size));
  }
  return Status::OK();
}

// The clone's entry becomes a defined VM, in libvirt too; backing_snapshot
// (0: none) is what its disks are overlays on.
Status Manager::DefineClone(const ClonePlan& plan, int64_t backing_snapshot) {
  std::optional<VmRow> clone = store_->Vm(plan.clone_id);
  if (!clone) return Status::NotFound("the clone's entry is gone");
  Result<std::string> for_libvirt = ForLibvirt(clone->xml, plan.libvirt_name);
  if (!for_libvirt.ok()) return for_libvirt.status();
  CLONEKIT_RETURN_IF_ERROR(CheckLibvirtFree(plan.host, plan.libvirt_name, plan.clone.uuid));
  const std::shared_ptr<Hypervisor> hv = HvOn(plan.host);
  CLONEKIT_RETURN_IF_ERROR(hv->Define(*for_libvirt));
  clone->status = VmStatus::kDefined;
  clone->backing_snapshot = backing_snapshot;
  if (Status s = store_->UpdateVm(*clone); !s.ok()) {
    hv->Undefine(plan.clone).IgnoreError();  // ours, by UUID; the job's error says why
    return s;
  }
  return Status::OK();
}

// A source shut down for a clone runs again once no clone of it is left:
// the first of two clones to end must not start it under the second.
void Manager::RestartSourceIfLast(const ClonePlan& plan, bool shut_down_by_job, bool caller_listed) {
  std::lock_guard<std::mutex> power(source_power_mu_);
  if (shut_down_by_job) restart_owed_.insert(plan.source_id);
  // A running job is still among the source's locking jobs: it is the last
  // one when it is the only one.
  const size_t others_allowed = caller_listed ? 1 : 0;
  if (PowerLockingJobs(plan.source_id).size() > others_allowed || restart_owed_.erase(plan.source_id) == 0) return;
  if (Status s = HvOn(plan.source_host)->Start(plan.source); !s.ok()) {
    std::fprintf(stderr, "clonekit: source %s did not start again: %s\n", plan.source.name.c_str(), s.message().c_str());
    Emit("vm", {{"id", plan.source_id}, {"change", "restart-failed"}, {"error", s.message()}});
  }
}

// The job's stored row, now running.
JobRow Manager::RunningRow(int64_t id) {
  std::optional<JobRow> stored = store_->Job(id);
  JobRow row = stored ? *stored : JobRow{};
  row.id = id;
  row.state = JobState::kRunning;
  return row;
}

// Makes the clone a new machine: its TPM's state, then the guest items on
// its new images (one libguestfs appliance for all its disks). Before the
// clone is defined, so a failure leaves nothing (FinishJob removes the
// images; RunClone the TPM state this job made).
Status Manager::Generalize(RunningJob& job, JobRow& row) {
  const ClonePlan& plan = job.plan;
  std::vector<IdentityChange> report = plan.host_changes;
  const std::string dir = options_.tpm_state_dir;
  if (plan.emulated_tpm && plan.generalize.Has(GeneralizeItem::kTpm)) {
    report.push_back({GeneralizeItem::kTpm, "", dir + "/" + plan.clone.uuid,
                      "a new TPM: the source's state is not copied (swtpm makes an empty one at first start)"});
  } else if (plan.emulated_tpm) {
    Result<bool> copied = CopyTpmState(dir, plan.source.uuid, plan.clone.uuid);
    if (!copied.ok()) {  // (its names are swtpm's user's)
      return Status::IOError("generalize tpm", "copying the TPM state: " + SafeText(copied.status().message()));
    }
    job.tpm_state_made = *copied;
    report.push_back({GeneralizeItem::kTpm, "", dir + "/" + plan.clone.uuid,
                      *copied ? "kept: the source's TPM state copied from " + dir + "/" + plan.source.uuid +
                                    " (its state now: libvirt's snapshots do not keep it)"
                              : "kept, but the source's TPM has no state yet (it never ran): the clone's starts empty"});
  } else if (plan.generalize.Has(GeneralizeItem::kTpm)) {
    report.push_back({GeneralizeItem::kTpm, "", "", "no emulated TPM in the definition: nothing to change"});
  }
  if (plan.generalize.AnyGuest()) {
    GuestResetRequest req;
    for (const DiskPlan& dp : plan.disks) {
      req.disks.push_back({dp.target, dp.output, plan.Overlays() || dp.format != OutputFormat::kRaw ? "qcow2" : "raw"});
    }
    req.items = plan.generalize;
    req.hostname = plan.hostname;
    req.instance_id = plan.clone.uuid;
    req.macs = plan.macs;
    req.cancel = &job.cancel;
    auto last_write = std::chrono::steady_clock::now();
    req.progress = [&](double f) {
      job.generalized = f;
      Progress(job, row, row.done_bytes, row.total_bytes, &last_write);
    };
    std::vector<std::pair<std::string, double>> timings;
    req.timings = &timings;
    Result<std::vector<IdentityChange>> guest = ResetGuestIdentity(req);
    // Where the time went (the appliance's start is most of it), for the
    // admin's log and bench/generalize.sh.
    std::string line;
    for (const auto& [phase, seconds] : timings) line += " " + phase + "=" + std::to_string(seconds).substr(0, 5) + "s";
    std::fprintf(stderr, "clonekit: job %lld: generalize:%s\n", static_cast<long long>(row.id), line.c_str());
    if (!guest.ok()) return guest.status();
    report.insert(report.end(), guest->begin(), guest->end());
  }
  row.identity_changes = std::move(report);
  return store_->UpdateJob(row);
}

void Manager::RunClone(std::shared_ptr<RunningJob> job) {
  const ClonePlan& plan = job->plan;
  JobRow row = RunningRow(job->id);
  // The guest's generalization (an appliance's start and its items) is
  // the job's last fifth.
  // (A linked clone copies nothing: it is all the guest's part.)
  job->copy_share = !plan.generalize.AnyGuest() ? 1.0 : plan.mode == JobMode::kLinked ? 0.0 : 0.8;
  Status status;
  // A cancel that came as the job left the queue: no snapshot taken, no
  // source shut down for it.
  if (job->cancel) status = Status::Cancelled("cancelled");
  bool was_running = false;  // and shut down by this job
  const std::shared_ptr<Hypervisor> source_hv = HvOn(plan.source_host);
  if (status.ok() && plan.StopsSource()) {
    std::lock_guard<std::mutex> power(source_power_mu_);
    was_running = source_hv->State(plan.source) == Power::kRunning;
  }
  if (status.ok() && ((was_running && plan.live) || plan.TakesSnapshot())) {
    // Keep it running: the disks' current tops become the points of a
    // snapshot (live if it runs), read-only from now on, and they are
    // exactly the files this job's plan reads. The snapshot stays listed.
    // Named after the job; a name a user took already gets a suffix.
    std::string snapshot = "clone-job-" + std::to_string(job->id);
    for (int n = 2;; n++) {
      status = TakeSnapshot(plan.source_id, snapshot, job->id).status();
      if (status.code() != Status::Code::kExists || n > 100) break;
      snapshot = "clone-job-" + std::to_string(job->id) + "-" + std::to_string(n);
    }
    was_running = false;  // never shut down by this job: nothing to restart
    if (status.ok()) {
      row.snapshot = snapshot;
      row.took_snapshot = true;
      // Its points are the tops at this instant, which a snapshot taken
      // since the plan may have moved: read them from the snapshot itself.
      status = SourcesFromSnapshot(*job, snapshot);
    }
    if (status.ok()) {
      job->on_snapshot = true;
      Emit("vm", {{"id", plan.source_id}, {"change", "unlocked"}});
    }
  }
  row.source_was_running = was_running;
  if (status.ok()) status = store_->UpdateJob(row);
  if (status.ok() && was_running) {
    Emit("vm", {{"id", plan.source_id}, {"change", "shutting-down"}});
    status = source_hv->Shutdown(plan.source, options_.shutdown_timeout);
    if (!status.ok()) {
      was_running = source_hv->State(plan.source) != Power::kRunning;  // still up: nothing to restart
      row.error_kind = "source_did_not_stop";  // the console offers Force off
    }
  }
  if (status.ok() && job->cancel) status = Status::Cancelled("cancelled");
  int64_t backing = 0;
  if (plan.Overlays() && status.ok()) {
    std::optional<SnapshotRow> snap = store_->Snapshot(plan.source_id, row.snapshot);
    if (!snap) status = Status::NotFound("VM '" + plan.source.name + "' has no snapshot '" + row.snapshot + "'");
    else backing = snap->id;
    if (status.ok()) status = MakeOverlays(plan);
  } else if (status.ok()) {
    status = CopyDisks(*job, plan, row);
  }
  if (status.ok() && job->cancel) status = Status::Cancelled("cancelled");
  if (status.ok()) status = Generalize(*job, row);
  if (status.ok() && job->cancel) status = Status::Cancelled("cancelled");
  if (status.ok() && !plan.nvram_from.empty()) status = CopyNvram(Fs(), plan.nvram_from, plan.nvram_to);
  if (status.ok()) status = DefineClone(plan, backing);
  if (status.ok() && plan.FilesElsewhere()) {
    // The images are the clone's now; only the job's directories there go
    // (or wait for the host, and the job says so).
    RemoveJobOutputs(row, row.host, plan.outputs, plan.scratch, /*keep_outputs=*/true);
    if (row.cleanup_pending) row.error = PendingNote(row.host, /*kept=*/true).substr(2);
  }
  job->clone_defined = status.ok() && plan.Overlays();
  if (status.ok() && plan.Overlays() && plan.start && hv_->available()) {
    // An instant clone runs from here on; what follows only flattens it.
    // (Overlays are on the source's host: this one.)
    if (Status started = hv_->Start(plan.clone); !started.ok()) {
      status = Status::IOError("VM '" + plan.clone.name + "'", "was created but did not start: " + started.message());
      row.error_kind = "start_failed";
    } else {
      Emit("vm", {{"id", plan.clone_id}, {"change", "started"}});
    }
  }
  if (status.ok() && plan.mode == JobMode::kInstant) {
    status = RebaseRunning(*job, plan.clone_id, row);
    if (status.ok() && !ClearBackingIfStandalone(plan.clone_id)) {
      status = Status::IOError("VM '" + plan.clone.name + "'", "a disk still reads the snapshot after its switch");
    }
  }
  if (!status.ok() && job->tpm_state_made && !job->clone_defined) {
    RemoveTpmState(options_.tpm_state_dir, plan.clone.uuid);  // ours: the clone goes
  }
  FinishJob(row, plan, status, job->clone_defined);
  if (status.ok() && plan.mode == JobMode::kFull && plan.start && HvOn(plan.host)->available()) {
    Status started = HvOn(plan.host)->Start(plan.clone);
    if (!started.ok()) {
      row.error = "the clone was created but did not start: " + started.message();
      row.error_kind = "start_failed";
      if (Status s = store_->UpdateJob(row); !s.ok()) std::fprintf(stderr, "clonekit: %s\n", s.message().c_str());
    }
  }
  if (plan.StopsSource()) RestartSourceIfLast(plan, was_running);
  EndJob(*job, row);
  Emit("vm", {{"id", plan.clone_id}, {"change", row.clone_vm ? "defined" : "removed"}});
  Emit("vm", {{"id", plan.source_id}, {"change", "unlocked"}});
}

// A linked clone made standalone: collapsed and switched while it runs
// (RebaseRunning), or, off, each overlay's whole chain collapsed into the
// reserved file beside it, which the definition then names.
void Manager::RunFlatten(std::shared_ptr<RunningJob> job) {
  const ClonePlan& plan = job->plan;
  JobRow row = RunningRow(job->id);
  Status status = store_->UpdateJob(row);
  const bool running = hv_->State(plan.source) == Power::kRunning;
  if (status.ok() && running != !plan.flatten_offline) {
    status = Status::Locked("VM '" + plan.source.name + "'", running ? "was started before its flatten began; flatten again"
                                                                      : "stopped before its flatten began; flatten again");
  }
  if (status.ok() && !plan.flatten_offline) {
    status = RebaseRunning(*job, plan.source_id, row);
  } else if (status.ok()) {
    status = CopyDisks(*job, plan, row);
    if (status.ok() && hv_->State(plan.source) == Power::kRunning) {
      status = Status::Locked("VM '" + plan.source.name + "'", "was started during its flatten; flatten again");
    }
    std::map<std::string, DiskSpec> flat;
    for (const DiskPlan& dp : plan.disks) flat[dp.target] = {dp.target, dp.output, "qcow2"};
    if (status.ok()) status = SwitchDefinition(plan.source_id, flat);
  }
  if (status.ok() && !ClearBackingIfStandalone(plan.source_id)) {
    status = Status::IOError("VM '" + plan.source.name + "'", "a disk still reads the snapshot after the flatten");
  }
  FinishJob(row, plan, status, /*keep_clone=*/true);
  EndJob(*job, row);
  Emit("vm", {{"id", plan.source_id}, {"change", "unlocked"}});
}

void Manager::EndJob(const RunningJob& job, const JobRow& row) {
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    running_.erase(job.id);
    copying_--;
    StartQueued();
    // Only now: StartQueued reaps the threads in ended_, and a thread
    // cannot join itself (it threw, and the service died, when a queued
    // job started at the end of the one before it).
    ended_.push_back(job.id);
  }
  Emit("job", {{"id", row.id}, {"state", JobStateName(row.state)}, {"percent", row.percent}, {"error", row.error}});
}

JobView Manager::ViewOf(const JobRow& stored) {
  JobView v{stored, std::nullopt};
  JobRow& j = v.job;
  if (Active(j.state)) {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    if (auto it = running_.find(j.id); it != running_.end()) {
      j.state = it->second->started ? JobState::kRunning : JobState::kQueued;
      j.percent = it->second->percent;
      j.done_bytes = it->second->done_bytes;
      j.total_bytes = it->second->total_bytes;
    }
    for (size_t i = 0; i < queue_.size(); i++) {
      if (queue_[i]->id == j.id) v.queue_position = i + 1;
    }
  }
  return v;
}

std::vector<JobView> Manager::ListJobs() {
  std::vector<JobView> out;
  for (const JobRow& j : store_->Jobs()) out.push_back(ViewOf(j));
  return out;
}

Result<JobView> Manager::GetJob(int64_t id) {
  std::optional<JobRow> j = store_->Job(id);
  if (!j) return Status::NotFound("no job with id " + std::to_string(id));
  return ViewOf(*j);
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
        break;
      }
    }
  }
  if (queued) {  // never started: undo its reservations here
    std::optional<JobRow> row = store_->Job(id);
    JobRow r = row ? *row : JobRow{};
    r.id = id;
    FinishJob(r, queued->plan, Status::Cancelled("cancelled while queued"), queued->plan.mode == JobMode::kFlatten);
    {
      // Listed until its reservations are undone: a host it uses cannot be
      // forgotten meanwhile (FinishJob may be reaching it).
      std::lock_guard<std::mutex> lock(jobs_mu_);
      running_.erase(id);
    }
    Emit("job", {{"id", id}, {"state", "cancelled"}, {"percent", 0}, {"error", r.error}});
    if (queued->plan.mode != JobMode::kFlatten) Emit("vm", {{"id", queued->plan.clone_id}, {"change", "removed"}});
    Emit("vm", {{"id", queued->plan.source_id}, {"change", "unlocked"}});
    // The job that shut the source down may have ended while this one
    // waited: the restart it owed is this one's to do.
    if (queued->plan.mode != JobMode::kFlatten && queued->plan.StopsSource()) {
      RestartSourceIfLast(queued->plan, /*shut_down_by_job=*/false, /*caller_listed=*/false);
    }
  }
  return Status::OK();
}

}  // namespace clonekit::manager
