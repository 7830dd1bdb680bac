// Copyright lrsched authors.
//
// FuzzJournal (fuzz_entry.h): the bytes of one journal segment file, as a crash, a bad disk or
// someone else may leave it. ScanJournal must return OK or DATA_LOSS without crashing; what it
// accepts must be exactly what the writer's encoding of its records gives back (up to the torn
// tail it reports, which must run to the end of the file); and the same file followed by a newer
// segment (so no longer the newest) must scan to the same records if it had no torn tail, and
// be refused as damage if it had one.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "server/store/crc32c.h"
#include "server/store/sqlite/journal.h"
#include "server/store/sqlite/journal_format.h"
#include "tests/fuzz/fuzz_entry.h"

namespace lrsched::fuzz {
namespace {

using sqlite_internal::JournalEntry;
using sqlite_internal::JournalScan;
namespace journal_format = sqlite_internal::journal_format;

// A directory of this process's, made once (the same for every input).
const std::string& ScratchDir() {
  static const std::string* const dir = [] {
    std::string templ = "/tmp/lrsched-fuzz-journal.XXXXXX";
    FUZZ_CHECK(mkdtemp(templ.data()) != nullptr);
    static std::string made = templ;  // for the atexit hook, which takes no argument
    // Every input removes its files, so the directory is empty at exit.
    std::atexit([] { rmdir(made.c_str()); });
    return new std::string(templ);
  }();
  return *dir;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  FUZZ_CHECK(out.good());
}

// Recomputes each record's checksum, as far as the length fields frame records, so that the
// fuzzer reaches the payload decoding behind them.
void FixChecksums(std::string* seg) {
  size_t off = sqlite_internal::kJournalSegmentHeaderBytes;
  while (seg->size() - off >= sqlite_internal::kJournalRecordHeaderBytes) {
    const size_t total = 16 + size_t{journal_format::GetU32(seg->data() + off + 4)};
    if (total > seg->size() - off) break;
    uint32_t crc = crc32c::Value(std::string_view(*seg).substr(off + 4, total - 4));
    journal_format::StoreU32(crc, seg->data() + off);
    off += total;
  }
}

struct Result {
  absl::StatusOr<JournalScan> scan;
  std::vector<std::pair<int64_t, std::vector<JournalEntry>>> records;
};

Result Scan(int64_t after_seq) {
  Result r;
  r.scan = sqlite_internal::ScanJournal(
      ScratchDir(), after_seq, [&](int64_t seq, absl::Span<const JournalEntry> e) {
        r.records.emplace_back(seq, std::vector<JournalEntry>(e.begin(), e.end()));
        return absl::OkStatus();
      });
  FUZZ_CHECK(r.scan.ok() || r.scan.status().code() == absl::StatusCode::kDataLoss);
  return r;
}

}  // namespace

void FuzzJournal(const uint8_t* data, size_t size) {
  if (size == 0) return;
  // The first byte: bit 0 puts a correct header before the rest, bit 1 corrects the records'
  // checksums; the rest is the segment.
  std::string seg(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) seg = journal_format::SegmentHeader(1) + seg;
  if ((data[0] & 2) && seg.size() >= sqlite_internal::kJournalSegmentHeaderBytes) {
    FixChecksums(&seg);
  }
  const std::string path = ScratchDir() + "/" + sqlite_internal::JournalSegmentName(1);
  WriteFile(path, seg);
  Result r = Scan(0);
  if (r.scan.ok()) {
    const JournalScan& s = *r.scan;
    FUZZ_CHECK(s.segments == 1);
    FUZZ_CHECK(s.records == static_cast<int64_t>(r.records.size()));
    const int64_t valid = s.torn_tail ? s.torn_offset : static_cast<int64_t>(seg.size());
    if (s.torn_tail) {
      FUZZ_CHECK(s.torn_file == path);
      FUZZ_CHECK(s.torn_offset + s.torn_bytes == static_cast<int64_t>(seg.size()));
      FUZZ_CHECK(s.torn_bytes > 0);
    }
    std::string rebuilt = journal_format::SegmentHeader(1);
    for (size_t i = 0; i < r.records.size(); ++i) {
      FUZZ_CHECK(r.records[i].first == static_cast<int64_t>(i) + 1);
      FUZZ_CHECK(journal_format::CheckEntries(r.records[i].second).ok());
      sqlite_internal::EncodeJournalRecord(r.records[i].first, r.records[i].second, &rebuilt);
    }
    if (valid == 0) {
      FUZZ_CHECK(r.records.empty());
    } else {
      FUZZ_CHECK(seg.compare(0, static_cast<size_t>(valid), rebuilt) == 0);
      FUZZ_CHECK(s.bytes + 16 == valid);
    }
    FUZZ_CHECK(s.last_seq == s.records && s.first_seq == (s.records > 0 ? 1 : 0));

    if (!r.records.empty()) {
      // No longer the newest: a torn tail becomes damage, anything else reads the same.
      const std::string next =
          ScratchDir() + "/" + sqlite_internal::JournalSegmentName(s.last_seq + 1);
      WriteFile(next, journal_format::SegmentHeader(s.last_seq + 1));
      Result older = Scan(s.last_seq / 2);
      FUZZ_CHECK(older.scan.ok() == !s.torn_tail);
      if (older.scan.ok()) {
        FUZZ_CHECK(older.scan->records == s.records && older.scan->segments == 2);
        FUZZ_CHECK(older.records.size() == r.records.size() - s.last_seq / 2);
      }
      FUZZ_CHECK(unlink(next.c_str()) == 0);
    }
  }
  FUZZ_CHECK(unlink(path.c_str()) == 0);
}

}  // namespace lrsched::fuzz
