// Copyright lrsched authors.
#include "server/store/sqlite/journal_replay.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/ops/log.h"
#include "server/store/sqlite/db.h"
#include "server/store/sqlite/sqlite_store.h"
#include "server/store/sqlite/writer.h"

namespace lrsched::sqlite_internal {

std::vector<const JournalEntry*> JournalReplay::Entries() const {
  std::vector<const JournalEntry*> entries;
  entries.reserve(last.size());
  for (const auto& [name, e] : last) entries.push_back(&e);
  return entries;
}

absl::StatusOr<JournalReplay> ReadJournal(const std::string& dir, int64_t db_seq) {
  JournalReplay replay;
  absl::StatusOr<JournalScan> scan =
      ScanJournal(dir, db_seq, [&](int64_t seq, absl::Span<const JournalEntry> entries) {
        for (const JournalEntry& e : entries) replay.last.insert_or_assign(e.name, e);
        ++replay.records;
        replay.last_seq = seq;
        return absl::OkStatus();
      });
  if (!scan.ok()) return scan.status();
  replay.scan = *std::move(scan);
  return replay;
}

absl::Status RemoveJournal(const std::string& dir, bool remove_dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return absl::OkStatus();
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (ParseJournalSegmentName(entry.path().filename().string()) < 0) continue;
    if (unlink(entry.path().c_str()) != 0) {
      return absl::UnavailableError(
          absl::StrCat(entry.path().string(), ": cannot remove: ", strerror(errno)));
    }
  }
  if (ec) return absl::UnavailableError(absl::StrCat(dir, ": cannot list: ", ec.message()));
  // The removals must be durable before anything is appended to a new segment of the same name.
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  if (remove_dir && std::filesystem::is_empty(dir, ec)) std::filesystem::remove(dir, ec);
  return absl::OkStatus();
}

}  // namespace lrsched::sqlite_internal

namespace lrsched {

using sqlite_internal::JournalWriter;

absl::Status SqliteStore::ReplayJournal(const sqlite_internal::JournalReplay& replay,
                                        const std::string& dir, int64_t* seq) {
  const sqlite_internal::JournalScan& scan = replay.scan;
  if (scan.torn_tail) {
    // The one write a crash can tear is the last, which nobody was told had succeeded.
    logging::Warning("journal_torn_tail")
        .Kv("file", scan.torn_file)
        .Kv("offset", scan.torn_offset)
        .Kv("bytes", scan.torn_bytes)
        .Kv("detail", "an append cut short by a crash; it was never acknowledged: dropped");
  }
  if (replay.records > 0) {
    absl::Status s = WriteEntries(replay.Entries(), replay.last_seq, /*crash_points=*/false);
    if (!s.ok()) return s;
    if (!options_.journal && options_.synchronous == Options::Synchronous::kNormal) {
      // That COMMIT was not synced, and the journal goes next: make the database durable.
      int rc = sqlite3_wal_checkpoint_v2(writer_->db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                         nullptr, nullptr);
      if (rc != SQLITE_OK) {
        return sqlite_internal::SqliteError(writer_->db.get(), rc,
                                            absl::StrCat(path_, ": checkpoint after replay"));
      }
    }
    logging::Info("journal_replayed")
        .Kv("records", replay.records)
        .Kv("sessions", static_cast<int64_t>(replay.last.size()))
        .Kv("from_seq", *seq + 1)
        .Kv("to_seq", replay.last_seq);
    *seq = replay.last_seq;
    replayed_records_.store(replay.records, std::memory_order_relaxed);
  }
  return sqlite_internal::RemoveJournal(dir, /*remove_dir=*/!options_.journal);
}

absl::Status SqliteStore::StartJournal(const std::string& dir, int64_t seq) {
  journal_dir_ = dir;
  JournalWriter::Options jo;
  jo.dir = dir;
  jo.segment_bytes = options_.journal_segment_bytes;
  jo.sync = options_.synchronous == Options::Synchronous::kFull;
  absl::StatusOr<std::unique_ptr<JournalWriter>> writer = JournalWriter::Open(jo, seq + 1);
  if (!writer.ok()) return writer.status();
  journal_ = *std::move(writer);
  if (options_.journal_enospc_after_for_testing >= 0) {
    journal_->SetWriteLimitForTesting(options_.journal_enospc_after_for_testing);
    enospc_left_ = options_.journal_enospc_count_for_testing;
  }
  // Every key's revision: compare-and-swap is decided here from now on, ahead of lrsched.db.
  absl::StatusOr<sqlite_internal::Stmt> q =
      writer_->db.Prepare("SELECT name, revision FROM sessions");
  if (!q.ok()) return q.status();
  int rc;
  while ((rc = q->Step()) == SQLITE_ROW) {
    revisions_.insert_or_assign(std::string(q->ColumnText(0)), q->ColumnInt(1));
  }
  if (rc != SQLITE_DONE) {
    return sqlite_internal::SqliteError(writer_->db.get(), rc, absl::StrCat(path_, ": revisions"));
  }
  absl::MutexLock l(&apply_mu_);
  appended_seq_ = applied_seq_ = seq;
  return absl::OkStatus();
}

}  // namespace lrsched
