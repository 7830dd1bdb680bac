// Copyright lrsched authors.
#include "server/store/sqlite/db.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lrsched::sqlite_internal {
namespace {

// The payload type that marks a failure for want of space (its value: the errno, or 0 for
// SQLITE_FULL without one).
constexpr char kNoSpacePayload[] = "type.lrsched/sqlite.no_space";

}  // namespace

absl::Status SqliteError(sqlite3* db, int rc, std::string_view context) {
  // sqlite3_errmsg describes the most recent failure on `db`, which is more specific than the
  // generic text for `rc` (e.g. "database or disk is full" vs the path of a failing open); use
  // it only when it belongs to this code.
  const char* detail = sqlite3_errstr(rc);
  if (db != nullptr && (sqlite3_extended_errcode(db) & 0xff) == (rc & 0xff)) {
    detail = sqlite3_errmsg(db);
  }
  const int primary = rc & 0xff;
  // The errno of the failing system call says what "disk I/O error" does not (ENOSPC, EIO...).
  int sys_errno = 0;
  if (db != nullptr &&
      (primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN)) {
    sys_errno = sqlite3_system_errno(db);
  }
  std::string msg = absl::StrCat(std::string(context), ": ", detail, " (sqlite code ", rc);
  if (sys_errno != 0) absl::StrAppend(&msg, "; errno ", sys_errno, ": ", std::strerror(sys_errno));
  msg += ")";
  if (primary == SQLITE_FULL) {
    absl::Status s = absl::UnavailableError(msg);
    s.SetPayload(kNoSpacePayload, absl::Cord(absl::StrCat(sys_errno)));
    return s;
  }
  if (sys_errno == ENOSPC || sys_errno == EDQUOT) {
    return MarkNoSpace(absl::UnavailableError(msg), sys_errno);
  }
  switch (primary) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return absl::UnavailableError(msg);
    case SQLITE_TOOBIG:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

bool IsNoSpaceError(const absl::Status& s, int* sys_errno) {
  auto payload = s.GetPayload(kNoSpacePayload);  // absl::optional in older Abseils
  if (!payload.has_value()) return false;
  if (sys_errno != nullptr && !absl::SimpleAtoi(std::string(*payload), sys_errno)) *sys_errno = 0;
  return true;
}

absl::Status MarkNoSpace(absl::Status s, int sys_errno) {
  if (sys_errno == ENOSPC || sys_errno == EDQUOT) {
    s.SetPayload(kNoSpacePayload, absl::Cord(absl::StrCat(sys_errno)));
  }
  return s;
}

absl::Status WithMessage(const absl::Status& s, std::string_view message) {
  absl::Status out(s.code(), std::string(message));
  s.ForEachPayload(
      [&out](auto type_url, const absl::Cord& payload) { out.SetPayload(type_url, payload); });
  return out;
}

absl::StatusOr<Db> Db::Open(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  // sqlite3_open_v2 allocates a handle even on failure (to carry the message); own it either
  // way so that it is closed.
  Db db(raw);
  if (rc != SQLITE_OK) return SqliteError(raw, rc, absl::StrCat(path, ": open"));
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

absl::Status Db::Exec(const char* sql) {
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, sql);
  return absl::OkStatus();
}

absl::StatusOr<Stmt> Db::Prepare(const char* sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  Stmt stmt(raw);
  if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, absl::StrCat("prepare ", sql));
  return stmt;
}

namespace {

// Runs `sql`, expecting one row, and hands its first column to `get`.
template <typename T, typename Get>
absl::StatusOr<T> QueryOne(Db& db, const char* sql, Get get) {
  absl::StatusOr<Stmt> stmt = db.Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  int rc = stmt->Step();
  if (rc == SQLITE_ROW) return get(*stmt);
  if (rc == SQLITE_DONE) return absl::InternalError(absl::StrCat(sql, ": no row"));
  return SqliteError(db.get(), rc, sql);
}

}  // namespace

absl::StatusOr<int64_t> Db::QueryInt(const char* sql) {
  return QueryOne<int64_t>(*this, sql, [](const Stmt& s) { return s.ColumnInt(0); });
}

absl::StatusOr<std::string> Db::QueryText(const char* sql) {
  return QueryOne<std::string>(*this, sql,
                               [](const Stmt& s) { return std::string(s.ColumnText(0)); });
}

std::string_view Stmt::ColumnText(int i) const {
  // Fetch the pointer before the size, as the SQLite documentation prescribes.
  const unsigned char* p = sqlite3_column_text(stmt_.get(), i);
  int n = sqlite3_column_bytes(stmt_.get(), i);
  if (p == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

std::string_view Stmt::ColumnBlob(int i) const {
  const void* p = sqlite3_column_blob(stmt_.get(), i);
  int n = sqlite3_column_bytes(stmt_.get(), i);
  if (p == nullptr) return {};
  return std::string_view(static_cast<const char*>(p), static_cast<size_t>(n));
}

}  // namespace lrsched::sqlite_internal
