// Copyright lrsched authors.
//
// SqliteStore's commit path with the journal (Options::journal): what WriteBatch does with a
// SQLite transaction, done with one append to DATA_DIR/journal (server/store/sqlite/journal.h).
// The mutations are decided against the in-memory revisions_ (compare-and-swap, the new
// revision), appended as one record and handed to the applier (journal_apply.cc); the callers
// are answered after the append (and its fdatasync under FULL), never before.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/store/sqlite/highwater.h"
#include "server/store/sqlite/journal.h"
#include "server/store/sqlite/journal_state.h"
#include "server/store/sqlite/sqlite_store.h"
#include "server/store/sqlite/writer.h"

namespace lrsched {

using sqlite_internal::JournalEntry;

namespace {

// A session record larger than this is refused, as SQLite refuses a blob over its limit; the
// registry's records are far smaller (4 MiB, server/registry/session.h).
constexpr size_t kMaxEntryBytes = size_t{256} << 20;
// A group-commit batch is appended as records of about this many payload bytes at most (one
// entry more can exceed it by kMaxEntryBytes), well under kJournalMaxPayloadBytes.
constexpr size_t kRecordBudget = size_t{256} << 20;
// What an entry adds to a record's payload besides its name and value (journal.h).
constexpr size_t kEntryOverhead = 1 + 8 + 4 + 4;

}  // namespace

bool SqliteStore::BacklogBelowLimitOrFailing() const {
  return unapplied_bytes_ <= options_.journal_max_backlog_bytes || !apply_error_.ok() ||
         apply_stop_;
}

absl::Status SqliteStore::WaitForBacklog() {
  absl::MutexLock l(&apply_mu_);
  if (unapplied_bytes_ <= options_.journal_max_backlog_bytes) return absl::OkStatus();
  journal_waits_.fetch_add(1, std::memory_order_relaxed);
  apply_mu_.Await(absl::Condition(this, &SqliteStore::BacklogBelowLimitOrFailing));
  if (unapplied_bytes_ <= options_.journal_max_backlog_bytes) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      journal_dir_, ": the journal holds ", unapplied_bytes_,
      " bytes not yet applied (the limit is ", options_.journal_max_backlog_bytes,
      ") and applying them to ", path_, " fails: ",
      apply_error_.ok() ? std::string("store is closing") : std::string(apply_error_.message())));
}

void SqliteStore::JournalBatch(Pending* const* batch, size_t n) {
  for (size_t i = 0; i < n;) i = JournalRecord(batch, i, n);
}

size_t SqliteStore::JournalRecord(Pending* const* batch, size_t begin, size_t n) {
  // What each decided mutation changed in revisions_, undone if the append fails.
  struct Undo {
    std::string name;
    std::optional<int64_t> revision;
  };
  std::vector<Undo> undo;
  std::vector<JournalEntry> entries;
  size_t payload = 4;  // the entry count
  size_t end = begin;
  for (; end < n && payload < kRecordBudget; ++end) {
    Pending* p = batch[end];
    const Mutation& m = *p->m;
    auto it = revisions_.find(m.name);
    const std::optional<int64_t> current =
        it == revisions_.end() ? std::nullopt : std::optional<int64_t>(it->second);
    const int64_t have = current.value_or(0);
    if (m.expected_revision.has_value() && *m.expected_revision != have) {
      p->result = absl::FailedPreconditionError(absl::StrCat(
          "session \"", m.name, "\": expected revision ", *m.expected_revision,
          ", current revision ", have, current.has_value() ? "" : " (does not exist)"));
      continue;
    }
    if (m.name.size() + m.value.size() > kMaxEntryBytes) {
      p->result = absl::InvalidArgumentError(
          absl::StrCat("session \"", m.name, "\": a record of ", m.value.size(),
                       " bytes, over the store's limit of ", kMaxEntryBytes, "; nothing written"));
      continue;
    }
    JournalEntry e;
    e.name = m.name;
    if (m.kind == Mutation::Kind::kDelete) {
      p->result = 0;
      if (!current.has_value()) continue;  // deletes are idempotent: nothing to journal
      undo.push_back({m.name, current});
      revisions_.erase(it);
      e.kind = JournalEntry::Kind::kDelete;
    } else {
      const int64_t revision = have + 1;
      p->result = revision;
      undo.push_back({m.name, current});
      revisions_.insert_or_assign(m.name, revision);
      e.kind = JournalEntry::Kind::kPut;
      e.revision = revision;
      // A CommitAsync mutation is ours and answered by its result alone: take its bytes.
      e.value = p->callback ? std::move(p->owned.value) : m.value;
    }
    payload += kEntryOverhead + e.name.size() + e.value.size();
    entries.push_back(std::move(e));
  }
  if (entries.empty()) return end;

  absl::Status s = WaitForBacklog();
  absl::StatusOr<int64_t> seq = s.ok() ? journal_->Append(entries) : absl::StatusOr<int64_t>(s);
  if (!seq.ok()) {
    if (enospc_left_ > 0 && --enospc_left_ == 0) journal_->SetWriteLimitForTesting(-1);
    for (auto u = undo.rbegin(); u != undo.rend(); ++u) {
      if (u->revision.has_value()) {
        revisions_.insert_or_assign(u->name, *u->revision);
      } else {
        revisions_.erase(u->name);
      }
    }
    // As a failed COMMIT does: nothing of the record is acknowledged.
    for (size_t i = begin; i < end; ++i) batch[i]->result = seq.status();
    return end;
  }
  // Appended (and synced under FULL): from here on the batch is acknowledged.
  high_water_->Record(*seq);
  commit_seq_ = *seq;
  commits_.fetch_add(static_cast<int64_t>(entries.size()), std::memory_order_relaxed);
  transactions_.fetch_add(1, std::memory_order_relaxed);
  absl::MutexLock l(&apply_mu_);
  unapplied_.push_back(
      Unapplied{*seq, std::move(entries), static_cast<int64_t>(payload), absl::Now()});
  unapplied_bytes_ += static_cast<int64_t>(payload);
  appended_seq_ = *seq;
  return end;
}

}  // namespace lrsched
