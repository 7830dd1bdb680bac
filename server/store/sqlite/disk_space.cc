// Copyright lrsched authors.
#include "server/store/sqlite/disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "server/store/sqlite/db.h"

namespace lrsched::sqlite_internal {

std::optional<DiskSpace> QueryDiskSpace(const std::string& dir) {
  struct statvfs st;
  if (statvfs(dir.c_str(), &st) != 0) return std::nullopt;
  return DiskSpace{static_cast<uint64_t>(st.f_bavail) * st.f_frsize,
                   static_cast<uint64_t>(st.f_blocks) * st.f_frsize};
}

absl::Status ExplainNoSpace(const absl::Status& s, const std::string& dir,
                            std::optional<DiskSpace> space, int64_t max_db_bytes) {
  if (s.code() != absl::StatusCode::kUnavailable) return s;
  int sys_errno = 0;
  const bool marked = IsNoSpaceError(s, &sys_errno);
  const bool nearly_full = space.has_value() && space->free_bytes < kNearlyFullBytes;
  if (!marked && !nearly_full) return s;
  std::string free_text = space.has_value() ? absl::StrCat(space->free_bytes, " bytes free of ",
                                                           space->total_bytes, " bytes")
                                            : std::string("unknown free space");
  // SQLITE_FULL with room on the disk: the database's own size limit (max_page_count).
  if (marked && sys_errno == 0 && !nearly_full && max_db_bytes > 0) {
    return absl::UnavailableError(absl::StrCat(
        "database full: the database in ", dir, " reached its size limit (max_db_bytes=",
        max_db_bytes, "; the disk has ", free_text, "): ", s.message()));
  }
  if (marked && sys_errno == EDQUOT) {
    return absl::UnavailableError(
        absl::StrCat("disk quota exhausted: the quota for ", dir, " is used up (the disk has ",
                     free_text, "); free space there and start again: ", s.message()));
  }
  return absl::UnavailableError(absl::StrCat("disk full: the disk holding ", dir, " has ",
                                             free_text,
                                             "; free space there and start again: ", s.message()));
}

}  // namespace lrsched::sqlite_internal
