// Store: the manager's state in one SQLite file.
//
// One connection, owned by the service and guarded by a mutex: Debian 12's
// SQLite 3.40 has the WAL-reset bug (two connections writing or
// checkpointing at once may corrupt the database), so there is exactly one
// writer. Settings: WAL, synchronous=FULL (a finished job must survive a
// power cut), foreign_keys=ON, busy_timeout, and BEGIN IMMEDIATE for every
// write transaction. The schema is versioned with PRAGMA user_version.
// The single writer also holds across processes: the store takes an
// exclusive flock on "<db>.lock" for its lifetime, so a second service on
// the same file is refused (and recovery may take every job left running
// as interrupted).
#ifndef CLONEKIT_MANAGER_STORE_H_
#define CLONEKIT_MANAGER_STORE_H_

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "clonekit/status.h"
#include "generalize.h"

namespace clonekit::manager {

struct Pool {
  std::string name;
  std::string dir;
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
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();

  // Runs fn inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK if it fails).
  Status Write(const std::function<Status()>& fn);

  Status AddPool(const Pool& pool);
  std::vector<Pool> Pools();
  Status RemovePool(const std::string& name);

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

  Result<int64_t> InsertJob(const JobRow& job);
  Status UpdateJob(const JobRow& job);
  std::optional<JobRow> Job(int64_t id);
  std::vector<JobRow> Jobs();

  // "ok" when the database is sound.
  std::string IntegrityCheck();

 private:
  Store(sqlite3* db, int lock_fd) : db_(db), lock_fd_(lock_fd) {}
  Status Exec(const std::string& sql);
  Status Migrate();
  Status Error(const std::string& what) const;

  std::recursive_mutex mu_;
  sqlite3* db_;
  int lock_fd_;  // flock'ed "<db>.lock"
  std::string path_;
};

std::string NowUtc();

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_STORE_H_
