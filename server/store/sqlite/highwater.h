// Copyright lrsched authors.
//
// The high-water mark of SqliteStore (internal): DATA_DIR/COMMITTED, a file outside the WAL
// holding the commit sequence number of the last transaction whose callers were answered,
//   "lrsched committed seq=00000000000000000042 crc32c=1a2b3c4d\n"
// (fixed width, rewritten in place with one pwrite after each COMMIT; the checksum covers the
// text before " crc32c=", so a damaged file is recognized rather than believed).
//
// Why: SQLite ends the WAL at its first bad frame, by design, so a cut or damaged -wal file
// silently drops every commit after the damage, acknowledged or not. The database's own
// commit_seq (server/store/sqlite/schema.h) says how far the recovered history goes; this file says
// how far the acknowledged history went. At start-up, database < file means acknowledged commits
// are missing, and the store refuses to serve the older state unless told to (accept_data_loss).
// database >= file is normal: a crash between a COMMIT and the file's rewrite.
//
// Invariant: the number in the file never exceeds a commit that was durable when it was
// written (it is written after COMMIT returned), so under synchronous=FULL a refusal always
// means lost acknowledged commits; under NORMAL a power loss can lose acknowledged commits,
// which is then reported the same way.
#ifndef LRSCHED_SERVER_SQLITE_HIGHWATER_H_
#define LRSCHED_SERVER_SQLITE_HIGHWATER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace lrsched::sqlite_internal {

inline constexpr char kHighWaterFileName[] = "COMMITTED";

// The file's whole text for `seq` (>= 0), always the same length.
std::string EncodeHighWater(int64_t seq);
// The number in `text`; DATA_LOSS naming `path` and what is wrong for anything but
// EncodeHighWater's output.
absl::StatusOr<int64_t> ParseHighWater(std::string_view text, const std::string& path);
// Reads and parses the file at `path`: nullopt if there is none (or it is empty), UNAVAILABLE
// if it cannot be read, DATA_LOSS if it is damaged.
absl::StatusOr<std::optional<int64_t>> ReadHighWater(const std::string& path);

// What Open knows when it compares the database with the file.
struct HighWaterCheck {
  std::string db_path;       // DIR/lrsched.db
  std::string hw_path;       // DIR/COMMITTED
  int64_t db_seq = 0;        // the database's commit_seq (0 for a new or schema-1 database)
  bool db_has_data = false;  // an existing lrsched database rather than a new one
  bool accept_data_loss = false;
};

// Decides whether the store may start from what the database holds, given what ReadHighWater
// returned: OK (normal, or a loss or damaged file accepted: then a warning is logged with both
// numbers), or DATA_LOSS saying how to accept the loss. A missing file with existing data logs
// a warning (detection restarts now). An unreadable file is returned as is.
absl::Status CheckHighWater(const HighWaterCheck& check,
                            const absl::StatusOr<std::optional<int64_t>>& file);

// The open file, rewritten by the store's writer after each commit. Not thread-safe: one
// writer at a time, which the store guarantees.
class HighWaterFile {
 public:
  // Opens (creating) the file and writes `seq` to it, fsynced (with the directory), so that a
  // number lowered by accept_data_loss cannot come back after a power loss.
  static absl::StatusOr<std::unique_ptr<HighWaterFile>> Create(const std::string& path,
                                                               int64_t seq);
  ~HighWaterFile();
  HighWaterFile(const HighWaterFile&) = delete;
  HighWaterFile& operator=(const HighWaterFile&) = delete;

  // One pwrite of `seq`, not fsynced: the commit it follows is durable already, so a failure
  // only weakens the next start-up's check. Logs a warning on failure (at most one per
  // kWarnEvery, with the count of failures meanwhile) and a line when writes work again.
  void Record(int64_t seq);
  // Record's write, returning its result (for tests).
  absl::Status Write(int64_t seq);
  // Takes over `fd` (open for writing) as the file at `path`, writing nothing: for tests that
  // make the writes fail (/dev/full).
  static std::unique_ptr<HighWaterFile> AdoptForTest(std::string path, int fd) {
    return std::unique_ptr<HighWaterFile>(new HighWaterFile(std::move(path), fd));
  }

  static constexpr absl::Duration kWarnEvery = absl::Seconds(10);

 private:
  HighWaterFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  const std::string path_;
  const int fd_;
  int64_t failures_ = 0;  // since the last warning
  bool failing_ = false;  // the last write failed
  absl::Time last_warning_ = absl::InfinitePast();
};

}  // namespace lrsched::sqlite_internal

#endif  // LRSCHED_SERVER_SQLITE_HIGHWATER_H_
