// Copyright lrsched authors.
//
// Thin RAII wrappers over the SQLite C API for SqliteStore (internal; nothing outside
// server/sqlite_* should include this): an owned connection (Db), an owned prepared statement
// (Stmt), and the mapping of SQLite result codes to absl::Status.
//
// Invariants: a Db closes its connection exactly once (sqlite3_close_v2, so statements still
// alive only delay the close); a Stmt finalizes its statement exactly once and must be
// destroyed before its Db. Neither type is thread-safe: each connection is used by one thread
// at a time, which the store guarantees by construction.
#ifndef LRSCHED_SERVER_SQLITE_DB_H_
#define LRSCHED_SERVER_SQLITE_DB_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lrsched::sqlite_internal {

// Converts a SQLite result code into a status whose message is "<context>: <sqlite message>".
// `db` may be null (then only sqlite3_errstr is available). Codes map as an operator would
// act on them: CORRUPT/NOTADB → DATA_LOSS, FULL/IOERR/BUSY/LOCKED/CANTOPEN → UNAVAILABLE
// (retry later or fix the disk), TOOBIG → INVALID_ARGUMENT, the rest → INTERNAL. For I/O
// failures the operating system's errno (sqlite3_system_errno) is added to the message, and a
// failure for want of space (SQLITE_FULL, or errno ENOSPC/EDQUOT) is marked so that
// IsNoSpaceError recognizes it without parsing the message.
absl::Status SqliteError(sqlite3* db, int rc, std::string_view context);

// Whether `s` failed for want of space (a full disk, a quota, max_page_count), as marked by
// SqliteError or MarkNoSpace; `sys_errno` (if not null) receives the errno (0: SQLITE_FULL
// without one).
bool IsNoSpaceError(const absl::Status& s, int* sys_errno = nullptr);
// Returns `s`, marked for IsNoSpaceError if `sys_errno` is ENOSPC or EDQUOT.
absl::Status MarkNoSpace(absl::Status s, int sys_errno);
// `s` with another message, its code and marks kept (for adding a path or a refusal).
absl::Status WithMessage(const absl::Status& s, std::string_view message);

class Stmt;

class Db {
 public:
  // Opens `path` with the given sqlite3_open_v2 flags (SQLITE_OPEN_NOMUTEX is added: the
  // store serializes access itself). Extended result codes are enabled.
  static absl::StatusOr<Db> Open(const std::string& path, int flags);

  Db() = default;
  Db(Db&&) = default;
  Db& operator=(Db&&) = default;

  sqlite3* get() const { return db_.get(); }
  explicit operator bool() const { return db_ != nullptr; }
  void Close() { db_.reset(); }

  // Runs one or more statements without results (PRAGMAs that return a row are fine: the row
  // is discarded).
  absl::Status Exec(const char* sql);

  // Prepares a statement meant to be kept and reused (SQLITE_PREPARE_PERSISTENT).
  absl::StatusOr<Stmt> Prepare(const char* sql);

  // Runs a single-row, single-column query (e.g. "PRAGMA user_version").
  absl::StatusOr<int64_t> QueryInt(const char* sql);
  absl::StatusOr<std::string> QueryText(const char* sql);

 private:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  explicit Db(sqlite3* db) : db_(db) {}
  std::unique_ptr<sqlite3, Closer> db_;
};

class Stmt {
 public:
  Stmt() = default;
  Stmt(Stmt&&) = default;
  Stmt& operator=(Stmt&&) = default;

  sqlite3_stmt* get() const { return stmt_.get(); }

  // Resets the statement and clears its bindings so that it can be reused; call after every
  // use, including failed ones (an un-reset statement keeps its read transaction open).
  void Reset() {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
  }

  // Bind helpers (1-based indexes, as SQLite). Text and blobs are bound SQLITE_STATIC: the
  // caller keeps them alive until Reset.
  // An empty string must still bind as '' rather than NULL (both columns are NOT NULL), and
  // sqlite binds a null pointer as NULL, hence the "" for empty views.
  int BindText(int i, std::string_view s) {
    return sqlite3_bind_text64(stmt_.get(), i, s.empty() ? "" : s.data(), s.size(), SQLITE_STATIC,
                               SQLITE_UTF8);
  }
  int BindBlob(int i, std::string_view s) {
    return sqlite3_bind_blob64(stmt_.get(), i, s.empty() ? "" : s.data(), s.size(), SQLITE_STATIC);
  }
  int BindInt(int i, int64_t v) { return sqlite3_bind_int64(stmt_.get(), i, v); }

  int Step() { return sqlite3_step(stmt_.get()); }

  std::string_view ColumnText(int i) const;
  std::string_view ColumnBlob(int i) const;
  int64_t ColumnInt(int i) const { return sqlite3_column_int64(stmt_.get(), i); }

 private:
  friend class Db;
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  explicit Stmt(sqlite3_stmt* s) : stmt_(s) {}
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

}  // namespace lrsched::sqlite_internal

#endif  // LRSCHED_SERVER_SQLITE_DB_H_
