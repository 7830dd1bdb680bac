// Copyright lrsched authors.
//
// SqliteStore with its journal (server/store/sqlite/journal.h): the applier, a clean stop,
// replay after a crash (a forked child that dies without closing), replay twice, a crash inside
// the applier's transaction (before and after its COMMIT), a full disk under the journal and an
// apply that keeps failing. What holds with and without the journal alike: store_test.cc (its
// tests run both ways) and store_crash_test.cc (SIGKILL under load).
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/ops/log.h"
#include "server/store/sqlite/journal.h"
#include "server/store/sqlite/sqlite_store.h"
#include "tests/store/sqlite/store_test_util.h"

namespace lrsched::store_test {
namespace {

namespace fs = std::filesystem;
using sqlite_internal::JournalEntry;
using sqlite_internal::JournalWriter;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Segments(const TempDir& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir.path() + "/journal")) return names;
  for (const std::string& n : ListDir(dir.path() + "/journal")) {
    if (n.size() > 4 && n.substr(n.size() - 4) == ".log") names.push_back(n);
  }
  return names;
}

// The rows of lrsched.db read with SQLite itself, read-only: what an operator inspecting the
// file after a stop sees.
std::vector<Row> DatabaseRows(const TempDir& dir) {
  std::vector<Row> rows;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(dir.db().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT name, value, revision FROM sessions ORDER BY name", -1,
                               &q, nullptr),
            SQLITE_OK);
  while (q != nullptr && sqlite3_step(q) == SQLITE_ROW) {
    rows.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)),
                      std::string(static_cast<const char*>(sqlite3_column_blob(q, 1)),
                                  static_cast<size_t>(sqlite3_column_bytes(q, 1))),
                      sqlite3_column_int64(q, 2));
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return rows;
}

// The mutations of the crash tests, one commit (one journal record) each: puts, a delete and
// the re-creation of the deleted name in a later batch.
std::vector<Mutation> History() {
  return {Put("a", "a1"), Put("b", "b1"),      Put("a", "a2"), Del("b"),
          Put("c", "c1"), Put("b", "b-again"), Put("a", "a3")};
}
const std::vector<Row> kAfterHistory = {Row{"a", "a3", 3}, Row{"b", "b-again", 1},
                                        Row{"c", "c1", 1}};

// The rows after the first `k` mutations of History(), by a model of the store's revisions.
std::vector<Row> AfterFirst(size_t k) {
  std::map<std::string, std::pair<std::string, int64_t>> model;
  std::vector<Mutation> ms = History();
  for (size_t i = 0; i < k; ++i) {
    if (ms[i].kind == Mutation::Kind::kDelete) {
      model.erase(ms[i].name);
    } else {
      auto& [value, revision] = model[ms[i].name];
      value = ms[i].value;
      ++revision;
    }
  }
  std::vector<Row> rows;
  for (const auto& [name, vr] : model) rows.emplace_back(name, vr.first, vr.second);
  return rows;
}

// Runs `body` in a child process that dies without closing anything, as a crash does (_exit:
// no destructors, no Close, no final apply). Returns the child's wait status.
template <typename Body>
int InChild(Body body) {
  pid_t pid = fork();
  if (pid == 0) {
    // The log's writer thread did not come along (fork copies only this thread), and its mutex
    // may still name it as a waiter: write lines straight to stderr instead.
    logging::SetSinkForTest([](const std::string& line) {
      if (write(2, line.data(), line.size()) < 0) return;
    });
    _exit(body());
  }
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return status;
}

// In a child about to die: commits `ms` in order, writing a byte to `ack_fd` (if >= 0) after
// each acknowledgement, and leaves the store open (no Close, no final apply), as a crash does.
int CommitAll(const SqliteStore::Options& o, const std::vector<Mutation>& ms, int ack_fd = -1) {
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(o);
  if (!store.ok()) return 2;
  SqliteStore* leaked = store->release();
  for (const Mutation& m : ms) {
    if (!leaked->Commit(m).ok()) return 3;
    if (ack_fd >= 0 && write(ack_fd, "a", 1) != 1) return 4;
  }
  return 0;
}

TEST(JournalStoreTest, ApplierCopiesIntoTheDatabaseAndDeletesAppliedSegments) {
  TempDir dir;
  SqliteStore::Options o = JournalOpts(dir);
  o.journal_segment_bytes = 4096;  // a few records each
  o.journal_apply_delay = absl::ZeroDuration();
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(store->Commit(Put(absl::StrCat("k", i % 10), std::string(300, 'v'))).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return store->journal_stats().backlog_bytes == 0; }));
  SqliteStore::JournalStats st = store->journal_stats();
  EXPECT_GT(st.applies, 0);
  EXPECT_GT(st.bytes, 200 * 300);
  // FULL: an fdatasync per batch (each Commit is its own batch here), more at rotations.
  EXPECT_GE(st.syncs, 200);
  // Fully applied segments are gone: only the newest (and perhaps one not yet deleted) is left.
  ASSERT_TRUE(WaitFor([&] { return Segments(dir).size() <= 2; })) << Segments(dir).size();
  EXPECT_EQ(store->journal_stats().segments, static_cast<int64_t>(Segments(dir).size()));
}

TEST(JournalStoreTest, CleanCloseLeavesACompleteDatabaseAndNoJournal) {
  TempDir dir;
  SqliteStore::Options o = JournalOpts(dir);
  o.journal_apply_delay = absl::Hours(1);  // nothing is applied before Close
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(store);
    for (const Mutation& m : History()) ASSERT_TRUE(store->Commit(m).ok());
    EXPECT_EQ(store->journal_stats().applies, 0);
    EXPECT_GT(store->journal_stats().backlog_bytes, 0);
    EXPECT_THAT(Load(*store), ::testing::ElementsAreArray(kAfterHistory));  // LoadAll applies
    ASSERT_TRUE(store->Commit(Put("d", "d1")).ok());
  }
  EXPECT_THAT(Segments(dir), ::testing::IsEmpty());
  std::vector<Row> want = kAfterHistory;
  want.emplace_back("d", "d1", 1);
  EXPECT_EQ(DatabaseRows(dir), want);
}

TEST(JournalStoreTest, ReopenAfterACrashReplaysWhatWasNotApplied) {
  TempDir dir;
  SqliteStore::Options o = JournalOpts(dir);
  o.journal_apply_delay = absl::Hours(1);
  int status = InChild([&] { return CommitAll(o, History()); });
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_THAT(DatabaseRows(dir), ::testing::IsEmpty());  // all of it is in the journal only
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->journal_stats().replayed_records, static_cast<int64_t>(History().size()));
  EXPECT_THAT(Load(*store), ::testing::ElementsAreArray(kAfterHistory));
  // Revisions go on from the replayed ones: compare-and-swap sees them.
  EXPECT_EQ(*store->Commit(Put("a", "a4", 3)), 4);
  EXPECT_EQ(store->Commit(Put("b", "x", 0)).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(JournalStoreTest, ReplayTwiceIsReplayOnce) {
  TempDir dir;
  SqliteStore::Options o = JournalOpts(dir);
  o.journal_apply_delay = absl::Hours(1);
  int status = InChild([&] { return CommitAll(o, History()); });
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const std::string saved = dir.path() + "-saved";
  fs::copy(dir.path(), saved, fs::copy_options::recursive);
  { ASSERT_TRUE(MustOpen(o)); }  // replays, applies, removes the journal
  ASSERT_EQ(DatabaseRows(dir), kAfterHistory);
  // The same journal again, over the database that already holds it: every record is at or
  // below its applied number, so nothing changes (not even a revision).
  for (const std::string& n : ListDir(saved + "/journal")) {
    fs::copy(saved + "/journal/" + n, dir.path() + "/journal/" + n,
             fs::copy_options::overwrite_existing);
  }
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(store);
    EXPECT_EQ(store->journal_stats().replayed_records, 0);
    EXPECT_THAT(Load(*store), ::testing::ElementsAreArray(kAfterHistory));
  }
  fs::remove_all(saved);
}

// A delete and the re-creation of the same name inside one record (one group-commit batch, as
// store_test.cc's CompareAndSwapWithinOneBatch makes one), replayed: the last entry wins.
TEST(JournalStoreTest, DeleteThenRecreateInOneRecordReplays) {
  TempDir dir;
  {
    JournalWriter::Options jo;
    jo.dir = dir.path() + "/journal";
    absl::StatusOr<std::unique_ptr<JournalWriter>> w = JournalWriter::Open(jo, 1);
    ASSERT_TRUE(w.ok()) << w.status();
    using K = JournalEntry::Kind;
    ASSERT_TRUE((*w)->Append({JournalEntry{K::kPut, "k", "one", 1}}).ok());
    ASSERT_TRUE(
        (*w)->Append({JournalEntry{K::kPut, "k", "two", 2}, JournalEntry{K::kDelete, "k", "", 0},
                      JournalEntry{K::kPut, "k", "again", 1}, JournalEntry{K::kPut, "gone", "g", 1},
                      JournalEntry{K::kDelete, "gone", "", 0}})
            .ok());
  }
  auto store = MustOpen(JournalOpts(dir));
  ASSERT_TRUE(store);
  EXPECT_EQ(store->journal_stats().replayed_records, 2);
  EXPECT_THAT(Load(*store), ElementsAre(Row{"k", "again", 1}));
  EXPECT_EQ(*store->Commit(Put("k", "next", 1)), 2);
  EXPECT_EQ(*store->Commit(Put("gone", "back", 0)), 1);
}

// The applier dies inside its transaction: before its COMMIT (nothing applied: all of it is
// replayed) or after it (applied, but the segments not yet deleted: skipped at replay).
void CrashInsideApply(const std::string& point) {
  TempDir dir;
  SqliteStore::Options o = JournalOpts(dir);
  o.journal_apply_delay = absl::Milliseconds(20);  // the first apply, 20 ms after the first append
  o.crash_point_for_testing = point;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int status = InChild([&] {
    close(fds[0]);
    int rc = CommitAll(o, History(), fds[1]);
    sleep(10);  // the applier aborts meanwhile
    return rc == 0 ? 7 : rc;
  });
  close(fds[1]);
  size_t acked = 0;
  char c;
  while (read(fds[0], &c, 1) == 1) ++acked;
  close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) << status;
  // (acked may be 0: the applier may die before the child wrote its first acknowledgement.)
  // The database as the crash left it: the first apply either never committed or did.
  const std::vector<Row> in_db = DatabaseRows(dir);
  if (point == "apply_before_commit") {
    EXPECT_THAT(in_db, ::testing::IsEmpty());
  } else {
    EXPECT_THAT(in_db, ::testing::Not(::testing::IsEmpty()));
  }
  o.crash_point_for_testing.clear();
  auto store = MustOpen(o);  // replays what the database lacks, skips what it holds
  ASSERT_TRUE(store);
  EXPECT_GE(store->journal_stats().replayed_records, point == "apply_before_commit" ? 1 : 0);
  // Every acknowledged commit is there, each once: the revisions count the puts exactly. (A
  // commit appended but not yet acknowledged when the process died may be there too.)
  std::vector<Row> rows = Load(*store);
  EXPECT_TRUE(rows == AfterFirst(acked) || rows == AfterFirst(acked + 1))
      << acked << " acknowledged; rows: " << ::testing::PrintToString(rows);
}

TEST(JournalStoreTest, CrashInsideApplyBeforeItsCommit) { CrashInsideApply("apply_before_commit"); }
TEST(JournalStoreTest, CrashInsideApplyAfterItsCommit) { CrashInsideApply("apply_after_commit"); }

TEST(JournalStoreTest, FullDiskRefusesCleanlyAndRecovers) {
  TempDir dir;
  SqliteStore::Options o = JournalOpts(dir);
  o.journal_enospc_after_for_testing = 5;  // the 6th to 8th appends find the disk full
  o.journal_enospc_count_for_testing = 3;
  std::vector<bool> ok;
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(store);
    for (int i = 0; i < 12; ++i) {
      absl::StatusOr<int64_t> r = store->Commit(Put(absl::StrCat("k", i), "v", 0));
      ok.push_back(r.ok());
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
        EXPECT_THAT(r.status().message(), HasSubstr("No space left on device"));
        EXPECT_THAT(r.status().message(), HasSubstr("journal"));
      }
    }
    EXPECT_EQ(ok, (std::vector<bool>{true, true, true, true, true, false, false, false, true, true,
                                     true, true}));
    // A refused put left no revision behind: the name is still free.
    EXPECT_EQ(*store->Commit(Put("k5", "later", 0)), 1);
  }
  auto store = MustOpen(JournalOpts(dir));
  ASSERT_TRUE(store);
  auto rows = LoadMap(*store);
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(rows.count(absl::StrCat("k", i)), ok[i] || i == 5 ? 1u : 0u) << i;
  }
}

TEST(JournalStoreTest, AFailingApplyHoldsTheBacklogAtItsLimitAndLosesNothing) {
  TempDir dir;
  SqliteStore::Options o = JournalOpts(dir);
  o.max_db_bytes = 64 << 10;  // lrsched.db cannot take what follows: every apply fails
  o.journal_max_backlog_bytes = 256 << 10;
  o.journal_apply_delay = absl::ZeroDuration();
  std::map<std::string, bool> acked;
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(store);
    absl::Status refused;
    for (int i = 0; i < 1000 && refused.ok(); ++i) {
      std::string key = absl::StrCat("big", i);
      absl::StatusOr<int64_t> r = store->Commit(Put(key, std::string(3000, 'x')));
      if (r.ok()) acked[key] = true;
      refused = r.status();
    }
    ASSERT_FALSE(refused.ok()) << "the backlog limit was never reached";
    EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
    EXPECT_THAT(refused.message(), HasSubstr("not yet applied"));
    EXPECT_GE(store->journal_stats().waits, 1);
    EXPECT_GT(acked.size(), 20u);  // well past what the database could take
  }                                // Close cannot apply: the journal is kept
  EXPECT_THAT(Segments(dir), ::testing::Not(::testing::IsEmpty()));
  auto store = MustOpen(JournalOpts(dir));  // room again: the replay applies it all
  ASSERT_TRUE(store);
  auto rows = LoadMap(*store);
  for (const auto& [key, yes] : acked) EXPECT_EQ(rows.count(key), 1u) << key;
}

}  // namespace
}  // namespace lrsched::store_test
