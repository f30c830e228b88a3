// SqliteDatabase: the manager's state in one SQLite file, the single-host
// default (`serve --db FILE`).
//
// One connection: Debian 12's SQLite 3.40 has the WAL-reset bug (two
// connections writing or checkpointing at once may corrupt the database),
// so there is exactly one writer. Settings: WAL, synchronous=FULL (a
// finished job must survive a power cut), foreign_keys=ON, busy_timeout,
// BEGIN IMMEDIATE for every write transaction; the schema's version is
// PRAGMA user_version. The single writer also holds across processes: an
// exclusive flock on "<db>.lock" for the object's lifetime, so a second
// service on the same file is refused (and recovery may take every job left
// running as interrupted). The file and its companions are mode 0600.
//
// Thread-safety and lifetime: as SqlDatabase (sql_database.h).
#ifndef CLONEKIT_MANAGER_SQLITE_DATABASE_H_
#define CLONEKIT_MANAGER_SQLITE_DATABASE_H_

#include <sqlite3.h>

#include <memory>
#include <string>

#include "sql_database.h"
#include "unique_fd.h"

namespace clonekit::manager {

class SqliteDatabase : public SqlDatabase {
 public:
  // Locked when another service holds the file.
  [[nodiscard]] static Result<std::unique_ptr<SqlDatabase>> Open(const std::string& path);
  ~SqliteDatabase() override;

  const std::string& name() const override { return path_; }
  const char* engine() const override { return "sqlite"; }
  Status Exec(const std::string& script) override;
  Result<std::vector<SqlRow>> Query(const std::string& sql, const std::vector<SqlParam>& params) override;
  Status Begin() override { return Exec("BEGIN IMMEDIATE"); }
  Status Commit() override { return Exec("COMMIT"); }
  Status Rollback() override { return Exec("ROLLBACK"); }
  bool InTransaction() const override { return !sqlite3_get_autocommit(db_); }
  Result<int64_t> SchemaVersion() override;
  Status SetSchemaVersion(int64_t version) override;
  std::string Schema(const std::string& portable) const override;
  std::string IntegrityCheck() override;

 private:
  SqliteDatabase(sqlite3* db, UniqueFd lock, std::string path)
      : db_(db), lock_(std::move(lock)), path_(std::move(path)) {}

  sqlite3* db_;
  UniqueFd lock_;  // flock'ed "<db>.lock"
  std::string path_;
};

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_SQLITE_DATABASE_H_
