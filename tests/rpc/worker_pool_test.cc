// Copyright lrsched authors.
//
// WorkerPool: tasks start in order, the queue bound refuses the excess, Shutdown drains.
#include "server/rpc/worker_pool.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace lrsched {
namespace {

WorkerPool::Options Opts(int threads, size_t max_queued) {
  WorkerPool::Options o;
  o.threads = threads;
  o.max_queued = max_queued;
  return o;
}

TEST(WorkerPoolTest, RunsTasksInSubmissionOrderOnOneThread) {
  WorkerPool pool(Opts(1, 100));
  absl::Mutex mu;
  std::vector<int> order;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(pool.Submit([&, i] {
      absl::MutexLock l(&mu);
      order.push_back(i);
    }));
  }
  pool.Shutdown();
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
}

TEST(WorkerPoolTest, RefusesBeyondTheQueueBoundAndRecovers) {
  WorkerPool pool(Opts(1, 2));
  absl::Notification started, release;
  ASSERT_TRUE(pool.Submit([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  started.WaitForNotification();  // the only thread is busy; the queue is empty
  EXPECT_EQ(pool.busy(), 1);
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.Submit([&] { ++ran; }));
  EXPECT_TRUE(pool.Submit([&] { ++ran; }));
  EXPECT_EQ(pool.queued(), 2u);
  EXPECT_FALSE(pool.Submit([&] { ++ran; }));  // full: refused, never run
  release.Notify();
  // Once the queue drains, tasks are accepted again.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (pool.queued() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_TRUE(pool.Submit([&] { ++ran; }));
  pool.Shutdown();
  EXPECT_EQ(ran.load(), 3);
}

TEST(WorkerPoolTest, ShutdownRunsEverythingAcceptedThenRefuses) {
  WorkerPool pool(Opts(4, 1000));
  std::atomic<int> ran{0};
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(pool.Submit([&] { ++ran; }));
  pool.Shutdown();
  EXPECT_EQ(ran.load(), 500);
  EXPECT_FALSE(pool.Submit([&] { ++ran; }));
  pool.Shutdown();  // idempotent
  EXPECT_EQ(ran.load(), 500);
}

}  // namespace
}  // namespace lrsched
