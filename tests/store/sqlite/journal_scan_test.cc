// Copyright lrsched authors.
//
// ScanJournal (server/store/sqlite/journal.h) on segments built byte by byte: a torn tail of
// the newest segment (cut anywhere, zero-filled, failing its checksum at the end of the file)
// is dropped and reported; everything else wrong is refused, naming the file and the offset.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/sqlite/journal.h"
#include "tests/store/sqlite/journal_test_util.h"

namespace lrsched::sqlite_internal::journal_test {
namespace {

using ::testing::HasSubstr;

class JournalScanTest : public ::testing::Test {
 protected:
  void SetUp() override { std::filesystem::create_directory(dir_.journal()); }
  std::string Path(int64_t first_seq) const {
    return dir_.journal() + "/" + JournalSegmentName(first_seq);
  }
  // Writes a segment of records first_seq.. (BatchFor each); returns its bytes.
  std::string WriteSegment(int64_t first_seq, int64_t records) {
    std::vector<std::string> r;
    for (int64_t i = 0; i < records; ++i)
      r.push_back(Record(first_seq + i, BatchFor(first_seq + i)));
    std::string bytes = Segment(first_seq, r);
    WriteBytes(Path(first_seq), bytes);
    return bytes;
  }
  // Expects DATA_LOSS naming `file` and `detail`.
  void ExpectDamage(const std::string& file, const std::string& detail, int64_t after_seq = 0) {
    Scanned s = Scan(dir_.journal(), after_seq);
    EXPECT_EQ(s.result.status().code(), absl::StatusCode::kDataLoss) << s.result.status();
    EXPECT_THAT(std::string(s.result.status().message()), HasSubstr(file));
    EXPECT_THAT(std::string(s.result.status().message()), HasSubstr(detail));
  }

  TempDir dir_;
};

TEST_F(JournalScanTest, MissingOrEmptyDirectoryIsAnEmptyJournal) {
  Scanned s = Scan(dir_.journal());
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  EXPECT_EQ(s.result->segments, 0);
  EXPECT_EQ(s.result->last_seq, 0);
  s = Scan(dir_.path() + "/nothing");
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  EXPECT_EQ(s.result->records, 0);
}

// The last record cut at every length: the records before it, and the cut one as a torn tail.
TEST_F(JournalScanTest, TornTailAtEveryByte) {
  const std::string full = WriteSegment(1, 3);
  const int64_t last = static_cast<int64_t>(full.size() - Record(3, BatchFor(3)).size());
  for (int64_t len = last; len < static_cast<int64_t>(full.size()); ++len) {
    WriteBytes(Path(1), full.substr(0, len));
    Scanned s = Scan(dir_.journal());
    ASSERT_TRUE(s.result.ok()) << len << ": " << s.result.status();
    ASSERT_EQ(s.records.size(), 2u) << len;
    EXPECT_EQ(s.result->last_seq, 2);
    EXPECT_EQ(s.result->torn_tail, len > last) << len;
    if (len > last) {
      EXPECT_EQ(s.result->torn_file, Path(1));
      EXPECT_EQ(s.result->torn_offset, last);
      EXPECT_EQ(s.result->torn_bytes, len - last);
    }
  }
  // And the header cut: nothing, torn at 0 (an empty file is not even torn).
  for (int64_t len = 0; len < 16; ++len) {
    WriteBytes(Path(1), full.substr(0, len));
    Scanned s = Scan(dir_.journal());
    ASSERT_TRUE(s.result.ok()) << len << ": " << s.result.status();
    EXPECT_EQ(s.result->records, 0);
    EXPECT_EQ(s.result->torn_tail, len > 0);
    EXPECT_EQ(s.result->torn_bytes, len);
  }
}

TEST_F(JournalScanTest, ZeroFilledTailIsTorn) {
  const std::string full = WriteSegment(1, 3);
  for (size_t zeros : {1, 15, 16, 17, 100, 70000}) {
    WriteBytes(Path(1), full + std::string(zeros, '\0'));
    Scanned s = Scan(dir_.journal());
    ASSERT_TRUE(s.result.ok()) << zeros << ": " << s.result.status();
    EXPECT_EQ(s.result->records, 3);
    EXPECT_TRUE(s.result->torn_tail);
    EXPECT_EQ(s.result->torn_offset, static_cast<int64_t>(full.size()));
    EXPECT_EQ(s.result->torn_bytes, static_cast<int64_t>(zeros));
  }
  // A whole segment of zeros (extended, never written).
  WriteBytes(Path(1), std::string(40, '\0'));
  Scanned s = Scan(dir_.journal());
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  EXPECT_TRUE(s.result->torn_tail);
  EXPECT_EQ(s.result->torn_offset, 0);
}

// A bad checksum at the end of the newest segment is the torn write; with bytes after it, or
// in an older segment, it is damage.
TEST_F(JournalScanTest, FlippedByteTornAtTheEndDamageElsewhere) {
  const std::string full = WriteSegment(1, 3);
  const size_t last = full.size() - Record(3, BatchFor(3)).size();
  const size_t second = last - Record(2, BatchFor(2)).size();
  for (size_t at : {last, last + 5, last + 9, full.size() - 1}) {
    std::string bytes = full;
    bytes[at] ^= 0x40;
    WriteBytes(Path(1), bytes);
    Scanned s = Scan(dir_.journal());
    ASSERT_TRUE(s.result.ok()) << at << ": " << s.result.status();
    EXPECT_EQ(s.result->records, 2) << at;
    EXPECT_TRUE(s.result->torn_tail);
    EXPECT_EQ(s.result->torn_offset, static_cast<int64_t>(last));
  }
  std::string bytes = full;
  bytes[second + 20] ^= 0x01;
  WriteBytes(Path(1), bytes);
  ExpectDamage(Path(1), "offset " + std::to_string(second) + ": checksum mismatch");

  // The same flip at the end of a segment that is not the newest.
  bytes = full;
  bytes[full.size() - 1] ^= 0x01;
  WriteBytes(Path(1), bytes);
  WriteSegment(4, 1);
  ExpectDamage(Path(1), "offset " + std::to_string(last) + ": checksum mismatch");
}

TEST_F(JournalScanTest, CutOrZeroFilledOlderSegmentIsDamage) {
  const std::string full = WriteSegment(1, 3);
  WriteSegment(4, 2);
  WriteBytes(Path(1), full.substr(0, full.size() - 1));
  ExpectDamage(Path(1), "runs past the end");
  WriteBytes(Path(1), full + std::string(20, '\0'));
  ExpectDamage(Path(1), "checksum mismatch");
  WriteBytes(Path(1), full + std::string(3, '\0'));
  ExpectDamage(Path(1), "record header cut short");
  WriteBytes(Path(1), full.substr(0, 10));
  ExpectDamage(Path(1), "offset 0: a segment header of 10 bytes");
}

TEST_F(JournalScanTest, BadHeaders) {
  std::string full = WriteSegment(1, 2);
  full[0] = 'X';
  WriteBytes(Path(1), full);
  ExpectDamage(Path(1), "bad magic");
  WriteBytes(Path(1), std::string("LRSJ") + std::string(12, 'x'));  // cut, but not ours
  ExpectDamage(Path(1), "offset 0");
  WriteBytes(Path(5), Segment(1, {Record(1, BatchFor(1))}));
  std::filesystem::remove(Path(1));
  ExpectDamage(Path(5), "the header says first seq 1, the name 5", 4);
}

TEST_F(JournalScanTest, SeqOutOfOrderIsDamage) {
  const std::string r1 = Record(1, BatchFor(1));
  WriteBytes(Path(1), Segment(1, {r1, Record(2, BatchFor(2)), Record(4, BatchFor(4))}));
  const size_t third = 16 + r1.size() + Record(2, BatchFor(2)).size();
  ExpectDamage(Path(1), "offset " + std::to_string(third) + ": seq 4 where 3 was due");
  WriteBytes(Path(1), Segment(1, {Record(2, BatchFor(2))}));
  ExpectDamage(Path(1), "offset 16: seq 2 where 1 was due");
  // A segment that does not continue the one before it.
  WriteSegment(1, 3);
  WriteSegment(5, 2);
  ExpectDamage(Path(5), "starts at seq 5, the one before it ends at 3");
}

TEST_F(JournalScanTest, EmptySegmentOnlyAsTheNewest) {
  WriteSegment(1, 3);
  WriteBytes(Path(4), Segment(4, {}));
  Scanned s = Scan(dir_.journal());
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  EXPECT_EQ(s.result->segments, 2);
  EXPECT_EQ(s.result->last_seq, 3);
  EXPECT_FALSE(s.result->torn_tail);
  WriteBytes(Path(4), "");
  ASSERT_TRUE(Scan(dir_.journal()).result.ok());
  WriteSegment(5, 1);
  ExpectDamage(Path(4), "an empty file");
  WriteBytes(Path(4), Segment(4, {}));
  ExpectDamage(Path(5), "starts at seq 5, the one before it ends at 3");
}

TEST_F(JournalScanTest, RecordsMissingBeforeTheJournal) {
  WriteSegment(10, 3);
  ExpectDamage(Path(10), "records missing", 8);
  ExpectDamage(Path(10), "records missing", 0);
  for (int64_t after : {9, 10, 12, 20}) {
    Scanned s = Scan(dir_.journal(), after);
    ASSERT_TRUE(s.result.ok()) << after << ": " << s.result.status();
    EXPECT_EQ(s.result->records, 3);
  }
}

TEST_F(JournalScanTest, AfterSeqFiltersAndFnErrorsStop) {
  WriteSegment(1, 3);
  WriteSegment(4, 2);
  Scanned s = Scan(dir_.journal(), 3);
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(s.records[0].first, 4);
  EXPECT_EQ(s.records[0].second, BatchFor(4));
  EXPECT_EQ(s.records[1].first, 5);
  EXPECT_EQ(s.result->records, 5);
  EXPECT_EQ(s.result->first_seq, 1);
  EXPECT_EQ(s.result->segments, 2);

  std::vector<int64_t> seen;
  absl::StatusOr<JournalScan> r =
      ScanJournal(dir_.journal(), 0, [&](int64_t seq, absl::Span<const JournalEntry>) {
        seen.push_back(seq);
        return seq == 2 ? absl::AbortedError("enough") : absl::OkStatus();
      });
  EXPECT_EQ(r.status(), absl::AbortedError("enough"));
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2}));
}

TEST_F(JournalScanTest, StrayFileIsRefused) {
  WriteSegment(1, 2);
  for (const char* stray : {"notes.txt", "1.log", "00000000000000000000.log"}) {
    WriteBytes(dir_.journal() + "/" + stray, "x");
    Scanned s = Scan(dir_.journal());
    EXPECT_EQ(s.result.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(s.result.status().message()), HasSubstr(stray));
    EXPECT_TRUE(s.records.empty());
    std::filesystem::remove(dir_.journal() + "/" + stray);
  }
}

// A record whose checksum holds but whose payload does not parse is damage, even at the end of
// the newest segment (the bytes are the ones written).
TEST_F(JournalScanTest, PayloadsThatDoNotParse) {
  using journal_format::PutU32;
  using journal_format::PutU64;
  auto entry = [](uint8_t kind, int64_t rev, const std::string& name, const std::string& value) {
    std::string e(1, static_cast<char>(kind));
    PutU64(static_cast<uint64_t>(rev), &e);
    PutU32(static_cast<uint32_t>(name.size()), &e);
    e += name;
    PutU32(static_cast<uint32_t>(value.size()), &e);
    return e + value;
  };
  auto payload = [](uint32_t count, const std::string& body) {
    std::string p;
    PutU32(count, &p);
    return p + body;
  };
  const std::string good = entry(1, 1, "a", "v");
  ASSERT_EQ(Record(1, {Put("a", "v", 1)}), RawRecord(1, payload(1, good)));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "has no count"},
      {payload(0, ""), "no entries"},
      {payload(2, good), "cannot fit"},
      {payload(100000000, good), "cannot fit"},
      {payload(1, entry(3, 1, "a", "v")), "kind 3"},
      {payload(1, entry(1, 0, "a", "v")), "put with revision 0"},
      {payload(1, entry(2, 1, "a", "")), "delete with revision 1"},
      {payload(1, entry(2, 0, "a", "v")), "delete with a value"},
      {payload(1, good + "x"), "1 bytes after the last entry"},
      {payload(1, good.substr(0, good.size() - 1)), "runs past the end"},
      {payload(1, entry(1, 1, "a", "") + std::string(3, '\0')), "bytes after the last entry"},
  };
  for (const auto& [p, detail] : cases) {
    WriteBytes(Path(1), Segment(1, {Record(1, BatchFor(1)), RawRecord(2, p)}));
    const std::string at = "offset " + std::to_string(16 + Record(1, BatchFor(1)).size());
    ExpectDamage(Path(1), at + ": seq 2: payload byte");
    ExpectDamage(Path(1), detail);
  }
}

// Empty names and values: the smallest entries there are, as many as the length allows.
TEST_F(JournalScanTest, SmallestEntries) {
  const Batch batch(5, Put("", "", 1));
  WriteBytes(Path(1), Segment(1, {Record(1, batch), Record(2, {Del("")})}));
  Scanned s = Scan(dir_.journal());
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(s.records[0].second, batch);
  EXPECT_EQ(s.records[1].second, Batch{Del("")});
}

// A length field past the limit: torn if it runs past the end of the newest segment (it
// does), damage in an older one; never allocated.
TEST_F(JournalScanTest, HugeLengthField) {
  std::string rec = Record(2, BatchFor(2));
  journal_format::StoreU32(0xffffffffu, rec.data() + 4);
  WriteBytes(Path(1), Segment(1, {Record(1, BatchFor(1)), rec}));
  Scanned s = Scan(dir_.journal());
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  EXPECT_EQ(s.result->records, 1);
  EXPECT_TRUE(s.result->torn_tail);
  WriteSegment(3, 1);
  ExpectDamage(Path(1), "runs past the end of the file");
}

}  // namespace
}  // namespace lrsched::sqlite_internal::journal_test
