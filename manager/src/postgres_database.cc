#include "postgres_database.h"

#include <cstdio>
#include <vector>

namespace clonekit::manager {

namespace {

// The advisory lock's key: "clonekit" in ASCII.
constexpr const char* kRoleKey = "7164223627178240372";  // 0x636c6f6e656b6974
constexpr const char* kRoleKeyHigh = "1668050798";  // (pg_locks shows the key as two halves)
constexpr const char* kRoleKeyLow = "1701538164";
constexpr auto kPoll = std::chrono::milliseconds(500);
constexpr auto kHeartbeat = std::chrono::milliseconds(500);
// The lease: an active service that has had no answer from the server for
// this long stops. The server ends a silent session only later (keepalives
// below: 5 s idle, then 5 probes a second apart; 10 s for unacknowledged
// data), so the old active has stopped before a standby can get the lock.
constexpr auto kLease = std::chrono::seconds(3);
// The connection's settings that fencing and the lease rely on: ours
// always, whatever the URL says.
constexpr std::pair<const char*, const char*> kForced[] = {
    {"application_name", "clonekit"},
    {"connect_timeout", "5"},
    {"keepalives", "1"},
    {"keepalives_idle", "3"},
    {"keepalives_interval", "1"},
    {"keepalives_count", "2"},
    {"tcp_user_timeout", "3000"},
    {"client_encoding", "UTF8"},
    {"target_session_attrs", "read-write"},
};
// The server's side (per session): end the session of a client that went
// silent; never time out a statement, a lock wait or an idle session of
// ours.
constexpr const char* kServerOptions =
    "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=5 -c tcp_user_timeout=10000 "
    "-c statement_timeout=0 -c lock_timeout=0 -c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0";

std::chrono::steady_clock::time_point Now() { return std::chrono::steady_clock::now(); }

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

// libpq's messages end in a newline and may have more lines (DETAIL, HINT):
// the first line is the error.
std::string FirstLine(const char* msg) {
  std::string s = msg ? msg : "";
  s = s.substr(0, s.find('\n'));
  if (s.rfind("ERROR:  ", 0) == 0) s = s.substr(8);
  return s.empty() ? "unknown error" : s;
}

// Text as PostgreSQL's UTF8 database takes it: every byte that is not part
// of a well-formed UTF-8 sequence becomes U+FFFD. (SQLite stores any bytes;
// a job's error may quote a name read from an image, and a write refused
// for it would leave the job "running".)
std::string WellFormedUtf8(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    size_t len = c < 0x80 ? 1 : (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; k++) ok = (p[i + k] & 0xc0) == 0x80;
    if (ok && len == 3) {
      const unsigned char d = p[i + 1];
      ok = !(c == 0xe0 && d < 0xa0) && !(c == 0xed && d >= 0xa0);  // overlong; surrogates
    }
    if (ok && len == 4) {
      const unsigned char d = p[i + 1];
      ok = !(c == 0xf0 && d < 0x90) && !(c == 0xf4 && d >= 0x90);  // overlong; past U+10FFFF
    }
    if (ok) {
      out.append(in, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i++;
    }
  }
  return out;
}

// '?' placeholders as PostgreSQL's $1, $2... (none of Store's statements has
// a '?' inside a quoted literal; quotes are skipped all the same).
std::string NumberPlaceholders(const std::string& sql) {
  std::string out;
  int n = 0;
  bool quoted = false;
  for (char c : sql) {
    if (c == '\'') quoted = !quoted;
    if (c == '?' && !quoted) {
      out += "$" + std::to_string(++n);
    } else {
      out += c;
    }
  }
  return out;
}

// "postgresql://user@host:port/db": what the URL names, without a password
// or other settings.
Result<std::string> Describe(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (!opts) {
    PQfreemem(err);  // (it may quote the URL, password and all)
    return Status::InvalidArgument("--db", "not a PostgreSQL URL that libpq can read");
  }
  std::string user, host, port, db;
  bool password = false;
  for (PQconninfoOption* o = opts; o->keyword; o++) {
    const std::string k = o->keyword, v = o->val ? o->val : "";
    if (k == "user") user = v;
    if (k == "host") host = v;
    if (k == "port") port = v;
    if (k == "dbname") db = v;
    if (k == "password" && !v.empty()) password = true;
  }
  PQconninfoFree(opts);
  if (password) {
    return Status::InvalidArgument("--db", "the URL holds a password, which every user sees in `ps`: "
                                           "put it in ~/.pgpass or $PGPASSFILE instead");
  }
  return "postgresql://" + (user.empty() ? "" : user + "@") + host + (port.empty() ? "" : ":" + port) + "/" + db;
}

}  // namespace

bool PostgresDatabase::IsUrl(const std::string& db) {
  return db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0;
}

Result<std::unique_ptr<SqlDatabase>> PostgresDatabase::Open(const std::string& url, RoleEvents events) {
  Result<std::string> name = Describe(url);
  if (!name.ok()) return name.status();
  std::unique_ptr<PostgresDatabase> db(new PostgresDatabase(url, *name, std::move(events)));
  CLONEKIT_RETURN_IF_ERROR(db->Connect());
  CLONEKIT_RETURN_IF_ERROR(db->WaitForActiveRole());
  CLONEKIT_RETURN_IF_ERROR(db->Exec("CREATE TABLE IF NOT EXISTS clonekit_schema(version BIGINT NOT NULL)"));
  db->heartbeat_ = std::thread([d = db.get()] { d->Heartbeat(); });
  db->watchdog_ = std::thread([d = db.get()] { d->Watchdog(); });
  return std::unique_ptr<SqlDatabase>(std::move(db));
}

PostgresDatabase::~PostgresDatabase() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  {
    std::lock_guard<std::mutex> lock(watchdog_mu_);
    watchdog_stop_ = true;
  }
  watchdog_cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  PQfinish(conn_);  // (the session's advisory lock goes with it)
}

// The URL's settings, with ours (kForced, kServerOptions after the URL's
// own options) in place of any it names.
Status PostgresDatabase::Connect() {
  PQfinish(conn_);
  conn_ = nullptr;
  lost_ = false;
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> parsed(PQconninfoParse(url_.c_str(), &err),
                                                                       PQconninfoFree);
  PQfreemem(err);
  if (!parsed) return Status::InvalidArgument("--db", "not a PostgreSQL URL that libpq can read");
  std::vector<std::string> keys, values;
  std::string options;
  for (PQconninfoOption* o = parsed.get(); o->keyword; o++) {
    if (!o->val) continue;
    const std::string k = o->keyword;
    if (k == "options") {
      options = o->val;
      continue;
    }
    bool forced = false;
    for (const auto& [fk, fv] : kForced) forced = forced || k == fk;
    if (!forced) keys.push_back(k), values.push_back(o->val);
  }
  for (const auto& [fk, fv] : kForced) keys.push_back(fk), values.push_back(fv);
  keys.push_back("options"), values.push_back(options.empty() ? kServerOptions : options + " " + kServerOptions);
  std::vector<const char*> k, v;
  for (size_t i = 0; i < keys.size(); i++) k.push_back(keys[i].c_str()), v.push_back(values[i].c_str());
  k.push_back(nullptr), v.push_back(nullptr);
  conn_ = PQconnectdbParams(k.data(), v.data(), /*expand_dbname=*/0);
  if (PQstatus(conn_) != CONNECTION_OK) {
    return Status::IOError(name_, "cannot connect to the database: " + FirstLine(PQerrorMessage(conn_)));
  }
  return Status::OK();
}

Status PostgresDatabase::WaitForActiveRole() {
  bool said = false;
  for (;;) {
    if (PQstatus(conn_) == CONNECTION_OK) {
      Result<PGresult*> r = Run(std::string("SELECT pg_try_advisory_lock(") + kRoleKey + ")", {});
      if (r.ok()) {
        ResultPtr res(*r, PQclear);
        if (std::string(PQgetvalue(res.get(), 0, 0)) == "t") {
          active_ = true;
          last_answer_ = Now().time_since_epoch().count();
          return Status::OK();
        }
      }
    } else if (Status s = Connect(); !s.ok()) {
      std::fprintf(stderr, "clonekit: standby: %s (retrying)\n", s.message().c_str());
    }
    if (!said && events_.standby) {
      events_.standby("another clonekit service is active on " + name_ + "; this one waits to take over");
    }
    said = true;
    std::this_thread::sleep_for(kPoll);
  }
}

Result<PGresult*> PostgresDatabase::Run(const std::string& sql, const std::vector<SqlParam>& params) {
  // A service that was paused (or cut off) past its lease may no longer be
  // the active one: nothing more from it.
  if (active_ && LeaseExpired()) ReportLost("no answer from the database for longer than the lease");
  if (lost_) return Status::IOError(name_, "lost the connection to the database (and the active role)");
  std::vector<std::string> text;
  std::vector<const char*> values;
  text.reserve(params.size());
  for (const SqlParam& p : params) {
    if (const auto* v = std::get_if<int64_t>(&p)) {
      text.push_back(std::to_string(*v));
    } else if (const auto* v = std::get_if<double>(&p)) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", *v);
      text.push_back(buf);
    } else if (const auto* v = std::get_if<std::string>(&p)) {
      // PostgreSQL's text cannot hold a NUL (libpq would cut the value there).
      if (v->find('\0') != std::string::npos) return Status::InvalidArgument(name_, "a text value with a NUL character");
      text.push_back(WellFormedUtf8(*v));
    } else {
      text.emplace_back();
    }
  }
  for (size_t i = 0; i < params.size(); i++) {
    values.push_back(std::holds_alternative<std::nullptr_t>(params[i]) ? nullptr : text[i].c_str());
  }
  PGresult* res = params.empty() && sql.find('?') == std::string::npos
                      ? PQexec(conn_, sql.c_str())
                      : PQexecParams(conn_, NumberPlaceholders(sql).c_str(), static_cast<int>(values.size()), nullptr,
                                     values.data(), nullptr, nullptr, 0);
  const ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    last_answer_ = Now().time_since_epoch().count();
    return res;
  }
  std::string msg = FirstLine(res ? PQresultErrorMessage(res) : PQerrorMessage(conn_));
  PQclear(res);
  if (PQstatus(conn_) != CONNECTION_OK) {
    msg = "lost the connection to the database: " + msg;
    if (active_) ReportLost(msg);
    lost_ = true;
  }
  return Status::IOError(name_, msg);
}

bool PostgresDatabase::LeaseExpired() const {
  return Now() - std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(last_answer_.load())) > kLease;
}

void PostgresDatabase::ReportLost(const std::string& why) {
  if (reported_.exchange(true)) return;
  lost_ = true;
  if (events_.lost) events_.lost(name_ + ": " + why);
}

// COMMIT of a transaction a statement failed in answers "ROLLBACK", not an
// error: that is a failure here.
Status PostgresDatabase::Commit() {
  std::lock_guard<std::mutex> lock(mu_);
  Result<PGresult*> r = Run("COMMIT", {});
  if (!r.ok()) return r.status();
  ResultPtr res(*r, PQclear);
  if (std::string(PQcmdStatus(res.get())) != "COMMIT") return Status::IOError(name_, "the transaction was rolled back");
  return Status::OK();
}

Status PostgresDatabase::Exec(const std::string& script) {
  std::lock_guard<std::mutex> lock(mu_);
  Result<PGresult*> r = Run(script, {});
  if (!r.ok()) return r.status();
  PQclear(*r);
  return Status::OK();
}

Result<std::vector<SqlRow>> PostgresDatabase::Query(const std::string& sql, const std::vector<SqlParam>& params) {
  std::lock_guard<std::mutex> lock(mu_);
  Result<PGresult*> r = Run(sql, params);
  if (!r.ok()) return r.status();
  ResultPtr res(*r, PQclear);
  std::vector<SqlRow> rows;
  const int cols = PQnfields(res.get());
  for (int i = 0; i < PQntuples(res.get()); i++) {
    std::vector<std::optional<std::string>> values;
    for (int c = 0; c < cols; c++) {
      if (PQgetisnull(res.get(), i, c)) {
        values.emplace_back(std::nullopt);
      } else {
        values.emplace_back(std::string(PQgetvalue(res.get(), i, c), static_cast<size_t>(PQgetlength(res.get(), i, c))));
      }
    }
    rows.emplace_back(std::move(values));
  }
  return rows;
}

bool PostgresDatabase::InTransaction() const {
  std::lock_guard<std::mutex> lock(mu_);
  return PQtransactionStatus(conn_) != PQTRANS_IDLE;
}

Result<int64_t> PostgresDatabase::SchemaVersion() {
  Result<std::vector<SqlRow>> rows = Query("SELECT version FROM clonekit_schema", {});
  if (!rows.ok()) return rows.status();
  return rows->empty() ? 0 : rows->front().Int(0);
}

Status PostgresDatabase::SetSchemaVersion(int64_t version) {
  return Exec("DELETE FROM clonekit_schema; INSERT INTO clonekit_schema(version) VALUES(" + std::to_string(version) + ")");
}

std::string PostgresDatabase::Schema(const std::string& portable) const {
  return ExpandSchema(portable, "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BIGINT", "DOUBLE PRECISION");
}

std::string PostgresDatabase::IntegrityCheck() {
  Result<std::vector<SqlRow>> rows =
      Query("SELECT (SELECT count(*) FROM vms) + (SELECT count(*) FROM snapshots) + (SELECT count(*) FROM jobs)", {});
  return rows.ok() ? "ok" : rows.status().message();
}

// Finds a lost connection or a lost lock while the service is idle, within
// a second; it asks whether this session still holds the lock (behind a
// pooler that shares sessions it might not).
void PostgresDatabase::Heartbeat() {
  const std::string ask = std::string("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND ") +
                          "pid = pg_backend_pid() AND classid = " + kRoleKeyHigh + " AND objid = " + kRoleKeyLow +
                          " AND objsubid = 1";
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_ && !lost_) {
    stop_cv_.wait_for(lock, kHeartbeat, [&] { return stopping_; });
    if (stopping_) break;
    // (Inside a Write too: its statements are short, and a failed one is
    // caught at COMMIT; in a transaction already failed, nothing to ask.)
    if (PQtransactionStatus(conn_) == PQTRANS_INERROR) continue;
    Result<PGresult*> r = Run(ask, {});
    if (!r.ok()) continue;
    ResultPtr res(*r, PQclear);
    if (std::string(PQgetvalue(res.get(), 0, 0)) != "1") ReportLost("this session no longer holds the active role's lock");
  }
}

// The lease's own clock: it needs no answer and no mutex, so a query
// stuck on a silent network cannot hold it up.
void PostgresDatabase::Watchdog() {
  std::unique_lock<std::mutex> lock(watchdog_mu_);
  while (!watchdog_stop_) {
    watchdog_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return watchdog_stop_; });
    if (!watchdog_stop_ && LeaseExpired()) {
      ReportLost("no answer from the database for " + std::to_string(kLease.count()) + " s (the lease)");
      return;
    }
  }
}

}  // namespace clonekit::manager
