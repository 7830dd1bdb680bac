// Copyright lrsched authors.
//
// WalCheckpointer: copies SQLite's write-ahead log back into the database file on a thread of
// its own, so that no commit pays for it.
//
// By default SQLite checkpoints inside the COMMIT that pushes the WAL past 1,000 pages: that
// commit copies ~4 MB and fsyncs the database (and, under synchronous=NORMAL, the WAL too),
// which stalls whichever thread commits: with SqliteStore's inline writers a gRPC thread, for
// milliseconds. This class replaces that with a wal hook on the writing connection: past
// `background_pages` the hook only wakes the checkpointer, which runs a PASSIVE checkpoint
// through its own connection, concurrently with further commits (WAL allows one checkpointer
// beside the writer). The WAL restarts from its beginning at the first write after a
// checkpoint that caught up. A checkpoint that never catches up (commits arriving faster than
// it copies) would let the WAL grow without bound, so past `inline_pages` the writer
// checkpoints in its own COMMIT, as SQLite would.
//
// Invariants: the hook stays installed on `writer` for the object's lifetime; the destructor
// stops the thread and closes its connection; it must run before `writer` is closed, so the
// writer's close, as the last connection, can checkpoint and remove the WAL.
#ifndef LRSCHED_SERVER_SQLITE_CHECKPOINTER_H_
#define LRSCHED_SERVER_SQLITE_CHECKPOINTER_H_

#include <sqlite3.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/sqlite_db.h"

namespace lrsched::sqlite_internal {

class WalCheckpointer {
 public:
  struct Options {
    int background_pages = 1000;  // SQLite's own default threshold
    int inline_pages = 16000;     // ~64 MB of WAL with 4 KiB pages
  };

  // Opens a second connection to `path` and installs the hook on `writer`.
  static absl::StatusOr<std::unique_ptr<WalCheckpointer>> Start(const std::string& path,
                                                                sqlite3* writer,
                                                                Options options);
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Background checkpoints run so far (for tests and metrics).
  int64_t checkpoints() const { return checkpoints_.load(std::memory_order_relaxed); }

 private:
  WalCheckpointer(sqlite3* writer, Options options, Db db);
  static int Hook(void* self, sqlite3* db, const char* schema, int pages);
  void Run();
  bool WantsWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return requested_ || stop_; }

  sqlite3* const writer_;
  const Options options_;
  Db db_;  // the checkpointer's own connection; used by its thread only

  // Set by the hook, cleared by the thread: the hook takes mu_ only when it turns true.
  std::atomic<bool> pending_{false};
  std::atomic<int> copied_{0};  // WAL frames the last checkpoint had copied back
  absl::Mutex mu_;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int64_t> checkpoints_{0};
  std::thread thread_;
};

}  // namespace lrsched::sqlite_internal

#endif  // LRSCHED_SERVER_SQLITE_CHECKPOINTER_H_
