// Copyright lrsched authors.
//
// Start-up failures for want of space (internal to SqliteStore): SQLite reports a full disk
// at start-up in many shapes ("disk I/O error" while it maps the WAL index of a crashed
// database, "database or disk is full" during a migration), none of which tells the operator
// what to do. ExplainNoSpace turns such a failure, given the free space of the data
// directory's file system, into one that says the disk is full and how much is free.
#ifndef LRSCHED_SERVER_SQLITE_DISK_SPACE_H_
#define LRSCHED_SERVER_SQLITE_DISK_SPACE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace lrsched::sqlite_internal {

struct DiskSpace {
  uint64_t free_bytes = 0;  // available to this (unprivileged or not) process: f_bavail
  uint64_t total_bytes = 0;
};

// Below this much free space a failed I/O at start-up is blamed on the full disk: SQLite needs
// a WAL index (32 KiB), WAL frames and pages of that order to start.
inline constexpr uint64_t kNearlyFullBytes = 1 << 20;

// statvfs of `dir`; nullopt if it fails.
std::optional<DiskSpace> QueryDiskSpace(const std::string& dir);

// Returns `s` unchanged unless it is an UNAVAILABLE failure for want of space: marked so
// (IsNoSpaceError: SQLITE_FULL, errno ENOSPC/EDQUOT) or any UNAVAILABLE failure while `space`
// shows less than kNearlyFullBytes free. Then UNAVAILABLE "disk full: the disk holding DIR has
// N bytes free of T bytes; free space there and start again: <s>" (for EDQUOT: "disk quota
// exhausted: ..."; for SQLITE_FULL with room on the disk and max_db_bytes > 0: "database
// full: ... reached its size limit (max_db_bytes=M; ...)").
absl::Status ExplainNoSpace(const absl::Status& s, const std::string& dir,
                            std::optional<DiskSpace> space, int64_t max_db_bytes);

}  // namespace lrsched::sqlite_internal

#endif  // LRSCHED_SERVER_SQLITE_DISK_SPACE_H_
