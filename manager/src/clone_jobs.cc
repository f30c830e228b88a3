// Clone jobs: admission (a copy slot or the queue), the job thread (shut
// the source down, copy every disk, define the clone, restart the source),
// its end, and cancel.
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "clonekit/chain_resolver.h"
#include "clonekit/collapse.h"
#include "manager.h"
#include "manager_internal.h"
#include "pool_fs.h"

namespace clonekit::manager {

Result<JobView> Manager::StartClone(const CloneRequest& request) {
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
  std::vector<std::unique_ptr<Chain>> chains;
  std::vector<uint64_t> allocated;
  uint64_t total = 0;
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
    if (row.error_kind.empty()) {
      row.error_kind = status.IsCancelled() ? "cancelled" : status.code() == Status::Code::kNoSpace ? "no_space" : "failed";
    }
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
  if (PowerLockingJobs(plan.source_id).size() > 1 || restart_owed_.erase(plan.source_id) == 0) return;
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
  bool was_running = false;  // and shut down by this job
  if (plan.StopsSource()) {
    std::lock_guard<std::mutex> power(source_power_mu_);
    was_running = hv_->State(plan.source) == Power::kRunning;
  }
  if (was_running && plan.live) {
    // Keep it running: the disks' current tops become the points of a live
    // snapshot, read-only from now on, and they are exactly the files this
    // job's plan reads. The snapshot stays listed on the source.
    const std::string snapshot = "clone-job-" + std::to_string(job->id);
    Result<std::vector<SnapshotView>> taken = TakeSnapshot(plan.source_id, snapshot, job->id);
    status = taken.status();
    was_running = false;  // never shut down by this job: nothing to restart
    if (status.ok()) {
      row.snapshot = snapshot;
      row.took_snapshot = true;
      job->on_snapshot = true;
      Emit("vm", {{"id", plan.source_id}, {"change", "unlocked"}});
    }
  }
  row.source_was_running = was_running;
  if (status.ok()) status = store_->UpdateJob(row);
  if (status.ok() && was_running) {
    Emit("vm", {{"id", plan.source_id}, {"change", "shutting-down"}});
    status = hv_->Shutdown(plan.source, options_.shutdown_timeout);
    if (!status.ok()) {
      was_running = hv_->State(plan.source) != Power::kRunning;  // still up: nothing to restart
      row.error_kind = "source_did_not_stop";  // the console offers Force off
    }
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
  if (plan.StopsSource()) RestartSourceIfLast(plan, was_running);
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
