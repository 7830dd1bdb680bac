// Copyright lrsched authors.
#include "server/sqlite_checkpointer.h"

#include <utility>

#include "server/log.h"

namespace lrsched::sqlite_internal {

absl::StatusOr<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(const std::string& path,
                                                                        sqlite3* writer,
                                                                        Options options) {
  absl::StatusOr<Db> db = Db::Open(path, SQLITE_OPEN_READWRITE);
  if (!db.ok()) return db.status();
  // A checkpoint waits for nothing but may meet a writer finishing its COMMIT: retry briefly.
  sqlite3_busy_timeout(db->get(), 1000);
  // A connection learns that the file is in WAL mode (and opens the WAL) on its first read;
  // until then a checkpoint through it would silently do nothing.
  absl::StatusOr<int64_t> objects = db->QueryInt("SELECT count(*) FROM sqlite_schema");
  if (!objects.ok()) return objects.status();
  std::unique_ptr<WalCheckpointer> c(new WalCheckpointer(writer, options, *std::move(db)));
  c->thread_ = std::thread([p = c.get()] { p->Run(); });
  // Replaces SQLite's autocheckpoint, which is itself a wal hook.
  sqlite3_wal_hook(writer, &WalCheckpointer::Hook, c.get());
  return c;
}

WalCheckpointer::WalCheckpointer(sqlite3* writer, Options options, Db db)
    : writer_(writer), options_(options), db_(std::move(db)) {}

WalCheckpointer::~WalCheckpointer() {
  // Back to SQLite's own checkpointing for whatever the writer still commits.
  sqlite3_wal_autocheckpoint(writer_, options_.background_pages);
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

int WalCheckpointer::Hook(void* self, sqlite3* db, const char* schema, int pages) {
  auto* c = static_cast<WalCheckpointer*>(self);
  if (pages >= c->options_.inline_pages) {
    // The background checkpoints are not catching up: do what SQLite would have done.
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return SQLITE_OK;
  }
  // Until the WAL restarts, `pages` counts frames already copied back too: ask only once
  // background_pages new ones have come since the last checkpoint (a smaller count than
  // that checkpoint's means the WAL has restarted since).
  int copied = c->copied_.load(std::memory_order_relaxed);
  if (pages < copied) copied = 0;
  if (pages - copied >= c->options_.background_pages &&
      !c->pending_.exchange(true, std::memory_order_acq_rel)) {
    absl::MutexLock l(&c->mu_);
    c->requested_ = true;
  }
  // The commit itself succeeded whatever a checkpoint did: never fail it from here.
  return SQLITE_OK;
}

void WalCheckpointer::Run() {
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &WalCheckpointer::WantsWork));
      if (stop_) return;
      requested_ = false;
    }
    // Cleared before the checkpoint: a commit that grows the WAL meanwhile asks again.
    pending_.store(false, std::memory_order_release);
    int log_frames = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                       &log_frames, &copied);
    checkpoints_.fetch_add(1, std::memory_order_relaxed);
    copied_.store(rc == SQLITE_OK ? copied : 0, std::memory_order_relaxed);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      // Not fatal: the WAL keeps every commit; past inline_pages the writer checkpoints.
      log::Warning("wal_checkpoint_failed")
          .Kv("code", rc)
          .Kv("error", sqlite3_errmsg(db_.get()));
    } else {
      log::Debug("wal_checkpoint").Kv("wal_frames", log_frames).Kv("copied", copied);
    }
  }
}

}  // namespace lrsched::sqlite_internal
