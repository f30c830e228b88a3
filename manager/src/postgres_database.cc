#include "postgres_database.h"

#include <cstdio>
#include <vector>

namespace clonekit::manager {

namespace {

// The advisory lock's key: "clonekit" in ASCII.
constexpr const char* kRoleKey = "7164783386451208564";  // 0x636c6f6e656b6974
constexpr auto kPoll = std::chrono::milliseconds(500);
constexpr auto kHeartbeat = std::chrono::seconds(1);

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

// libpq's messages end in a newline and may have more lines (DETAIL, HINT):
// the first line is the error.
std::string FirstLine(const char* msg) {
  std::string s = msg ? msg : "";
  s = s.substr(0, s.find('\n'));
  if (s.rfind("ERROR:  ", 0) == 0) s = s.substr(8);
  return s.empty() ? "unknown error" : s;
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
    std::string msg = FirstLine(err);
    PQfreemem(err);
    return Status::InvalidArgument("--db", "not a PostgreSQL URL: " + msg);
  }
  std::string user, host, port, db;
  for (PQconninfoOption* o = opts; o->keyword; o++) {
    const std::string k = o->keyword, v = o->val ? o->val : "";
    if (k == "user") user = v;
    if (k == "host") host = v;
    if (k == "port") port = v;
    if (k == "dbname") db = v;
  }
  PQconninfoFree(opts);
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
  return std::unique_ptr<SqlDatabase>(std::move(db));
}

PostgresDatabase::~PostgresDatabase() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  PQfinish(conn_);  // (the session's advisory lock goes with it)
}

// Ours come first: the URL's own settings override them.
Status PostgresDatabase::Connect() {
  PQfinish(conn_);
  const char* keys[] = {"application_name", "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout", "options", "dbname", nullptr};
  const char* values[] = {"clonekit", "5", "1", "3", "1", "3", "6000",
                          // the server's side of the same: it ends the session (and frees
                          // the lock) of a client that vanished within ~6 s
                          "-c tcp_keepalives_idle=3 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3 "
                          "-c tcp_user_timeout=6000",
                          url_.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
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
        if (std::string(PQgetvalue(res.get(), 0, 0)) == "t") return Status::OK();
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
      text.push_back(*v);
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
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
  std::string msg = FirstLine(res ? PQresultErrorMessage(res) : PQerrorMessage(conn_));
  PQclear(res);
  if (PQstatus(conn_) != CONNECTION_OK) {
    msg = "lost the connection to the database: " + msg;
    if (!lost_ && events_.lost) {
      lost_ = true;
      events_.lost(name_ + ": " + msg);
    }
    lost_ = true;
  }
  return Status::IOError(name_, msg);
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

// Finds a lost connection while the service is idle: within a second,
// rather than at its next write.
void PostgresDatabase::Heartbeat() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_ && !lost_) {
    stop_cv_.wait_for(lock, kHeartbeat, [&] { return stopping_; });
    if (stopping_) break;
    Result<PGresult*> r = Run("SELECT 1", {});
    if (r.ok()) PQclear(*r);
  }
}

}  // namespace clonekit::manager
