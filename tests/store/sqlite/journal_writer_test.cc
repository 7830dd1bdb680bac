// Copyright lrsched authors.
//
// JournalWriter (server/store/sqlite/journal.h): what it appends reads back exactly, segments
// rotate and are deleted oldest first, a failed append (a full disk) leaves nothing behind and
// consumes no seq, and a restart replaces an empty segment.
#include <sys/stat.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/store/sqlite/db.h"
#include "server/store/sqlite/journal.h"
#include "tests/store/sqlite/journal_test_util.h"

namespace lrsched::sqlite_internal::journal_test {
namespace {

std::unique_ptr<JournalWriter> OpenWriter(const TempDir& dir, int64_t next_seq,
                                          int64_t segment_bytes = int64_t{64} << 20,
                                          bool sync = false) {
  JournalWriter::Options o;
  o.dir = dir.journal();
  o.segment_bytes = segment_bytes;
  o.sync = sync;
  absl::StatusOr<std::unique_ptr<JournalWriter>> w = JournalWriter::Open(o, next_seq);
  EXPECT_TRUE(w.ok()) << w.status();
  return w.ok() ? std::move(*w) : nullptr;
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

TEST(JournalWriterTest, SegmentNames) {
  EXPECT_EQ(JournalSegmentName(42), "00000000000000000042.log");
  EXPECT_EQ(ParseJournalSegmentName("00000000000000000042.log"), 42);
  EXPECT_EQ(ParseJournalSegmentName(JournalSegmentName(INT64_MAX)), INT64_MAX);
  for (const char* bad : {"42.log", "0000000000000000042.log", "00000000000000000042.lo",
                          "00000000000000000042.log.tmp", "0000000000000000004x.log",
                          "99999999999999999999.log", ""}) {
    EXPECT_EQ(ParseJournalSegmentName(bad), -1) << bad;
  }
}

TEST(JournalWriterTest, ManyBatchesReadBackExactly) {
  TempDir dir;
  auto w = OpenWriter(dir, 1);
  ASSERT_NE(w, nullptr);
  std::vector<std::pair<int64_t, Batch>> written;
  for (int64_t i = 1; i <= 300; ++i) {
    Batch b = BatchFor(i);
    if (i % 3 == 0) b.push_back(Put(std::string("bin\0\xff\n", 6), "", 1));  // empty value
    if (i % 7 == 0) b.push_back(i % 2 ? Put("", "", 2) : Del(""));           // empty names
    if (i % 5 == 0)
      b.push_back(Put("x", std::string("\0\x01\xfe\xff", 4) + std::string(i, 'z'), 7));
    absl::StatusOr<int64_t> seq = w->Append(b);
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, i);
    written.emplace_back(i, b);
  }
  EXPECT_EQ(w->next_seq(), 301);
  EXPECT_EQ(w->segments(), 1);
  EXPECT_EQ(w->syncs(), 0);
  Scanned s = Scan(dir.journal());
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  EXPECT_EQ(s.records, written);
  EXPECT_EQ(s.result->segments, 1);
  EXPECT_EQ(s.result->records, 300);
  EXPECT_EQ(s.result->first_seq, 1);
  EXPECT_EQ(s.result->last_seq, 300);
  EXPECT_EQ(s.result->bytes + int64_t{kJournalSegmentHeaderBytes}, w->bytes_appended());
  EXPECT_EQ(w->bytes_appended(), FileSize(dir.journal() + "/" + JournalSegmentName(1)));
  EXPECT_FALSE(s.result->torn_tail);
}

TEST(JournalWriterTest, SyncCountsEveryAppend) {
  TempDir dir;
  auto w = OpenWriter(dir, 7, int64_t{64} << 20, /*sync=*/true);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->syncs(), 1);  // the new segment's header
  ASSERT_TRUE(w->Append(BatchFor(7)).ok());
  ASSERT_TRUE(w->Append(BatchFor(8)).ok());
  EXPECT_EQ(w->syncs(), 3);
  Scanned s = Scan(dir.journal(), 6);
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  EXPECT_EQ(s.result->first_seq, 7);
  EXPECT_EQ(s.result->last_seq, 8);
}

TEST(JournalWriterTest, RefusesEntriesARecordCannotHold) {
  TempDir dir;
  auto w = OpenWriter(dir, 1);
  ASSERT_NE(w, nullptr);
  for (const Batch& bad :
       std::vector<Batch>{{},
                          {Put("a", "v", 0)},
                          {JournalEntry{JournalEntry::Kind::kDelete, "a", "v", 0}},
                          {JournalEntry{JournalEntry::Kind::kDelete, "a", "", 3}},
                          {Put("a", "v", 1), Put("b", "v", -1)}}) {
    absl::StatusOr<int64_t> seq = w->Append(bad);
    EXPECT_EQ(seq.status().code(), absl::StatusCode::kInvalidArgument) << seq.status();
  }
  EXPECT_EQ(w->next_seq(), 1);
  EXPECT_EQ(FileSize(dir.journal() + "/" + JournalSegmentName(1)), 16);
}

// Rotation by size, and DeleteApplied keeps every segment holding an unapplied record.
TEST(JournalWriterTest, RotatesAndDeletesAppliedSegments) {
  TempDir dir;
  auto w = OpenWriter(dir, 1, /*segment_bytes=*/200);
  ASSERT_NE(w, nullptr);
  for (int64_t i = 1; i <= 30; ++i) ASSERT_TRUE(w->Append(BatchFor(i)).ok());
  std::vector<std::string> files = ListDir(dir.journal());
  ASSERT_GT(files.size(), 4u);
  EXPECT_EQ(w->segments(), static_cast<int64_t>(files.size()));
  for (const std::string& f : files) {
    // A segment passes segment_bytes by less than one record.
    EXPECT_LT(FileSize(dir.journal() + "/" + f), 200 + 100) << f;
  }
  Scanned all = Scan(dir.journal());
  ASSERT_TRUE(all.result.ok()) << all.result.status();
  EXPECT_EQ(all.result->segments, static_cast<int64_t>(files.size()));
  ASSERT_EQ(all.records.size(), 30u);
  for (int64_t i = 1; i <= 30; ++i) EXPECT_EQ(all.records[i - 1].second, BatchFor(i));

  const int64_t third = ParseJournalSegmentName(files[2]);
  ASSERT_TRUE(w->DeleteApplied(0).ok());
  EXPECT_EQ(ListDir(dir.journal()), files);
  // Up to the record before the third segment: the first two go, no more.
  ASSERT_TRUE(w->DeleteApplied(third - 2).ok());
  EXPECT_EQ(ListDir(dir.journal()).size(), files.size() - 1);
  ASSERT_TRUE(w->DeleteApplied(third - 1).ok());
  std::vector<std::string> left(files.begin() + 2, files.end());
  EXPECT_EQ(ListDir(dir.journal()), left);
  EXPECT_EQ(w->segments(), static_cast<int64_t>(left.size()));
  Scanned rest = Scan(dir.journal(), third - 1);
  ASSERT_TRUE(rest.result.ok()) << rest.result.status();
  EXPECT_EQ(rest.records.front().first, third);
  EXPECT_EQ(Scan(dir.journal(), third - 2).result.status().code(), absl::StatusCode::kDataLoss);

  // Everything applied: only the newest stays, and appends go on.
  ASSERT_TRUE(w->DeleteApplied(30).ok());
  EXPECT_EQ(ListDir(dir.journal()), std::vector<std::string>{files.back()});
  EXPECT_EQ(w->segments(), 1);
  ASSERT_TRUE(w->Append(BatchFor(31)).ok());
  Scanned last = Scan(dir.journal(), 30);
  ASSERT_TRUE(last.result.ok()) << last.result.status();
  EXPECT_EQ(last.records.back().first, 31);
}

// A full disk: UNAVAILABLE "No space left on device", nothing of the record stays in the file,
// the seq is not consumed, and once there is room appends go on with contiguous seqs.
TEST(JournalWriterTest, FullDiskLeavesNothingBehind) {
  TempDir dir;
  auto w = OpenWriter(dir, 1, int64_t{64} << 20, /*sync=*/true);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Append(BatchFor(1)).ok());
  ASSERT_TRUE(w->Append(BatchFor(2)).ok());
  const std::string path = dir.journal() + "/" + JournalSegmentName(1);
  const int64_t size = FileSize(path);
  const int64_t syncs = w->syncs();
  w->SetWriteLimitForTesting(0);
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<int64_t> seq = w->Append(BatchFor(3));
    EXPECT_EQ(seq.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_NE(seq.status().message().find("No space left on device"), std::string::npos)
        << seq.status();
    EXPECT_NE(seq.status().message().find(path), std::string::npos) << seq.status();
    EXPECT_TRUE(IsNoSpaceError(seq.status()));
    EXPECT_EQ(FileSize(path), size);
    EXPECT_EQ(w->next_seq(), 3);
  }
  EXPECT_EQ(w->syncs(), syncs);
  w->SetWriteLimitForTesting(-1);
  absl::StatusOr<int64_t> seq = w->Append(BatchFor(3));
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(*seq, 3);
  Scanned s = Scan(dir.journal());
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  ASSERT_EQ(s.records.size(), 3u);
  for (int64_t i = 1; i <= 3; ++i) EXPECT_EQ(s.records[i - 1].first, i);
  EXPECT_FALSE(s.result->torn_tail);
}

// The disk fills up as a segment is started: the new file goes away again, the old segment
// stays the newest, and the next append starts the segment after all.
TEST(JournalWriterTest, FullDiskWhileRotating) {
  TempDir dir;
  auto w = OpenWriter(dir, 1, /*segment_bytes=*/16);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Append(BatchFor(1)).ok());
  w->SetWriteLimitForTesting(0);
  EXPECT_EQ(w->Append(BatchFor(2)).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ListDir(dir.journal()), std::vector<std::string>{JournalSegmentName(1)});
  EXPECT_EQ(w->segments(), 1);
  w->SetWriteLimitForTesting(1);  // the header, then not the record
  EXPECT_EQ(w->Append(BatchFor(2)).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(FileSize(dir.journal() + "/" + JournalSegmentName(2)), 16);
  w->SetWriteLimitForTesting(-1);
  ASSERT_TRUE(w->Append(BatchFor(2)).ok());
  ASSERT_TRUE(w->Append(BatchFor(3)).ok());
  EXPECT_EQ(ListDir(dir.journal()),
            (std::vector<std::string>{JournalSegmentName(1), JournalSegmentName(2),
                                      JournalSegmentName(3)}));
  Scanned s = Scan(dir.journal());
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  EXPECT_EQ(s.result->last_seq, 3);
  EXPECT_EQ(s.result->records, 3);
}

// A restart that appended nothing leaves an empty segment, which the next one replaces.
TEST(JournalWriterTest, ReopenReplacesAnEmptySegment) {
  TempDir dir;
  {
    auto w = OpenWriter(dir, 1);
    ASSERT_NE(w, nullptr);
    for (int64_t i = 1; i <= 3; ++i) ASSERT_TRUE(w->Append(BatchFor(i)).ok());
  }
  for (int start = 0; start < 2; ++start) {
    auto w = OpenWriter(dir, 4);
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->segments(), 2);
    EXPECT_EQ(ListDir(dir.journal()),
              (std::vector<std::string>{JournalSegmentName(1), JournalSegmentName(4)}));
    Scanned s = Scan(dir.journal());
    ASSERT_TRUE(s.result.ok()) << s.result.status();
    EXPECT_EQ(s.result->last_seq, 3);
  }
  // A torn first record in it is replaced the same way.
  WriteBytes(dir.journal() + "/" + JournalSegmentName(4),
             Segment(4, {Record(4, BatchFor(4)).substr(0, 20)}));
  auto w = OpenWriter(dir, 4);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Append(BatchFor(4)).ok());
  Scanned s = Scan(dir.journal());
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  EXPECT_EQ(s.result->last_seq, 4);
  EXPECT_FALSE(s.result->torn_tail);
  // A segment beyond the next seq was not replayed: refused, not overwritten.
  w.reset();
  JournalWriter::Options o;
  o.dir = dir.journal();
  EXPECT_EQ(JournalWriter::Open(o, 3).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(JournalWriter::Open(o, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(JournalWriterTest, CreatesTheDirectory) {
  TempDir dir;
  JournalWriter::Options o;
  o.dir = dir.journal();
  o.sync = true;
  ASSERT_TRUE(JournalWriter::Open(o, 1).ok());
  EXPECT_EQ(ListDir(dir.journal()), std::vector<std::string>{JournalSegmentName(1)});
  o.dir = dir.path() + "/no/such/parent";
  absl::StatusOr<std::unique_ptr<JournalWriter>> w = JournalWriter::Open(o, 1);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(w.status().message().find(o.dir), std::string::npos) << w.status();
}

}  // namespace
}  // namespace lrsched::sqlite_internal::journal_test
