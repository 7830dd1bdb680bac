// Copyright lrsched authors.
//
// SqliteStore's applier (Options::journal): the thread that copies appended journal records
// into lrsched.db in large transactions and then deletes the journal segments they emptied.
//
// Why a delay: a Step rewrites its session's row, and SQLite writes a whole 4 KiB page for it.
// Applying after journal_apply_delay writes each session once for all the steps it took
// meanwhile, which is where the journal's saving in bytes written comes from. The applier starts
// at once when half of the backlog limit is reached, or when LoadAll or Close ask for all.
//
// Why the transaction is synchronous=FULL even when the journal is not: a segment is deleted
// only once what it held is durable in lrsched.db (journal.h's invariant), and one fsync per
// apply costs nothing next to the appends it covers.
#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/ops/log.h"
#include "server/store/sqlite/db.h"
#include "server/store/sqlite/journal.h"
#include "server/store/sqlite/journal_replay.h"
#include "server/store/sqlite/journal_state.h"
#include "server/store/sqlite/sqlite_store.h"
#include "server/store/sqlite/writer.h"

namespace lrsched {

using sqlite_internal::JournalEntry;
using sqlite_internal::SqliteError;
using sqlite_internal::Stmt;

namespace {

// After a failed apply (a full disk, an I/O error), the applier tries again after this long;
// the records stay in the journal meanwhile, and appends go on until the backlog limit.
constexpr absl::Duration kRetryAfter = absl::Seconds(1);

int StepOnce(Stmt& stmt) {
  int rc = stmt.Step();
  stmt.Reset();
  return rc;
}

}  // namespace

bool SqliteStore::ApplyDue() const {
  if (apply_stop_) return true;
  if (unapplied_.empty()) return false;
  return flush_to_ > applied_seq_ || unapplied_bytes_ >= options_.journal_max_backlog_bytes / 2;
}

bool SqliteStore::ApplyDueOrPending() const { return apply_stop_ || !unapplied_.empty(); }

void SqliteStore::ApplierLoop() {
  std::vector<Unapplied> records;
  absl::Time retry_at = absl::InfinitePast();
  for (;;) {
    {
      absl::MutexLock l(&apply_mu_);
      for (;;) {
        if (apply_stop_) break;
        if (unapplied_.empty()) {
          // Nothing to time yet: sleep until the first append (or a stop).
          apply_mu_.Await(absl::Condition(this, &SqliteStore::ApplyDueOrPending));
          continue;
        }
        // After a failure, nothing but a stop cuts the pause short: neither a flush nor a full
        // backlog may turn a failing disk into a busy loop.
        if (absl::Now() < retry_at) {
          apply_mu_.AwaitWithDeadline(absl::Condition(&apply_stop_), retry_at);
          continue;
        }
        if (ApplyDue()) break;
        const absl::Time due = unapplied_.front().appended + options_.journal_apply_delay;
        if (absl::Now() >= due) break;
        apply_mu_.AwaitWithDeadline(absl::Condition(this, &SqliteStore::ApplyDue), due);
      }
      if (unapplied_.empty()) {
        if (apply_stop_) return;
        continue;
      }
      // Copied out (the entries moved): appends go on meanwhile. They count in the backlog until
      // committed, so that a failing apply holds appends back at the limit.
      records.clear();
      records.swap(unapplied_);
    }
    absl::Status s = ApplyRecords(records);
    absl::MutexLock l(&apply_mu_);
    if (!s.ok()) {
      // Put back in front of whatever was appended since: nothing is lost, only late.
      records.insert(records.end(), std::make_move_iterator(unapplied_.begin()),
                     std::make_move_iterator(unapplied_.end()));
      unapplied_.swap(records);
      const bool first = apply_error_.ok();
      apply_error_ = s;
      ++apply_failures_;
      retry_at = absl::Now() + kRetryAfter;
      if (first) logging::Warning("journal_apply_failed").Kv("path", path_).Err(s);
      if (apply_stop_) return;  // Close: the journal keeps them for the next start
      continue;
    }
    if (!apply_error_.ok()) logging::Info("journal_apply_recovered").Kv("path", path_);
    apply_error_ = absl::OkStatus();
    retry_at = absl::InfinitePast();
    for (const Unapplied& r : records) unapplied_bytes_ -= r.bytes;
    applied_seq_ = records.back().seq;
  }
}

absl::Status SqliteStore::ApplyRecords(const std::vector<Unapplied>& records) {
  // The last write of each name wins: earlier steps of a session are never written.
  absl::flat_hash_map<std::string_view, const JournalEntry*> last;
  for (const Unapplied& r : records) {
    for (const JournalEntry& e : r.entries) last.insert_or_assign(e.name, &e);
  }
  std::vector<const JournalEntry*> entries;
  entries.reserve(last.size());
  for (const auto& [name, e] : last) entries.push_back(e);
  const int64_t seq = records.back().seq;
  absl::Status s;
  {
    absl::MutexLock c(&conn_mu_);
    s = WriteEntries(entries, seq, /*crash_points=*/true);
    if (s.ok()) {
      journal_applies_.fetch_add(1, std::memory_order_relaxed);
      if (checkpoint_due_) Checkpoint();
    }
  }
  if (!s.ok()) return s;
  absl::Status d = journal_->DeleteApplied(seq);
  if (!d.ok()) logging::Warning("journal_delete_failed").Kv("seq", seq).Err(d);  // retried later
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteEntries(const std::vector<const JournalEntry*>& entries, int64_t seq,
                                       bool crash_points) {
  sqlite3* db = writer_->db.get();
  int rc = StepOnce(writer_->begin);
  if (rc != SQLITE_DONE) return SqliteError(db, rc, absl::StrCat(path_, ": BEGIN"));
  absl::Status s;
  for (const JournalEntry* e : entries) {
    Stmt& stmt = e->kind == JournalEntry::Kind::kPut ? writer_->upsert : writer_->erase;
    rc = stmt.BindText(1, e->name);
    if (rc == SQLITE_OK && e->kind == JournalEntry::Kind::kPut) {
      rc = stmt.BindBlob(2, e->value);
      if (rc == SQLITE_OK) rc = stmt.BindInt(3, e->revision);
    }
    if (rc == SQLITE_OK) {
      rc = StepOnce(stmt);
    } else {
      stmt.Reset();
    }
    if (rc != SQLITE_DONE && rc != SQLITE_OK) {
      s = SqliteError(db, rc, absl::StrCat(path_, ": apply session \"", e->name, "\""));
      break;
    }
  }
  if (s.ok()) {
    writer_->update_seq.BindInt(1, seq);
    rc = StepOnce(writer_->update_seq);
    if (rc != SQLITE_DONE) s = SqliteError(db, rc, absl::StrCat(path_, ": commit_seq"));
  }
  if (s.ok() && crash_points && options_.crash_point_for_testing == "apply_before_commit") {
    logging::Warning("crash_point").Kv("at", "apply_before_commit").Kv("seq", seq);
    std::abort();
  }
  if (s.ok()) {
    rc = StepOnce(writer_->commit);
    if (rc != SQLITE_DONE) s = SqliteError(db, rc, absl::StrCat(path_, ": COMMIT"));
  }
  if (!s.ok()) {
    if (!sqlite3_get_autocommit(db)) StepOnce(writer_->rollback);
    return s;
  }
  if (crash_points && options_.crash_point_for_testing == "apply_after_commit") {
    logging::Warning("crash_point").Kv("at", "apply_after_commit").Kv("seq", seq);
    std::abort();
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::FlushJournal() {
  absl::MutexLock l(&apply_mu_);
  const int64_t target = appended_seq_;
  if (applied_seq_ >= target) return absl::OkStatus();
  flush_to_ = std::max(flush_to_, target);
  // Done, or an attempt made since the flush began failed (the applier then waits kRetryAfter:
  // report it now rather than wait for a disk that may stay full).
  const int64_t failures = apply_failures_;
  auto settled = [this, target, failures]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(apply_mu_) {
    return applied_seq_ >= target || apply_failures_ > failures;
  };
  apply_mu_.Await(absl::Condition(&settled));
  return applied_seq_ >= target ? absl::OkStatus() : apply_error_;
}

void SqliteStore::CloseJournal() {
  // The committer has exited: every append is answered, and no more come.
  absl::Status s = FlushJournal();
  {
    absl::MutexLock l(&apply_mu_);
    apply_stop_ = true;
  }
  applier_.join();
  if (!s.ok()) {
    logging::Warning("journal_kept")
        .Kv("dir", journal_dir_)
        .Kv("detail", "could not apply it to the database; the next start replays it")
        .Err(s);
    return;
  }
  // lrsched.db holds everything now, durably: the journal has nothing left to give.
  s = sqlite_internal::RemoveJournal(journal_dir_, /*remove_dir=*/false);
  if (!s.ok()) logging::Warning("journal_remove_failed").Err(s);  // replayed as a no-op
}

SqliteStore::JournalStats SqliteStore::journal_stats() const {
  JournalStats s;
  if (journal_ == nullptr) return s;
  s.bytes = journal_->bytes_appended();
  s.syncs = journal_->syncs();
  s.segments = journal_->segments();
  s.waits = journal_waits_.load(std::memory_order_relaxed);
  s.applies = journal_applies_.load(std::memory_order_relaxed);
  s.replayed_records = replayed_records_.load(std::memory_order_relaxed);
  absl::MutexLock l(&apply_mu_);
  s.backlog_bytes = unapplied_bytes_;
  return s;
}

}  // namespace lrsched
