// Copyright lrsched authors.
//
// The on-disk format of SqliteStore (internal) and the checks that decide whether a file may
// be used. An lrsched database is marked by PRAGMA application_id == kApplicationId and
// PRAGMA user_version == the schema version that wrote it. Its tables:
//   version 1: sessions(name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL,
//                       revision INTEGER NOT NULL)
//   version 2: those, and meta(key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) holding
//              the row ('commit_seq', N): N counts the write transactions ever committed
//              (every one that changed something increments it), which the COMMITTED file
//              beside the database is compared with (server/store/sqlite/highwater.h).
// A version 1 file is migrated to version 2 (the meta table, N = 0) by the first read-write
// open; older builds then refuse it ("newer schema").
//
// Invariant: nothing here writes to a file that is not already an lrsched database or an empty
// one. InspectFile reads only (its own read of the header, then a SQLite connection that
// cannot write: read-only, or query_only without checkpoint on close when a -wal file must be
// recovered), so a foreign, newer or corrupt file is refused byte-identical with its -wal file
// and without a -shm file; only InitializeWriter writes, and only after InspectFile (and the
// store's COMMITTED check) approved the file.
#ifndef LRSCHED_SERVER_SQLITE_SCHEMA_H_
#define LRSCHED_SERVER_SQLITE_SCHEMA_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/store/sqlite/db.h"

namespace lrsched::sqlite_internal {

// "LRSC" in ASCII; stored big-endian at offset 68 of the database header.
inline constexpr int32_t kApplicationId = 0x4C525343;
// The newest schema this build reads and writes. Bump it (with a migration) whenever the table
// layout changes; older builds then refuse the file instead of misreading it.
inline constexpr int64_t kSchemaVersion = 2;
// The oldest schema this build still reads (and migrates).
inline constexpr int64_t kOldestSchemaVersion = 1;

// The statement that sets the commit sequence number inside a write transaction (?1: the new
// number).
inline constexpr char kUpdateCommitSeqSql[] = "UPDATE meta SET value = ?1 WHERE key = 'commit_seq'";

enum class FileState {
  kMissing,  // no file: create it
  kEmpty,    // a zero-length file or a SQLite database with no schema and no marker
  kLrsched,  // an lrsched database of a known schema version that passed quick_check
};

// What InspectFile found.
struct FileInfo {
  FileState state = FileState::kMissing;
  int64_t version = 0;     // kLrsched: the schema version (kOldestSchemaVersion..kSchemaVersion)
  int64_t commit_seq = 0;  // kLrsched and version >= 2: the meta table's commit_seq; else 0
};

// Decides what `path` is without modifying it (a -wal file beside it, after a crash, is read
// through SQLite's own recovery, as the read-write open will). Errors name the file and the
// reason and end with "refusing to touch it":
//   not a SQLite file, a foreign database (its application_id and tables are listed)
//     → FAILED_PRECONDITION
//   an lrsched database of a newer schema version → FAILED_PRECONDITION
//   an lrsched marker over tables or columns other than its version's (what differs is
//     named) → FAILED_PRECONDITION; without the sessions table or the commit_seq row
//     → DATA_LOSS
//   a damaged SQLite file or one failing PRAGMA quick_check → DATA_LOSS
//   the file cannot be read → UNAVAILABLE
absl::StatusOr<FileInfo> InspectFile(const std::string& path);

// Configures the read-write connection `db` to `path` (EXCLUSIVE locking mode, WAL,
// `synchronous` as given, a busy timeout, and max_page_count when max_db_bytes > 0) and, for
// kMissing/kEmpty, creates the schema and the marker in one transaction; for an older schema
// version, migrates it to kSchemaVersion in one transaction (logged as schema_migrated).
absl::Status InitializeWriter(Db& db, const std::string& path, const FileInfo& info,
                              bool synchronous_full, int64_t max_db_bytes);

// The commit sequence number of the (kSchemaVersion) database `db` holds.
absl::StatusOr<int64_t> ReadCommitSeq(Db& db, const std::string& path);

}  // namespace lrsched::sqlite_internal

#endif  // LRSCHED_SERVER_SQLITE_SCHEMA_H_
