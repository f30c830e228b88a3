// Store: the manager's state (pools, VMs, snapshots, jobs) as typed rows,
// over one SqlDatabase: a SQLite file (the default) or PostgreSQL (shared
// by an active and a standby service). The queries and the migration
// history are written once, here, for both (sql_database.h).
//
// This service is the database's one writer for the store's lifetime (the
// SQLite file's flock, PostgreSQL's advisory lock): recovery may take every
// job left running as interrupted.
//
// Thread-safety: every call takes the store's mutex; Write's fn runs under
// it, so a transaction is never interleaved with another thread's calls.
// Lifetime: owns the connection; the Manager owns the store.
#ifndef CLONEKIT_MANAGER_STORE_H_
#define CLONEKIT_MANAGER_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "clonekit/status.h"
#include "generalize.h"
#include "postgres_database.h"
#include "sql_database.h"

namespace clonekit::manager {

// A directory clones are written to, on one host or shared by several (the
// same path on each, e.g. an NFS mount): hosts names them ("local" is the
// service's own).
struct Pool {
  std::string name;
  std::string dir;
  std::vector<std::string> hosts = {"local"};
  bool OnHost(const std::string& host) const {
    for (const std::string& h : hosts) {
      if (h == host) return true;
    }
    return false;
  }
};

// Another hypervisor host, by its libvirt URI (host_uri.h says which).
struct HostRow {
  std::string name, uri;
  std::string ssh;  // USER@HOST[:PORT] for its pools ("" = the URI's, for qemu+ssh)
  std::string created;
};

// A VM entry: defined (its disks exist), or still being made by a clone.
enum class VmStatus { kDefined, kCloning };

struct VmRow {
  int64_t id = 0;
  std::string uuid, name, ns, description;
  VmStatus status = VmStatus::kDefined;
  std::string xml;
  std::string created;
  // An instant clone until it is flattened, or a linked clone: its disks
  // are overlays whose backing files are this snapshot's points (0: none,
  // its disks stand alone).
  int64_t backing_snapshot = 0;
  // The host whose libvirt defines it and holds its disks ("local": the
  // service's own --hypervisor).
  std::string host = "local";
};

// A clone job waits (queued) for a copy slot, runs, and ends one way.
enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };
const char* JobStateName(JobState s);
inline bool Active(JobState s) { return s == JobState::kQueued || s == JobState::kRunning; }

// What a job makes. A full clone copies the chain into standalone images
// first and defines the clone after. An instant clone defines and starts
// the clone at once on overlays backed by the snapshot's points, then
// flattens them while it runs. A linked clone stays on such overlays. A
// flatten job makes an existing linked clone standalone.
enum class JobMode { kFull, kInstant, kLinked, kFlatten };
const char* JobModeName(JobMode m);

// What a snapshot's disks hold of the guest's writes.
enum class Consistency {
  kOffline,      // taken while the VM was off
  kCrash,        // live, no guest agent: as after a power cut, all disks at one instant
  kApplication,  // live, file systems frozen by the guest agent around the instant
};
const char* ConsistencyName(Consistency c);

struct SnapshotRow {
  int64_t id = 0;
  int64_t vm_id = 0;
  std::string name, xml, created;
  Consistency consistency = Consistency::kOffline;
};

struct JobRow {
  int64_t id = 0;
  int64_t source_vm = 0;  // 0 once the source is gone
  int64_t clone_vm = 0;   // 0 once the clone entry is removed
  std::string clone_name, snapshot;
  JobState state = JobState::kQueued;
  uint64_t done_bytes = 0, total_bytes = 0;
  double percent = 0;
  std::string error;
  std::string error_kind;  // the failed Status's kind (api_json's ErrorKind), "" otherwise
  // Every file the job made (reserved O_EXCL at plan time: the clone's
  // images and NVRAM): all it may remove.
  std::vector<std::string> outputs;
  bool source_was_running = false;  // and shut down by the job (it restarts it)
  bool live = false;           // asked to keep a running source running
  bool took_snapshot = false;  // ... and took the live snapshot `snapshot` for it
  JobMode mode = JobMode::kFull;
  // "vda=/pool/x-vda-top.qcow2" from just before a running disk may be
  // switched to its new top until the definition names it: what recovery
  // must not guess about if the service dies in between.
  std::string switching;
  int64_t owner_pid = 0;
  std::string created, finished;
  // What was asked to make the clone a new machine, and what was changed.
  GeneralizeItems generalize = GeneralizeItems::Base();
  std::vector<IdentityChange> identity_changes;
  // The host the clone is made on: its outputs are files there. On another
  // host the job also has its own directories there (scratch: the partial
  // image, the export's key), and cleanup_pending says that the host did
  // not answer when they and the outputs were to be removed (retried).
  std::string host = "local";
  std::vector<std::string> scratch;
  bool cleanup_pending = false;
};

class Store {
 public:
  // db: a SQLite file, or a "postgresql://" URL (then Open returns once
  // this service is the active one; events say when it waits or loses it).
  [[nodiscard]] static Result<std::unique_ptr<Store>> Open(const std::string& db, RoleEvents events = {});

  // Runs fn inside one transaction (ROLLBACK if it fails); inside one
  // already, fn just runs.
  [[nodiscard]] Status Write(const std::function<Status()>& fn);

  // The database's engine ("sqlite", "postgresql") and what it names.
  const char* engine() const { return db_->engine(); }
  const std::string& name() const { return db_->name(); }

  Status AddPool(const Pool& pool);
  std::vector<Pool> Pools();
  Status RemovePool(const std::string& name);

  Status AddHost(const HostRow& host);
  std::vector<HostRow> Hosts();
  Status RemoveHost(const std::string& name);

  Result<int64_t> InsertVm(const VmRow& vm);
  Status UpdateVm(const VmRow& vm);
  Status DeleteVm(int64_t id);
  std::optional<VmRow> Vm(int64_t id);
  std::optional<VmRow> VmByName(const std::string& ns, const std::string& name);
  std::vector<VmRow> Vms();

  Result<int64_t> InsertSnapshot(const SnapshotRow& s);
  std::vector<SnapshotRow> Snapshots(int64_t vm_id);
  std::optional<SnapshotRow> Snapshot(int64_t vm_id, const std::string& name);
  std::optional<SnapshotRow> SnapshotById(int64_t id);
  Status DeleteSnapshot(int64_t id);
  // The VMs whose disks are overlays on this snapshot's points.
  std::vector<VmRow> VmsBackedBy(int64_t snapshot_id);

  // The reads above and below answer "none" when the database does not
  // answer; recovery, which removes files by what it reads, and a host's
  // forget, which removes rows by it, use these, which say so instead.
  [[nodiscard]] Result<std::vector<JobRow>> CheckedJobs();
  [[nodiscard]] Result<std::optional<VmRow>> CheckedVm(int64_t id);
  [[nodiscard]] Result<std::vector<VmRow>> CheckedVms();
  [[nodiscard]] Result<std::vector<Pool>> CheckedPools();

  Result<int64_t> InsertJob(const JobRow& job);
  Status UpdateJob(const JobRow& job);
  std::optional<JobRow> Job(int64_t id);
  std::vector<JobRow> Jobs();

  // "ok" when the database is sound.
  std::string IntegrityCheck();

 private:
  explicit Store(std::unique_ptr<SqlDatabase> db) : db_(std::move(db)) {}
  Status Migrate();
  // The statement's rows; an error says what was being done.
  Result<std::vector<SqlRow>> Query(const std::string& what, const std::string& sql, const std::vector<SqlParam>& params);
  // A statement whose rows do not matter.
  Status Run(const std::string& what, const std::string& sql, const std::vector<SqlParam>& params);

  std::recursive_mutex mu_;
  std::unique_ptr<SqlDatabase> db_;
};

std::string NowUtc();

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_STORE_H_
