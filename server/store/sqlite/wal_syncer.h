// Copyright lrsched authors.
//
// WalSyncer: flushes SQLite's write-ahead log to disk (fdatasync through a descriptor of its
// own) on a thread of its own, when asked.
//
// Under synchronous=NORMAL no commit syncs the WAL; the checkpoint does, first thing, and so
// pays for every frame written since the last one: ~18 ms for 4,000 frames on the build
// machine, all of it while commits wait (SqliteStore checkpoints in the writer's place). Asked
// every quarter of the checkpoint interval, this thread leaves the checkpoint only the last
// quarter to sync, and bounds how much a power loss can take under NORMAL as a side effect.
// Syncing a file another descriptor writes is safe: fdatasync only waits for data already
// written to reach the disk.
//
// Invariants: Request never blocks on the disk; the destructor stops the thread and closes
// the descriptor, and must run before the database connection's close removes the WAL.
#ifndef LRSCHED_SERVER_SQLITE_WAL_SYNCER_H_
#define LRSCHED_SERVER_SQLITE_WAL_SYNCER_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lrsched::sqlite_internal {

class WalSyncer {
 public:
  // Starts the thread; `wal_path` need not exist yet (it is opened on the first request).
  // Each completed sync adds one to `*syncs`, which must outlive this object.
  WalSyncer(std::string wal_path, std::atomic<int64_t>* syncs);
  ~WalSyncer();
  WalSyncer(const WalSyncer&) = delete;
  WalSyncer& operator=(const WalSyncer&) = delete;

  // Asks for one sync, soon; requests made while one is pending merge into it.
  void Request();

 private:
  void Run();
  bool WantsWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return requested_ || stop_; }

  const std::string wal_path_;
  int fd_ = -1;  // the syncer thread's own
  absl::Mutex mu_;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int64_t>* const syncs_;
  std::thread thread_;
};

}  // namespace lrsched::sqlite_internal

#endif  // LRSCHED_SERVER_SQLITE_WAL_SYNCER_H_
