// Copyright lrsched authors.
//
// SqliteStore::Writer (internal to sqlite_store*.cc and journal*.cc): the store's one
// read-write connection and its prepared statements, built by Open (sqlite_store_open.cc) and
// used by the writer of the moment (sqlite_store.cc) or, with the journal, by the applier
// (journal_apply.cc); and SqliteStore::Pending, a mutation waiting for its batch.
//
// Invariant: members are destroyed in reverse order, the statements before their connection.
#ifndef LRSCHED_SERVER_SQLITE_STORE_WRITER_H_
#define LRSCHED_SERVER_SQLITE_STORE_WRITER_H_

#include "server/store/sqlite/db.h"
#include "server/store/sqlite/sqlite_store.h"

namespace lrsched {

struct SqliteStore::Writer {
  sqlite_internal::Db db;
  sqlite_internal::Stmt begin, commit, rollback, select_revision, insert, update, erase, load_all;
  // Sets meta's commit_seq inside each write transaction (server/store/sqlite/schema.h).
  sqlite_internal::Stmt update_seq;
  // The journal's applier and replay: a row written with the revision the journal decided.
  sqlite_internal::Stmt upsert;
};

// One caller's mutation while it waits in Commit. It lives on the caller's stack: the
// committer must not touch it after setting `done`, since the caller may return at once.
struct SqliteStore::Pending {
  const Mutation* m;
  absl::StatusOr<int64_t> result = absl::InternalError("not committed");
  bool done = false;  // guarded by mu_
  // CommitAsync: the Pending is on the heap, owns its mutation, and is answered (and deleted)
  // through the callback instead of `done`.
  Mutation owned{};
  CommitCallback callback{};
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_SQLITE_STORE_WRITER_H_
