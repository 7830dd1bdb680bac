// Copyright lrsched authors.
#include "server/store/sqlite/schema.h"

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
#include "server/ops/log.h"

namespace lrsched::sqlite_internal {
namespace {

constexpr char kRefuse[] = "; refusing to touch it";
constexpr int kBusyTimeoutMs = 5000;

// The tables of each schema version, as ColumnsOf describes them (in column order).
constexpr char kSessionsColumns[] =
    "name TEXT NOT NULL PRIMARY KEY, value BLOB NOT NULL, revision INTEGER NOT NULL";
constexpr char kMetaColumns[] = "key TEXT NOT NULL PRIMARY KEY, value INTEGER NOT NULL";
constexpr char kCreateSessions[] =
    "CREATE TABLE sessions (name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, "
    "revision INTEGER NOT NULL)";
// Version 2's addition: the commit sequence number, 0 until the first write transaction.
constexpr char kCreateMeta[] =
    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL); "
    "INSERT INTO meta (key, value) VALUES ('commit_seq', 0)";

struct TableSpec {
  const char* name;
  const char* columns;
};

absl::Status Refuse(absl::StatusCode code, const std::string& path, std::string_view reason) {
  return absl::Status(code, absl::StrCat(path, ": ", std::string(reason), kRefuse));
}

// Adds the path and the refusal to a SQLite error, keeping its code.
absl::Status Annotate(const absl::Status& s, const std::string& path) {
  return WithMessage(s, absl::StrCat(path, ": ", s.message(), kRefuse));
}

// Adds the path to an error of the read-write set-up (which is not a refusal).
absl::Status WithPath(const absl::Status& s, const std::string& path) {
  return WithMessage(s, absl::StrCat(path, ": ", s.message()));
}

int32_t BigEndian32(const unsigned char* p) {
  return static_cast<int32_t>(static_cast<uint32_t>(p[0]) << 24 |
                              static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 |
                              static_cast<uint32_t>(p[3]));
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
  // A zero-length file is what SQLite itself creates before the first write. SQLite writes
  // the header page before the first WAL frame (switching to WAL is itself a write), so a
  // zero-length file beside a non-empty -wal file was cut; SQLite would delete that WAL (all
  // the data) on the next open, read-only or not.
  if (st.st_size == 0) {
    struct stat wal;
    if (stat((path + "-wal").c_str(), &wal) == 0 && wal.st_size > 0) {
      return Refuse(absl::StatusCode::kDataLoss, path,
                    absl::StrCat("the file is empty but ", path, "-wal holds ", wal.st_size,
                                 " bytes (was the database file cut?); to start from an empty "
                                 "database instead, remove both"));
    }
    return FileState::kEmpty;
  }
  unsigned char header[100];
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": open: ", std::strerror(errno)));
  ssize_t n = pread(fd, header, sizeof header, 0);
  int err = errno;
  close(fd);
  if (n < 0) return absl::UnavailableError(absl::StrCat(path, ": read: ", std::strerror(err)));
  if (n < static_cast<ssize_t>(sizeof header) || std::memcmp(header, "SQLite format 3", 16) != 0) {
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

// "name TYPE [NOT NULL] [PRIMARY KEY], ..." for `table`, in column order ("" if no such table).
absl::StatusOr<std::string> ColumnsOf(Db& db, const char* table) {
  absl::StatusOr<Stmt> q = db.Prepare(
      "SELECT coalesce(group_concat(d, ', '), '') FROM ("
      "SELECT rtrim(name || ' ' || upper(type)) || "
      "CASE WHEN \"notnull\" THEN ' NOT NULL' ELSE '' END || "
      "CASE WHEN pk > 0 THEN ' PRIMARY KEY' ELSE '' END AS d "
      "FROM pragma_table_info(?1) ORDER BY cid)");
  if (!q.ok()) return q.status();
  q->BindText(1, table);
  int rc = q->Step();
  if (rc != SQLITE_ROW) return SqliteError(db.get(), rc, absl::StrCat("table_info ", table));
  return std::string(q->ColumnText(0));
}

// Requires exactly the tables of schema `version`, each with exactly its columns, so that a
// file stamped as lrsched's but laid out otherwise is refused here, read-only, rather than
// failing later on a statement (after the read-write open has switched it to WAL).
absl::Status CheckTables(Db& db, const std::string& path, int64_t version) {
  std::vector<TableSpec> want = {{"sessions", kSessionsColumns}};
  if (version >= 2) want.insert(want.begin(), {"meta", kMetaColumns});  // in name order
  std::vector<std::string> want_names;
  for (const TableSpec& t : want) want_names.emplace_back(t.name);
  absl::StatusOr<std::string> tables = db.QueryText(
      "SELECT coalesce(group_concat(name, ', '), '') FROM (SELECT name FROM sqlite_schema "
      "WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name)");
  if (!tables.ok()) return Annotate(tables.status(), path);
  for (const TableSpec& t : want) {
    absl::StatusOr<std::string> columns = ColumnsOf(db, t.name);
    if (!columns.ok()) return Annotate(columns.status(), path);
    if (columns->empty()) {
      return Refuse(absl::StatusCode::kDataLoss, path,
                    absl::StrCat("lrsched database (schema version ", version, ") without ", t.name,
                                 " table (tables: ", tables->empty() ? "(none)" : *tables, ")"));
    }
    if (*columns != t.columns) {
      return Refuse(
          absl::StatusCode::kFailedPrecondition, path,
          absl::StrCat("table ", t.name, " has columns (", *columns,
                       ") where lrsched schema version ", version, " has (", t.columns, ")"));
    }
  }
  if (*tables != absl::StrJoin(want_names, ", ")) {
    return Refuse(absl::StatusCode::kFailedPrecondition, path,
                  absl::StrCat("tables (", *tables, ") differ from lrsched schema version ",
                               version, "'s (", absl::StrJoin(want_names, ", "), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> ReadCommitSeq(Db& db, const std::string& path) {
  absl::StatusOr<Stmt> q = db.Prepare("SELECT value FROM meta WHERE key = 'commit_seq'");
  if (!q.ok()) return WithPath(q.status(), path);
  int rc = q->Step();
  if (rc == SQLITE_DONE) {
    return absl::DataLossError(absl::StrCat(path, ": the meta table has no commit_seq row"));
  }
  if (rc != SQLITE_ROW) return WithPath(SqliteError(db.get(), rc, "read commit_seq"), path);
  if (sqlite3_column_type(q->get(), 0) != SQLITE_INTEGER || q->ColumnInt(0) < 0) {
    return absl::DataLossError(absl::StrCat(path, ": commit_seq is not a non-negative integer: '",
                                            std::string(q->ColumnText(0)), "'"));
  }
  return q->ColumnInt(0);
}

absl::StatusOr<FileInfo> InspectFile(const std::string& path) {
  absl::StatusOr<FileState> header = InspectHeader(path);
  if (!header.ok()) return header.status();
  if (*header == FileState::kMissing) return FileInfo{FileState::kMissing};

  // Without a -wal file the database file is complete: a read-only connection with
  // immutable=1 reads it without creating -wal/-shm files beside a file we may be about to
  // refuse. With one (after a crash), its committed frames must be read through SQLite's
  // recovery, and a read-only connection would need a -shm file for that (which, besides
  // appearing beside a refused file, cannot be created on a full disk). So: a read-write
  // connection that cannot write (query_only), keeps the WAL index in its heap (EXCLUSIVE
  // locking mode before the first read: no -shm) and neither checkpoints nor deletes the WAL
  // when it closes (NO_CKPT_ON_CLOSE), which leaves both files byte-identical.
  std::error_code ec;
  bool has_wal = std::filesystem::exists(path + "-wal", ec);
  absl::StatusOr<Db> db = has_wal ? Db::Open(path, SQLITE_OPEN_READWRITE)
                                  : Db::Open(FileUri(path, "mode=ro&immutable=1"),
                                             SQLITE_OPEN_READONLY | SQLITE_OPEN_URI);
  if (!db.ok()) {  // the message already names the file
    return WithMessage(db.status(), absl::StrCat(db.status().message(), kRefuse));
  }
  sqlite3_busy_timeout(db->get(), kBusyTimeoutMs);
  if (has_wal) {
    int rc = sqlite3_db_config(db->get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    if (rc != SQLITE_OK) return Annotate(SqliteError(db->get(), rc, "NO_CKPT_ON_CLOSE"), path);
    absl::Status s = db->Exec("PRAGMA query_only=1; PRAGMA locking_mode=EXCLUSIVE");
    if (!s.ok()) return Annotate(s, path);
  }

  absl::StatusOr<int64_t> app_id = db->QueryInt("PRAGMA application_id");
  if (!app_id.ok()) return Annotate(app_id.status(), path);
  absl::StatusOr<int64_t> version = db->QueryInt("PRAGMA user_version");
  if (!version.ok()) return Annotate(version.status(), path);
  absl::StatusOr<int64_t> objects = db->QueryInt("SELECT count(*) FROM sqlite_schema");
  if (!objects.ok()) return Annotate(objects.status(), path);

  if (*app_id == 0 && *version == 0 && *objects == 0) return FileInfo{FileState::kEmpty};
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
    return Refuse(
        absl::StatusCode::kFailedPrecondition, path,
        absl::StrCat("schema version ", *version, " is newer than this build of lrsched supports (",
                     kSchemaVersion, "); upgrade lrsched"));
  }
  if (*version < kOldestSchemaVersion) {
    return Refuse(absl::StatusCode::kDataLoss, path,
                  absl::StrCat("lrsched marker with invalid schema version ", *version));
  }
  absl::Status schema = CheckTables(*db, path, *version);
  if (!schema.ok()) return schema;

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
  FileInfo info{FileState::kLrsched, *version, 0};
  if (*version >= 2) {
    absl::StatusOr<int64_t> seq = ReadCommitSeq(*db, path);
    if (!seq.ok()) return WithMessage(seq.status(), absl::StrCat(seq.status().message(), kRefuse));
    info.commit_seq = *seq;
  }
  return info;
}

absl::Status InitializeWriter(Db& db, const std::string& path, const FileInfo& info,
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
  if (info.state == FileState::kLrsched && info.version == kSchemaVersion) {
    return absl::OkStatus();
  }
  const bool migrate = info.state == FileState::kLrsched;

  // IMMEDIATE takes the write lock first, so the check of what the file holds and the
  // initialization (or migration) are one atomic step even if another process raced us.
  s = db.Exec("BEGIN IMMEDIATE");
  if (!s.ok()) return WithPath(s, path);
  absl::StatusOr<int64_t> objects = db.QueryInt("SELECT count(*) FROM sqlite_schema");
  absl::StatusOr<int64_t> app_id = db.QueryInt("PRAGMA application_id");
  absl::StatusOr<int64_t> version = db.QueryInt("PRAGMA user_version");
  for (const auto* q : {&objects, &app_id, &version}) {
    if (!q->ok()) {
      db.Exec("ROLLBACK").IgnoreError();
      return WithPath(q->status(), path);
    }
  }
  const bool unchanged = migrate ? (*app_id == kApplicationId && *version == info.version)
                                 : (*objects == 0 && *app_id == 0);
  if (!unchanged) {
    db.Exec("ROLLBACK").IgnoreError();
    return Refuse(absl::StatusCode::kFailedPrecondition, path,
                  "database changed while it was being opened (another process?)");
  }
  // Version 1 → 2 adds the meta table; a new file gets every table at once.
  std::string sql = migrate ? std::string(kCreateMeta)
                            : absl::StrCat("PRAGMA application_id=", kApplicationId, "; ",
                                           kCreateSessions, "; ", kCreateMeta);
  absl::StrAppend(&sql, "; PRAGMA user_version=", kSchemaVersion);
  s = db.Exec(sql.c_str());
  if (s.ok()) s = db.Exec("COMMIT");
  if (!s.ok()) {
    if (!sqlite3_get_autocommit(db.get())) db.Exec("ROLLBACK").IgnoreError();
    return WithPath(s, path);
  }
  if (migrate) {
    logging::Info("schema_migrated")
        .Kv("from", info.version)
        .Kv("to", kSchemaVersion)
        .Kv("path", path);
  }
  return absl::OkStatus();
}

}  // namespace lrsched::sqlite_internal
