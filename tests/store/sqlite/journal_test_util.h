// Copyright lrsched authors.
//
// Helpers of the journal tests (journal_writer_test.cc, journal_scan_test.cc): a temporary
// directory, file bytes, entries, segments built byte by byte, and a scan that keeps what it
// was given.
#ifndef LRSCHED_TESTS_STORE_SQLITE_JOURNAL_TEST_UTIL_H_
#define LRSCHED_TESTS_STORE_SQLITE_JOURNAL_TEST_UTIL_H_

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/store/crc32c.h"
#include "server/store/sqlite/journal.h"
#include "server/store/sqlite/journal_format.h"
#include "tests/store/sqlite/store_test_util.h"

namespace lrsched::sqlite_internal {

// For EXPECT_EQ of entries and of vectors of them (found by argument-dependent lookup).
inline bool operator==(const JournalEntry& a, const JournalEntry& b) {
  return a.kind == b.kind && a.name == b.name && a.value == b.value && a.revision == b.revision;
}

namespace journal_test {

// A fresh directory per test (journal() is DIR/journal, not created), and file bytes: the
// SqliteStore tests' own.
using store_test::ListDir;
using store_test::ReadBytes;
using store_test::TempDir;
using store_test::WriteBytes;

inline JournalEntry Put(std::string name, std::string value, int64_t revision) {
  return JournalEntry{JournalEntry::Kind::kPut, std::move(name), std::move(value), revision};
}
inline JournalEntry Del(std::string name) {
  return JournalEntry{JournalEntry::Kind::kDelete, std::move(name), "", 0};
}

using Batch = std::vector<JournalEntry>;

// The bytes of one record (EncodeJournalRecord's).
inline std::string Record(int64_t seq, const Batch& entries) {
  std::string out;
  EncodeJournalRecord(seq, entries, &out);
  return out;
}

// A record around any `payload`, with a correct checksum (for payloads that do not parse).
inline std::string RawRecord(int64_t seq, const std::string& payload) {
  std::string out;
  journal_format::PutU32(0, &out);
  journal_format::PutU32(static_cast<uint32_t>(payload.size()), &out);
  journal_format::PutU64(static_cast<uint64_t>(seq), &out);
  out += payload;
  journal_format::StoreU32(crc32c::Value(std::string_view(out).substr(4)), out.data());
  return out;
}

// A segment file's bytes: the header of `first_seq`, then `records` back to back.
inline std::string Segment(int64_t first_seq, const std::vector<std::string>& records) {
  std::string out = journal_format::SegmentHeader(first_seq);
  for (const std::string& r : records) out += r;
  return out;
}

// A batch that differs with `seq`.
inline Batch BatchFor(int64_t seq) {
  return {Put("s" + std::to_string(seq), std::string(static_cast<size_t>(seq % 7) * 10, 'v'), seq),
          Del("d" + std::to_string(seq))};
}

// What a scan passed on, and what it returned.
struct Scanned {
  absl::StatusOr<JournalScan> result;
  std::vector<std::pair<int64_t, Batch>> records;
};

inline Scanned Scan(const std::string& dir, int64_t after_seq = 0) {
  Scanned out;
  out.result = ScanJournal(dir, after_seq, [&](int64_t seq, absl::Span<const JournalEntry> e) {
    out.records.emplace_back(seq, Batch(e.begin(), e.end()));
    return absl::OkStatus();
  });
  return out;
}

}  // namespace journal_test
}  // namespace lrsched::sqlite_internal

#endif  // LRSCHED_TESTS_STORE_SQLITE_JOURNAL_TEST_UTIL_H_
