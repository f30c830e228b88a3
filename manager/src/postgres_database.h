// PostgresDatabase: the manager's state in PostgreSQL (`serve --db
// postgresql://...`), shared by several services of which exactly one is
// active.
//
// The active service is the one whose connection holds a session advisory
// lock (pg_try_advisory_lock on one fixed key). Open() returns only once it
// holds it: a second service waits there, polling every half second, and
// takes over as soon as the active one's session ends. Every query runs on
// that same connection, so a service that lost its connection has lost the
// lock too and can write nothing more (fencing). It also holds a lease: a
// heartbeat asks the server twice a second whether the session still holds
// the lock, and a watchdog reports the role lost (`serve` then exits) after
// 3 s without any answer, or at once when the session ended or the lock is
// not held. The server ends a silent client's session only after ~10 s
// (TCP keepalives and user timeout, set per session), so an active service
// cut off from the database has stopped before a standby can take the lock
// and recover the jobs it left. A standby's own connection may drop while
// it waits: it reconnects.
//
// The schema's version is the one row of table clonekit_schema. Passwords
// never appear in name() or errors: put them in ~/.pgpass or PGPASSFILE
// rather than in the URL, which `ps` shows.
//
// Thread-safety: every call, and the heartbeat, take the object's mutex
// (libpq's connection is not thread-safe); Store serializes them too.
// Lifetime: the connection, the heartbeat thread and the lock end with the
// object.
#ifndef CLONEKIT_MANAGER_POSTGRES_DATABASE_H_
#define CLONEKIT_MANAGER_POSTGRES_DATABASE_H_

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sql_database.h"

namespace clonekit::manager {

// What a service hears about its role while it runs on a shared database.
struct RoleEvents {
  // Another service is active: this one waits (said once per wait).
  std::function<void(const std::string& message)> standby;
  // The connection, and with it the active role, is gone: the service must
  // stop at once (another may be recovering its jobs already).
  std::function<void(const std::string& message)> lost;
};

class PostgresDatabase : public SqlDatabase {
 public:
  // True for "postgresql://..." and "postgres://..." (libpq's URIs).
  static bool IsUrl(const std::string& db);
  // Connects and waits to become the active service. An error when the
  // first connection fails (a wrong address, password or database).
  [[nodiscard]] static Result<std::unique_ptr<SqlDatabase>> Open(const std::string& url, RoleEvents events);
  ~PostgresDatabase() override;

  const std::string& name() const override { return name_; }
  const char* engine() const override { return "postgresql"; }
  Status Exec(const std::string& script) override;
  Result<std::vector<SqlRow>> Query(const std::string& sql, const std::vector<SqlParam>& params) override;
  Status Begin() override { return Exec("BEGIN"); }
  Status Commit() override;
  Status Rollback() override { return Exec("ROLLBACK"); }
  bool InTransaction() const override;
  Result<int64_t> SchemaVersion() override;
  Status SetSchemaVersion(int64_t version) override;
  std::string Schema(const std::string& portable) const override;
  std::string IntegrityCheck() override;

 private:
  PostgresDatabase(std::string url, std::string name, RoleEvents events)
      : url_(std::move(url)), name_(std::move(name)), events_(std::move(events)) {}
  Status Connect();
  Status WaitForActiveRole();
  // The result of a query, or its one-line error; a broken connection is
  // reported to events_.lost (once).
  Result<PGresult*> Run(const std::string& sql, const std::vector<SqlParam>& params);
  void Heartbeat();
  void Watchdog();
  bool LeaseExpired() const;
  // Says once that the active role is gone (events_.lost).
  void ReportLost(const std::string& why);

  const std::string url_, name_;
  RoleEvents events_;
  mutable std::mutex mu_;
  PGconn* conn_ = nullptr;
  std::atomic<bool> active_{false};  // holds the lock: a loss is reported
  std::atomic<bool> lost_{false};    // this connection is gone
  std::atomic<bool> reported_{false};
  // steady_clock ticks of the server's last answer (the lease's start).
  std::atomic<std::chrono::steady_clock::rep> last_answer_{0};
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread heartbeat_;
  std::mutex watchdog_mu_;
  std::condition_variable watchdog_cv_;
  bool watchdog_stop_ = false;
  std::thread watchdog_;
};

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_POSTGRES_DATABASE_H_
