// Copyright lrsched authors.
#include "server/store/sqlite/highwater.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/ops/log.h"
#include "server/store/crc32c.h"
#include "server/store/sqlite/db.h"

namespace lrsched::sqlite_internal {
namespace {

constexpr std::string_view kPrefix = "lrsched committed seq=";
constexpr std::string_view kCrcTag = " crc32c=";
constexpr size_t kDigits = 20;  // INT64_MAX has 19
constexpr size_t kBodySize = kPrefix.size() + kDigits;
constexpr size_t kFileSize = kBodySize + kCrcTag.size() + 8 + 1;  // 8 hex digits and '\n'

absl::Status IoError(const std::string& path, const char* what, int err) {
  return MarkNoSpace(
      absl::UnavailableError(absl::StrCat(path, ": ", what, ": ", std::strerror(err))), err);
}

absl::Status DamagedFile(const std::string& path, std::string_view what) {
  return absl::DataLossError(absl::StrCat(path, ": damaged (", std::string(what), ")"));
}

}  // namespace

std::string EncodeHighWater(int64_t seq) {
  std::string body = absl::StrFormat("%s%020d", kPrefix, seq);
  return absl::StrFormat("%s%s%s\n", body, kCrcTag, crc32c::Hex(crc32c::Value(body)));
}

absl::StatusOr<int64_t> ParseHighWater(std::string_view text, const std::string& path) {
  if (text.size() != kFileSize) {
    return DamagedFile(path,
                       absl::StrCat(text.size(), " bytes where ", kFileSize, " were expected"));
  }
  if (text.substr(0, kPrefix.size()) != kPrefix ||
      text.substr(kBodySize, kCrcTag.size()) != kCrcTag || text.back() != '\n') {
    return DamagedFile(path, "not an lrsched COMMITTED file");
  }
  std::string_view body = text.substr(0, kBodySize);
  std::optional<uint32_t> stored = crc32c::ParseHex(text.substr(kBodySize + kCrcTag.size(), 8));
  if (!stored) return DamagedFile(path, "checksum field is not lowercase hexadecimal");
  if (*stored != crc32c::Value(body)) {
    return DamagedFile(path, absl::StrFormat("checksum %08x does not match its text, %08x", *stored,
                                             crc32c::Value(body)));
  }
  // The checksum matched, so a bad digit means a file written by something else.
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t seq = 0;
  for (char ch : body.substr(kPrefix.size())) {
    if (ch < '0' || ch > '9' || seq > (kMax - (ch - '0')) / 10) {
      return DamagedFile(path, "sequence number is not a number in range");
    }
    seq = seq * 10 + (ch - '0');
  }
  return seq;
}

absl::StatusOr<std::optional<int64_t>> ReadHighWater(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<int64_t>();
    return IoError(path, "open", errno);
  }
  char buf[kFileSize + 1];  // one more, to tell a longer file
  ssize_t n = pread(fd, buf, sizeof buf, 0);
  int err = errno;
  close(fd);
  if (n < 0) return IoError(path, "read", err);
  // Empty: a power loss while HighWaterFile::Create wrote it (before its fsync); as good as
  // missing.
  if (n == 0) return std::optional<int64_t>();
  absl::StatusOr<int64_t> seq = ParseHighWater(std::string_view(buf, static_cast<size_t>(n)), path);
  if (!seq.ok()) return seq.status();
  return std::optional<int64_t>(*seq);
}

absl::Status CheckHighWater(const HighWaterCheck& c,
                            const absl::StatusOr<std::optional<int64_t>>& file) {
  constexpr char kFlag[] = "--accept_data_loss";
  if (!file.ok()) {
    if (file.status().code() != absl::StatusCode::kDataLoss) return file.status();
    if (!c.accept_data_loss) {
      return absl::DataLossError(
          absl::StrCat(file.status().message(), ": cannot tell whether acknowledged commits of ",
                       c.db_path, " are missing; to trust the database as it is (commits up to #",
                       c.db_seq, "), start once with ", kFlag));
    }
    logging::Warning("data_loss_accepted")
        .Kv("path", c.db_path)
        .Kv("db_seq", c.db_seq)
        .Kv("committed_file", c.hw_path)
        .Kv("reason", std::string(file.status().message()));
    return absl::OkStatus();
  }
  if (!file->has_value()) {
    // A new database has nothing to lose; an existing one (an earlier build's, or the file
    // was removed) can be checked only from now on.
    if (c.db_has_data) {
      logging::Warning("committed_file_missing")
          .Kv("path", c.hw_path)
          .Kv("db_seq", c.db_seq)
          .Kv("detail",
              "cannot tell whether acknowledged commits were lost before; "
              "detection of lost commits starts now");
    }
    return absl::OkStatus();
  }
  const int64_t acked = **file;
  if (acked <= c.db_seq) return absl::OkStatus();  // at most a crash before the file's rewrite
  if (!c.accept_data_loss) {
    return absl::DataLossError(absl::StrCat(
        c.db_path, ": acknowledged commits are missing: the database holds commits up to #",
        c.db_seq, ", ", c.hw_path, " records #", acked, " acknowledged (was ",
        std::filesystem::path(c.db_path).filename().string(),
        "-wal cut or damaged, or the machine lost power under --sqlite_synchronous=normal?); "
        "to serve the older state anyway, start once with ",
        kFlag));
  }
  logging::Warning("data_loss_accepted")
      .Kv("path", c.db_path)
      .Kv("db_seq", c.db_seq)
      .Kv("acknowledged_seq", acked)
      .Kv("lost_commits", acked - c.db_seq)
      .Kv("committed_file", c.hw_path);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HighWaterFile>> HighWaterFile::Create(const std::string& path,
                                                                     int64_t seq) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(path, "open", errno);
  std::unique_ptr<HighWaterFile> file(new HighWaterFile(path, fd));
  absl::Status s = file->Write(seq);
  if (!s.ok()) return s;
  if (ftruncate(fd, static_cast<off_t>(kFileSize)) != 0) return IoError(path, "truncate", errno);
  if (fsync(fd) != 0) return IoError(path, "fsync", errno);
  // The directory entry too, for a file just created.
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    int rc = fsync(dfd);
    int err = errno;
    close(dfd);
    if (rc != 0) return IoError(dir, "fsync", err);
  }
  return file;
}

HighWaterFile::~HighWaterFile() { close(fd_); }

absl::Status HighWaterFile::Write(int64_t seq) {
  std::string text = EncodeHighWater(seq);
  ssize_t n = pwrite(fd_, text.data(), text.size(), 0);
  if (n < 0) return IoError(path_, "write", errno);
  if (static_cast<size_t>(n) != text.size()) {
    return absl::UnavailableError(absl::StrCat(path_, ": short write (", n, " bytes)"));
  }
  return absl::OkStatus();
}

void HighWaterFile::Record(int64_t seq) {
  absl::Status s = Write(seq);
  if (s.ok()) {
    if (failing_) {
      logging::Info("committed_file_write_recovered").Kv("path", path_).Kv("seq", seq);
      failing_ = false;
      failures_ = 0;
    }
    return;
  }
  failing_ = true;
  ++failures_;
  absl::Time now = absl::Now();
  if (now - last_warning_ < kWarnEvery) return;
  last_warning_ = now;
  logging::Warning("committed_file_write_failed")
      .Kv("path", path_)
      .Kv("seq", seq)
      .Kv("failures", failures_)
      .Kv("detail",
          "the commit is durable; the next start-up's check of lost commits is "
          "weaker until the file is written again")
      .Err(s);
  failures_ = 0;
}

}  // namespace lrsched::sqlite_internal
