// Copyright lrsched authors.
//
// The core Store contract (store.h), StoreContractTest: see store_contract.h. The SharedStore
// capability's suite is shared_store_contract.cc.
#include "server/store/testing/store_contract.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"

namespace lrsched::store_contract {

std::string StoreBackendName(const ::testing::TestParamInfo<StoreBackendFactory>& info) {
  return info.param.name;
}

void PrintTo(const StoreBackendFactory& factory, std::ostream* os) { *os << factory.name; }

void StoreContractTest::SetUp() {
  const StoreBackendFactory& f = GetParam();
  if (f.skip_reason) {
    if (std::string why = f.skip_reason(); !why.empty()) GTEST_SKIP() << why;
  }
  backend_ = f.make();
  ASSERT_NE(backend_, nullptr) << f.name;
  store_ = backend_->Open();
  ASSERT_NE(store_, nullptr) << f.name;
}

namespace {

using ::testing::HasSubstr;
using ::testing::Pair;

TEST_P(StoreContractTest, PutAndLoadAllInNameOrder) {
  Store& s = *store_;
  ASSERT_TRUE(s.Commit(Put("b", "B")).ok());
  ASSERT_TRUE(s.Commit(Put("a", "A")).ok());
  ASSERT_TRUE(s.Commit(Put("c", std::string("\0x\0", 3))).ok());
  ASSERT_TRUE(s.Commit(Put("", "")).ok());  // empty name and value are still values
  ASSERT_TRUE(s.Commit(Put("a/b", "nested")).ok());
  std::vector<std::pair<std::string, std::string>> got;
  for (auto& [n, v, r] : Load(s)) {
    EXPECT_GT(r, 0) << n;
    got.emplace_back(n, v);
  }
  EXPECT_THAT(got, ::testing::ElementsAre(Pair("", ""), Pair("a", "A"), Pair("a/b", "nested"),
                                          Pair("b", "B"), Pair("c", std::string("\0x\0", 3))));
  int calls = 0;
  absl::Status st = s.LoadAll([&](std::string_view, std::string_view, int64_t) {
    ++calls;
    return absl::AbortedError("stop");
  });
  EXPECT_EQ(st, absl::AbortedError("stop"));
  EXPECT_EQ(calls, 1);
}

TEST_P(StoreContractTest, RevisionsGrowWithEveryPutAndLoadAllReportsTheLast) {
  int64_t last = 0;
  for (int i = 1; i <= 5; ++i) {
    absl::StatusOr<int64_t> r = store_->Commit(Put("x", absl::StrCat("v", i)));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_GT(*r, last);
    last = *r;
  }
  auto rows = LoadMap(*store_);
  EXPECT_EQ(rows["x"], std::make_pair(std::string("v5"), last));
}

TEST_P(StoreContractTest, CompareAndSwap) {
  Store& s = *store_;
  absl::StatusOr<int64_t> r1 = s.Commit(Put("k", "1", 0));
  ASSERT_TRUE(r1.ok()) << r1.status();
  absl::StatusOr<int64_t> r = s.Commit(Put("k", "lost", 0));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("\"k\""));
  EXPECT_THAT(r.status().message(), HasSubstr("expected revision 0"));
  EXPECT_THAT(r.status().message(), HasSubstr(absl::StrCat("current revision ", *r1)));
  absl::StatusOr<int64_t> r2 = s.Commit(Put("k", "2", *r1));
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_GT(*r2, *r1);
  EXPECT_EQ(s.Commit(Put("k", "lost", *r1)).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.Commit(Del("k", *r1)).status().code(), absl::StatusCode::kFailedPrecondition);
  r = s.Commit(Put("new", "x", *r2));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("(does not exist)"));
  EXPECT_THAT(LoadMap(s), ::testing::ElementsAre(Pair("k", Pair("2", *r2))));
  ASSERT_TRUE(s.Commit(Del("k", *r2)).ok());
  EXPECT_TRUE(Load(s).empty());
  // After a delete the key does not exist again: "must not exist" holds.
  absl::StatusOr<int64_t> r3 = s.Commit(Put("k", "again", 0));
  ASSERT_TRUE(r3.ok()) << r3.status();
  EXPECT_THAT(LoadMap(s), ::testing::ElementsAre(Pair("k", Pair("again", *r3))));
}

TEST_P(StoreContractTest, DeleteIsIdempotent) {
  Store& s = *store_;
  EXPECT_TRUE(s.Commit(Del("missing")).ok());
  EXPECT_TRUE(s.Commit(Del("missing", 0)).ok());  // "must not exist" holds
  EXPECT_EQ(s.Commit(Del("missing", 4)).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s.Commit(Put("k", "v")).ok());
  EXPECT_TRUE(s.Commit(Del("k")).ok());
  EXPECT_TRUE(s.Commit(Del("k")).ok());
  EXPECT_TRUE(Load(s).empty());
}

TEST_P(StoreContractTest, ConcurrentCompareAndSwapHasOneWinnerPerRound) {
  constexpr int kThreads = 8, kRounds = 20;
  absl::StatusOr<int64_t> start = store_->Commit(Put("c", "0", 0));
  ASSERT_TRUE(start.ok()) << start.status();
  std::atomic<int64_t> seen{*start};
  std::vector<int> wins(kThreads, 0);
  std::vector<std::string> errors(kThreads);
  for (int round = 0; round < kRounds; ++round) {
    const int64_t expected = seen.load();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        absl::StatusOr<int64_t> r = store_->Commit(Put("c", absl::StrCat(t), expected));
        if (r.ok()) {
          ++wins[t];
          seen.store(*r);
        } else if (r.status().code() != absl::StatusCode::kFailedPrecondition) {
          errors[t] = r.status().ToString();
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_GT(seen.load(), expected) << "nobody won round " << round;
  }
  int total = 0;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "") << t;
    total += wins[t];
  }
  EXPECT_EQ(total, kRounds);
  EXPECT_EQ(LoadMap(*store_)["c"].second, seen.load());
}

TEST_P(StoreContractTest, ConcurrentCommittersGetDistinctRevisions) {
  constexpr int kThreads = 16, kPerThread = 25;
  std::vector<std::vector<int64_t>> revs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        absl::StatusOr<int64_t> r = store_->Commit(Put("shared", absl::StrCat(t, ":", i)));
        ASSERT_TRUE(r.ok()) << r.status();
        if (!revs[t].empty()) {
          ASSERT_GT(*r, revs[t].back());
        }
        revs[t].push_back(*r);
        ASSERT_TRUE(store_->Commit(Put(absl::StrCat("own", t), absl::StrCat(i))).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<int64_t> all;
  for (auto& v : revs) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  auto rows = LoadMap(*store_);
  EXPECT_EQ(rows.size(), static_cast<size_t>(kThreads + 1));
  EXPECT_EQ(rows["shared"].second, *all.rbegin());
  EXPECT_GE(store_->stats().commits, kThreads * kPerThread * 2);
}

TEST_P(StoreContractTest, ReopenKeepsRecordsAndRevisions) {
  ASSERT_TRUE(store_->Commit(Put("a", "1")).ok());
  absl::StatusOr<int64_t> ra = store_->Commit(Put("a", "2"));
  ASSERT_TRUE(ra.ok());
  ASSERT_TRUE(store_->Commit(Put("gone", "x")).ok());
  ASSERT_TRUE(store_->Commit(Del("gone")).ok());
  store_->Close();
  store_.reset();
  auto again = backend_->Open();
  ASSERT_NE(again, nullptr);
  EXPECT_THAT(LoadMap(*again), ::testing::ElementsAre(Pair("a", Pair("2", *ra))));
  EXPECT_TRUE(again->Commit(Put("a", "3", *ra)).ok());
}

TEST_P(StoreContractTest, CloseRefusesLaterCommits) {
  ASSERT_TRUE(store_->Commit(Put("a", "1")).ok());
  store_->Close();
  store_->Close();  // idempotent
  absl::StatusOr<int64_t> r = store_->Commit(Put("late", "v"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("closed"));
  EXPECT_EQ(store_->LoadAll([](auto, auto, auto) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kUnavailable);
}

// CommitAsync answers exactly what Commit would, in order per caller, also when many are in
// flight at once (SQLite groups them; etcd runs them in the caller), and refuses after Close.
TEST_P(StoreContractTest, CommitAsyncAnswersLikeCommit) {
  constexpr int kKeys = 50;
  absl::Mutex mu;
  std::vector<absl::StatusOr<int64_t>> results(kKeys, absl::UnknownError("no answer"));
  int answered = 0;
  for (int i = 0; i < kKeys; ++i) {
    Mutation m = Put(absl::StrCat("k", i), absl::StrCat("v", i));
    m.expected_revision = 0;
    store_->CommitAsync(std::move(m), [&, i](absl::StatusOr<int64_t> r) {
      absl::MutexLock l(&mu);
      results[static_cast<size_t>(i)] = std::move(r);
      ++answered;
    });
  }
  {
    absl::MutexLock l(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(
                                        +[](int* n) { return *n == kKeys; }, &answered),
                                    absl::Seconds(30)));
  }
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(results[static_cast<size_t>(i)].ok()) << results[static_cast<size_t>(i)].status();
  }
  // A lost compare comes back as FAILED_PRECONDITION, and writes nothing.
  Mutation stale = Put("k0", "overwritten");
  stale.expected_revision = *results[0] + 1000;
  absl::StatusOr<int64_t> lost = absl::UnknownError("no answer");
  absl::Notification got;
  store_->CommitAsync(std::move(stale), [&](absl::StatusOr<int64_t> r) {
    lost = std::move(r);
    got.Notify();
  });
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kFailedPrecondition);
  std::map<std::string, std::string> rows;
  ASSERT_TRUE(store_
                  ->LoadAll([&](std::string_view n, std::string_view v, int64_t) {
                    rows[std::string(n)] = std::string(v);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(rows.size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(rows["k0"], "v0");

  store_->Close();
  absl::Notification refused;
  store_->CommitAsync(Put("late", "v"), [&](absl::StatusOr<int64_t> r) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
    refused.Notify();
  });
  EXPECT_TRUE(refused.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

// A callback may queue the next mutation itself (it runs on the writing thread, possibly the
// caller's, before CommitAsync returns): each is written in turn, none is lost or deadlocks.
TEST_P(StoreContractTest, CommitAsyncFromACallbackIsWrittenAfterIt) {
  constexpr int kChain = 20;
  absl::Mutex mu;
  std::vector<int64_t> revisions;
  absl::Notification finished;
  std::function<void(absl::StatusOr<int64_t>)> next = [&](absl::StatusOr<int64_t> r) {
    ASSERT_TRUE(r.ok()) << r.status();
    size_t n;
    {
      absl::MutexLock l(&mu);
      revisions.push_back(*r);
      n = revisions.size();
    }
    if (n == kChain) {
      finished.Notify();
      return;
    }
    Mutation m = Put("chain", absl::StrCat("v", n));
    m.expected_revision = *r;
    store_->CommitAsync(std::move(m), next);
  };
  Mutation first = Put("chain", "v0");
  first.expected_revision = 0;
  store_->CommitAsync(std::move(first), next);
  ASSERT_TRUE(finished.WaitForNotificationWithTimeout(absl::Seconds(30)));
  absl::MutexLock l(&mu);
  // Each compare held (the callback asserts ok), so each write saw the one before it.
  ASSERT_EQ(revisions.size(), static_cast<size_t>(kChain));
  for (size_t i = 1; i < revisions.size(); ++i) EXPECT_GT(revisions[i], revisions[i - 1]);
}

}  // namespace
}  // namespace lrsched::store_contract
