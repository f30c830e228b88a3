#include "sqlite_database.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace clonekit::manager {

namespace {

// One service per database file, for as long as it runs.
Result<UniqueFd> LockDatabase(const std::string& path) {
  const std::string lock_path = path + ".lock";
  UniqueFd fd(open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Status::IOError(lock_path, std::strerror(errno));
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Status::Locked(path, "another clonekit service is using this database");
    return Status::IOError(lock_path, std::strerror(errno));
  }
  return fd;
}

// A prepared statement; finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) { rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &st_, nullptr); }
  ~Statement() { sqlite3_finalize(st_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() const { return st_; }
  bool ok() const { return rc_ == SQLITE_OK; }

 private:
  sqlite3_stmt* st_ = nullptr;
  int rc_;
};

int Bind(sqlite3_stmt* st, int i, const SqlParam& p) {
  if (const auto* v = std::get_if<int64_t>(&p)) return sqlite3_bind_int64(st, i, *v);
  if (const auto* v = std::get_if<double>(&p)) return sqlite3_bind_double(st, i, *v);
  if (const auto* v = std::get_if<std::string>(&p)) {
    return sqlite3_bind_text(st, i, v->data(), static_cast<int>(v->size()), SQLITE_TRANSIENT);
  }
  return sqlite3_bind_null(st, i);
}

std::optional<std::string> Column(sqlite3_stmt* st, int col) {
  switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL: return std::nullopt;
    case SQLITE_INTEGER: return std::to_string(sqlite3_column_int64(st, col));
    case SQLITE_FLOAT: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", sqlite3_column_double(st, col));
      return std::string(buf);
    }
    default: {
      const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
      return std::string(t ? t : "", static_cast<size_t>(sqlite3_column_bytes(st, col)));
    }
  }
}

}  // namespace

Result<std::unique_ptr<SqlDatabase>> SqliteDatabase::Open(const std::string& path) {
  Result<UniqueFd> lock = LockDatabase(path);
  if (!lock.ok()) return lock.status();
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::IOError(path, "cannot open the database: " + msg);
  }
  std::unique_ptr<SqliteDatabase> out(new SqliteDatabase(db, std::move(lock).value(), path));
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    CLONEKIT_RETURN_IF_ERROR(out->Exec(pragma));
  }
  // The database holds every VM's definition: only the service reads it
  // (files made before this rule, or under a wide umask, are narrowed).
  for (const std::string& f : {path, path + "-wal", path + "-shm", path + ".lock"}) {
    if (chmod(f.c_str(), 0600) != 0 && errno != ENOENT) {
      return Status::FromErrno(f, "cannot make the database private (mode 0600)", errno);
    }
  }
  return std::unique_ptr<SqlDatabase>(std::move(out));
}

SqliteDatabase::~SqliteDatabase() { sqlite3_close(db_); }  // (the flock goes with lock_)

Status SqliteDatabase::Exec(const std::string& script) {
  char* err = nullptr;
  if (sqlite3_exec(db_, script.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return Status::IOError(path_, msg);
  }
  return Status::OK();
}

Result<std::vector<SqlRow>> SqliteDatabase::Query(const std::string& sql, const std::vector<SqlParam>& params) {
  Statement st(db_, sql);
  if (!st.ok()) return Status::IOError(path_, sqlite3_errmsg(db_));
  for (size_t i = 0; i < params.size(); i++) {
    if (Bind(st.get(), static_cast<int>(i + 1), params[i]) != SQLITE_OK) return Status::IOError(path_, sqlite3_errmsg(db_));
  }
  std::vector<SqlRow> rows;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    std::vector<std::optional<std::string>> values;
    for (int c = 0; c < sqlite3_column_count(st.get()); c++) values.push_back(Column(st.get(), c));
    rows.emplace_back(std::move(values));
  }
  if (rc != SQLITE_DONE) return Status::IOError(path_, sqlite3_errmsg(db_));
  return rows;
}

Result<int64_t> SqliteDatabase::SchemaVersion() {
  Result<std::vector<SqlRow>> rows = Query("PRAGMA user_version", {});
  if (!rows.ok()) return rows.status();
  return rows->empty() ? 0 : rows->front().Int(0);
}

Status SqliteDatabase::SetSchemaVersion(int64_t version) {
  return Exec("PRAGMA user_version=" + std::to_string(version));
}

std::string SqliteDatabase::Schema(const std::string& portable) const {
  return ExpandSchema(portable, "INTEGER PRIMARY KEY", "INTEGER", "REAL");
}

std::string SqliteDatabase::IntegrityCheck() {
  Result<std::vector<SqlRow>> rows = Query("PRAGMA integrity_check", {});
  return rows.ok() && !rows->empty() ? rows->front().Text(0) : "failed to run";
}

}  // namespace clonekit::manager
