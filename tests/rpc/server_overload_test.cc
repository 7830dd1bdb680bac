// Copyright lrsched authors.
//
// The service under a store that cannot keep up: calls that wait for a commit occupy worker
// threads; beyond the workers and the bounded queue, calls are refused RESOURCE_EXHAUSTED at
// once; reads of memory never wait for a worker; everything accepted is answered once the
// store catches up.
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

TEST(ServerOverloadTest, RefusesBeyondWorkersAndQueueThenRecovers) {
  ServerConfig config;
  config.worker_threads = 1;
  config.max_queued_calls = 1;
  ServerHarness h(StoreKind::kMemory, config);
  ASSERT_TRUE(Create(h.stub(), "a", kCosineSpec).ok());
  ASSERT_TRUE(Create(h.stub(), "b", kCosineSpec).ok());
  ASSERT_TRUE(Create(h.stub(), "c", kCosineSpec).ok());

  h.memory()->HoldCommits();
  // The first step takes the only worker and blocks in its commit; the second waits in the
  // queue (its one slot).
  grpc::Status first, second;
  std::thread t1([&] { first = Step(h.stub(), "a"); });
  ASSERT_TRUE(Eventually([&] { return h.memory()->commits_waiting() == 1; }));
  std::thread t2([&] { second = Step(h.stub(), "b"); });
  ASSERT_TRUE(Eventually([&] { return h.server()->pool_queued() == 1; }));

  // A third mutation is refused at once, naming the cause.
  absl::Time t0 = absl::Now();
  grpc::Status third = Step(h.stub(), "c");
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << third.error_message();
  EXPECT_NE(third.error_message().find("overloaded"), std::string::npos);

  // Reads of memory need no worker: they answer while every worker is stuck.
  v1::Session got;
  EXPECT_TRUE(Get(h.stub(), "c", &got).ok());
  EXPECT_EQ(got.last_epoch(), 0);
  v1::GetLRRequest lr_req;
  lr_req.set_name("c");
  lr_req.set_ahead(10);
  v1::GetLRResponse lr;
  EXPECT_TRUE(h.stub().GetLR(Ctx().get(), lr_req, &lr).ok());

  h.memory()->ReleaseCommits();
  t1.join();
  t2.join();
  EXPECT_TRUE(first.ok()) << first.error_message();
  EXPECT_TRUE(second.ok()) << second.error_message();
  // Nothing refused was applied; the server serves normally again.
  ASSERT_TRUE(Get(h.stub(), "c", &got).ok());
  EXPECT_EQ(got.last_epoch(), 0);
  EXPECT_TRUE(Step(h.stub(), "c").ok());
  h.Stop();
}

// A read of a session whose step is waiting for the disk answers with the last committed
// state at once: readers never queue behind a commit.
TEST(ServerOverloadTest, ReadsDoNotWaitForACommitInProgress) {
  ServerHarness h(StoreKind::kMemory);
  ASSERT_TRUE(Create(h.stub(), "s", kCosineSpec).ok());
  h.memory()->HoldCommits();
  grpc::Status stepped;
  std::thread t([&] { stepped = Step(h.stub(), "s"); });
  ASSERT_TRUE(Eventually([&] { return h.memory()->commits_waiting() == 1; }));
  v1::GetLRRequest req;
  req.set_name("s");
  v1::GetLRResponse lr;
  auto ctx = Ctx(absl::Seconds(2));
  grpc::Status read = h.stub().GetLR(ctx.get(), req, &lr);
  EXPECT_TRUE(read.ok()) << read.error_message();
  EXPECT_EQ(lr.last_epoch(), 0);  // the step is not acknowledged yet
  v1::Session got;
  EXPECT_TRUE(Get(h.stub(), "s", &got).ok());
  EXPECT_EQ(got.last_epoch(), 0);
  h.memory()->ReleaseCommits();
  t.join();
  ASSERT_TRUE(stepped.ok()) << stepped.error_message();
  ASSERT_TRUE(Get(h.stub(), "s", &got).ok());
  EXPECT_EQ(got.last_epoch(), 1);
  h.Stop();
}

}  // namespace
}  // namespace lrsched::test_support
