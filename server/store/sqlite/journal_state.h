// Copyright lrsched authors.
//
// SqliteStore::Unapplied (internal to the journal's .cc files): one record appended to the
// journal and not yet applied to lrsched.db, kept in memory by the store so that the applier
// never reads the journal back.
//
// Invariant: `entries` are the record's, in order; `bytes` is what the record added to the
// backlog (its payload), counted out once the applier committed it.
#ifndef LRSCHED_SERVER_SQLITE_JOURNAL_STATE_H_
#define LRSCHED_SERVER_SQLITE_JOURNAL_STATE_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "server/store/sqlite/journal.h"
#include "server/store/sqlite/sqlite_store.h"

namespace lrsched {

struct SqliteStore::Unapplied {
  int64_t seq = 0;
  std::vector<sqlite_internal::JournalEntry> entries;
  int64_t bytes = 0;
  absl::Time appended;  // when the applier's delay for it started
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_SQLITE_JOURNAL_STATE_H_
