// Copyright lrsched authors.
#include "server/store/sqlite/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace lrsched {

absl::StatusOr<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& dir) {
  std::string path = (std::filesystem::path(dir) / "LOCK").string();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(path, ": open: ", std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (err != EWOULDBLOCK) {
      return absl::UnavailableError(absl::StrCat(path, ": flock: ", std::strerror(err)));
    }
    std::string holder(buf, n > 0 ? static_cast<size_t>(n) : 0);
    absl::StripAsciiWhitespace(&holder);
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": locked by another process",
                     holder.empty() ? std::string() : absl::StrCat(" (pid ", holder, ")"),
                     "; is another lrsched-server using data directory ", dir, "?"));
  }
  // The pid is only a hint for that message: a failure to write it is not an error.
  std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) == 0) (void)!pwrite(fd, pid.data(), pid.size(), 0);
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

DataDirLock::~DataDirLock() { close(fd_); }  // closing the descriptor releases the flock

}  // namespace lrsched
