// Manager: VMs, snapshots with the configuration saved at each, and clone
// jobs (the seeds' "clone VM from snapshot"), on top of Store, DomainXml,
// Hypervisor and the engine's Collapse.
//
// Every call returns a typed view (views.h) or a Status saying why not; the
// API's JSON is only their encoding (api_json.cc). The change feed's events
// are the one place JSON is built here (they are the API's feed). Clone jobs run on their
// own threads; everything they change goes through the single Store.
#ifndef CLONEKIT_MANAGER_MANAGER_H_
#define CLONEKIT_MANAGER_MANAGER_H_

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "domain_xml.h"
#include "events.h"
#include "generalize.h"
#include "hypervisor.h"
#include "names.h"
#include "remote_disk.h"
#include "remote_host.h"
#include "remote_source.h"
#include "views.h"
#include "store.h"

namespace clonekit::manager {

using json = nlohmann::ordered_json;

struct ManagerOptions {
  std::string db_path;  // a SQLite file, or a "postgresql://" URL (Store::Open)
  RoleEvents role_events;  // on a shared PostgreSQL: waiting as standby, losing the active role
  // The service's own files (database, token): never inside a pool. "" =
  // the SQLite file's directory.
  std::string state_dir;
  std::string hypervisor_uri;     // "" = no hypervisor
  int shutdown_timeout = 60;      // seconds to wait for a source VM to shut down
  uint64_t copy_rate = 0;         // bytes/s per disk copy, 0 = unlimited
  int max_clones = 2;             // copies at once; later clones wait, queued
  int max_queued = 16;            // queued clones at most; more are refused (429)
  // Where libvirt's swtpm keeps each domain's TPM state, by UUID.
  std::string tpm_state_dir = "/var/lib/libvirt/swtpm";
  // Ports a clone to another host may open there for its NBD export (TLS,
  // a key of its own): the range to allow between hosts.
  PortRange nbd_ports;
  // clonekit's absolute path on the other hosts: a clone of a VM there
  // runs it there, where its chains are (remote_source.h). "" = the
  // clonekit beside this program.
  std::string remote_clonekit;
};

struct CloneRequest {
  int64_t source_vm = 0;
  std::string snapshot;  // "" = the VM's current configuration
  std::string name, ns;  // "" = the defaults
  std::optional<std::string> description;
  bool start = true;
  // The host to make the clone on ("" = the source's). Another host's
  // pools (not shared with the source's): its disks are streamed there.
  std::string host;
  // A running source of a clone of its current state keeps running: the
  // job takes a live snapshot and clones that (it stays listed).
  bool live = false;
  // kFull: standalone copies, then define. kInstant: define and start at
  // once on overlays backed by the snapshot's points, then flatten them
  // while the clone runs. kLinked: stay on such overlays. (Of the current
  // state, both take a snapshot "clone-job-N" first.)
  JobMode mode = JobMode::kFull;
  struct Disk {
    std::string pool, format;  // "" = the defaults
  };
  std::map<std::string, Disk> disks;  // by target
  // What makes the clone a new machine (generalize.h); Base() when not asked.
  GeneralizeItems generalize = GeneralizeItems::Base();
};

class PoolFs;

class Manager {
 public:
  static Result<std::unique_ptr<Manager>> Open(const ManagerOptions& options);
  // Cancels running clones (their partial images removed) and waits for them.
  ~Manager();

  // Hosts: 'local' (the service's --hypervisor) first, then the added ones
  // by name, each with what its libvirt says (asked of all at once, each
  // for up to 5 s; an answer is reused for 10 s unless fresh).
  std::vector<HostView> Hosts(bool fresh = false);
  // A host is added only once its URI passes CheckHostUri and its libvirt
  // answers. ssh: USER@HOST[:PORT] its pools are reached at ("": the
  // URI's, for qemu+ssh).
  Result<HostView> AddHost(const std::string& name, const std::string& uri, const std::string& ssh);
  // A host holding a pool stays.
  Status RemoveHost(const std::string& name);
  // A host that is gone for good (its libvirt does not answer now, asked
  // afresh) is removed with the entries of its VMs and pools, and its jobs
  // stop waiting to clean up there; refused while a job uses it. Nothing on
  // the host is touched: should it come back, its domains and files are
  // its admin's.
  Result<ForgottenHost> ForgetHost(const std::string& name);

  // A pool on the given hosts (empty: "local"): the same directory on each,
  // checked there (over SSH on another host) to be one, by its canonical
  // path, and to overlap no other pool on any of them.
  Result<Pool> AddPool(const std::string& name, const std::string& dir, std::vector<std::string> hosts = {});
  std::vector<Pool> Pools();
  Status RemovePool(const std::string& name);

  Result<VmView> DefineVm(const std::string& xml, const std::string& ns, const std::string& description);
  // Replaces the definition, or sets vCPUs and memory in it, and/or the
  // description (one source of truth: the entry; the XML follows it).
  Result<VmView> UpdateVm(int64_t id, const std::optional<std::string>& xml,
                        const std::optional<std::string>& description,
                        std::optional<uint64_t> vcpus = std::nullopt, std::optional<uint64_t> memory_mib = std::nullopt);
  Result<VmView> ImportVm(const std::string& name, const std::string& ns, const std::vector<std::string>& disks);
  // host: only the VMs on it (the others' hypervisors are not asked).
  std::vector<VmView> ListVms(const std::optional<std::string>& host = std::nullopt);
  Result<VmView> GetVm(int64_t id);
  Result<int64_t> FindVm(const std::string& ns, const std::string& name);
  Status DeleteVm(int64_t id);
  Status StartVm(int64_t id);
  Status StopVm(int64_t id, bool force);

  Result<std::vector<SnapshotView>> CreateSnapshot(int64_t vm_id, const std::string& name);
  Result<std::vector<SnapshotView>> ListSnapshots(int64_t vm_id);
  // Removes the snapshot point from the list (it can no longer be cloned
  // from); its layers stay in the VM's chain, which still reads them.
  // Refused while a linked clone is backed by it or a clone job reads it.
  Status DeleteSnapshot(int64_t vm_id, const std::string& name);

  // Makes a linked clone standalone: a job that, while it runs, collapses
  // its disks' backing chains into new bases and switches the running disks
  // onto new tops over them (RebaseRunning), or, while it is off, collapses
  // each overlay's whole chain into a new image that the definition then
  // names (power locked meanwhile).
  Result<JobView> Flatten(int64_t vm_id);

  // The configuration at a snapshot (or now) and the clone dialog's defaults.
  // host: the clone's ("" = the source's).
  Result<CloneDefaults> Defaults(int64_t vm_id, const std::string& snapshot, const std::string& host = "");
  // Validates, creates the clone entry ("cloning") and its job, and starts it.
  Result<JobView> StartClone(const CloneRequest& request);

  std::vector<JobView> ListJobs();
  Result<JobView> GetJob(int64_t id);
  Status CancelJob(int64_t id);

  // Change feed: events after `after` (waits up to timeout_ms for one).
  json WaitEvents(uint64_t after, int timeout_ms);
  uint64_t LastEvent();

  std::string IntegrityCheck() { return store_->IntegrityCheck(); }
  // The state's engine ("sqlite", "postgresql") and what it names (no password).
  std::string DatabaseEngine() const { return store_->engine(); }
  std::string DatabaseName() const { return store_->name(); }
  std::string HypervisorUri() const { return hv_->uri(); }

 private:
  struct RunningJob;
  struct DiskPlan;
  struct ClonePlan;

  Manager() = default;
  [[nodiscard]] Status Recover();
  void AdoptSwitchedDisks(const VmRow& vm, const std::vector<std::string>& outputs);
  // Every file operation here is on this machine's pools only.
  PoolFs Fs();
  std::vector<Pool> LocalPools();
  std::vector<Pool> PoolsOn(const std::string& host);
  // The libvirt of a host: hv_ for 'local', else one opened by the host's
  // URI on first use and kept until the host is removed (a host not
  // registered: none).
  std::shared_ptr<Hypervisor> HvOn(const std::string& host);
  std::shared_ptr<Hypervisor> Hv(const VmRow& vm) { return HvOn(vm.host); }
  // Whether another host's libvirt answered lately (asked with the probe's
  // deadline at most once per kHostsFresh): libvirt's own connect to a
  // host that is down has no deadline, so it is never tried then.
  bool HostAnswers(const std::string& host);
  // OK, or why the host's libvirt cannot be used now.
  Status HostReady(const std::string& host);
  // VMs on another host are started, stopped, deleted, snapshotted and
  // cloned there; an edit of their definition is refused.
  Status RefuseOnOtherHost(const VmRow& vm, const std::string& what);
  // Removes the files a job made on its host: here (RemoveJobFiles), or
  // there over SSH; a host that does not answer marks the job
  // cleanup_pending (its error says so) for the retries.
  // keep_outputs: a clone defined there keeps its images; only the job's
  // directories go.
  void RemoveJobOutputs(JobRow& row, const std::string& host, const std::vector<std::string>& outputs,
                        const std::vector<std::string>& scratch, bool keep_outputs = false);
  // Starts queued jobs that a slot was free for but no thread could be
  // made (every kCleanupRetry, as below). REQUIRES: none of jobs_mu_.
  void RetryQueued();
  // Retries every pending removal on other hosts (every kCleanupRetry).
  void RetryPendingCleanups();
  // How a host's files are reached (host_uri.h, remote_host.h).
  Result<RemoteHost> RemoteOf(const std::string& host);
  std::vector<HostView> AskHosts();
  [[nodiscard]] Status CheckSharedStorage(const std::string& subject, const std::string& dir,
                                          const std::vector<std::string>& hosts);
  void ForgetHosts();  // (after a change: the next Hosts() asks again)
  Status CheckDefinition(const DomainInfo& info, const PoolFs& fs);
  // On the host the VM is to be defined on.
  Status CheckLibvirtFree(const std::string& host, const std::string& libvirt_name, const std::string& uuid);
  Status CheckSpace(const ClonePlan& plan);
  [[nodiscard]] bool StartJob(std::shared_ptr<RunningJob> job);
  Result<JobView> Launch(ClonePlan plan);
  [[nodiscard]] Status Admit(JobRow& job);
  void StartQueued();
  void RemoveJobFiles(const std::vector<std::string>& outputs);
  void Emit(const std::string& kind, json data);
  VmView ViewOf(const VmRow& vm, bool full);
  JobView ViewOf(const JobRow& job);
  // Active clone jobs of the VM's current state: they shut it down, copy
  // its disks and start it again, so starting it is refused meanwhile.
  std::vector<int64_t> PowerLockingJobs(int64_t vm_id) { return JobsReading(vm_id, true); }
  // Every active clone job reading the VM's disks or snapshot points (a
  // clone from a snapshot too): deleting it is refused meanwhile.
  std::vector<int64_t> ReadingJobs(int64_t vm_id) { return JobsReading(vm_id, false); }
  std::vector<int64_t> JobsReading(int64_t vm_id, bool power_locking_only);
  // CreateSnapshot, or the live snapshot clone job `for_job` takes of its
  // source (that job's own power lock does not refuse it).
  Result<std::vector<SnapshotView>> TakeSnapshot(int64_t vm_id, const std::string& name, int64_t for_job);
  Result<std::vector<SnapshotView>> SnapshotOnHost(const VmRow& vm, const std::string& name, const DomainInfo& info,
                                                   bool live);
  Result<ClonePlan> PlanClone(const CloneRequest& request);
  void RunClone(std::shared_ptr<RunningJob> job);
  void RunFlatten(std::shared_ptr<RunningJob> job);
  JobRow RunningRow(int64_t id);
  // The job's end on the job lists (its thread returns after).
  void EndJob(const RunningJob& job, const JobRow& row);
  Status MakeOverlays(const ClonePlan& plan);
  Status DefineClone(const ClonePlan& plan, int64_t backing_snapshot);
  Status RebaseRunning(RunningJob& job, int64_t vm_id, JobRow& row);
  Status SwitchDefinition(int64_t vm_id, const std::map<std::string, DiskSpec>& disks);
  bool RunsOn(const DomainRef& vm, const std::string& target, const std::string& file);
  // The disks libvirt's definition of the domain names: as it runs (live)
  // or for its next start.
  Result<std::vector<DiskSpec>> LibvirtDisks(const DomainRef& vm, bool live);
  Status SourcesFromSnapshot(RunningJob& job, const std::string& snapshot);
  // Removes those of `candidates` (files jobs made for the VM) that no
  // definition or snapshot in the store uses (disk chains, NVRAM, ...) and
  // that libvirt's definitions of the VM (running, next start) do not name.
  void RemoveUnused(int64_t vm_id, const std::vector<std::string>& candidates);
  // Reserves the base and top files of each disk for RebaseRunning.
  Status ReserveRebase(const PoolFs& fs, ClonePlan& plan);
  void Progress(RunningJob& job, JobRow& row, uint64_t done, uint64_t total, std::chrono::steady_clock::time_point* last_write);
  // Clears the VM's backing snapshot once none of its disks' chains reads
  // a file of the snapshot's chains.
  bool ClearBackingIfStandalone(int64_t vm_id);
  std::string LinkedWhy(const VmRow& clone);
  std::string ClonesBackedBy(int64_t snapshot_id);
  // The queued or running job making the VM (a clone) or, standalone_only,
  // making it standalone (an instant clone's copy and switch, a flatten):
  // its disks and definition are the job's until it ends, so snapshots,
  // clones of its current state and edits wait.
  std::optional<int64_t> JobMaking(int64_t vm_id, bool standalone_only);
  Status RefuseWhileMadeStandalone(const VmRow& vm, const char* what);
  // into_base: each disk's chain into its `base`, not its `output`.
  Status CopyDisks(RunningJob& job, const ClonePlan& plan, JobRow& row, bool into_base = false);
  // Runs copy(i, done) for each disk on its own thread, with the job's progress.
  Status CopyAll(RunningJob& job, JobRow& row, const std::vector<uint64_t>& allocated,
                 const std::function<Status(size_t, std::atomic<uint64_t>&)>& copy);
  // A VM on another host: each disk collapsed there (remote_source.h).
  Status CopyDisksFromHost(RunningJob& job, const ClonePlan& plan, JobRow& row);
  // How a disk's chain on the source's host is read there.
  RemoteChain ChainOn(const ClonePlan& plan, const DiskPlan& dp);
  // keep_clone: the clone was defined (an instant clone whose flatten
  // failed, a flatten): the job's error says so and nothing is removed.
  void FinishJob(JobRow& row, const ClonePlan& plan, const Status& status, bool keep_clone = false);
  // The guest items on the clone's new images, and the TPM's state: the
  // report's lines (with the plan's host lines) go on the job.
  Status Generalize(RunningJob& job, JobRow& row);
  // Forgets what this service keeps of a host: its libvirt connection
  // (another host's closes in the background), its last answer, the hosts
  // list's cache.
  void ForgetWhatIsKnownOf(const std::string& host);
  // The source started again when it is owed a restart (a job shut it
  // down) and no other job holding its power remains. caller_listed: the
  // caller is a job still in running_ (not one cancelled in the queue).
  void RestartSourceIfLast(const ClonePlan& plan, bool shut_down_by_job, bool caller_listed = true);
  std::string UniqueName(const std::string& ns, const std::string& base);

  ManagerOptions options_;
  std::unique_ptr<Store> store_;
  std::shared_ptr<Hypervisor> hv_;

  std::mutex jobs_mu_;
  std::map<int64_t, std::shared_ptr<RunningJob>> running_;  // queued and running
  std::deque<std::shared_ptr<RunningJob>> queue_;           // waiting for a copy slot
  int copying_ = 0;                                          // jobs with a thread
  std::map<int64_t, std::thread> threads_;  // every clone thread not yet joined
  std::vector<int64_t> ended_;              // jobs whose thread is past EndJob (never takes jobs_mu_ again)
  // Held while a job reads a source's power state and while the last job
  // decides on and does the restart, so neither sees the other half done.
  std::mutex source_power_mu_;
  // Sources that a clone shut down (under source_power_mu_): started again
  // when the last clone of them ends, not the first (a later clone may
  // still be reading its top).
  std::set<int64_t> restart_owed_;
  std::mutex plan_mu_;  // one clone planned at a time: names and paths stay unique

  EventFeed events_;
  std::mutex registry_mu_;  // one change of hosts and pools at a time
  static constexpr std::chrono::seconds kHostsFresh{10};
  std::mutex hosts_mu_;  // one round of asking the hosts at a time
  std::optional<std::vector<HostView>> hosts_cache_;
  std::chrono::steady_clock::time_point hosts_cache_time_;
  std::mutex remote_hv_mu_;
  std::map<std::string, std::shared_ptr<Hypervisor>> remote_hv_;  // by host name
  std::mutex answers_mu_;  // one probe at a time
  std::map<std::string, std::pair<std::chrono::steady_clock::time_point, bool>> answers_;  // host: when, answered
  // The retries of pending removals on other hosts.
  static constexpr std::chrono::seconds kCleanupRetry{15};
  std::mutex janitor_mu_;
  std::condition_variable janitor_cv_;
  bool janitor_stop_ = false;
  std::thread janitor_;
};

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_MANAGER_H_
