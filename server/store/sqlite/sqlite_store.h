// Copyright lrsched authors.
//
// SqliteStore: the embedded Store, one SQLite database file <dir>/lrsched.db in WAL mode, for
// a single lrsched process.
//
// Writes go through group commit: Commit enqueues its mutation and blocks (CommitAsync
// enqueues it and returns, its callback runs after the batch); one writer at a time takes
// everything queued (up to max_batch), applies it in arrival order inside one transaction,
// COMMITs (one fsync per batch under synchronous=FULL) and then wakes each caller with its own
// result. The writer is the caller itself when nobody is writing and the caller may wait for
// the disk (Commit, which blocks anyway; CommitAsync under NORMAL, where a commit does not
// fsync), LevelDB-style: it drains a few batches and leaves the rest to the committer thread,
// which writes everything else (CommitAsync under FULL, whose caller must not block).
// Compare-and-swap is checked inside the transaction, so one mutation's FAILED_PRECONDITION
// skips only that mutation; a failed COMMIT (disk full, I/O error) fails every mutation of the
// batch and acknowledges none.
//
// Revisions are per key: the first put of a key yields 1, each later put the previous + 1; a
// delete removes the row (and returns 0), so a key put again after a delete starts over at 1.
//
// The store is the database's only user: the data directory is locked (DataDirLock, <dir>/LOCK)
// and the one connection holds SQLite's lock in EXCLUSIVE locking mode, so that no transaction
// pays for file locks or shared memory (the WAL index lives in the heap). Other programs cannot
// read the file while the store is open; stop the server, or read through the API. WAL
// checkpoints (copying the WAL back into the database file) need that connection too, so they
// run in the writer's place: once the WAL holds `checkpoint_pages` frames, the writer of the
// moment hands over to the committer thread, which checkpoints while new commits queue up, so
// that a caller's thread (a gRPC thread, with inline writes) never waits for one. Under NORMAL
// a WalSyncer thread syncs the WAL every quarter of that interval, so that the checkpoint,
// which must sync it first, finds little left to sync (server/store/sqlite/wal_syncer.h).
//
// Invariants: one writer at a time (writer_busy_): the thread that set it is the only one using
// the connection, for a batch, a checkpoint or LoadAll. Open never modifies a file that is not
// an lrsched database (see server/store/sqlite/schema.h), nor one it refuses for missing commits.
// Each write transaction that applies a mutation also increments the database's commit sequence
// number, and <dir>/COMMITTED is rewritten with it after the COMMIT, before the batch's
// callers are answered (server/store/sqlite/highwater.h). After Close, Commit fails UNAVAILABLE;
// every Commit that was accepted before Close has its result (committed or not) reported before
// Close returns.
#ifndef LRSCHED_SERVER_SQLITE_STORE_H_
#define LRSCHED_SERVER_SQLITE_STORE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/store.h"

struct sqlite3;

namespace lrsched {
class DataDirLock;
namespace sqlite_internal {
class HighWaterFile;
class JournalWriter;
struct JournalEntry;
struct JournalReplay;
class WalSyncer;
}  // namespace sqlite_internal

class SqliteStore final : public Store {
 public:
  struct Options {
    // Created (with parents) if missing. The database is <dir>/lrsched.db.
    std::string dir = "data";
    // kFull: a commit survives power loss once acknowledged (the WAL is fsynced per batch).
    // kNormal: the WAL is fsynced only at checkpoints; an acknowledged commit survives a crash
    // of the process but not of the machine, which weakens Store's durability promise.
    enum class Synchronous { kNormal, kFull };
    Synchronous synchronous = Synchronous::kFull;
    // Most mutations per transaction; larger batches amortize the fsync further but make the
    // first caller of a batch wait for all of it.
    int max_batch = 1024;
    // If > 0, the database may not grow beyond about this many bytes; commits that would
    // exceed it fail UNAVAILABLE ("database or disk is full"), as on a full disk.
    int64_t max_db_bytes = 0;
    // WAL frames (pages) after which the committer thread checkpoints. Each checkpoint copies
    // the distinct pages of the WAL and (NORMAL and FULL alike) fsyncs twice, holding up
    // commits meanwhile: larger values make them rarer, a larger WAL file the price.
    int checkpoint_pages = 4000;  // a 16 MiB WAL; SQLite's own default is 1000
    // Start even though <dir>/COMMITTED shows that acknowledged commits are missing from the
    // database (a cut or damaged -wal file), or is itself damaged: serve what the database
    // holds, log a warning with both numbers and reset the file to the database's.
    bool accept_data_loss = false;

    // The journal (server/store/sqlite/journal.h, README "The journal"): each commit batch is
    // appended to DATA_DIR/journal/ with one write(2) (and, under kFull, one fdatasync) before
    // its callers are answered, and a background applier copies the journal into lrsched.db in
    // large transactions. false: every batch is a SQLite transaction on the reply path. Either
    // way Open replays a journal left by an earlier run, and Close applies everything, so that
    // lrsched.db alone is complete after a clean stop.
    bool journal = true;
    // A segment that has reached this size is closed and a new one started.
    int64_t journal_segment_bytes = int64_t{64} << 20;
    // Appends wait (counted: JournalStats::waits) while this many journal bytes are appended
    // but not yet applied; the applier starts at once when half of it is reached.
    int64_t journal_max_backlog_bytes = int64_t{256} << 20;
    // How long appended batches wait before the applier copies them into lrsched.db: the
    // longer, the more steps of one session fold into one row write. Each apply rewrites the
    // pages of every session stepped since the last (~150 pages for 1,000 sessions), so at
    // 200 ms that was ~2 KB per Step at 2,700 Steps/s (bench/README, "The journal"); 1 s keeps
    // at most a second of steps to replay and in memory.
    absl::Duration journal_apply_delay = absl::Seconds(1);

    // Tests of the real binary (main.cc reads them from the environment): abort() in the
    // applier's transaction after it wrote the applied sequence number but before COMMIT
    // ("apply_before_commit"), or right after COMMIT ("apply_after_commit"); and a full disk:
    // after `journal_enospc_after` journal writes, the next `journal_enospc_count` fail ENOSPC.
    std::string crash_point_for_testing;
    int64_t journal_enospc_after_for_testing = -1;
    int64_t journal_enospc_count_for_testing = 0;
  };

  // Opens or creates the store. Refuses (without touching the file) a file that is not an
  // lrsched database, one written by a newer schema, or a damaged one; see
  // server/store/sqlite/schema.h. Refuses (DATA_LOSS, touching nothing) a database that lacks
  // commits <dir>/COMMITTED records as acknowledged, unless accept_data_loss; see
  // server/store/sqlite/highwater.h. Migrates a file of an older schema version. A failure for want
  // of disk space says so (server/store/sqlite/disk_space.h).
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const Options& options);

  ~SqliteStore() override;  // Close()s
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  absl::StatusOr<int64_t> Commit(const Mutation& m) override;
  // Queued like Commit; `done` runs on the writing thread right after the batch's transaction
  // (committed or failed), before the next batch starts: under NORMAL possibly on this
  // caller's thread before CommitAsync returns, or on another caller's.
  void CommitAsync(Mutation m, CommitCallback done) override;
  bool async_commit() const override { return true; }
  // Visits rows in name order (bytewise) within one read snapshot, holding the writer's place
  // (commits queue meanwhile): `fn` must not call the store. UNAVAILABLE after Close.
  absl::Status LoadAll(
      const std::function<absl::Status(std::string_view name, std::string_view value,
                                       int64_t revision)>& fn) override;
  void Close() override;
  Stats stats() const override;

  const std::string& path() const { return path_; }

  // Mutations waiting for a writer, and those in the batch being written right now: a
  // gauge for metrics (a growing queue means the disk cannot keep up), and what lets tests
  // line up a batch deterministically.
  struct Backlog {
    int64_t queued = 0;
    int64_t writing = 0;
  };
  Backlog backlog() const;

  // WAL checkpoints completed so far, the time they took (commits wait meanwhile), and the
  // background WAL syncs (NORMAL only): for metrics and tests.
  int64_t checkpoints() const { return checkpoints_.load(std::memory_order_relaxed); }
  absl::Duration checkpoint_time() const {
    return absl::Microseconds(checkpoint_micros_.load(std::memory_order_relaxed));
  }
  int64_t wal_syncs() const { return wal_syncs_.load(std::memory_order_relaxed); }

  // The journal's counters and gauges (all 0 when Options::journal is false), for metrics.
  struct JournalStats {
    int64_t bytes = 0;             // appended since Open, segment headers included
    int64_t syncs = 0;             // fdatasyncs of the journal since Open
    int64_t backlog_bytes = 0;     // appended, not yet applied to lrsched.db
    int64_t waits = 0;             // appends that waited for the applier (backlog at its limit)
    int64_t applies = 0;           // apply transactions committed
    int64_t segments = 0;          // segment files in DATA_DIR/journal
    int64_t replayed_records = 0;  // records Open replayed (past the database's applied number)
  };
  JournalStats journal_stats() const;
  bool journaled() const { return journal_ != nullptr; }

  // Called by the writing thread after each transaction (committed or failed) with its
  // number of mutations and how long it took (BEGIN to COMMIT, fsync included), for metrics.
  // It must be cheap and must not call the store. Empty (the default): nothing is called.
  using BatchObserver = std::function<void(int64_t batch_size, absl::Duration latency)>;
  void SetBatchObserver(BatchObserver observer);

 private:
  struct Pending;
  struct Writer;  // the connection and its prepared statements

  SqliteStore(Options options, std::string path);
  // Open's work, whose failures Open then explains (disk full).
  static absl::StatusOr<std::unique_ptr<SqliteStore>> OpenImpl(const Options& options,
                                                               const std::string& path);
  // Batches one writer writes before leaving the rest to the committer thread, so a caller
  // that became the writer under sustained load returns to its own work.
  static constexpr int kLeaderRounds = 4;

  void CommitterLoop();
  bool CommitterHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool WriterFreeOrClosing() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Called by the thread that set writer_busy_: writes queued batches until the queue is empty
  // or `max_rounds` batches are written (< 0: no limit: the committer thread), then clears
  // writer_busy_. A writer other than the committer stops early when a checkpoint is due.
  void WriteQueued(int max_rounds);
  // The writer-role holder (the committer thread) copies the WAL back into the database file.
  void Checkpoint();
  // sqlite3_wal_hook: runs inside each COMMIT, on the writer-role holder's thread.
  static int WalHook(void* self, sqlite3* db, const char* schema, int pages);
  // Applies one batch in one transaction and fills each Pending's result.
  void WriteBatch(Pending* const* batch, size_t n);
  // Applies one mutation inside the open transaction. A non-OK `fatal` means the transaction
  // itself failed and the whole batch must be abandoned.
  absl::StatusOr<int64_t> Apply(const Mutation& m, absl::Status& fatal);

  // The journal (journal_commit.cc, journal_apply.cc, journal_replay.cc).
  struct Unapplied;  // one appended record, kept until the applier has copied it
  // WriteBatch's journal form: decides each mutation against revisions_, appends the batch as
  // one record (waiting first while the backlog is at its limit) and hands it to the applier.
  void JournalBatch(Pending* const* batch, size_t n);
  // Appends batch[begin..) as one record, up to its size budget; returns where it stopped.
  size_t JournalRecord(Pending* const* batch, size_t begin, size_t n);
  // Waits while the backlog is over its limit; UNAVAILABLE if the applier is failing then.
  absl::Status WaitForBacklog();
  void ApplierLoop();
  bool ApplyDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(apply_mu_);
  bool ApplyDueOrPending() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(apply_mu_);
  bool BacklogBelowLimitOrFailing() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(apply_mu_);
  // Copies `records` into lrsched.db (WriteEntries, the last write of each name only) and
  // deletes the segments now applied. Takes conn_mu_.
  absl::Status ApplyRecords(const std::vector<Unapplied>& records);
  // One transaction that writes `entries` (at most one per name: a put's value and revision, or
  // a delete) and sets commit_seq to `seq`; the caller owns the connection (conn_mu_, or Open).
  // `crash_points`: the applier's, where Options::crash_point_for_testing may abort().
  absl::Status WriteEntries(const std::vector<const sqlite_internal::JournalEntry*>& entries,
                            int64_t seq, bool crash_points);
  // Applies everything appended so far (LoadAll, Close); the applier's error if it fails.
  absl::Status FlushJournal();
  // Close's part: applies everything, stops the applier and removes the journal, so that
  // lrsched.db alone is complete (or keeps it for the next start if the apply fails).
  void CloseJournal();
  // Open's part (journal_replay.cc): writes what `replay` read past the database's commit_seq
  // (`*seq`, advanced to the last record replayed) into lrsched.db, then removes the journal
  // (and, without Options::journal, its directory); logs what was replayed or dropped.
  absl::Status ReplayJournal(const sqlite_internal::JournalReplay& replay, const std::string& dir,
                             int64_t* seq);
  // Open's part with Options::journal: a new segment at `seq` + 1, revisions_ from lrsched.db.
  absl::Status StartJournal(const std::string& dir, int64_t seq);

  const Options options_;
  const std::string path_;
  const bool inline_async_;  // CommitAsync may write on its caller's thread (NORMAL)

  // Touched only by the thread that owns writer_busy_ (and by Open before, Close after).
  std::unique_ptr<Writer> writer_;
  // The commit sequence number of the last committed write transaction
  // (server/store/sqlite/schema.h), and <dir>/COMMITTED, rewritten with it after each COMMIT
  // (server/store/sqlite/highwater.h).
  int64_t commit_seq_ = 0;
  std::unique_ptr<sqlite_internal::HighWaterFile> high_water_;
  std::vector<Pending*> batch_;
  bool checkpoint_due_ = false;  // set by WalHook
  int checkpoint_at_;            // WAL frames that make one due (raised after a failure)
  int sync_at_;                  // WAL frames at which WalHook next asks wal_syncer_
  // NORMAL only; stopped before the connection closes.
  std::unique_ptr<sqlite_internal::WalSyncer> wal_syncer_;
  // Released last, once the connection is closed.
  std::unique_ptr<DataDirLock> dir_lock_;

  // The journal (Options::journal; nullptr otherwise). The writer-role holder appends to it
  // and alone reads or changes revisions_: every stored key's current revision, from which
  // compare-and-swap and new revisions are decided while lrsched.db lags behind the journal.
  // In journal mode the connection (writer_) belongs to the applier thread and to LoadAll,
  // which take conn_mu_ to use it.
  std::unique_ptr<sqlite_internal::JournalWriter> journal_;
  std::string journal_dir_;
  absl::flat_hash_map<std::string, int64_t> revisions_;
  int64_t enospc_left_ = 0;  // Options::journal_enospc_count_for_testing still to fail
  absl::Mutex conn_mu_;
  std::thread applier_;

  mutable absl::Mutex apply_mu_;
  std::vector<Unapplied> unapplied_ ABSL_GUARDED_BY(apply_mu_);  // in seq order
  int64_t unapplied_bytes_ ABSL_GUARDED_BY(apply_mu_) = 0;
  int64_t appended_seq_ ABSL_GUARDED_BY(apply_mu_) = 0;  // the last record appended
  int64_t applied_seq_ ABSL_GUARDED_BY(apply_mu_) = 0;   // the last record in lrsched.db
  int64_t flush_to_ ABSL_GUARDED_BY(apply_mu_) = 0;      // apply at once up to this seq
  absl::Status apply_error_ ABSL_GUARDED_BY(apply_mu_);  // the last apply's, until one works
  int64_t apply_failures_ ABSL_GUARDED_BY(apply_mu_) = 0;
  bool apply_stop_ ABSL_GUARDED_BY(apply_mu_) = false;
  std::atomic<int64_t> journal_waits_{0};
  std::atomic<int64_t> journal_applies_{0};
  std::atomic<int64_t> replayed_records_{0};

  mutable absl::Mutex mu_;
  std::deque<Pending*> queue_ ABSL_GUARDED_BY(mu_);
  int64_t writing_ ABSL_GUARDED_BY(mu_) = 0;
  bool writer_busy_ ABSL_GUARDED_BY(mu_) = false;           // a thread is writing batches
  bool checkpoint_requested_ ABSL_GUARDED_BY(mu_) = false;  // for the committer thread
  bool closing_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex close_mu_;  // serializes Close; held while draining
  bool closed_ ABSL_GUARDED_BY(close_mu_) = false;
  std::thread committer_;

  absl::Mutex observer_mu_;
  BatchObserver observer_ ABSL_GUARDED_BY(observer_mu_);

  std::atomic<int64_t> commits_{0};
  std::atomic<int64_t> transactions_{0};
  std::atomic<int64_t> checkpoints_{0};
  std::atomic<int64_t> checkpoint_micros_{0};
  std::atomic<int64_t> wal_syncs_{0};
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_SQLITE_STORE_H_
