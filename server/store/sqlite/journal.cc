// Copyright lrsched authors.
//
// JournalWriter (journal.h); the encoding is in journal_format.cc, the reader in journal_scan.cc.
#include "server/store/sqlite/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/store/sqlite/db.h"
#include "server/store/sqlite/journal_format.h"

namespace lrsched::sqlite_internal {
namespace {

absl::Status IoError(const std::string& path, absl::string_view what, int err) {
  return MarkNoSpace(
      absl::UnavailableError(absl::StrCat(path, ": ", what, ": ", std::strerror(err))), err);
}

// fsync of a directory, so that the entries created or removed in it survive a power loss.
absl::Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError(dir, "open directory", errno);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return IoError(dir, "fsync", err);
  return absl::OkStatus();
}

}  // namespace

JournalWriter::JournalWriter(Options options, int64_t next_seq)
    : options_(std::move(options)), next_seq_(next_seq) {}

JournalWriter::~JournalWriter() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<std::unique_ptr<JournalWriter>> JournalWriter::Open(const Options& options,
                                                                   int64_t next_seq) {
  if (next_seq < 1) {
    return absl::InvalidArgumentError(absl::StrCat("journal: next seq ", next_seq, " (< 1)"));
  }
  if (options.dir.empty()) return absl::InvalidArgumentError("journal: no directory");
  if (mkdir(options.dir.c_str(), 0755) == 0) {
    if (options.sync) {
      std::string parent = std::filesystem::path(options.dir).parent_path().string();
      absl::Status s = SyncDir(parent.empty() ? "." : parent);
      if (!s.ok()) return s;
    }
  } else if (errno != EEXIST) {
    return IoError(options.dir, "create directory", errno);
  }

  std::vector<Segment> existing;
  DIR* d = opendir(options.dir.c_str());
  if (d == nullptr) return IoError(options.dir, "open directory", errno);
  absl::Status listed;
  for (;;) {
    errno = 0;  // readdir's end and its failure differ only in errno
    struct dirent* e = readdir(d);
    if (e == nullptr) {
      if (errno != 0) listed = IoError(options.dir, "read directory", errno);
      break;
    }
    const std::string name = e->d_name;
    const int64_t seq = ParseJournalSegmentName(name);
    if (seq < 1 || seq == next_seq) continue;  // not a segment (ScanJournal refuses it); replaced
    if (seq > next_seq) {
      // Its records would follow ours under the same seqs: the caller did not replay it.
      listed = absl::FailedPreconditionError(absl::StrCat(
          options.dir, "/", name, ": a journal segment past the next seq, ", next_seq));
      break;
    }
    existing.push_back(Segment{seq, absl::StrCat(options.dir, "/", name)});
  }
  closedir(d);
  if (!listed.ok()) return listed;
  std::sort(existing.begin(), existing.end(),
            [](const Segment& a, const Segment& b) { return a.first_seq < b.first_seq; });

  std::unique_ptr<JournalWriter> w(new JournalWriter(options, next_seq));
  {
    absl::MutexLock l(&w->mu_);
    w->segments_ = std::move(existing);
  }
  absl::Status s = w->StartSegment(next_seq);
  if (!s.ok()) return s;
  return w;
}

absl::Status JournalWriter::StartSegment(int64_t first_seq) {
  const std::string path = absl::StrCat(options_.dir, "/", JournalSegmentName(first_seq));
  // O_TRUNC: a file of this name can only be an empty (or torn) segment of an earlier start,
  // or what is left of a rotation that failed; no record of it was acknowledged.
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(path, "create", errno);
  const int old_fd = std::exchange(fd_, fd);
  const int64_t old_offset = std::exchange(offset_, 0);
  std::string old_path = std::exchange(path_, path);
  absl::Status s = Write(journal_format::SegmentHeader(first_seq));
  if (s.ok() && options_.sync) {
    if (fdatasync(fd) != 0) s = IoError(path, "fdatasync", errno);
    if (s.ok()) s = SyncDir(options_.dir);
  }
  if (!s.ok()) {
    // Back to the old segment (if any), which is intact: the next Append tries again.
    close(fd);
    unlink(path.c_str());
    fd_ = old_fd;
    offset_ = old_offset;
    path_ = std::move(old_path);
    return s;
  }
  if (old_fd >= 0) close(old_fd);
  offset_ = kJournalSegmentHeaderBytes;
  absl::MutexLock l(&mu_);
  segments_.push_back(Segment{first_seq, path});
  bytes_appended_ += kJournalSegmentHeaderBytes;
  if (options_.sync) ++syncs_;
  return absl::OkStatus();
}

absl::Status JournalWriter::Write(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n;
    int err = 0;
    if (write_limit_ == 0) {
      // A full disk, simulated: half of the bytes land first, as in a real partial write,
      // so that it is the truncation below that takes them away again.
      const size_t half = (bytes.size() - done) / 2;
      if (half > 0) {
        ssize_t ignored = pwrite(fd_, bytes.data() + done, half,
                                 static_cast<off_t>(offset_ + static_cast<int64_t>(done)));
        (void)ignored;
      }
      n = -1;
      err = ENOSPC;
    } else {
      n = pwrite(fd_, bytes.data() + done, bytes.size() - done,
                 static_cast<off_t>(offset_ + static_cast<int64_t>(done)));
      err = errno;
      if (n < 0 && err == EINTR) continue;
      if (n == 0) {  // never for a regular file; not a reason to spin
        n = -1;
        err = EIO;
      }
    }
    if (n < 0) {
      absl::Status failed = IoError(path_, "write", err);
      if (ftruncate(fd_, static_cast<off_t>(offset_)) != 0) {
        broken_ = IoError(path_,
                          absl::StrCat("the journal refuses appends (restart the store): after ",
                                       failed.message(), ", truncating back to ", offset_),
                          errno);
        return broken_;
      }
      return failed;
    }
    if (write_limit_ > 0) --write_limit_;
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> JournalWriter::Append(absl::Span<const JournalEntry> entries) {
  if (!broken_.ok()) return broken_;
  if (absl::Status s = journal_format::CheckEntries(entries); !s.ok()) return s;
  const int64_t seq = next_seq();
  // A segment holds at least one record, whatever segment_bytes says (its name is its first).
  if (offset_ >= options_.segment_bytes &&
      offset_ > static_cast<int64_t>(kJournalSegmentHeaderBytes)) {
    // The full segment is made durable before a newer one exists, sync or not: ScanJournal
    // forgives a torn tail only in the newest segment, so a power loss must not leave one in
    // this one once it is not the newest. Once per segment_bytes.
    if (fdatasync(fd_) != 0) {
      broken_ = IoError(path_, "the journal refuses appends (restart the store): fdatasync", errno);
      return broken_;
    }
    {
      absl::MutexLock l(&mu_);
      ++syncs_;
    }
    if (absl::Status s = StartSegment(seq); !s.ok()) return s;
  }
  buffer_.clear();
  EncodeJournalRecord(seq, entries, &buffer_);
  if (absl::Status s = Write(buffer_); !s.ok()) return s;
  if (options_.sync && fdatasync(fd_) != 0) {
    const int err = errno;
    // After a failed fdatasync the kernel's copy of the record can no longer be trusted to be
    // (or not be) on the disk: take it out as well as may be, and accept nothing more.
    (void)ftruncate(fd_, static_cast<off_t>(offset_));
    broken_ = IoError(path_, "the journal refuses appends (restart the store): fdatasync", err);
    return broken_;
  }
  offset_ += static_cast<int64_t>(buffer_.size());
  absl::MutexLock l(&mu_);
  ++next_seq_;
  bytes_appended_ += static_cast<int64_t>(buffer_.size());
  if (options_.sync) ++syncs_;
  return seq;
}

absl::Status JournalWriter::DeleteApplied(int64_t applied_seq) {
  absl::MutexLock serial(&delete_mu_);
  std::vector<Segment> doomed;
  {
    absl::MutexLock l(&mu_);
    for (size_t i = 0; i + 1 < segments_.size(); ++i) {
      if (segments_[i + 1].first_seq - 1 > applied_seq) break;
      doomed.push_back(segments_[i]);
    }
  }
  // Oldest first, each removal synced before the next: whatever a crash keeps of this is a
  // prefix, never a gap that ScanJournal would call records missing.
  for (const Segment& seg : doomed) {
    if (unlink(seg.path.c_str()) != 0 && errno != ENOENT) {
      return IoError(seg.path, "delete", errno);
    }
    {
      absl::MutexLock l(&mu_);
      auto it = std::find_if(segments_.begin(), segments_.end(),
                             [&](const Segment& s) { return s.first_seq == seg.first_seq; });
      if (it != segments_.end()) segments_.erase(it);
    }
    if (absl::Status s = SyncDir(options_.dir); !s.ok()) return s;
  }
  return absl::OkStatus();
}

int64_t JournalWriter::next_seq() const {
  absl::MutexLock l(&mu_);
  return next_seq_;
}

int64_t JournalWriter::segments() const {
  absl::MutexLock l(&mu_);
  return static_cast<int64_t>(segments_.size());
}

int64_t JournalWriter::bytes_appended() const {
  absl::MutexLock l(&mu_);
  return bytes_appended_;
}

int64_t JournalWriter::syncs() const {
  absl::MutexLock l(&mu_);
  return syncs_;
}

void JournalWriter::SetWriteLimitForTesting(int64_t n) { write_limit_ = n; }

}  // namespace lrsched::sqlite_internal
