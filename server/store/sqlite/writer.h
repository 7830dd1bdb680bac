// Copyright lrsched authors.
//
// SqliteStore::Writer (internal to sqlite_store*.cc): the store's one read-write connection
// and its prepared statements, built by Open (sqlite_store_open.cc) and used by the writer of
// the moment (sqlite_store.cc).
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
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_SQLITE_STORE_WRITER_H_
