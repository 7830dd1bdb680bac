// Copyright lrsched authors.
//
// ScanJournal (journal.h). Each segment is read front to back through one reused buffer, in
// large reads, and each record is checked and decoded in place: start-up replays the whole
// journal, so the cost per record is a checksum, a decode into reused entries and the caller.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/store/crc32c.h"
#include "server/store/sqlite/journal.h"
#include "server/store/sqlite/journal_format.h"

namespace lrsched::sqlite_internal {
namespace {

using journal_format::GetU32;
using journal_format::GetU64;

constexpr size_t kReadBytes = size_t{4} << 20;

absl::Status IoError(const std::string& path, const char* what, int err) {
  return absl::UnavailableError(absl::StrCat(path, ": ", what, ": ", std::strerror(err)));
}

absl::Status Damage(const std::string& path, int64_t offset, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(path, ": offset ", offset, ": ", what));
}

// One segment file, read sequentially: Fill makes the next bytes available in one buffer
// (kept across segments), Consume moves past them.
class SegmentReader {
 public:
  explicit SegmentReader(std::string* buffer) : buf_(*buffer) {}
  ~SegmentReader() {
    if (fd_ >= 0) close(fd_);
  }

  absl::Status Open(const std::string& path) {
    path_ = path;
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return IoError(path, "open", errno);
    struct stat st;
    if (fstat(fd_, &st) != 0) return IoError(path, "stat", errno);
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
    }
    size_ = st.st_size;
    return absl::OkStatus();
  }

  int64_t size() const { return size_; }
  int64_t offset() const { return offset_; }
  int64_t remaining() const { return size_ - offset_; }
  const char* data() const { return buf_.data() + pos_; }

  // Makes min(n, remaining()) bytes available at data().
  absl::Status Fill(size_t n) {
    n = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(n), remaining()));
    if (end_ - pos_ >= n) return absl::OkStatus();
    if (buf_.size() - pos_ < n) {  // no room behind what is left: move it to the front
      std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
      if (buf_.size() < n) {
        // kReadBytes at a time, but no more than the file holds (most segments are small in
        // tests, and a buffer is zero-filled when it grows).
        const int64_t unread = remaining() - static_cast<int64_t>(end_);
        buf_.resize(std::max<size_t>(n, std::min<int64_t>(kReadBytes, unread)));
      }
    }
    while (end_ - pos_ < n) {
      // Up to the end of the buffer or the file: one read per few megabytes.
      size_t want = std::min<int64_t>(buf_.size() - end_, remaining() - (end_ - pos_));
      ssize_t got = read(fd_, buf_.data() + end_, want);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return IoError(path_, "read", errno);
      if (got == 0) {
        return absl::UnavailableError(absl::StrCat(path_, ": the file shrank while being read"));
      }
      end_ += static_cast<size_t>(got);
    }
    return absl::OkStatus();
  }

  void Consume(size_t n) {
    pos_ += n;
    offset_ += static_cast<int64_t>(n);
  }

  // Whether every byte from here to the end of the file is zero (reads them all).
  absl::StatusOr<bool> RestIsZero() {
    while (remaining() > 0) {
      size_t n = static_cast<size_t>(std::min<int64_t>(remaining(), kReadBytes));
      absl::Status s = Fill(n);
      if (!s.ok()) return s;
      const char* p = data();
      if (std::any_of(p, p + n, [](char c) { return c != 0; })) return false;
      Consume(n);
    }
    return true;
  }

 private:
  std::string& buf_;
  std::string path_;
  int fd_ = -1;
  int64_t size_ = 0;    // at open
  int64_t offset_ = 0;  // in the file, of data()
  size_t pos_ = 0;      // in buf_, of data()
  size_t end_ = 0;      // in buf_, of the bytes read
};

struct ScanState {
  int64_t after_seq = 0;
  int64_t next_seq = 0;  // what the next record must be
  const std::function<absl::Status(int64_t, absl::Span<const JournalEntry>)>* fn = nullptr;
  std::string buffer;
  std::vector<JournalEntry> entries;
  JournalScan scan;
};

// In the newest segment, the problem at the reader's offset is a torn tail if `torn` (the
// caller's test) holds or everything from there to the end of the file is zero; then it is
// recorded and OK returned. Otherwise `damage` is returned.
absl::Status TornOr(SegmentReader& r, const std::string& path, bool last, bool torn,
                    absl::Status damage, ScanState& st) {
  if (!last) return damage;
  const int64_t offset = r.offset();
  const int64_t bytes = r.remaining();
  if (!torn) {
    absl::StatusOr<bool> zero = r.RestIsZero();
    if (!zero.ok()) return zero.status();
    if (!*zero) return damage;
  }
  st.scan.torn_tail = true;
  st.scan.torn_file = path;
  st.scan.torn_offset = offset;
  st.scan.torn_bytes = bytes;
  return absl::OkStatus();
}

absl::Status ScanSegment(const std::string& path, int64_t name_seq, bool last, ScanState& st) {
  SegmentReader r(&st.buffer);
  if (absl::Status s = r.Open(path); !s.ok()) return s;
  ++st.scan.segments;
  const std::string header = journal_format::SegmentHeader(name_seq);
  if (absl::Status s = r.Fill(kJournalSegmentHeaderBytes); !s.ok()) return s;
  if (r.remaining() < static_cast<int64_t>(kJournalSegmentHeaderBytes)) {
    // Cut in the middle of its header: only the newest segment, as a crash leaves it.
    const size_t n = static_cast<size_t>(r.remaining());
    const bool prefix = std::string_view(r.data(), n) == std::string_view(header).substr(0, n);
    if (n == 0) return last ? absl::OkStatus() : Damage(path, 0, "an empty file, not the newest");
    return TornOr(r, path, last, prefix,
                  Damage(path, 0, absl::StrCat("a segment header of ", n, " bytes")), st);
  }
  if (std::string_view(r.data(), 8) != std::string_view(kJournalSegmentMagic, 8)) {
    return TornOr(r, path, last, false, Damage(path, 0, "not a journal segment (bad magic)"), st);
  }
  const auto header_seq = static_cast<int64_t>(GetU64(r.data() + 8));
  if (header_seq != name_seq) {
    return Damage(path, 8,
                  absl::StrCat("the header says first seq ", header_seq, ", the name ", name_seq));
  }
  r.Consume(kJournalSegmentHeaderBytes);
  while (r.remaining() > 0) {
    const int64_t offset = r.offset();
    if (r.remaining() < static_cast<int64_t>(kJournalRecordHeaderBytes)) {
      return TornOr(r, path, last, true,
                    Damage(path, offset,
                           absl::StrCat("a record header cut short (", r.remaining(), " bytes)")),
                    st);
    }
    if (absl::Status s = r.Fill(kJournalRecordHeaderBytes); !s.ok()) return s;
    const uint32_t crc = GetU32(r.data());
    const uint32_t length = GetU32(r.data() + 4);
    const auto seq = static_cast<int64_t>(GetU64(r.data() + 8));
    const int64_t total = int64_t{kJournalRecordHeaderBytes} + length;
    if (total > r.remaining()) {
      return TornOr(r, path, last, true,
                    Damage(path, offset,
                           absl::StrCat("a record of ", total,
                                        " bytes runs past the end of the "
                                        "file (",
                                        r.remaining(), " bytes left)")),
                    st);
    }
    if (length > kJournalMaxPayloadBytes) {
      return TornOr(r, path, last, false,
                    Damage(path, offset, absl::StrCat("a payload length of ", length)), st);
    }
    if (absl::Status s = r.Fill(static_cast<size_t>(total)); !s.ok()) return s;
    const std::string_view record(r.data(), static_cast<size_t>(total));
    const uint32_t actual = crc32c::Value(record.substr(4));
    if (actual != crc) {
      // A record that fails its checksum and ends the newest segment is the one a crash cut.
      return TornOr(r, path, last, total == r.remaining(),
                    Damage(path, offset,
                           absl::StrCat("checksum mismatch (stored ", crc, ", computed ", actual,
                                        ") in a record of ", total, " bytes with ",
                                        r.remaining() - total, " bytes after it")),
                    st);
    }
    if (seq != st.next_seq) {
      return Damage(path, offset, absl::StrCat("seq ", seq, " where ", st.next_seq, " was due"));
    }
    size_t count = 0;
    absl::Status decoded = journal_format::DecodePayload(record.substr(kJournalRecordHeaderBytes),
                                                         &st.entries, &count);
    if (!decoded.ok()) {
      return Damage(path, offset, absl::StrCat("seq ", seq, ": ", decoded.message()));
    }
    if (seq > st.after_seq) {
      absl::Status s = (*st.fn)(seq, absl::MakeConstSpan(st.entries.data(), count));
      if (!s.ok()) return s;
    }
    ++st.scan.records;
    st.scan.bytes += total;
    if (st.scan.first_seq == 0) st.scan.first_seq = seq;
    st.scan.last_seq = seq;
    ++st.next_seq;
    r.Consume(static_cast<size_t>(total));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JournalScan> ScanJournal(
    const std::string& dir, int64_t after_seq,
    const std::function<absl::Status(int64_t seq, absl::Span<const JournalEntry> entries)>& fn) {
  std::vector<std::pair<int64_t, std::string>> segments;  // first seq, file name
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return JournalScan();
    return IoError(dir, "open directory", errno);
  }
  absl::Status listed;
  for (;;) {
    errno = 0;  // readdir's end and its failure differ only in errno
    struct dirent* e = readdir(d);
    if (e == nullptr) {
      if (errno != 0) listed = IoError(dir, "read directory", errno);
      break;
    }
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const int64_t seq = ParseJournalSegmentName(name);
    if (seq < 1) {
      listed = absl::FailedPreconditionError(absl::StrCat(
          dir, "/", name, ": not a journal segment (segments are named ", JournalSegmentName(1),
          " and up); the journal directory holds nothing "
          "else, so move it away"));
      break;
    }
    segments.emplace_back(seq, std::move(name));
  }
  closedir(d);
  if (!listed.ok()) return listed;
  std::sort(segments.begin(), segments.end());

  ScanState st;
  st.after_seq = after_seq;
  st.fn = &fn;
  for (size_t i = 0; i < segments.size(); ++i) {
    const auto& [name_seq, name] = segments[i];
    const std::string path = absl::StrCat(dir, "/", name);
    if (i == 0) {
      if (name_seq > after_seq + 1) {
        return Damage(path, 0,
                      absl::StrCat("records missing: the journal starts at seq ", name_seq,
                                   ", the database holds commits up to ", after_seq, " (seqs ",
                                   after_seq + 1, " to ", name_seq - 1, " are in neither)"));
      }
    } else if (name_seq != st.next_seq) {
      return Damage(path, 0,
                    absl::StrCat("the segment starts at seq ", name_seq,
                                 ", the one before it ends at ", st.next_seq - 1));
    }
    st.next_seq = name_seq;
    absl::Status s = ScanSegment(path, name_seq, i + 1 == segments.size(), st);
    if (!s.ok()) return s;
  }
  return st.scan;
}

}  // namespace lrsched::sqlite_internal
