// Copyright lrsched authors.
#include "server/store/sqlite/sqlite_store.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/ops/log.h"
#include "server/store/sqlite/data_dir_lock.h"
#include "server/store/sqlite/db.h"
#include "server/store/sqlite/highwater.h"
#include "server/store/sqlite/journal_state.h"
#include "server/store/sqlite/wal_syncer.h"
#include "server/store/sqlite/writer.h"

namespace lrsched {

using sqlite_internal::SqliteError;
using sqlite_internal::Stmt;

namespace {

// WAL frames between two background syncs: 1 MiB of 4 KiB pages, or a quarter of the
// checkpoint interval if that is shorter. What is left unsynced when a checkpoint starts is
// what the checkpoint waits for.
int SyncInterval(int checkpoint_pages) { return std::clamp(checkpoint_pages / 4, 1, 256); }

}  // namespace

SqliteStore::SqliteStore(Options options, std::string path)
    : options_(std::move(options)),
      path_(std::move(path)),
      inline_async_(options_.synchronous == Options::Synchronous::kNormal),
      checkpoint_at_(options_.checkpoint_pages),
      sync_at_(SyncInterval(options_.checkpoint_pages)) {
  batch_.reserve(std::min<size_t>(static_cast<size_t>(options_.max_batch), 4096));
}

SqliteStore::~SqliteStore() { Close(); }

absl::StatusOr<int64_t> SqliteStore::Commit(const Mutation& m) {
  Pending p{&m};
  {
    absl::MutexLock l(&mu_);
    if (closing_) return absl::UnavailableError(absl::StrCat(path_, ": store is closed"));
    queue_.push_back(&p);
    // This caller blocks until its commit is done anyway: when nobody is writing, it writes
    // the batch itself rather than wake the committer and sleep (two thread switches saved).
    if (writer_busy_) {
      mu_.Await(absl::Condition(&p.done));
      return std::move(p.result);
    }
    writer_busy_ = true;
  }
  WriteQueued(kLeaderRounds);
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(&p.done));  // written by now, unless a round limit cut in first
  return std::move(p.result);
}

void SqliteStore::CommitAsync(Mutation m, CommitCallback done) {
  auto* p = new Pending{nullptr};
  p->owned = std::move(m);
  p->m = &p->owned;
  p->callback = std::move(done);
  {
    absl::MutexLock l(&mu_);
    if (!closing_) {
      queue_.push_back(p);
      // Without an fsync per commit, writing costs about what waking the committer does, and
      // answering from this (gRPC) thread spares gRPC a cross-thread Finish: write it here.
      // With FULL the caller must not wait for the disk: the committer writes it.
      if (!inline_async_ || writer_busy_) return;
      writer_busy_ = true;
      p = nullptr;  // owned by the queue now
    }
  }
  if (p == nullptr) {
    WriteQueued(kLeaderRounds);
    return;
  }
  done = std::move(p->callback);
  delete p;
  done(absl::UnavailableError(absl::StrCat(path_, ": store is closed")));
}

bool SqliteStore::CommitterHasWork() const {
  return !writer_busy_ && (!queue_.empty() || checkpoint_requested_ || closing_);
}

bool SqliteStore::WriterFreeOrClosing() const { return !writer_busy_ || closing_; }

void SqliteStore::CommitterLoop() {
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &SqliteStore::CommitterHasWork));
      // Close waits for the queue to drain: exit only when nothing is left to answer (closing
      // the connection checkpoints anyway).
      if (queue_.empty() && closing_) return;
      checkpoint_requested_ = false;
      writer_busy_ = true;
    }
    WriteQueued(/*max_rounds=*/-1);
  }
}

int SqliteStore::WalHook(void* self, sqlite3*, const char*, int pages) {
  auto* store = static_cast<SqliteStore*>(self);
  if (pages >= store->checkpoint_at_) store->checkpoint_due_ = true;
  if (store->wal_syncer_ != nullptr && pages >= store->sync_at_) {
    store->wal_syncer_->Request();
    store->sync_at_ = pages + SyncInterval(store->options_.checkpoint_pages);
  }
  return SQLITE_OK;  // the commit itself succeeded, whatever comes of a checkpoint
}

void SqliteStore::Checkpoint() {
  checkpoint_due_ = false;
  int wal_frames = 0, copied = 0;
  const absl::Time t0 = absl::Now();
  // PASSIVE copies everything: no reader can hold frames back, this is the only connection.
  int rc = sqlite3_wal_checkpoint_v2(writer_->db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                     &wal_frames, &copied);
  const absl::Duration took = absl::Now() - t0;
  checkpoint_micros_.fetch_add(absl::ToInt64Microseconds(took), std::memory_order_relaxed);
  if (rc != SQLITE_OK) {
    // Not fatal: the WAL keeps every commit. Try again once it has grown as much again,
    // rather than after every commit.
    checkpoint_at_ = std::max(wal_frames, 0) + options_.checkpoint_pages;
    logging::Warning("wal_checkpoint_failed")
        .Kv("path", path_)
        .Kv("wal_frames", wal_frames)
        .Err(SqliteError(writer_->db.get(), rc, "checkpoint"));
    return;
  }
  checkpoint_at_ = options_.checkpoint_pages;
  sync_at_ = SyncInterval(options_.checkpoint_pages);  // the WAL restarts at the next commit
  checkpoints_.fetch_add(1, std::memory_order_relaxed);
  logging::Debug("wal_checkpoint")
      .Kv("wal_frames", wal_frames)
      .Kv("copied", copied)
      .Kv("ms", absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(took)));
}

void SqliteStore::WriteQueued(int max_rounds) {
  const size_t max_batch = static_cast<size_t>(options_.max_batch);
  const bool committer = max_rounds < 0;
  std::vector<Pending*>& batch = batch_;
  for (int round = 0;; ++round) {
    // With the journal the applier owns the connection and checkpoints (journal_apply.cc).
    const bool checkpoint_due = journal_ == nullptr && checkpoint_due_;
    if (committer && checkpoint_due) Checkpoint();
    {
      absl::MutexLock l(&mu_);
      // A checkpoint holds up commits for milliseconds: a caller's thread leaves it to the
      // committer's.
      const bool hand_over = !committer && journal_ == nullptr && checkpoint_due_;
      if (hand_over || queue_.empty() || round == max_rounds) {
        // What is still queued (or the checkpoint) now wakes the committer: its condition
        // turns true.
        checkpoint_requested_ = checkpoint_requested_ || hand_over;
        writer_busy_ = false;
        return;
      }
      size_t n = std::min(queue_.size(), max_batch);
      batch.assign(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
      writing_ = static_cast<int64_t>(n);
    }
    // Callers that arrive while this batch is being written (and fsynced) queue up and form
    // the next batch: that is the whole group-commit mechanism.
    absl::Time t0 = absl::Now();
    if (journal_ != nullptr) {
      JournalBatch(batch.data(), batch.size());
    } else {
      WriteBatch(batch.data(), batch.size());
    }
    {
      // Before the callers wake, so a caller that reads metrics after its reply sees its batch.
      absl::MutexLock l(&observer_mu_);
      if (observer_) observer_(static_cast<int64_t>(batch.size()), absl::Now() - t0);
    }
    size_t async = 0;
    {
      absl::MutexLock l(&mu_);
      for (Pending* p : batch) {
        if (p->callback) {
          batch[async++] = p;  // answered below, outside the lock
        } else {
          p->done = true;  // the waiting caller owns p: hands off from here
        }
      }
      writing_ = 0;
    }
    // Still the writer: a callback's own CommitAsync queues behind, for the next round.
    for (size_t i = 0; i < async; ++i) {
      Pending* p = batch[i];
      p->callback(std::move(p->result));
      delete p;
    }
  }
}

namespace {

// Steps a reused statement once and resets it, returning the step's result code.
int StepOnce(Stmt& stmt) {
  int rc = stmt.Step();
  stmt.Reset();
  return rc;
}

}  // namespace

void SqliteStore::WriteBatch(Pending* const* batch, size_t n) {
  sqlite3* db = writer_->db.get();
  absl::Status fatal;
  int rc = StepOnce(writer_->begin);
  if (rc != SQLITE_DONE) fatal = SqliteError(db, rc, absl::StrCat(path_, ": BEGIN"));
  int64_t applied = 0;
  for (size_t i = 0; i < n && fatal.ok(); ++i) {
    batch[i]->result = Apply(*batch[i]->m, fatal);
    if (batch[i]->result.ok()) ++applied;
  }
  // One more row write per transaction that changes something: the sequence number the
  // COMMITTED file is compared with at start-up (kept here, never read back).
  const int64_t seq = commit_seq_ + 1;
  if (fatal.ok() && applied > 0) {
    writer_->update_seq.BindInt(1, seq);
    rc = StepOnce(writer_->update_seq);
    if (rc != SQLITE_DONE) fatal = SqliteError(db, rc, absl::StrCat(path_, ": commit_seq"));
  }
  if (fatal.ok()) {
    rc = StepOnce(writer_->commit);
    if (rc != SQLITE_DONE) fatal = SqliteError(db, rc, absl::StrCat(path_, ": COMMIT"));
  }
  if (!fatal.ok()) {
    // Some errors (SQLITE_FULL, IOERR) already roll the transaction back; others leave it
    // open, and a later BEGIN would fail on it.
    if (!sqlite3_get_autocommit(db)) StepOnce(writer_->rollback);
    for (size_t i = 0; i < n; ++i) batch[i]->result = fatal;
    return;
  }
  if (applied > 0) {
    // Committed now; the callers are answered only after this, so the file never records less
    // than what was acknowledged (short of a failed write, which Record logs).
    commit_seq_ = seq;
    high_water_->Record(seq);
    commits_.fetch_add(applied, std::memory_order_relaxed);
    transactions_.fetch_add(1, std::memory_order_relaxed);
  }
}

absl::StatusOr<int64_t> SqliteStore::Apply(const Mutation& m, absl::Status& fatal) {
  sqlite3* db = writer_->db.get();
  // An error of one statement that SQLite undid by itself, with the transaction still open,
  // concerns this mutation only; anything else dooms the transaction.
  auto fail = [&](int rc, const char* what) -> absl::Status {
    absl::Status s =
        SqliteError(db, rc, absl::StrCat(path_, ": ", what, " session \"", m.name, "\""));
    int primary = rc & 0xff;
    bool local =
        (primary == SQLITE_TOOBIG || primary == SQLITE_CONSTRAINT || primary == SQLITE_RANGE) &&
        !sqlite3_get_autocommit(db);
    if (!local) fatal = s;
    return s;
  };

  int rc = writer_->select_revision.BindText(1, m.name);
  if (rc != SQLITE_OK) {
    writer_->select_revision.Reset();
    return fail(rc, "bind");
  }
  rc = writer_->select_revision.Step();
  std::optional<int64_t> current;
  if (rc == SQLITE_ROW) {
    current = writer_->select_revision.ColumnInt(0);
    rc = writer_->select_revision.Step();
  }
  writer_->select_revision.Reset();
  if (rc != SQLITE_DONE) return fail(rc, "read revision of");

  int64_t have = current.value_or(0);
  if (m.expected_revision.has_value() && *m.expected_revision != have) {
    return absl::FailedPreconditionError(
        absl::StrCat("session \"", m.name, "\": expected revision ", *m.expected_revision,
                     ", current revision ", have, current.has_value() ? "" : " (does not exist)"));
  }

  if (m.kind == Mutation::Kind::kDelete) {
    if (!current.has_value()) return 0;  // deletes are idempotent
    writer_->erase.BindText(1, m.name);  // cannot fail: the same name bound fine above
    rc = StepOnce(writer_->erase);
    if (rc != SQLITE_DONE) return fail(rc, "delete");
    return 0;
  }

  Stmt& write = current.has_value() ? writer_->update : writer_->insert;
  int64_t revision = have + 1;
  rc = write.BindText(1, m.name);
  if (rc == SQLITE_OK) rc = write.BindBlob(2, m.value);
  if (rc == SQLITE_OK && current.has_value()) rc = write.BindInt(3, revision);
  if (rc != SQLITE_OK) {
    write.Reset();
    return fail(rc, "bind");
  }
  rc = StepOnce(write);
  if (rc != SQLITE_DONE) return fail(rc, "write");
  return revision;
}

absl::Status SqliteStore::LoadAll(
    const std::function<absl::Status(std::string_view, std::string_view, int64_t)>& fn) {
  {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(this, &SqliteStore::WriterFreeOrClosing));
    if (closing_) return absl::UnavailableError(absl::StrCat(path_, ": store is closed"));
    writer_busy_ = true;  // Close waits for it: the committer exits only once it is clear
  }
  absl::Status s;
  // With the journal, lrsched.db holds everything once the applier has caught up (no append
  // can come meanwhile: this thread holds the writer's place), and the applier must not use the
  // connection while the rows are read.
  if (journal_ != nullptr) s = FlushJournal();
  absl::MutexLock conn(&conn_mu_);
  Stmt& q = writer_->load_all;
  int rc = SQLITE_DONE;
  while (s.ok() && (rc = q.Step()) == SQLITE_ROW) {
    s = fn(q.ColumnText(0), q.ColumnBlob(1), q.ColumnInt(2));
  }
  q.Reset();  // ends the read snapshot
  if (s.ok() && rc != SQLITE_DONE) {
    s = SqliteError(writer_->db.get(), rc, absl::StrCat(path_, ": LoadAll"));
  }
  absl::MutexLock l(&mu_);
  writer_busy_ = false;  // commits queued meanwhile wake the committer
  return s;
}

void SqliteStore::Close() {
  absl::MutexLock close_lock(&close_mu_);
  if (closed_) return;
  closed_ = true;
  {
    absl::MutexLock l(&mu_);
    closing_ = true;
  }
  if (committer_.joinable()) committer_.join();
  if (applier_.joinable()) CloseJournal();
  wal_syncer_.reset();
  // Closing the last connection checkpoints the WAL into the database file and removes it;
  // only then may another process take the directory.
  writer_.reset();
  dir_lock_.reset();
}

SqliteStore::Backlog SqliteStore::backlog() const {
  absl::MutexLock l(&mu_);
  return Backlog{static_cast<int64_t>(queue_.size()), writing_};
}

void SqliteStore::SetBatchObserver(BatchObserver observer) {
  absl::MutexLock l(&observer_mu_);
  observer_ = std::move(observer);
}

Store::Stats SqliteStore::stats() const {
  Stats s;
  s.commits = commits_.load(std::memory_order_relaxed);
  s.transactions = transactions_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace lrsched
