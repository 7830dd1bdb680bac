// Copyright lrsched authors.
//
// SqliteStore as the only user of its database (server/store/sqlite/sqlite_store.h): the data
// directory's LOCK keeps a second store out, other connections cannot read the file while the store
// is open, and WAL checkpoints run in the writer's place, keeping the WAL bounded without losing
// anything committed; under NORMAL a background thread syncs the WAL between checkpoints.
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/sqlite/data_dir_lock.h"
#include "server/store/sqlite/sqlite_store.h"
#include "server/store/sqlite/wal_syncer.h"
#include "tests/store/sqlite/store_test_util.h"

namespace lrsched::store_test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

int64_t FileBytes(const std::string& path) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

TEST(SqliteStoreExclusiveTest, SecondStoreOnTheSameDirectoryIsRefusedUntilTheFirstCloses) {
  TempDir dir;
  auto first = MustOpen(Opts(dir));
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Commit(Put("a", "1")).ok());

  absl::StatusOr<std::unique_ptr<SqliteStore>> second = SqliteStore::Open(Opts(dir));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_THAT(second.status().message(), HasSubstr(dir.path() + "/LOCK"));
  EXPECT_THAT(second.status().message(), HasSubstr(absl::StrCat("(pid ", getpid(), ")")));
  EXPECT_THAT(second.status().message(), HasSubstr("another lrsched-server"));
  // The refused open touched nothing: the first store goes on committing.
  EXPECT_EQ(*first->Commit(Put("a", "2")), 2);

  first.reset();
  auto again = MustOpen(Opts(dir));
  ASSERT_TRUE(again);
  EXPECT_THAT(Load(*again), ::testing::ElementsAre(Row{"a", "2", 2}));
}

TEST(SqliteStoreExclusiveTest, OtherConnectionsCannotReadTheOpenDatabase) {
  TempDir dir;
  auto store = MustOpen(Opts(dir));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Commit(Put("a", "1")).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(dir.db().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  int rc = sqlite3_exec(db, "SELECT count(*) FROM sessions", nullptr, nullptr, nullptr);
  EXPECT_EQ(rc & 0xff, SQLITE_BUSY) << sqlite3_errmsg(db);
  sqlite3_close(db);

  store.reset();  // closed: an ordinary SQLite database again, the WAL folded in
  EXPECT_FALSE(fs::exists(dir.db() + "-wal"));
  ASSERT_EQ(sqlite3_open_v2(dir.db().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT name, revision FROM sessions", -1, &q, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)), "a");
  EXPECT_EQ(sqlite3_column_int64(q, 1), 1);
  sqlite3_finalize(q);
  sqlite3_close(db);
}

TEST(SqliteStoreExclusiveTest, LockIsOneHolderAtATimeAndNamesItsPid) {
  TempDir dir;
  {
    auto lock = DataDirLock::Acquire(dir.path());
    ASSERT_TRUE(lock.ok()) << lock.status();
    EXPECT_EQ(ReadBytes(dir.path() + "/LOCK"), absl::StrCat(getpid(), "\n"));
    auto other = DataDirLock::Acquire(dir.path());
    EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_TRUE(DataDirLock::Acquire(dir.path()).ok());  // released with its holder
  EXPECT_EQ(DataDirLock::Acquire(dir.path() + "/missing/dir").status().code(),
            absl::StatusCode::kUnavailable);
}

// Commits of a full page each: every one adds a WAL frame or more.
void CommitPages(SqliteStore& store, int n, const std::string& prefix) {
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(store.Commit(Put(absl::StrCat(prefix, i), std::string(3000 + i, 'v'))).ok());
  }
}

TEST(SqliteStoreExclusiveTest, CheckpointsKeepTheWalBoundedAndLoseNothing) {
  TempDir dir;
  SqliteStore::Options o = Opts(dir);
  o.checkpoint_pages = 20;
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(store);
    CommitPages(*store, 300, "k");
    // Checkpoints are the committer thread's: wait for it to catch up with the last request.
    EXPECT_TRUE(WaitFor([&] { return store->checkpoints() >= 5; })) << store->checkpoints();
    // 300 page-sized transactions (1.2 MB), yet the WAL restarted after ~20 frames each time.
    EXPECT_LT(FileBytes(dir.db() + "-wal"), 80 * (4096 + 24) + 32);
    EXPECT_GT(FileBytes(dir.db()), 300 * 3000) << "the pages never reached the database file";
    EXPECT_EQ(Load(*store).size(), 300u);
  }
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  auto rows = LoadMap(*store);
  ASSERT_EQ(rows.size(), 300u);
  EXPECT_EQ(rows["k299"], std::make_pair(std::string(3299, 'v'), int64_t{1}));
}

TEST(SqliteStoreExclusiveTest, DueCheckpointsHandTheWriterToTheCommitterThread) {
  TempDir dir;
  SqliteStore::Options o = Opts(dir);
  o.synchronous = SqliteStore::Options::Synchronous::kNormal;
  o.checkpoint_pages = 10;
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  std::vector<std::thread::id> writers;  // appended by one writer at a time
  store->SetBatchObserver(
      [&](int64_t, absl::Duration) { writers.push_back(std::this_thread::get_id()); });
  // One caller: with no one else writing, Commit writes its batch on its own thread, until a due
  // checkpoint hands the writer's place to the committer thread (which then also writes what queued
  // meanwhile).
  CommitPages(*store, 200, "k");
  store->SetBatchObserver(nullptr);
  EXPECT_GE(store->checkpoints(), 1);
  EXPECT_GT(store->checkpoint_time(), absl::ZeroDuration());
  size_t on_caller = 0;
  for (auto id : writers) on_caller += id == std::this_thread::get_id();
  EXPECT_GT(on_caller, 0u) << "the caller never wrote inline";
  EXPECT_LT(on_caller, writers.size()) << "the committer never took over";
}

TEST(SqliteStoreExclusiveTest, UnderNormalTheWalIsSyncedInTheBackground) {
  for (auto sync :
       {SqliteStore::Options::Synchronous::kNormal, SqliteStore::Options::Synchronous::kFull}) {
    TempDir dir;
    SqliteStore::Options o = Opts(dir);
    o.synchronous = sync;
    o.checkpoint_pages = 400;  // a background sync every 100 frames
    auto store = MustOpen(o);
    ASSERT_TRUE(store);
    CommitPages(*store, 150, "k");
    if (sync == SqliteStore::Options::Synchronous::kNormal) {
      EXPECT_TRUE(WaitFor([&] { return store->wal_syncs() >= 1; }));
    } else {
      EXPECT_EQ(store->wal_syncs(), 0) << "FULL syncs every commit itself";
    }
    EXPECT_EQ(Load(*store).size(), 150u);
  }
}

TEST(WalSyncerTest, MissingWalIsNotAnErrorAndAFileIsSynced) {
  TempDir dir;
  const std::string wal = dir.path() + "/x-wal";
  std::atomic<int64_t> syncs{0};
  sqlite_internal::WalSyncer syncer(wal, &syncs);
  syncer.Request();  // nothing to open yet
  WriteBytes(wal, "frames");
  // Each request is served after the previous one (merged if it comes while one is pending).
  ASSERT_TRUE(WaitFor([&] {
    syncer.Request();
    return syncs.load() >= 1;
  }));
}

TEST(SqliteStoreExclusiveTest, CheckpointPagesMustBePositive) {
  TempDir dir;
  SqliteStore::Options o = Opts(dir);
  o.checkpoint_pages = 0;
  EXPECT_EQ(SqliteStore::Open(o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lrsched::store_test
