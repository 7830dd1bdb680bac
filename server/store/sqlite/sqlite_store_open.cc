// Copyright lrsched authors.
//
// SqliteStore::Open: the checks a data directory must pass before the store serves from it
// (the file is lrsched's and intact: server/store/sqlite/schema.h; no acknowledged commit is
// missing: server/store/sqlite/highwater.h), then the read-write connection, its statements and the
// threads.
#include <algorithm>
#include <filesystem>
#include <initializer_list>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/store/sqlite/data_dir_lock.h"
#include "server/store/sqlite/db.h"
#include "server/store/sqlite/disk_space.h"
#include "server/store/sqlite/highwater.h"
#include "server/store/sqlite/journal.h"
#include "server/store/sqlite/journal_replay.h"
#include "server/store/sqlite/journal_state.h"
#include "server/store/sqlite/schema.h"
#include "server/store/sqlite/sqlite_store.h"
#include "server/store/sqlite/wal_syncer.h"
#include "server/store/sqlite/writer.h"

namespace lrsched {

using sqlite_internal::Db;
using sqlite_internal::FileInfo;
using sqlite_internal::FileState;
using sqlite_internal::Stmt;

namespace {

absl::Status PrepareAll(Db& db, std::initializer_list<std::pair<Stmt*, const char*>> stmts) {
  for (const auto& [stmt, sql] : stmts) {
    absl::StatusOr<Stmt> prepared = db.Prepare(sql);
    if (!prepared.ok()) return prepared.status();
    *stmt = *std::move(prepared);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const Options& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("SqliteStore: empty dir");
  if (options.max_batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("SqliteStore: max_batch must be >= 1, got ", options.max_batch));
  }
  if (options.checkpoint_pages < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("SqliteStore: checkpoint_pages must be >= 1, got ", options.checkpoint_pages));
  }
  if (options.journal_segment_bytes < 4096 || options.journal_max_backlog_bytes < 1 ||
      options.journal_apply_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("SqliteStore: journal_segment_bytes must be >= 4096 (got ",
                     options.journal_segment_bytes, "), journal_max_backlog_bytes >= 1 (got ",
                     options.journal_max_backlog_bytes, ") and journal_apply_delay >= 0 (got ",
                     absl::FormatDuration(options.journal_apply_delay), ")"));
  }
  const std::string& crash = options.crash_point_for_testing;
  if (!crash.empty() && crash != "apply_before_commit" && crash != "apply_after_commit") {
    return absl::InvalidArgumentError(absl::StrCat(
        "SqliteStore: crash_point_for_testing: apply_before_commit or apply_after_commit, got \"",
        crash, "\""));
  }
  std::string path = (std::filesystem::path(options.dir) / "lrsched.db").string();
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = OpenImpl(options, path);
  if (store.ok()) return store;
  // A full disk shows up as whatever SQLite (or the COMMITTED file) failed on first.
  return sqlite_internal::ExplainNoSpace(store.status(), options.dir,
                                         sqlite_internal::QueryDiskSpace(options.dir),
                                         options.max_db_bytes);
}

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::OpenImpl(const Options& options,
                                                                   const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return sqlite_internal::MarkNoSpace(
        absl::UnavailableError(
            absl::StrCat(options.dir, ": cannot create data directory: ", ec.message())),
        ec.value());
  }
  // Before anything reads the file: another process may be writing it.
  absl::StatusOr<std::unique_ptr<DataDirLock>> lock = DataDirLock::Acquire(options.dir);
  if (!lock.ok()) return lock.status();

  absl::StatusOr<FileInfo> info = sqlite_internal::InspectFile(path);
  if (!info.ok()) return info.status();
  // Read and checked whole, whether or not this store will journal: records a journaling run
  // acknowledged belong to the history, and damage refuses the start before anything changes.
  const std::string journal_dir =
      (std::filesystem::path(options.dir) / sqlite_internal::kJournalDirName).string();
  absl::StatusOr<sqlite_internal::JournalReplay> journal =
      sqlite_internal::ReadJournal(journal_dir, info->commit_seq);
  if (!journal.ok()) return journal.status();
  // Read-only too, before the read-write connection exists: a refused database keeps its -wal
  // file (the evidence) as it is.
  const std::string hw_path =
      (std::filesystem::path(options.dir) / sqlite_internal::kHighWaterFileName).string();
  absl::Status s = sqlite_internal::CheckHighWater(
      {path, hw_path, std::max(info->commit_seq, journal->last_seq),
       info->state == FileState::kLrsched || journal->records > 0, options.accept_data_loss},
      sqlite_internal::ReadHighWater(hw_path));
  if (!s.ok()) return s;

  // An early return below destroys `store` and the half-built Writer, which closes whatever
  // was opened; the committer thread starts only once everything succeeded.
  std::unique_ptr<SqliteStore> store(new SqliteStore(options, path));
  store->dir_lock_ = *std::move(lock);
  auto w = std::make_unique<Writer>();
  int create = info->state == FileState::kMissing ? SQLITE_OPEN_CREATE : 0;
  absl::StatusOr<Db> db = Db::Open(path, SQLITE_OPEN_READWRITE | create);
  if (!db.ok()) return db.status();
  w->db = *std::move(db);
  // With the journal, SQLite's commits are the applier's, and a segment may go only once they
  // are durable: FULL (server/store/sqlite/journal_apply.cc).
  s = sqlite_internal::InitializeWriter(
      w->db, path, *info, options.journal || options.synchronous == Options::Synchronous::kFull,
      options.max_db_bytes);
  if (!s.ok()) return s;
  s = PrepareAll(
      w->db, {
                 {&w->begin, "BEGIN IMMEDIATE"},
                 {&w->commit, "COMMIT"},
                 {&w->rollback, "ROLLBACK"},
                 {&w->select_revision, "SELECT revision FROM sessions WHERE name = ?1"},
                 {&w->insert, "INSERT INTO sessions (name, value, revision) VALUES (?1, ?2, 1)"},
                 {&w->update, "UPDATE sessions SET value = ?2, revision = ?3 WHERE name = ?1"},
                 {&w->erase, "DELETE FROM sessions WHERE name = ?1"},
                 {&w->load_all, "SELECT name, value, revision FROM sessions ORDER BY name"},
                 {&w->update_seq, sqlite_internal::kUpdateCommitSeqSql},
                 {&w->upsert,
                  "INSERT INTO sessions (name, value, revision) VALUES (?1, ?2, ?3) ON "
                  "CONFLICT(name) DO UPDATE SET value = excluded.value, revision = "
                  "excluded.revision"},
             });
  if (!s.ok()) return s;
  absl::StatusOr<int64_t> seq = sqlite_internal::ReadCommitSeq(w->db, path);
  if (!seq.ok()) return seq.status();
  store->writer_ = std::move(w);
  s = store->ReplayJournal(*journal, journal_dir, &*seq);
  if (!s.ok()) return s;
  store->commit_seq_ = *seq;
  // Now equal to the database's (lowered, if a loss was accepted); fsynced, so that a lowered
  // number cannot reappear after a power loss and refuse the commits made from here on.
  absl::StatusOr<std::unique_ptr<sqlite_internal::HighWaterFile>> hw =
      sqlite_internal::HighWaterFile::Create(hw_path, *seq);
  if (!hw.ok()) return hw.status();
  store->high_water_ = *std::move(hw);
  // Replaces SQLite's autocheckpoint (itself a wal hook), which would checkpoint inside the
  // COMMIT of whichever thread writes.
  sqlite3_wal_hook(store->writer_->db.get(), &SqliteStore::WalHook, store.get());
  if (options.journal) {
    s = store->StartJournal(journal_dir, *seq);
    if (!s.ok()) return s;
  } else if (options.synchronous == Options::Synchronous::kNormal) {
    store->wal_syncer_ =
        std::make_unique<sqlite_internal::WalSyncer>(path + "-wal", &store->wal_syncs_);
  }
  store->committer_ = std::thread([raw = store.get()] { raw->CommitterLoop(); });
  if (options.journal) store->applier_ = std::thread([raw = store.get()] { raw->ApplierLoop(); });
  return store;
}

}  // namespace lrsched
