// SqlDatabase: one connection to the database that holds the manager's
// state, with the one-writer rule held for as long as it lives. Two
// implementations: a SQLite file (sqlite_database.h, the single-host
// default) and PostgreSQL (postgres_database.h, shared by an active and a
// standby service). Store (store.h) writes its queries and its migration
// history once, over this interface.
//
// Queries use '?' placeholders and standard SQL both engines read the same
// way (INSERT ... RETURNING included). Migrations spell the three types the
// engines name differently as {ID} (the table's generated 64-bit key),
// {INT} (a 64-bit integer) and {REAL} (a double); Schema() expands them.
//
// Thread-safety: none of its own; Store serializes every call.
// Lifetime: the connection, and the lock that makes this service the one
// writer (a flock on the SQLite file's "<db>.lock", PostgreSQL's session
// advisory lock), end with the object.
#ifndef CLONEKIT_MANAGER_SQL_DATABASE_H_
#define CLONEKIT_MANAGER_SQL_DATABASE_H_

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "clonekit/status.h"

namespace clonekit::manager {

// A bound parameter: NULL (a key with no row), an integer, a double or text.
using SqlParam = std::variant<std::nullptr_t, int64_t, double, std::string>;

// One result row, its values as text (NULL as nullopt): both engines give
// integers and doubles exact in decimal.
class SqlRow {
 public:
  explicit SqlRow(std::vector<std::optional<std::string>> values) : values_(std::move(values)) {}
  std::string Text(size_t col) const { return col < values_.size() && values_[col] ? *values_[col] : ""; }
  int64_t Int(size_t col) const { return std::strtoll(Text(col).c_str(), nullptr, 10); }
  double Real(size_t col) const { return std::strtod(Text(col).c_str(), nullptr); }

 private:
  std::vector<std::optional<std::string>> values_;
};

class SqlDatabase {
 public:
  virtual ~SqlDatabase() = default;

  // What errors name: the file, or the PostgreSQL address without any password.
  virtual const std::string& name() const = 0;
  // "sqlite" or "postgresql".
  virtual const char* engine() const = 0;

  // Runs statements without parameters or rows (a migration's script).
  [[nodiscard]] virtual Status Exec(const std::string& script) = 0;
  // Runs one statement; its rows, if any.
  [[nodiscard]] virtual Result<std::vector<SqlRow>> Query(const std::string& sql,
                                                          const std::vector<SqlParam>& params) = 0;

  // A write transaction: only one service writes, so they never conflict.
  // REQUIRES: not InTransaction() for Begin; InTransaction() for the others.
  [[nodiscard]] virtual Status Begin() = 0;
  [[nodiscard]] virtual Status Commit() = 0;
  [[nodiscard]] virtual Status Rollback() = 0;
  virtual bool InTransaction() const = 0;

  // How many of Store's migrations have run (0 on a new database).
  [[nodiscard]] virtual Result<int64_t> SchemaVersion() = 0;
  // REQUIRES: InTransaction(), in the migration's own transaction.
  [[nodiscard]] virtual Status SetSchemaVersion(int64_t version) = 0;
  // A migration's text with {ID}, {INT} and {REAL} in this engine's words.
  virtual std::string Schema(const std::string& portable) const = 0;

  // "ok" when the database is sound (SQLite's integrity_check; on
  // PostgreSQL, whose server checks its own pages, that the tables answer).
  virtual std::string IntegrityCheck() = 0;
};

// Replaces every "{KEY}" in text by its word.
std::string ExpandSchema(std::string text, const std::string& id, const std::string& integer, const std::string& real);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_SQL_DATABASE_H_
