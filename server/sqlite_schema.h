// Copyright lrsched authors.
//
// The on-disk format of SqliteStore (internal) and the checks that decide whether a file may
// be used. An lrsched database is marked by PRAGMA application_id == kApplicationId and
// PRAGMA user_version == the schema version that wrote it; its one table is
//   sessions(name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, revision INTEGER NOT NULL).
//
// Invariant: nothing here writes to a file that is not already an lrsched database or an empty
// one. InspectFile reads only (its own read of the header, then a read-only SQLite connection),
// so a foreign, newer or corrupt file is refused byte-identical; only InitializeWriter writes,
// and only after InspectFile has approved the file.
#ifndef LRSCHED_SERVER_SQLITE_SCHEMA_H_
#define LRSCHED_SERVER_SQLITE_SCHEMA_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/sqlite_db.h"

namespace lrsched::sqlite_internal {

// "LRSC" in ASCII; stored big-endian at offset 68 of the database header.
inline constexpr int32_t kApplicationId = 0x4C525343;
// The newest schema this build reads and writes. Bump it (with a migration) whenever the table
// layout changes; older builds then refuse the file instead of misreading it.
inline constexpr int64_t kSchemaVersion = 1;

enum class FileState {
  kMissing,  // no file: create it
  kEmpty,    // a zero-length file or a SQLite database with no schema and no marker
  kLrsched,  // an lrsched database of a known schema version that passed quick_check
};

// Decides what `path` is without modifying it. Errors name the file and the reason and end
// with "refusing to touch it":
//   not a SQLite file, a foreign database (its application_id and tables are listed)
//     → FAILED_PRECONDITION
//   an lrsched database of a newer schema version → FAILED_PRECONDITION
//   a damaged SQLite file or one failing PRAGMA quick_check → DATA_LOSS
//   the file cannot be read → UNAVAILABLE
absl::StatusOr<FileState> InspectFile(const std::string& path);

// Configures the read-write connection `db` to `path` (EXCLUSIVE locking mode, WAL,
// `synchronous` as given, a busy timeout, and max_page_count when max_db_bytes > 0) and, for
// kMissing/kEmpty, creates the schema and the marker in one transaction.
absl::Status InitializeWriter(Db& db, const std::string& path, FileState state,
                              bool synchronous_full, int64_t max_db_bytes);

}  // namespace lrsched::sqlite_internal

#endif  // LRSCHED_SERVER_SQLITE_SCHEMA_H_
