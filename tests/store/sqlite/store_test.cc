// Copyright lrsched authors.
//
// SqliteStore behaviour: revisions and compare-and-swap (also within one group-commit batch),
// group commit under concurrency, concurrent LoadAll, Close draining, durability across
// reopen, and a full disk. Files it refuses: store_file_test.cc; SIGKILL: store_crash_test.cc.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/sqlite/sqlite_store.h"
#include "tests/store/sqlite/store_test_util.h"

namespace lrsched::store_test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Every behaviour below holds with the journal (the default) and without: the parameter.
class SqliteStoreTest : public ::testing::TestWithParam<bool> {
 protected:
  SqliteStore::Options O(const TempDir& dir) const {
    return GetParam() ? JournalOpts(dir) : Opts(dir);
  }
};

INSTANTIATE_TEST_SUITE_P(Journal, SqliteStoreTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "Journal" : "NoJournal";
                         });

TEST_P(SqliteStoreTest, PutAndLoadAllInNameOrder) {
  TempDir dir;
  auto store = MustOpen(O(dir));
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->Commit(Put("b", "B")), 1);
  EXPECT_EQ(*store->Commit(Put("a", "A")), 1);
  EXPECT_EQ(*store->Commit(Put("c", std::string("\0x\0", 3))), 1);
  EXPECT_EQ(*store->Commit(Put("", "")), 1);  // empty name and value are still values
  EXPECT_THAT(Load(*store),
              ::testing::ElementsAre(Row{"", "", 1}, Row{"a", "A", 1}, Row{"b", "B", 1},
                                     Row{"c", std::string("\0x\0", 3), 1}));
  // LoadAll stops at the callback's first error and returns it.
  int calls = 0;
  absl::Status s = store->LoadAll([&](std::string_view, std::string_view, int64_t) {
    ++calls;
    return absl::AbortedError("stop");
  });
  EXPECT_EQ(s, absl::AbortedError("stop"));
  EXPECT_EQ(calls, 1);
}

TEST_P(SqliteStoreTest, RevisionsCountPerKey) {
  TempDir dir;
  auto store = MustOpen(O(dir));
  ASSERT_TRUE(store);
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(*store->Commit(Put("x", absl::StrCat("v", i))), i);
  EXPECT_EQ(*store->Commit(Put("y", "y")), 1);
  EXPECT_THAT(Load(*store), ::testing::ElementsAre(Row{"x", "v5", 5}, Row{"y", "y", 1}));
}

TEST_P(SqliteStoreTest, CompareAndSwap) {
  TempDir dir;
  auto store = MustOpen(O(dir));
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->Commit(Put("k", "1", 0)), 1);
  absl::StatusOr<int64_t> r = store->Commit(Put("k", "lost", 0));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("\"k\""));
  EXPECT_THAT(r.status().message(), HasSubstr("expected revision 0"));
  EXPECT_THAT(r.status().message(), HasSubstr("current revision 1"));
  EXPECT_EQ(*store->Commit(Put("k", "2", 1)), 2);
  r = store->Commit(Put("k", "lost", 7));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("expected revision 7, current revision 2"));
  r = store->Commit(Del("k", 1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  r = store->Commit(Put("new", "x", 3));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("(does not exist)"));
  EXPECT_THAT(Load(*store), ::testing::ElementsAre(Row{"k", "2", 2}));
  EXPECT_EQ(*store->Commit(Del("k", 2)), 0);
  // A key put again after a delete starts over.
  EXPECT_EQ(*store->Commit(Put("k", "again", 0)), 1);
  EXPECT_THAT(Load(*store), ::testing::ElementsAre(Row{"k", "again", 1}));
}

TEST_P(SqliteStoreTest, DeleteIsIdempotent) {
  TempDir dir;
  auto store = MustOpen(O(dir));
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->Commit(Del("missing")), 0);
  EXPECT_EQ(*store->Commit(Del("missing", 0)), 0);  // "must not exist" holds
  EXPECT_EQ(store->Commit(Del("missing", 4)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*store->Commit(Put("k", "v")), 1);
  EXPECT_EQ(*store->Commit(Del("k")), 0);
  EXPECT_EQ(*store->Commit(Del("k")), 0);
  EXPECT_TRUE(Load(*store).empty());
}

TEST_P(SqliteStoreTest, ReopenKeepsRecordsAndRevisions) {
  TempDir dir;
  {
    auto store = MustOpen(O(dir));
    ASSERT_TRUE(store);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(store->Commit(Put("a", absl::StrCat(i))).ok());
    ASSERT_TRUE(store->Commit(Put("b", "b")).ok());
    ASSERT_TRUE(store->Commit(Put("gone", "x")).ok());
    ASSERT_TRUE(store->Commit(Del("gone")).ok());
  }                                             // the destructor closes
  EXPECT_FALSE(fs::exists(dir.db() + "-wal"));  // checkpointed into the file on close
  auto store = MustOpen(O(dir));
  ASSERT_TRUE(store);
  EXPECT_THAT(Load(*store), ::testing::ElementsAre(Row{"a", "2", 3}, Row{"b", "b", 1}));
  EXPECT_EQ(*store->Commit(Put("a", "3", 3)), 4);
}

// Holds the store's writer inside its first batch (in the batch observer, which runs on the
// writing thread before the batch's callers wake), so that later callers pile up behind it
// into one batch. No other connection can hold SQLite's lock: the store has it exclusively.
class FirstBatchHolder {
 public:
  explicit FirstBatchHolder(SqliteStore& store) : store_(store) {
    store_.SetBatchObserver([this](int64_t, absl::Duration) {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(&released_));
    });
  }
  void Release() {
    absl::MutexLock l(&mu_);
    released_ = true;
  }
  ~FirstBatchHolder() {
    Release();
    store_.SetBatchObserver(nullptr);
  }

 private:
  SqliteStore& store_;
  absl::Mutex mu_;
  bool released_ = false;
};

TEST_P(SqliteStoreTest, CompareAndSwapWithinOneBatchChainsInArrivalOrder) {
  TempDir dir;
  auto store = MustOpen(O(dir));
  ASSERT_TRUE(store);
  FirstBatchHolder hold(*store);
  std::vector<Mutation> ms = {
      Put("warmup", "w"),    // its batch is held after COMMIT while the rest queue up
      Put("k", "1", 0),      // 1
      Put("k", "lost", 0),   // fails: k is at 1 now
      Put("k", "2", 1),      // 2
      Put("k", "3"),         // 3
      Del("k", 2),           // fails: k is at 3
      Put("other", "o", 0),  // 1
      Del("k", 3),           // 0
      Put("k", "again", 0),  // 1
  };
  std::vector<absl::StatusOr<int64_t>> results(ms.size(), absl::UnknownError("unset"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ms.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = store->Commit(ms[i]); });
    // Fix the arrival order: wait until this mutation is in the committer's hands (the
    // warm-up) or in the queue (the rest) before starting the next caller.
    SqliteStore::Backlog want = {static_cast<int64_t>(i), 1};
    ASSERT_TRUE(WaitFor([&] {
      SqliteStore::Backlog b = store->backlog();
      return b.queued == want.queued && b.writing == want.writing;
    })) << "mutation "
        << i << " never queued";
  }
  hold.Release();
  for (auto& t : threads) t.join();
  const std::vector<int64_t> want = {1, 1, -1, 2, 3, -1, 1, 0, 1};
  for (size_t i = 0; i < ms.size(); ++i) {
    if (want[i] < 0) {
      EXPECT_EQ(results[i].status().code(), absl::StatusCode::kFailedPrecondition) << i;
    } else {
      ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
      EXPECT_EQ(*results[i], want[i]) << i;
    }
  }
  Store::Stats st = store->stats();
  EXPECT_EQ(st.commits, 7);
  EXPECT_EQ(st.transactions, 2);  // the warm-up, then everything else together
  EXPECT_THAT(Load(*store), ::testing::ElementsAre(Row{"k", "again", 1}, Row{"other", "o", 1},
                                                   Row{"warmup", "w", 1}));
}

TEST_P(SqliteStoreTest, ManyConcurrentCommittersAreAllDurable) {
  constexpr int kThreads = 64, kPerThread = 200;
  TempDir dir;
  std::vector<std::vector<int64_t>> shared(kThreads);
  {
    auto store = MustOpen(O(dir));
    ASSERT_TRUE(store);
    std::vector<std::thread> threads;
    std::vector<std::string> errors(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::string own = absl::StrCat("t", t);
        for (int i = 0; i < kPerThread; ++i) {
          bool mine = i % 2 == 0;
          absl::StatusOr<int64_t> r =
              store->Commit(Put(mine ? own : "shared", absl::StrCat(t, ":", i)));
          if (!r.ok()) {
            errors[t] = r.status().ToString();
            return;
          }
          if (!mine) {
            shared[t].push_back(*r);
          } else if (*r != i / 2 + 1) {
            errors[t] = absl::StrCat("own key revision ", *r, " at i=", i);
            return;
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    for (int t = 0; t < kThreads; ++t) ASSERT_EQ(errors[t], "") << "thread " << t;
    Store::Stats st = store->stats();
    EXPECT_EQ(st.commits, kThreads * kPerThread);
    EXPECT_LT(st.transactions, st.commits) << "group commit never grouped";
    std::cout << "[          ] " << st.commits << " commits in " << st.transactions
              << " transactions\n";
  }
  // Every shared-key revision was handed out exactly once.
  std::vector<int64_t> all;
  for (auto& v : shared) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread / 2));
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<int64_t>(i + 1));

  auto store = MustOpen(O(dir));
  ASSERT_TRUE(store);
  auto rows = LoadMap(*store);
  ASSERT_EQ(rows.size(), static_cast<size_t>(kThreads + 1));
  EXPECT_EQ(rows["shared"].second, kThreads * kPerThread / 2);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(rows[absl::StrCat("t", t)],
              std::make_pair(absl::StrCat(t, ":", kPerThread - 2), int64_t{kPerThread / 2}));
  }
}

TEST_P(SqliteStoreTest, LoadAllWhileCommitting) {
  TempDir dir;
  auto store = MustOpen(O(dir));
  ASSERT_TRUE(store);
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        ASSERT_TRUE(store->Commit(Put(absl::StrCat("w", t, "-", i % 10), "v")).ok());
      }
    });
  }
  int64_t last_total = 0;
  for (int round = 0; round < 50; ++round) {
    int64_t total = 0;
    for (auto& [n, v, r] : Load(*store)) total += r;
    EXPECT_GE(total, last_total);  // each snapshot is at least as new as the previous one
    last_total = total;
  }
  stop = true;
  for (auto& t : writers) t.join();
}

TEST_P(SqliteStoreTest, CloseDrainsAndLaterCommitsFail) {
  TempDir dir;
  std::vector<std::vector<std::string>> acked(16), refused(16);
  {
    auto store = MustOpen(O(dir));
    ASSERT_TRUE(store);
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0;; ++i) {
          std::string key = absl::StrCat("c", t, "-", i);
          absl::StatusOr<int64_t> r = store->Commit(Put(key, "v"));
          if (r.ok()) {
            acked[t].push_back(key);
            continue;
          }
          EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
          refused[t].push_back(key);
          return;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    store->Close();
    for (auto& t : threads) t.join();
    store->Close();  // idempotent
    absl::StatusOr<int64_t> r = store->Commit(Put("late", "v"));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(r.status().message(), HasSubstr("closed"));
    EXPECT_EQ(store->LoadAll([](auto, auto, auto) { return absl::OkStatus(); }).code(),
              absl::StatusCode::kUnavailable);
  }
  auto store = MustOpen(O(dir));
  ASSERT_TRUE(store);
  auto rows = LoadMap(*store);
  size_t n = 0;
  for (int t = 0; t < 16; ++t) {
    EXPECT_FALSE(acked[t].empty());
    for (const auto& k : acked[t]) EXPECT_EQ(rows.count(k), 1u) << k;
    for (const auto& k : refused[t]) EXPECT_EQ(rows.count(k), 0u) << k;
    n += acked[t].size();
  }
  EXPECT_EQ(rows.size(), n);
}

// SQLite's own full disk (max_db_bytes), on the reply path without the journal; the journal's
// full disk: journal_store_test.cc.
TEST(SqliteStoreNoJournalTest, FullDiskFailsWholeBatchAndAcknowledgesNothingLost) {
  TempDir dir;
  SqliteStore::Options o = Opts(dir);
  o.max_db_bytes = 256 << 10;
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  std::vector<std::vector<std::pair<std::string, bool>>> outcomes(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        std::string key = absl::StrCat("f", t, "-", i);
        absl::StatusOr<int64_t> r = store->Commit(Put(key, std::string(3000, 'x')));
        outcomes[t].emplace_back(key, r.ok());
        if (!r.ok()) {
          EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
          EXPECT_THAT(r.status().message(), HasSubstr("full"));
          EXPECT_THAT(r.status().message(), HasSubstr(dir.db()));
          return;
        }
      }
      ADD_FAILURE() << "the size limit was never reached";
    });
  }
  for (auto& t : threads) t.join();
  // The store still works for what fits, e.g. deletes.
  EXPECT_TRUE(store->Commit(Del("f0-0")).ok());
  auto rows = LoadMap(*store);
  for (auto& per_thread : outcomes) {
    for (auto& [key, ok] : per_thread) {
      if (key == "f0-0") continue;
      EXPECT_EQ(rows.count(key), ok ? 1u : 0u) << key;
    }
  }
}

}  // namespace
}  // namespace lrsched::store_test
