// Copyright lrsched authors.
//
// Start-up's part of the journal (internal to SqliteStore::Open): reading DATA_DIR/journal past
// what lrsched.db holds, and removing the journal once the database holds all of it.
//
// Open reads the journal before it decides whether to serve (the COMMITTED check compares the
// acknowledged history with the database and the journal together), writes what it read into
// the database in one transaction (SqliteStore::WriteEntries), and only then removes the
// segments: a crash anywhere in between replays the same records again, with the same result
// (each entry carries the revision it was given, so writing it twice is writing it once).
#ifndef LRSCHED_SERVER_SQLITE_JOURNAL_REPLAY_H_
#define LRSCHED_SERVER_SQLITE_JOURNAL_REPLAY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/store/sqlite/journal.h"

namespace lrsched::sqlite_internal {

// What the journal holds past the database's commit sequence number.
struct JournalReplay {
  JournalScan scan;      // the whole journal, validated
  int64_t records = 0;   // records past db_seq
  int64_t last_seq = 0;  // the last of them (0: none)
  // The last entry of each name among those records: all a replay writes.
  absl::flat_hash_map<std::string, JournalEntry> last;
  std::vector<const JournalEntry*> Entries() const;
};

// Reads and validates DATA_DIR/journal (`dir`; missing: empty) with ScanJournal; its errors as
// they are.
absl::StatusOr<JournalReplay> ReadJournal(const std::string& dir, int64_t db_seq);

// Deletes every segment file in `dir` and syncs the directory (OK if `dir` does not exist);
// with `remove_dir`, the directory too once empty. UNAVAILABLE naming the file that could not be
// removed.
absl::Status RemoveJournal(const std::string& dir, bool remove_dir);

}  // namespace lrsched::sqlite_internal

#endif  // LRSCHED_SERVER_SQLITE_JOURNAL_REPLAY_H_
