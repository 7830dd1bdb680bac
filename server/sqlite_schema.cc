// Copyright lrsched authors.
#include "server/sqlite_schema.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lrsched::sqlite_internal {
namespace {

constexpr char kRefuse[] = "; refusing to touch it";
constexpr int kBusyTimeoutMs = 5000;

absl::Status Refuse(absl::StatusCode code, const std::string& path, std::string_view reason) {
  return absl::Status(code, absl::StrCat(path, ": ", std::string(reason), kRefuse));
}

// Adds the path and the refusal to a SQLite error, keeping its code.
absl::Status Annotate(const absl::Status& s, const std::string& path) {
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message(), kRefuse));
}

// Adds the path to an error of the read-write set-up (which is not a refusal).
absl::Status WithPath(const absl::Status& s, const std::string& path) {
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
}

int32_t BigEndian32(const unsigned char* p) {
  return static_cast<int32_t>(static_cast<uint32_t>(p[0]) << 24 |
                              static_cast<uint32_t>(p[1]) << 16 |
                              static_cast<uint32_t>(p[2]) << 8 | static_cast<uint32_t>(p[3]));
}

// Reads the 100-byte database header ourselves, so that a file that is plainly not SQLite, or
// is a SQLite database stamped by another application, is refused before SQLite opens it (and
// could, for instance, create -wal/-shm files beside it or roll back a hot journal).
absl::StatusOr<FileState> InspectHeader(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return FileState::kMissing;
    return absl::UnavailableError(absl::StrCat(path, ": stat: ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return Refuse(absl::StatusCode::kFailedPrecondition, path, "not a regular file");
  }
  // A hot rollback journal means another program's interrupted transaction (lrsched uses
  // only WAL); SQLite would roll it back into the file on the first read-write open.
  struct stat journal;
  if (stat((path + "-journal").c_str(), &journal) == 0 && journal.st_size > 0) {
    return Refuse(absl::StatusCode::kFailedPrecondition, path,
                  absl::StrCat("a rollback journal ", path,
                               "-journal exists (an interrupted transaction of another "
                               "program?)"));
  }
  // A zero-length file is what SQLite itself creates before the first write; if a -wal file
  // holds committed pages, the SQLite check below sees them.
  if (st.st_size == 0) return FileState::kEmpty;
  unsigned char header[100];
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": open: ", std::strerror(errno)));
  ssize_t n = pread(fd, header, sizeof header, 0);
  int err = errno;
  close(fd);
  if (n < 0) return absl::UnavailableError(absl::StrCat(path, ": read: ", std::strerror(err)));
  if (n < static_cast<ssize_t>(sizeof header) ||
      std::memcmp(header, "SQLite format 3", 16) != 0) {
    return Refuse(absl::StatusCode::kFailedPrecondition, path,
                  "not a SQLite database (no SQLite header)");
  }
  int32_t app_id = BigEndian32(header + 68);
  if (app_id != 0 && app_id != kApplicationId) {
    // Not ours for certain (the marker never changes once set); the table list is not worth
    // opening a foreign file for.
    return Refuse(absl::StatusCode::kFailedPrecondition, path,
                  absl::StrCat("not an lrsched database (application_id ", app_id, ")"));
  }
  // app_id 0 may still be ours: the marker can sit in the WAL, not yet checkpointed.
  return FileState::kLrsched;
}

// A URI naming `path` for sqlite3_open_v2 with SQLITE_OPEN_URI, with `query` appended.
std::string FileUri(const std::string& path, std::string_view query) {
  std::string uri = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      absl::StrAppend(&uri, "%", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    } else {
      uri += c;
    }
  }
  absl::StrAppend(&uri, "?", std::string(query));
  return uri;
}

}  // namespace

absl::StatusOr<FileState> InspectFile(const std::string& path) {
  absl::StatusOr<FileState> header = InspectHeader(path);
  if (!header.ok() || *header == FileState::kMissing) return header;

  // Read-only: SQLite never writes the database file through such a connection. Without a
  // -wal file the database file is complete, and immutable=1 keeps SQLite from creating
  // -wal/-shm files beside a file we may be about to refuse; with one (after a crash), its
  // committed frames must be read, so open it the ordinary way.
  std::error_code ec;
  bool has_wal = std::filesystem::exists(path + "-wal", ec);
  absl::StatusOr<Db> db =
      Db::Open(FileUri(path, has_wal ? "mode=ro" : "mode=ro&immutable=1"),
               SQLITE_OPEN_READONLY | SQLITE_OPEN_URI);
  if (!db.ok()) {  // the message already names the file
    return absl::Status(db.status().code(), absl::StrCat(db.status().message(), kRefuse));
  }
  sqlite3_busy_timeout(db->get(), kBusyTimeoutMs);

  absl::StatusOr<int64_t> app_id = db->QueryInt("PRAGMA application_id");
  if (!app_id.ok()) return Annotate(app_id.status(), path);
  absl::StatusOr<int64_t> version = db->QueryInt("PRAGMA user_version");
  if (!version.ok()) return Annotate(version.status(), path);
  absl::StatusOr<int64_t> objects = db->QueryInt("SELECT count(*) FROM sqlite_schema");
  if (!objects.ok()) return Annotate(objects.status(), path);

  if (*app_id == 0 && *version == 0 && *objects == 0) return FileState::kEmpty;
  if (*app_id != kApplicationId) {
    absl::StatusOr<std::string> tables = db->QueryText(
        "SELECT coalesce(group_concat(name, ', '), '(none)') FROM (SELECT name FROM "
        "sqlite_schema WHERE type = 'table' ORDER BY name LIMIT 10)");
    if (!tables.ok()) return Annotate(tables.status(), path);
    return Refuse(absl::StatusCode::kFailedPrecondition, path,
                  absl::StrCat("not an lrsched database (application_id ", *app_id,
                               ", tables: ", *tables, ")"));
  }
  if (*version > kSchemaVersion) {
    return Refuse(absl::StatusCode::kFailedPrecondition, path,
                  absl::StrCat("schema version ", *version,
                               " is newer than this build of lrsched supports (", kSchemaVersion,
                               "); upgrade lrsched"));
  }
  if (*version < 1) {
    return Refuse(absl::StatusCode::kDataLoss, path,
                  absl::StrCat("lrsched marker with invalid schema version ", *version));
  }
  absl::StatusOr<int64_t> has_table = db->QueryInt(
      "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'sessions'");
  if (!has_table.ok()) return Annotate(has_table.status(), path);
  if (*has_table != 1) {
    return Refuse(absl::StatusCode::kDataLoss, path, "lrsched database without sessions table");
  }

  // quick_check is O(database size) but skips only the index-versus-table comparison of
  // integrity_check; a start-up cost worth paying to never serve from a damaged file.
  absl::StatusOr<Stmt> check = db->Prepare("PRAGMA quick_check(5)");
  if (!check.ok()) return Annotate(check.status(), path);
  std::vector<std::string> problems;
  int rc;
  while ((rc = check->Step()) == SQLITE_ROW) problems.emplace_back(check->ColumnText(0));
  if (rc != SQLITE_DONE) return Annotate(SqliteError(db->get(), rc, "quick_check"), path);
  if (problems.size() != 1 || problems[0] != "ok") {
    return Refuse(absl::StatusCode::kDataLoss, path,
                  absl::StrCat("quick_check failed: ", absl::StrJoin(problems, "; ")));
  }
  return FileState::kLrsched;
}

absl::Status InitializeWriter(Db& db, const std::string& path, FileState state,
                              bool synchronous_full, int64_t max_db_bytes) {
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  // Before the first read, so that the WAL index lives in this connection's heap rather than
  // in a shared-memory file, and no transaction takes file locks: the lock taken on that read
  // is held until the connection closes (SqliteStore is the file's only user).
  absl::StatusOr<std::string> locking = db.QueryText("PRAGMA locking_mode=EXCLUSIVE");
  if (!locking.ok()) return WithPath(locking.status(), path);
  if (*locking != "exclusive") {
    return absl::InternalError(
        absl::StrCat(path, ": cannot use EXCLUSIVE locking mode (got '", *locking, "')"));
  }
  absl::StatusOr<std::string> mode = db.QueryText("PRAGMA journal_mode=WAL");
  if (!mode.ok()) return WithPath(mode.status(), path);
  if (*mode != "wal") {
    // In-memory and some network file systems cannot hold a WAL beside the database.
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": cannot use WAL journal mode (got '", *mode,
                     "'); put the data directory on a local file system"));
  }
  absl::Status s =
      db.Exec(synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  if (!s.ok()) return WithPath(s, path);
  if (max_db_bytes > 0) {
    absl::StatusOr<int64_t> page_size = db.QueryInt("PRAGMA page_size");
    if (!page_size.ok()) return WithPath(page_size.status(), path);
    int64_t pages = std::max<int64_t>(1, max_db_bytes / *page_size);
    s = db.Exec(absl::StrCat("PRAGMA max_page_count=", pages).c_str());
    if (!s.ok()) return WithPath(s, path);
  }
  if (state == FileState::kLrsched) return absl::OkStatus();

  // IMMEDIATE takes the write lock first, so the emptiness check and the initialization are
  // one atomic step even if another process raced us to the same new file.
  s = db.Exec("BEGIN IMMEDIATE");
  if (!s.ok()) return WithPath(s, path);
  absl::StatusOr<int64_t> objects = db.QueryInt("SELECT count(*) FROM sqlite_schema");
  absl::StatusOr<int64_t> app_id = db.QueryInt("PRAGMA application_id");
  if (!objects.ok() || !app_id.ok()) {
    db.Exec("ROLLBACK").IgnoreError();
    return WithPath(!objects.ok() ? objects.status() : app_id.status(), path);
  }
  if (*objects != 0 || *app_id != 0) {
    db.Exec("ROLLBACK").IgnoreError();
    return Refuse(absl::StatusCode::kFailedPrecondition, path,
                  "database changed while it was being opened (another process?)");
  }
  s = db.Exec(absl::StrCat("PRAGMA application_id=", kApplicationId,
                           "; PRAGMA user_version=", kSchemaVersion,
                           "; CREATE TABLE sessions (name TEXT PRIMARY KEY NOT NULL, "
                           "value BLOB NOT NULL, revision INTEGER NOT NULL)")
                  .c_str());
  if (s.ok()) s = db.Exec("COMMIT");
  if (!s.ok()) {
    if (!sqlite3_get_autocommit(db.get())) db.Exec("ROLLBACK").IgnoreError();
    return WithPath(s, path);
  }
  return absl::OkStatus();
}

}  // namespace lrsched::sqlite_internal
