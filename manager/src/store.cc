#include "store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>

namespace clonekit::manager {

namespace {

// Schema versions, applied in order; user_version says how many ran.
const char* const kMigrations[] = {
    R"sql(
    CREATE TABLE pools(name TEXT PRIMARY KEY, dir TEXT NOT NULL UNIQUE);
    CREATE TABLE vms(
      id INTEGER PRIMARY KEY,
      uuid TEXT NOT NULL UNIQUE,
      name TEXT NOT NULL,
      namespace TEXT NOT NULL,
      description TEXT NOT NULL DEFAULT '',
      status TEXT NOT NULL CHECK (status IN ('defined', 'cloning')),
      xml TEXT NOT NULL,
      created TEXT NOT NULL,
      UNIQUE(namespace, name));
    CREATE TABLE snapshots(
      id INTEGER PRIMARY KEY,
      vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
      name TEXT NOT NULL,
      xml TEXT NOT NULL,
      created TEXT NOT NULL,
      UNIQUE(vm_id, name));
    CREATE TABLE jobs(
      id INTEGER PRIMARY KEY,
      source_vm INTEGER REFERENCES vms(id) ON DELETE SET NULL,
      clone_vm INTEGER REFERENCES vms(id) ON DELETE SET NULL,
      clone_name TEXT NOT NULL,
      snapshot TEXT NOT NULL DEFAULT '',
      state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
      done_bytes INTEGER NOT NULL DEFAULT 0,
      total_bytes INTEGER NOT NULL DEFAULT 0,
      percent REAL NOT NULL DEFAULT 0,
      error TEXT NOT NULL DEFAULT '',
      outputs TEXT NOT NULL DEFAULT '[]',
      source_was_running INTEGER NOT NULL DEFAULT 0,
      owner_pid INTEGER NOT NULL DEFAULT 0,
      created TEXT NOT NULL,
      finished TEXT NOT NULL DEFAULT '');
    CREATE INDEX jobs_by_source ON jobs(source_vm, state);
    )sql",
    // 2: queued jobs (admission control) and the error's kind.
    R"sql(
    CREATE TABLE jobs2(
      id INTEGER PRIMARY KEY,
      source_vm INTEGER REFERENCES vms(id) ON DELETE SET NULL,
      clone_vm INTEGER REFERENCES vms(id) ON DELETE SET NULL,
      clone_name TEXT NOT NULL,
      snapshot TEXT NOT NULL DEFAULT '',
      state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
      done_bytes INTEGER NOT NULL DEFAULT 0,
      total_bytes INTEGER NOT NULL DEFAULT 0,
      percent REAL NOT NULL DEFAULT 0,
      error TEXT NOT NULL DEFAULT '',
      outputs TEXT NOT NULL DEFAULT '[]',
      source_was_running INTEGER NOT NULL DEFAULT 0,
      owner_pid INTEGER NOT NULL DEFAULT 0,
      created TEXT NOT NULL,
      finished TEXT NOT NULL DEFAULT '',
      error_kind TEXT NOT NULL DEFAULT '');
    INSERT INTO jobs2(id, source_vm, clone_vm, clone_name, snapshot, state, done_bytes, total_bytes, percent, error,
                      outputs, source_was_running, owner_pid, created, finished)
      SELECT id, source_vm, clone_vm, clone_name, snapshot, state, done_bytes, total_bytes, percent, error,
             outputs, source_was_running, owner_pid, created, finished FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs2 RENAME TO jobs;
    CREATE INDEX jobs_by_source ON jobs(source_vm, state);
    )sql",
    // 3: live snapshots say how consistent they are; a live clone takes one.
    R"sql(
    ALTER TABLE snapshots ADD COLUMN consistency TEXT NOT NULL DEFAULT 'offline'
      CHECK (consistency IN ('offline', 'crash', 'application'));
    ALTER TABLE jobs ADD COLUMN live INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN took_snapshot INTEGER NOT NULL DEFAULT 0;
    )sql",
    // 4: instant and linked clones, whose disks are overlays backed by a
    // snapshot's points: the snapshot cannot go while one depends on it
    // (the manager says which; the key refuses it even if it did not).
    R"sql(
    ALTER TABLE vms ADD COLUMN backing_snapshot INTEGER REFERENCES snapshots(id);
    ALTER TABLE jobs ADD COLUMN mode TEXT NOT NULL DEFAULT 'full'
      CHECK (mode IN ('full', 'instant', 'linked', 'flatten'));
    ALTER TABLE jobs ADD COLUMN switching TEXT NOT NULL DEFAULT '';
    )sql",
    // 5: what made a clone a new machine: the items asked (earlier clones
    // only got new MACs) and the report of each change.
    R"sql(
    ALTER TABLE jobs ADD COLUMN generalize TEXT NOT NULL DEFAULT 'mac-addresses';
    ALTER TABLE jobs ADD COLUMN identity_changes TEXT NOT NULL DEFAULT '[]';
    )sql",
};

Consistency ConsistencyOf(const std::string& s) {
  for (Consistency c : {Consistency::kOffline, Consistency::kCrash, Consistency::kApplication}) {
    if (s == ConsistencyName(c)) return c;
  }
  return Consistency::kCrash;  // (the CHECK constraint keeps others out)
}

const char* VmStatusName(VmStatus s) { return s == VmStatus::kCloning ? "cloning" : "defined"; }
VmStatus VmStatusOf(const std::string& s) { return s == "cloning" ? VmStatus::kCloning : VmStatus::kDefined; }

JobState JobStateOf(const std::string& s) {
  for (JobState st : {JobState::kQueued, JobState::kRunning, JobState::kSucceeded, JobState::kFailed, JobState::kCancelled}) {
    if (s == JobStateName(st)) return st;
  }
  return JobState::kFailed;
}

JobMode JobModeOf(const std::string& s) {
  for (JobMode m : {JobMode::kFull, JobMode::kInstant, JobMode::kLinked, JobMode::kFlatten}) {
    if (s == JobModeName(m)) return m;
  }
  return JobMode::kFull;  // (the CHECK constraint keeps others out)
}

// The outputs column: a JSON list of paths (the database is an edge too).
std::string EncodeList(const std::vector<std::string>& list) { return nlohmann::json(list).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }
// The identity_changes column: a JSON list of {item, disk, path, change}.
std::string EncodeChanges(const std::vector<IdentityChange>& changes) {
  nlohmann::json out = nlohmann::json::array();
  for (const IdentityChange& c : changes) {
    out.push_back({{"item", GeneralizeItemName(c.item)}, {"disk", c.disk}, {"path", c.path}, {"change", c.change}});
  }
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
std::vector<IdentityChange> DecodeChanges(const std::string& text) {
  std::vector<IdentityChange> out;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& c : j) {
    if (!c.is_object()) continue;
    auto text = [&](const char* key) {
      auto it = c.find(key);
      return it != c.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::optional<GeneralizeItem> item = GeneralizeItemOf(text("item"));
    if (item) out.push_back({*item, text("disk"), text("path"), text("change")});
  }
  return out;
}

std::vector<std::string> DecodeList(const std::string& text) {
  std::vector<std::string> out;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

// A prepared statement bound positionally; finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
  ~Stmt() { sqlite3_finalize(st_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(const std::string& v) {
    sqlite3_bind_text(st_, ++n_, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int64_t v) {
    sqlite3_bind_int64(st_, ++n_, v);
    return *this;
  }
  Stmt& Bind(double v) {
    sqlite3_bind_double(st_, ++n_, v);
    return *this;
  }
  Stmt& BindId(int64_t v) {  // 0 = NULL (no row)
    if (v) return Bind(v);
    sqlite3_bind_null(st_, ++n_);
    return *this;
  }
  int Step() { return rc_ = sqlite3_step(st_); }
  std::string Text(int col) const {
    const unsigned char* t = sqlite3_column_text(st_, col);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  int64_t Int(int col) const { return sqlite3_column_int64(st_, col); }
  double Real(int col) const { return sqlite3_column_double(st_, col); }

 private:
  sqlite3_stmt* st_ = nullptr;
  int rc_;
  int n_ = 0;
};

VmRow ReadVm(const Stmt& s) {
  VmRow v;
  v.id = s.Int(0);
  v.uuid = s.Text(1);
  v.name = s.Text(2);
  v.ns = s.Text(3);
  v.description = s.Text(4);
  v.status = VmStatusOf(s.Text(5));
  v.xml = s.Text(6);
  v.created = s.Text(7);
  v.backing_snapshot = s.Int(8);
  return v;
}

JobRow ReadJob(const Stmt& s) {
  JobRow j;
  j.id = s.Int(0);
  j.source_vm = s.Int(1);
  j.clone_vm = s.Int(2);
  j.clone_name = s.Text(3);
  j.snapshot = s.Text(4);
  j.state = JobStateOf(s.Text(5));
  j.done_bytes = static_cast<uint64_t>(s.Int(6));
  j.total_bytes = static_cast<uint64_t>(s.Int(7));
  j.percent = s.Real(8);
  j.error = s.Text(9);
  j.outputs = DecodeList(s.Text(10));
  j.source_was_running = s.Int(11) != 0;
  j.owner_pid = s.Int(12);
  j.created = s.Text(13);
  j.finished = s.Text(14);
  j.error_kind = s.Text(15);
  j.live = s.Int(16) != 0;
  j.took_snapshot = s.Int(17) != 0;
  j.mode = JobModeOf(s.Text(18));
  j.switching = s.Text(19);
  j.generalize = GeneralizeFromStore(s.Text(20));
  j.identity_changes = DecodeChanges(s.Text(21));
  return j;
}

constexpr const char* kVmColumns = "id, uuid, name, namespace, description, status, xml, created, backing_snapshot";
constexpr const char* kJobColumns =
    "id, source_vm, clone_vm, clone_name, snapshot, state, done_bytes, total_bytes, percent, error, "
    "outputs, source_was_running, owner_pid, created, finished, error_kind, live, took_snapshot, mode, switching, "
    "generalize, identity_changes";

}  // namespace

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kSucceeded: return "succeeded";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
  }
  return "failed";
}

const char* JobModeName(JobMode m) {
  switch (m) {
    case JobMode::kFull: return "full";
    case JobMode::kInstant: return "instant";
    case JobMode::kLinked: return "linked";
    case JobMode::kFlatten: return "flatten";
  }
  return "full";
}

const char* ConsistencyName(Consistency c) {
  switch (c) {
    case Consistency::kOffline: return "offline";
    case Consistency::kCrash: return "crash";
    case Consistency::kApplication: return "application";
  }
  return "crash";
}

std::string NowUtc() {
  std::time_t t = std::time(nullptr);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// One service per database file, for as long as it runs.
static Result<int> LockDatabase(const std::string& path) {
  const std::string lock_path = path + ".lock";
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError(lock_path, std::strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) return Status::Locked(path, "another clonekit service is using this database");
    return Status::IOError(lock_path, std::strerror(err));
  }
  return fd;
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  Result<int> lock_fd = LockDatabase(path);
  if (!lock_fd.ok()) return lock_fd.status();
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    close(*lock_fd);
    return Status::IOError(path, "cannot open the database: " + msg);
  }
  std::unique_ptr<Store> store(new Store(db, *lock_fd));
  store->path_ = path;
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    CLONEKIT_RETURN_IF_ERROR(store->Exec(pragma));
  }
  CLONEKIT_RETURN_IF_ERROR(store->Migrate());
  // The database holds every VM's definition: only the service reads it
  // (files made before this rule, or under a wide umask, are narrowed).
  for (const std::string& f : {path, path + "-wal", path + "-shm", path + ".lock"}) {
    if (chmod(f.c_str(), 0600) != 0 && errno != ENOENT) {
      return Status::FromErrno(f, "cannot make the database private (mode 0600)", errno);
    }
  }
  return store;
}

Store::~Store() {
  sqlite3_close(db_);
  close(lock_fd_);  // (the flock goes with it)
}

Status Store::Error(const std::string& what) const {
  return Status::IOError(path_, what + ": " + sqlite3_errmsg(db_));
}

Status Store::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::IOError(path_, msg);
  }
  return Status::OK();
}

Status Store::Migrate() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  int64_t have = 0;
  {  // finalized before the migrations run (an open statement locks the tables)
    Stmt v(db_, "PRAGMA user_version");
    v.Step();
    have = v.Int(0);
  }
  const int64_t want = sizeof kMigrations / sizeof kMigrations[0];
  if (have > want) {
    return Status::NotSupported(path_, "database schema version " + std::to_string(have) +
                                           " is newer than this clonekit (" + std::to_string(want) + ")");
  }
  for (int64_t i = have; i < want; i++) {
    CLONEKIT_RETURN_IF_ERROR(Write([&] {
      CLONEKIT_RETURN_IF_ERROR(Exec(kMigrations[i]));
      return Exec("PRAGMA user_version=" + std::to_string(i + 1));
    }));
  }
  return Status::OK();
}

Status Store::Write(const std::function<Status()>& fn) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (!sqlite3_get_autocommit(db_)) return fn();  // already inside a transaction
  CLONEKIT_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Status s = fn();
  if (!s.ok()) {
    Exec("ROLLBACK").IgnoreError();  // fn's error is the one to report
    return s;
  }
  s = Exec("COMMIT");
  if (!s.ok()) Exec("ROLLBACK").IgnoreError();  // the COMMIT's error is the one to report
  return s;
}

Status Store::AddPool(const Pool& pool) {
  return Write([&]() -> Status {
    Stmt s(db_, "INSERT INTO pools(name, dir) VALUES(?, ?)");
    s.Bind(pool.name).Bind(pool.dir);
    if (s.Step() != SQLITE_DONE) return Error("add pool '" + pool.name + "'");
    return Status::OK();
  });
}

Status Store::RemovePool(const std::string& name) {
  return Write([&]() -> Status {
    Stmt s(db_, "DELETE FROM pools WHERE name = ?");
    s.Bind(name);
    if (s.Step() != SQLITE_DONE) return Error("remove pool '" + name + "'");
    return Status::OK();
  });
}

std::vector<Pool> Store::Pools() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::vector<Pool> out;
  Stmt s(db_, "SELECT name, dir FROM pools ORDER BY name");
  while (s.Step() == SQLITE_ROW) out.push_back({s.Text(0), s.Text(1)});
  return out;
}

Result<int64_t> Store::InsertVm(const VmRow& vm) {
  int64_t id = 0;
  Status st = Write([&]() -> Status {
    Stmt s(db_, "INSERT INTO vms(uuid, name, namespace, description, status, xml, created, backing_snapshot) "
                "VALUES(?,?,?,?,?,?,?,?)");
    s.Bind(vm.uuid).Bind(vm.name).Bind(vm.ns).Bind(vm.description).Bind(std::string(VmStatusName(vm.status))).Bind(vm.xml).Bind(NowUtc())
        .BindId(vm.backing_snapshot);
    if (s.Step() != SQLITE_DONE) return Error("add VM '" + vm.name + "'");
    id = sqlite3_last_insert_rowid(db_);
    return Status::OK();
  });
  if (!st.ok()) return st;
  return id;
}

Status Store::UpdateVm(const VmRow& vm) {
  return Write([&]() -> Status {
    Stmt s(db_, "UPDATE vms SET uuid=?, name=?, namespace=?, description=?, status=?, xml=?, backing_snapshot=? WHERE id=?");
    s.Bind(vm.uuid).Bind(vm.name).Bind(vm.ns).Bind(vm.description).Bind(std::string(VmStatusName(vm.status))).Bind(vm.xml)
        .BindId(vm.backing_snapshot).Bind(vm.id);
    if (s.Step() != SQLITE_DONE) return Error("update VM '" + vm.name + "'");
    return Status::OK();
  });
}

Status Store::DeleteVm(int64_t id) {
  return Write([&]() -> Status {
    Stmt s(db_, "DELETE FROM vms WHERE id=?");
    s.Bind(id);
    if (s.Step() != SQLITE_DONE) return Error("delete VM " + std::to_string(id));
    return Status::OK();
  });
}

std::optional<VmRow> Store::Vm(int64_t id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Stmt s(db_, (std::string("SELECT ") + kVmColumns + " FROM vms WHERE id=?").c_str());
  s.Bind(id);
  if (s.Step() != SQLITE_ROW) return std::nullopt;
  return ReadVm(s);
}

std::optional<VmRow> Store::VmByName(const std::string& ns, const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Stmt s(db_, (std::string("SELECT ") + kVmColumns + " FROM vms WHERE namespace=? AND name=?").c_str());
  s.Bind(ns).Bind(name);
  if (s.Step() != SQLITE_ROW) return std::nullopt;
  return ReadVm(s);
}

std::vector<VmRow> Store::Vms() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::vector<VmRow> out;
  Stmt s(db_, (std::string("SELECT ") + kVmColumns + " FROM vms ORDER BY namespace, name").c_str());
  while (s.Step() == SQLITE_ROW) out.push_back(ReadVm(s));
  return out;
}

Result<int64_t> Store::InsertSnapshot(const SnapshotRow& snap) {
  int64_t id = 0;
  Status st = Write([&]() -> Status {
    Stmt s(db_, "INSERT INTO snapshots(vm_id, name, xml, created, consistency) VALUES(?,?,?,?,?)");
    s.Bind(snap.vm_id).Bind(snap.name).Bind(snap.xml).Bind(NowUtc()).Bind(std::string(ConsistencyName(snap.consistency)));
    if (s.Step() != SQLITE_DONE) return Error("add snapshot '" + snap.name + "'");
    id = sqlite3_last_insert_rowid(db_);
    return Status::OK();
  });
  if (!st.ok()) return st;
  return id;
}

std::vector<SnapshotRow> Store::Snapshots(int64_t vm_id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::vector<SnapshotRow> out;
  Stmt s(db_, "SELECT id, vm_id, name, xml, created, consistency FROM snapshots WHERE vm_id=? ORDER BY id");
  s.Bind(vm_id);
  while (s.Step() == SQLITE_ROW) {
    out.push_back({s.Int(0), s.Int(1), s.Text(2), s.Text(3), s.Text(4), ConsistencyOf(s.Text(5))});
  }
  return out;
}

std::optional<SnapshotRow> Store::Snapshot(int64_t vm_id, const std::string& name) {
  for (SnapshotRow& s : Snapshots(vm_id)) {
    if (s.name == name) return s;
  }
  return std::nullopt;
}

std::optional<SnapshotRow> Store::SnapshotById(int64_t id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Stmt s(db_, "SELECT id, vm_id, name, xml, created, consistency FROM snapshots WHERE id=?");
  s.Bind(id);
  if (s.Step() != SQLITE_ROW) return std::nullopt;
  return SnapshotRow{s.Int(0), s.Int(1), s.Text(2), s.Text(3), s.Text(4), ConsistencyOf(s.Text(5))};
}

Status Store::DeleteSnapshot(int64_t id) {
  return Write([&]() -> Status {
    Stmt s(db_, "DELETE FROM snapshots WHERE id=?");
    s.Bind(id);
    if (s.Step() != SQLITE_DONE) return Error("delete snapshot " + std::to_string(id));
    return Status::OK();
  });
}

std::vector<VmRow> Store::VmsBackedBy(int64_t snapshot_id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::vector<VmRow> out;
  Stmt s(db_, (std::string("SELECT ") + kVmColumns + " FROM vms WHERE backing_snapshot=? ORDER BY id").c_str());
  s.Bind(snapshot_id);
  while (s.Step() == SQLITE_ROW) out.push_back(ReadVm(s));
  return out;
}

Result<int64_t> Store::InsertJob(const JobRow& job) {
  int64_t id = 0;
  Status st = Write([&]() -> Status {
    Stmt s(db_,
           "INSERT INTO jobs(source_vm, clone_vm, clone_name, snapshot, state, outputs, source_was_running, "
           "owner_pid, created, live, mode, generalize) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    s.BindId(job.source_vm).BindId(job.clone_vm).Bind(job.clone_name).Bind(job.snapshot).Bind(std::string(JobStateName(job.state)))
        .Bind(EncodeList(job.outputs)).Bind(int64_t{job.source_was_running}).Bind(job.owner_pid).Bind(NowUtc())
        .Bind(int64_t{job.live}).Bind(std::string(JobModeName(job.mode))).Bind(job.generalize.ToString());
    if (s.Step() != SQLITE_DONE) return Error("add job");
    id = sqlite3_last_insert_rowid(db_);
    return Status::OK();
  });
  if (!st.ok()) return st;
  return id;
}

Status Store::UpdateJob(const JobRow& job) {
  return Write([&]() -> Status {
    Stmt s(db_,
           "UPDATE jobs SET source_vm=?, clone_vm=?, state=?, done_bytes=?, total_bytes=?, percent=?, error=?, "
           "outputs=?, source_was_running=?, finished=?, error_kind=?, snapshot=?, took_snapshot=?, switching=?, identity_changes=? WHERE id=?");
    s.BindId(job.source_vm).BindId(job.clone_vm).Bind(std::string(JobStateName(job.state)))
        .Bind(static_cast<int64_t>(job.done_bytes)).Bind(static_cast<int64_t>(job.total_bytes)).Bind(job.percent)
        .Bind(job.error).Bind(EncodeList(job.outputs)).Bind(int64_t{job.source_was_running}).Bind(job.finished)
        .Bind(job.error_kind).Bind(job.snapshot).Bind(int64_t{job.took_snapshot}).Bind(job.switching)
        .Bind(EncodeChanges(job.identity_changes)).Bind(job.id);
    if (s.Step() != SQLITE_DONE) return Error("update job " + std::to_string(job.id));
    return Status::OK();
  });
}

std::optional<JobRow> Store::Job(int64_t id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Stmt s(db_, (std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id=?").c_str());
  s.Bind(id);
  if (s.Step() != SQLITE_ROW) return std::nullopt;
  return ReadJob(s);
}

std::vector<JobRow> Store::Jobs() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::vector<JobRow> out;
  Stmt s(db_, (std::string("SELECT ") + kJobColumns + " FROM jobs ORDER BY id").c_str());
  while (s.Step() == SQLITE_ROW) out.push_back(ReadJob(s));
  return out;
}

std::string Store::IntegrityCheck() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Stmt s(db_, "PRAGMA integrity_check");
  return s.Step() == SQLITE_ROW ? s.Text(0) : "failed to run";
}

}  // namespace clonekit::manager
