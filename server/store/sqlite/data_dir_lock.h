// Copyright lrsched authors.
//
// DataDirLock: an exclusive advisory lock (flock) on <dir>/LOCK, held for the object's
// lifetime, so that two processes never serve from the same data directory at once (LevelDB's
// LOCK file, etcd's locked WAL). The kernel drops the lock when the process dies, kill -9
// included, so a crash never leaves the directory locked; the file itself stays, empty but for
// the holder's pid, which is what the refusal of a second process quotes.
//
// Invariants: while a DataDirLock exists, no other DataDirLock on the same directory can be
// acquired, in this process (flock locks belong to the open file description) or any other.
#ifndef LRSCHED_SERVER_DATA_DIR_LOCK_H_
#define LRSCHED_SERVER_DATA_DIR_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace lrsched {

class DataDirLock {
 public:
  // Takes the lock without waiting. FAILED_PRECONDITION, naming the lock file and the pid
  // that holds it, when another holder has it; UNAVAILABLE when the file cannot be opened.
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(const std::string& dir);

  ~DataDirLock();  // releases the lock (the file stays)
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  const int fd_;
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_DATA_DIR_LOCK_H_
