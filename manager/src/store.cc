#include "store.h"

#include <algorithm>
#include <ctime>

#include <nlohmann/json.hpp>

#include "sqlite_database.h"

namespace clonekit::manager {

namespace {

// Schema versions, applied in order; user_version says how many ran.
const char* const kMigrations[] = {
    R"sql(
    CREATE TABLE pools(name TEXT PRIMARY KEY, dir TEXT NOT NULL UNIQUE);
    CREATE TABLE vms(
      id {ID},
      uuid TEXT NOT NULL UNIQUE,
      name TEXT NOT NULL,
      namespace TEXT NOT NULL,
      description TEXT NOT NULL DEFAULT '',
      status TEXT NOT NULL CHECK (status IN ('defined', 'cloning')),
      xml TEXT NOT NULL,
      created TEXT NOT NULL,
      UNIQUE(namespace, name));
    CREATE TABLE snapshots(
      id {ID},
      vm_id {INT} NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
      name TEXT NOT NULL,
      xml TEXT NOT NULL,
      created TEXT NOT NULL,
      UNIQUE(vm_id, name));
    CREATE TABLE jobs(
      id {ID},
      source_vm {INT} REFERENCES vms(id) ON DELETE SET NULL,
      clone_vm {INT} REFERENCES vms(id) ON DELETE SET NULL,
      clone_name TEXT NOT NULL,
      snapshot TEXT NOT NULL DEFAULT '',
      state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
      done_bytes {INT} NOT NULL DEFAULT 0,
      total_bytes {INT} NOT NULL DEFAULT 0,
      percent {REAL} NOT NULL DEFAULT 0,
      error TEXT NOT NULL DEFAULT '',
      outputs TEXT NOT NULL DEFAULT '[]',
      source_was_running {INT} NOT NULL DEFAULT 0,
      owner_pid {INT} NOT NULL DEFAULT 0,
      created TEXT NOT NULL,
      finished TEXT NOT NULL DEFAULT '');
    CREATE INDEX jobs_by_source ON jobs(source_vm, state);
    )sql",
    // 2: queued jobs (admission control) and the error's kind.
    R"sql(
    CREATE TABLE jobs2(
      id {ID},
      source_vm {INT} REFERENCES vms(id) ON DELETE SET NULL,
      clone_vm {INT} REFERENCES vms(id) ON DELETE SET NULL,
      clone_name TEXT NOT NULL,
      snapshot TEXT NOT NULL DEFAULT '',
      state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
      done_bytes {INT} NOT NULL DEFAULT 0,
      total_bytes {INT} NOT NULL DEFAULT 0,
      percent {REAL} NOT NULL DEFAULT 0,
      error TEXT NOT NULL DEFAULT '',
      outputs TEXT NOT NULL DEFAULT '[]',
      source_was_running {INT} NOT NULL DEFAULT 0,
      owner_pid {INT} NOT NULL DEFAULT 0,
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
    ALTER TABLE jobs ADD COLUMN live {INT} NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN took_snapshot {INT} NOT NULL DEFAULT 0;
    )sql",
    // 4: instant and linked clones, whose disks are overlays backed by a
    // snapshot's points: the snapshot cannot go while one depends on it
    // (the manager says which; the key refuses it even if it did not).
    R"sql(
    ALTER TABLE vms ADD COLUMN backing_snapshot {INT} REFERENCES snapshots(id);
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
    // 6: other hypervisor hosts, by their libvirt URI (the service's own
    // --hypervisor is the implicit host 'local', not a row), and the
    // address their pools are reached at over SSH. A pool is on one host
    // or shared by several (a JSON list of names), so a directory is no
    // longer unique by itself (the manager checks overlaps per host).
    R"sql(
    CREATE TABLE hosts(
      name TEXT PRIMARY KEY,
      uri TEXT NOT NULL UNIQUE,
      ssh TEXT NOT NULL DEFAULT '',
      created TEXT NOT NULL);
    CREATE TABLE pools2(name TEXT PRIMARY KEY, dir TEXT NOT NULL, hosts TEXT NOT NULL DEFAULT '["local"]');
    INSERT INTO pools2(name, dir) SELECT name, dir FROM pools;
    DROP TABLE pools;
    ALTER TABLE pools2 RENAME TO pools;
    )sql",
    // 7: VMs on hosts. A VM is on the host whose libvirt defines it; a job
    // makes its clone on its host, where `outputs` are, with its own
    // directories there (`scratch`, another host only); a job whose files
    // could not be removed there yet (the host did not answer) says so
    // until they are (cleanup_pending).
    R"sql(
    ALTER TABLE vms ADD COLUMN host TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE jobs ADD COLUMN host TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE jobs ADD COLUMN scratch TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN cleanup_pending {INT} NOT NULL DEFAULT 0;
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

VmRow ReadVm(const SqlRow& s) {
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
  v.host = s.Text(9);
  return v;
}

JobRow ReadJob(const SqlRow& s) {
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
  j.host = s.Text(22);
  j.scratch = DecodeList(s.Text(23));
  j.cleanup_pending = s.Int(24) != 0;
  return j;
}

constexpr const char* kVmColumns = "id, uuid, name, namespace, description, status, xml, created, backing_snapshot, host";
constexpr const char* kJobColumns =
    "id, source_vm, clone_vm, clone_name, snapshot, state, done_bytes, total_bytes, percent, error, "
    "outputs, source_was_running, owner_pid, created, finished, error_kind, live, took_snapshot, mode, switching, "
    "generalize, identity_changes, host, scratch, cleanup_pending";

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

Result<std::unique_ptr<Store>> Store::Open(const std::string& db, RoleEvents events) {
  Result<std::unique_ptr<SqlDatabase>> conn =
      PostgresDatabase::IsUrl(db) ? PostgresDatabase::Open(db, std::move(events)) : SqliteDatabase::Open(db);
  if (!conn.ok()) return conn.status();
  std::unique_ptr<Store> store(new Store(std::move(conn).value()));
  CLONEKIT_RETURN_IF_ERROR(store->Migrate());
  return store;
}

Result<std::vector<SqlRow>> Store::Query(const std::string& what, const std::string& sql,
                                         const std::vector<SqlParam>& params) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Result<std::vector<SqlRow>> rows = db_->Query(sql, params);
  if (!rows.ok()) return Status::IOError(db_->name(), what + ": " + rows.status().message());
  return rows;
}

Status Store::Run(const std::string& what, const std::string& sql, const std::vector<SqlParam>& params) {
  return Query(what, sql, params).status();
}

Status Store::Migrate() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Result<int64_t> have = db_->SchemaVersion();
  if (!have.ok()) return have.status();
  const int64_t want = sizeof kMigrations / sizeof kMigrations[0];
  if (*have > want) {
    return Status::NotSupported(db_->name(), "database schema version " + std::to_string(*have) +
                                                 " is newer than this clonekit (" + std::to_string(want) + ")");
  }
  for (int64_t i = *have; i < want; i++) {
    CLONEKIT_RETURN_IF_ERROR(Write([&] {
      CLONEKIT_RETURN_IF_ERROR(db_->Exec(db_->Schema(kMigrations[i])));
      return db_->SetSchemaVersion(i + 1);
    }));
  }
  return Status::OK();
}

Status Store::Write(const std::function<Status()>& fn) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (db_->InTransaction()) return fn();
  CLONEKIT_RETURN_IF_ERROR(db_->Begin());
  Status s = fn();
  if (!s.ok()) {
    db_->Rollback().IgnoreError();  // fn's error is the one to report
    return s;
  }
  s = db_->Commit();
  if (!s.ok()) db_->Rollback().IgnoreError();  // the COMMIT's error is the one to report
  return s;
}

Status Store::AddPool(const Pool& pool) {
  return Write([&] {
    return Run("add pool '" + pool.name + "'", "INSERT INTO pools(name, dir, hosts) VALUES(?, ?, ?)",
               {pool.name, pool.dir, EncodeList(pool.hosts)});
  });
}

Status Store::RemovePool(const std::string& name) {
  return Write([&] { return Run("remove pool '" + name + "'", "DELETE FROM pools WHERE name = ?", {name}); });
}

Status Store::AddHost(const HostRow& host) {
  return Write([&] {
    return Run("add host '" + host.name + "'", "INSERT INTO hosts(name, uri, ssh, created) VALUES(?, ?, ?, ?)",
               {host.name, host.uri, host.ssh, NowUtc()});
  });
}

Status Store::RemoveHost(const std::string& name) {
  return Write([&] { return Run("remove host '" + name + "'", "DELETE FROM hosts WHERE name = ?", {name}); });
}

std::vector<HostRow> Store::Hosts() {
  std::vector<HostRow> out;
  Result<std::vector<SqlRow>> rows = Query("list hosts", "SELECT name, uri, ssh, created FROM hosts", {});
  if (rows.ok()) {
    for (const SqlRow& r : *rows) out.push_back({r.Text(0), r.Text(1), r.Text(2), r.Text(3)});
  }
  std::sort(out.begin(), out.end(), [](const HostRow& a, const HostRow& b) { return a.name < b.name; });
  return out;
}

// Lists are sorted here, byte-wise, not by the database's collation (which
// differs between engines and PostgreSQL's locales).
std::vector<Pool> Store::Pools() {
  Result<std::vector<Pool>> pools = CheckedPools();
  return pools.ok() ? *pools : std::vector<Pool>();
}

Result<std::vector<Pool>> Store::CheckedPools() {
  Result<std::vector<SqlRow>> rows = Query("list pools", "SELECT name, dir, hosts FROM pools", {});
  if (!rows.ok()) return rows.status();
  std::vector<Pool> out;
  for (const SqlRow& r : *rows) out.push_back({r.Text(0), r.Text(1), DecodeList(r.Text(2))});
  std::sort(out.begin(), out.end(), [](const Pool& a, const Pool& b) { return a.name < b.name; });
  return out;
}

namespace {
// The key of an inserted row (INSERT ... RETURNING id).
Status InsertedId(int64_t* id, Result<std::vector<SqlRow>> rows) {
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return Status::IOError("", "the insert returned no key");
  *id = rows->front().Int(0);
  return Status::OK();
}
SqlParam IdOrNull(int64_t id) { return id ? SqlParam(id) : SqlParam(nullptr); }  // 0 = NULL (no row)
SqlParam Flag(bool b) { return int64_t{b}; }
}  // namespace

Result<int64_t> Store::InsertVm(const VmRow& vm) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  int64_t id = 0;
  CLONEKIT_RETURN_IF_ERROR(Write([&]() -> Status {
    return InsertedId(&id, Query("add VM '" + vm.name + "'",
                          "INSERT INTO vms(uuid, name, namespace, description, status, xml, created, backing_snapshot, host) "
                          "VALUES(?,?,?,?,?,?,?,?,?) RETURNING id",
                          {vm.uuid, vm.name, vm.ns, vm.description, std::string(VmStatusName(vm.status)), vm.xml,
                           NowUtc(), IdOrNull(vm.backing_snapshot), vm.host}));
  }));
  return id;
}

Status Store::UpdateVm(const VmRow& vm) {
  return Write([&] {
    return Run("update VM '" + vm.name + "'",
               "UPDATE vms SET uuid=?, name=?, namespace=?, description=?, status=?, xml=?, backing_snapshot=? WHERE id=?",
               {vm.uuid, vm.name, vm.ns, vm.description, std::string(VmStatusName(vm.status)), vm.xml,
                IdOrNull(vm.backing_snapshot), vm.id});
  });
}

Status Store::DeleteVm(int64_t id) {
  return Write([&] { return Run("delete VM " + std::to_string(id), "DELETE FROM vms WHERE id=?", {id}); });
}

std::optional<VmRow> Store::Vm(int64_t id) {
  Result<std::optional<VmRow>> vm = CheckedVm(id);
  return vm.ok() ? *vm : std::nullopt;
}

Result<std::optional<VmRow>> Store::CheckedVm(int64_t id) {
  Result<std::vector<SqlRow>> rows = Query("read VM", std::string("SELECT ") + kVmColumns + " FROM vms WHERE id=?", {id});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<VmRow>();
  return std::optional<VmRow>(ReadVm(rows->front()));
}

std::optional<VmRow> Store::VmByName(const std::string& ns, const std::string& name) {
  Result<std::vector<SqlRow>> rows =
      Query("read VM", std::string("SELECT ") + kVmColumns + " FROM vms WHERE namespace=? AND name=?", {ns, name});
  if (!rows.ok() || rows->empty()) return std::nullopt;
  return ReadVm(rows->front());
}

std::vector<VmRow> Store::Vms() {
  Result<std::vector<VmRow>> vms = CheckedVms();
  return vms.ok() ? *vms : std::vector<VmRow>();
}

Result<std::vector<VmRow>> Store::CheckedVms() {
  Result<std::vector<SqlRow>> rows = Query("list VMs", std::string("SELECT ") + kVmColumns + " FROM vms", {});
  if (!rows.ok()) return rows.status();
  std::vector<VmRow> out;
  for (const SqlRow& r : *rows) out.push_back(ReadVm(r));
  std::sort(out.begin(), out.end(), [](const VmRow& a, const VmRow& b) { return std::tie(a.ns, a.name) < std::tie(b.ns, b.name); });
  return out;
}

namespace {
constexpr const char* kSnapshotColumns = "id, vm_id, name, xml, created, consistency";
SnapshotRow ReadSnapshot(const SqlRow& r) {
  return {r.Int(0), r.Int(1), r.Text(2), r.Text(3), r.Text(4), ConsistencyOf(r.Text(5))};
}
}  // namespace

Result<int64_t> Store::InsertSnapshot(const SnapshotRow& snap) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  int64_t id = 0;
  CLONEKIT_RETURN_IF_ERROR(Write([&]() -> Status {
    return InsertedId(&id, Query("add snapshot '" + snap.name + "'",
                          "INSERT INTO snapshots(vm_id, name, xml, created, consistency) VALUES(?,?,?,?,?) RETURNING id",
                          {snap.vm_id, snap.name, snap.xml, NowUtc(), std::string(ConsistencyName(snap.consistency))}));
  }));
  return id;
}

std::vector<SnapshotRow> Store::Snapshots(int64_t vm_id) {
  std::vector<SnapshotRow> out;
  Result<std::vector<SqlRow>> rows =
      Query("list snapshots", std::string("SELECT ") + kSnapshotColumns + " FROM snapshots WHERE vm_id=? ORDER BY id", {vm_id});
  if (rows.ok()) {
    for (const SqlRow& r : *rows) out.push_back(ReadSnapshot(r));
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
  Result<std::vector<SqlRow>> rows =
      Query("read snapshot", std::string("SELECT ") + kSnapshotColumns + " FROM snapshots WHERE id=?", {id});
  if (!rows.ok() || rows->empty()) return std::nullopt;
  return ReadSnapshot(rows->front());
}

Status Store::DeleteSnapshot(int64_t id) {
  return Write([&] { return Run("delete snapshot " + std::to_string(id), "DELETE FROM snapshots WHERE id=?", {id}); });
}

std::vector<VmRow> Store::VmsBackedBy(int64_t snapshot_id) {
  std::vector<VmRow> out;
  Result<std::vector<SqlRow>> rows = Query(
      "list linked clones", std::string("SELECT ") + kVmColumns + " FROM vms WHERE backing_snapshot=? ORDER BY id", {snapshot_id});
  if (rows.ok()) {
    for (const SqlRow& r : *rows) out.push_back(ReadVm(r));
  }
  return out;
}

Result<int64_t> Store::InsertJob(const JobRow& job) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  int64_t id = 0;
  CLONEKIT_RETURN_IF_ERROR(Write([&]() -> Status {
    return InsertedId(&id, Query("add job",
                          "INSERT INTO jobs(source_vm, clone_vm, clone_name, snapshot, state, outputs, source_was_running, "
                          "owner_pid, created, live, mode, generalize, host, scratch) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                          {IdOrNull(job.source_vm), IdOrNull(job.clone_vm), job.clone_name, job.snapshot,
                           std::string(JobStateName(job.state)), EncodeList(job.outputs), Flag(job.source_was_running),
                           job.owner_pid, NowUtc(), Flag(job.live), std::string(JobModeName(job.mode)),
                           job.generalize.ToString(), job.host, EncodeList(job.scratch)}));
  }));
  return id;
}

Status Store::UpdateJob(const JobRow& job) {
  return Write([&] {
    return Run("update job " + std::to_string(job.id),
               "UPDATE jobs SET source_vm=?, clone_vm=?, state=?, done_bytes=?, total_bytes=?, percent=?, error=?, "
               "outputs=?, source_was_running=?, finished=?, error_kind=?, snapshot=?, took_snapshot=?, switching=?, "
               "identity_changes=?, scratch=?, cleanup_pending=? WHERE id=?",
               {IdOrNull(job.source_vm), IdOrNull(job.clone_vm), std::string(JobStateName(job.state)),
                static_cast<int64_t>(job.done_bytes), static_cast<int64_t>(job.total_bytes), job.percent, job.error,
                EncodeList(job.outputs), Flag(job.source_was_running), job.finished, job.error_kind, job.snapshot,
                Flag(job.took_snapshot), job.switching, EncodeChanges(job.identity_changes), EncodeList(job.scratch),
                Flag(job.cleanup_pending), job.id});
  });
}

std::optional<JobRow> Store::Job(int64_t id) {
  Result<std::vector<SqlRow>> rows = Query("read job", std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id=?", {id});
  if (!rows.ok() || rows->empty()) return std::nullopt;
  return ReadJob(rows->front());
}

std::vector<JobRow> Store::Jobs() {
  Result<std::vector<JobRow>> jobs = CheckedJobs();
  return jobs.ok() ? *jobs : std::vector<JobRow>();
}

Result<std::vector<JobRow>> Store::CheckedJobs() {
  Result<std::vector<SqlRow>> rows = Query("list jobs", std::string("SELECT ") + kJobColumns + " FROM jobs ORDER BY id", {});
  if (!rows.ok()) return rows.status();
  std::vector<JobRow> out;
  for (const SqlRow& r : *rows) out.push_back(ReadJob(r));
  return out;
}

std::string Store::IntegrityCheck() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return db_->IntegrityCheck();
}

}  // namespace clonekit::manager
