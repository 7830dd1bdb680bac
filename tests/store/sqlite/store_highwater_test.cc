// Copyright lrsched authors.
//
// SqliteStore's COMMITTED file (server/store/sqlite/highwater.h): a -wal file cut or damaged after
// acknowledged commits makes Open refuse with DATA_LOSS (touching nothing) instead of serving
// the older state; accept_data_loss serves it and resets the file; crashes, clean restarts
// and a file that lags the database open normally; a missing file is recreated with a warning,
// a damaged one is refused.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/ops/log.h"
#include "server/store/sqlite/db.h"
#include "server/store/sqlite/highwater.h"
#include "server/store/sqlite/sqlite_store.h"
#include "tests/store/sqlite/store_test_util.h"

namespace lrsched::store_test {
namespace {

namespace fs = std::filesystem;
using sqlite_internal::ReadHighWater;
using ::testing::HasSubstr;

constexpr size_t kWalHeader = 32;
constexpr size_t kFrame = 24 + 4096;  // frame header + one 4 KiB page

std::string Committed(const TempDir& dir) { return dir.path() + "/COMMITTED"; }

std::string SessionName(int i) { return absl::StrCat("s-", 100 + i); }  // sorts like i

// Commits sessions s-100.. one per transaction in a child process that then exits without
// closing the store (as kill -9 would: the WAL keeps every commit, none is checkpointed).
void CommitAndDie(const SqliteStore::Options& options, int first, int n) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(options);
    if (!store.ok()) _exit(2);
    for (int i = first; i < first + n; ++i) {
      if (!(*store)->Commit(Put(SessionName(i), absl::StrCat("v", i))).ok()) _exit(3);
    }
    _exit(0);  // no Close, no destructors
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << wstatus;
}

int64_t FileSeq(const TempDir& dir) {
  absl::StatusOr<std::optional<int64_t>> seq = ReadHighWater(Committed(dir));
  EXPECT_TRUE(seq.ok()) << seq.status();
  if (!seq.ok() || !seq->has_value()) return -1;
  return **seq;
}

// The sessions are s-100.. s-(100+n-1), each with its own value: a prefix of the history.
void ExpectPrefix(Store& store, size_t* n) {
  std::vector<Row> rows = Load(store);
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(std::get<0>(rows[i]), SessionName(static_cast<int>(i)));
    EXPECT_EQ(std::get<1>(rows[i]), absl::StrCat("v", i));
  }
  *n = rows.size();
}

// Opening must fail with DATA_LOSS naming the database, the COMMITTED file and the flag, and
// leave every file of the directory as it was (the damaged WAL is the evidence).
void ExpectLossRefused(const TempDir& dir, const std::vector<std::string>& also) {
  std::map<std::string, std::string> before;
  for (const std::string& name : ListDir(dir.path())) {
    before[name] = ReadBytes(dir.path() + "/" + name);
  }
  absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(Opts(dir));
  ASSERT_FALSE(s.ok());
  std::cout << "[          ] " << s.status() << "\n";
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr(dir.db()));
  EXPECT_THAT(s.status().message(), HasSubstr(Committed(dir)));
  EXPECT_THAT(s.status().message(), HasSubstr("--accept_data_loss"));
  for (const std::string& text : also) EXPECT_THAT(s.status().message(), HasSubstr(text));
  std::map<std::string, std::string> after;
  for (const std::string& name : ListDir(dir.path())) {
    if (name == "LOCK") continue;  // holds the pid of the last opener
    after[name] = ReadBytes(dir.path() + "/" + name);
  }
  before.erase("LOCK");
  EXPECT_TRUE(after == before) << "a file was modified, created or removed";
}

// With accept_data_loss: opens, serves a strict prefix of the 40 commits, and resets the file
// to the database's number; the next start needs no flag.
void ExpectAcceptedLoss(const TempDir& dir) {
  SqliteStore::Options o = Opts(dir);
  o.accept_data_loss = true;
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  size_t n = 0;
  ExpectPrefix(*store, &n);
  EXPECT_LT(n, 40u);
  EXPECT_EQ(FileSeq(dir), static_cast<int64_t>(n));  // one transaction per session
  EXPECT_TRUE(store->Commit(Put("after", "x")).ok());
  EXPECT_EQ(FileSeq(dir), static_cast<int64_t>(n) + 1);
  store->Close();
  EXPECT_TRUE(MustOpen(Opts(dir)));
}

TEST(SqliteStoreHighWaterTest, CutWalIsRefusedUntilAccepted) {
  TempDir dir;
  CommitAndDie(Opts(dir), 0, 40);
  ASSERT_EQ(FileSeq(dir), 40);
  const std::string wal = dir.db() + "-wal";
  size_t frames = (fs::file_size(wal) - kWalHeader) / kFrame;
  ASSERT_GT(frames, 40u);
  // Half the frames and a torn one.
  fs::resize_file(wal, kWalHeader + frames / 2 * kFrame + 100);
  ExpectLossRefused(dir, {"acknowledged commits are missing", "records #40 acknowledged",
                          "lrsched.db-wal cut or damaged"});
  ExpectAcceptedLoss(dir);
}

TEST(SqliteStoreHighWaterTest, FlippedWalByteIsRefusedUntilAccepted) {
  TempDir dir;
  CommitAndDie(Opts(dir), 0, 40);
  const std::string wal = dir.db() + "-wal";
  std::string bytes = ReadBytes(wal);
  size_t frames = (bytes.size() - kWalHeader) / kFrame;
  bytes[kWalHeader + frames * 2 / 3 * kFrame + 24 + 1000] ^= 0x10;  // in a page's data
  WriteBytes(wal, bytes);
  ExpectLossRefused(dir, {"acknowledged commits are missing", "records #40 acknowledged"});
  ExpectAcceptedLoss(dir);
}

TEST(SqliteStoreHighWaterTest, CleanAndCrashRestartsOpen) {
  TempDir dir;
  {
    auto store = MustOpen(Opts(dir));
    ASSERT_TRUE(store);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->Commit(Put(SessionName(i), "x")).ok());
    // A batch that changes nothing (a failed compare-and-swap) is not a commit.
    ASSERT_FALSE(store->Commit(Put(SessionName(0), "y", 7)).ok());
    EXPECT_EQ(FileSeq(dir), 5);
  }
  ASSERT_TRUE(MustOpen(Opts(dir)));  // clean restart
  CommitAndDie(Opts(dir), 5, 10);    // crash restart
  EXPECT_EQ(FileSeq(dir), 15);
  auto store = MustOpen(Opts(dir));
  ASSERT_TRUE(store);
  EXPECT_EQ(Load(*store).size(), 15u);
}

// A crash between a COMMIT and the file's rewrite leaves the file behind the database.
TEST(SqliteStoreHighWaterTest, FileBehindDatabaseIsNormal) {
  TempDir dir;
  CommitAndDie(Opts(dir), 0, 10);
  WriteBytes(Committed(dir), sqlite_internal::EncodeHighWater(9));
  auto store = MustOpen(Opts(dir));
  ASSERT_TRUE(store);
  EXPECT_EQ(FileSeq(dir), 10);
}

// Captures the log lines written while it lives.
class LogCapture {
 public:
  LogCapture() {
    logging::SetSinkForTest([this](const std::string& line) {
      std::lock_guard<std::mutex> l(mu_);
      lines_.push_back(line);
    });
  }
  ~LogCapture() { logging::SetSinkForTest(nullptr); }
  bool Has(const std::string& text) {
    logging::Flush();
    std::lock_guard<std::mutex> l(mu_);
    for (const std::string& line : lines_) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

TEST(SqliteStoreHighWaterTest, MissingFileIsRecreatedWithAWarning) {
  TempDir dir;
  CommitAndDie(Opts(dir), 0, 3);
  ASSERT_TRUE(fs::remove(Committed(dir)));
  {
    LogCapture log;
    auto store = MustOpen(Opts(dir));
    ASSERT_TRUE(store);
    EXPECT_TRUE(log.Has("event=committed_file_missing"));
    EXPECT_EQ(FileSeq(dir), 3);
  }
  // Empty, as a power loss while it was first written may leave it: the same.
  WriteBytes(Committed(dir), "");
  LogCapture log;
  auto store = MustOpen(Opts(dir));
  ASSERT_TRUE(store);
  EXPECT_TRUE(log.Has("event=committed_file_missing"));
  EXPECT_EQ(FileSeq(dir), 3);
}

TEST(SqliteStoreHighWaterTest, NewDatabaseCreatesTheFileSilently) {
  TempDir dir;
  LogCapture log;
  auto store = MustOpen(Opts(dir));
  ASSERT_TRUE(store);
  EXPECT_FALSE(log.Has("committed_file_missing"));
  EXPECT_EQ(FileSeq(dir), 0);
}

TEST(SqliteStoreHighWaterTest, DamagedFileIsRefusedUntilAccepted) {
  TempDir dir;
  CommitAndDie(Opts(dir), 0, 12);
  std::string text = ReadBytes(Committed(dir));
  text[30] = '7';  // a digit of the number: the checksum no longer matches
  WriteBytes(Committed(dir), text);
  ExpectLossRefused(dir, {"damaged", "checksum"});
  SqliteStore::Options o = Opts(dir);
  o.accept_data_loss = true;
  LogCapture log;
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  EXPECT_TRUE(log.Has("event=data_loss_accepted"));
  EXPECT_EQ(FileSeq(dir), 12);
}

// A database replaced by an older copy, or removed, while COMMITTED stayed.
TEST(SqliteStoreHighWaterTest, OlderOrMissingDatabaseIsRefused) {
  TempDir dir;
  {
    auto store = MustOpen(Opts(dir));
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Commit(Put("a", "1")).ok());
    store->Close();
    std::string old_db = ReadBytes(dir.db());
    store = MustOpen(Opts(dir));
    ASSERT_TRUE(store->Commit(Put("b", "2")).ok());
    store->Close();
    WriteBytes(dir.db(), old_db);
  }
  ExpectLossRefused(dir, {"holds commits up to #1", "records #2 acknowledged"});
  ASSERT_TRUE(fs::remove(dir.db()));
  ExpectLossRefused(dir, {"holds commits up to #0", "records #2 acknowledged"});
}

// SQLite deletes the -wal file beside a zero-length database on open (even read-only): a cut
// database file must be refused before SQLite sees it, the WAL kept.
TEST(SqliteStoreHighWaterTest, EmptiedDatabaseBesideWalIsRefused) {
  TempDir dir;
  CommitAndDie(Opts(dir), 0, 10);
  fs::resize_file(dir.db(), 0);
  const std::string wal = ReadBytes(dir.db() + "-wal");
  ASSERT_FALSE(wal.empty());
  for (bool accept : {false, true}) {
    SqliteStore::Options o = Opts(dir);
    o.accept_data_loss = accept;
    absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(o);
    ASSERT_FALSE(s.ok());
    std::cout << "[          ] " << s.status() << "\n";
    EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(s.status().message(), HasSubstr("was the database file cut?"));
    EXPECT_EQ(ReadBytes(dir.db() + "-wal"), wal);
    EXPECT_EQ(fs::file_size(dir.db()), 0u);
  }
}

// A failed rewrite is not a failed commit: Record logs it (once per kWarnEvery, with the count
// of failures) and returns; the status says why.
TEST(SqliteStoreHighWaterTest, FailedWritesAreLoggedRateLimited) {
  int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto file = sqlite_internal::HighWaterFile::AdoptForTest("/dev/full", fd);
  absl::Status s = file->Write(1);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("/dev/full: write: No space left on device"));
  EXPECT_TRUE(sqlite_internal::IsNoSpaceError(s));
  std::vector<std::string> lines;
  std::mutex mu;
  logging::SetSinkForTest([&](const std::string& line) {
    std::lock_guard<std::mutex> l(mu);
    if (line.find("committed_file_write_failed") != std::string::npos) lines.push_back(line);
  });
  for (int64_t seq = 1; seq <= 100; ++seq) file->Record(seq);
  logging::Flush();
  logging::SetSinkForTest(nullptr);
  ASSERT_EQ(lines.size(), 1u);  // 100 failures well within kWarnEvery
  EXPECT_THAT(lines[0], HasSubstr("seq=1 failures=1"));
}

TEST(SqliteStoreHighWaterTest, FileFormat) {
  using sqlite_internal::EncodeHighWater;
  using sqlite_internal::ParseHighWater;
  std::string text = EncodeHighWater(42);
  EXPECT_THAT(text, ::testing::StartsWith("lrsched committed seq=00000000000000000042 crc32c="));
  EXPECT_EQ(text.size(), EncodeHighWater(INT64_MAX).size());
  EXPECT_EQ(*ParseHighWater(text, "f"), 42);
  EXPECT_EQ(*ParseHighWater(EncodeHighWater(INT64_MAX), "f"), INT64_MAX);
  for (size_t i = 0; i < text.size(); ++i) {  // any single flipped byte is recognized
    std::string bad = text;
    bad[i] ^= 0x01;
    absl::StatusOr<int64_t> r = ParseHighWater(bad, "DIR/COMMITTED");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << i;
    EXPECT_THAT(r.status().message(), HasSubstr("DIR/COMMITTED: damaged")) << i;
  }
  EXPECT_FALSE(ParseHighWater(text.substr(0, 30), "f").ok());
  EXPECT_FALSE(ParseHighWater(text + "x", "f").ok());
  EXPECT_FALSE(ParseHighWater("", "f").ok());
}

}  // namespace
}  // namespace lrsched::store_test
