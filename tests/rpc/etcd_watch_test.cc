// Copyright lrsched authors.
//
// Replicas kept fresh by etcd's Watch (issue #6), on real etcd processes: a replica serves
// reads from memory and its Watch streams follow changes made through another replica, with no
// call touching the session on it; consistent reads see a change at once; the feed survives
// etcd stopped and restarted, resumes where it stopped (changes made meanwhile through other
// members arrive), and re-lists after etcd compacted that history away; lost compares between
// replicas are not logged as warnings. (The store-level feed on its own, EtcdStore::Subscribe:
// the SharedStore contract, tests/store/store_contract_test.cc.) Every wait is bounded (10 s unless
// stated); skipped without the etcd binary.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/ops/log.h"
#include "server/rpc/server.h"
#include "server/store/etcd/etcd_store.h"
#include "tests/rpc/server_harness.h"
#include "tests/store/etcd/etcd_cluster.h"

namespace lrsched::test_support {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Polls `cond` every 20 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

std::unique_ptr<EtcdStore> OpenStore(const std::string& endpoints) {
  EtcdStore::Options o;
  for (absl::string_view e : absl::StrSplit(endpoints, ',')) o.endpoints.emplace_back(e);
  o.prefix = "/lrsched-watch/";
  o.timeout = absl::Seconds(2);
  auto store = EtcdStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

struct Replica {
  std::unique_ptr<EtcdStore> store;
  std::unique_ptr<LrschedServer> server;
  std::unique_ptr<v1::LrScheduler::Stub> stub;
  Registry& registry() { return server->registry(); }
  ~Replica() {
    if (server) server->Shutdown(absl::Seconds(1));
  }
};

std::unique_ptr<Replica> StartReplica(const std::string& endpoints,
                                      absl::Duration max_staleness = absl::Seconds(5)) {
  auto r = std::make_unique<Replica>();
  r->store = OpenStore(endpoints);
  if (r->store == nullptr) return nullptr;
  ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.max_staleness = max_staleness;
  auto server = LrschedServer::Start(config, r->store.get());
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return nullptr;
  r->server = *std::move(server);
  r->stub = v1::LrScheduler::NewStub(
      grpc::CreateChannel(r->server->address(), grpc::InsecureChannelCredentials()));
  return r;
}

std::vector<std::string> ListNames(v1::LrScheduler::Stub& stub) {
  v1::ListSessionsRequest req;
  req.set_page_size(1000);
  v1::ListSessionsResponse resp;
  if (!stub.ListSessions(Ctx().get(), req, &resp).ok()) return {"<error>"};
  std::vector<std::string> names;
  for (const auto& s : resp.sessions()) names.push_back(s.name());
  return names;
}

// -1 when the call fails.
int64_t Epoch(v1::LrScheduler::Stub& stub, const std::string& name) {
  v1::GetLRRequest req;
  req.set_name(name);
  v1::GetLRResponse resp;
  if (!stub.GetLR(Ctx().get(), req, &resp).ok()) return -1;
  return resp.last_epoch();
}

// Retries while etcd elects a leader or a member comes back (bounded).
grpc::Status StepRetrying(v1::LrScheduler::Stub& stub, const std::string& name) {
  grpc::Status st;
  for (int i = 0; i < 100; ++i) {
    st = Step(stub, name);
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE &&
        st.error_code() != grpc::StatusCode::ABORTED) {
      return st;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return st;
}

class EtcdWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EtcdCluster::Available()) {
      GTEST_SKIP() << "etcd binary not found (apt-get install etcd-server, or set ETCD_BIN)";
    }
  }
};

TEST_F(EtcdWatchTest, WatchOnASeesEveryStepAndTheDeleteMadeOnB) {
  EtcdCluster etcd;
  ASSERT_TRUE(etcd.Start(1).ok());
  auto a = StartReplica(etcd.endpoints());
  auto b = StartReplica(etcd.endpoints());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(Create(*b->stub, "w", kCosineSpec).ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  v1::WatchRequest req;
  req.set_name("w");
  auto reader = a->stub->Watch(&ctx, req);
  v1::Session s;
  ASSERT_TRUE(reader->Read(&s));
  EXPECT_EQ(s.last_epoch(), 0);
  for (int k = 1; k <= 5; ++k) ASSERT_TRUE(Step(*b->stub, "w").ok());
  for (int k = 1; k <= 5; ++k) {
    ASSERT_TRUE(reader->Read(&s)) << "epoch " << k;
    EXPECT_EQ(s.last_epoch(), k);
  }
  ASSERT_TRUE(Delete(*b->stub, "w").ok());
  EXPECT_FALSE(reader->Read(&s));
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
}

TEST_F(EtcdWatchTest, ListAndGetLROnAFollowBWithoutTouchingA) {
  EtcdCluster etcd;
  ASSERT_TRUE(etcd.Start(1).ok());
  auto a = StartReplica(etcd.endpoints());
  auto b = StartReplica(etcd.endpoints());
  ASSERT_TRUE(a && b);
  for (const char* n : {"l/1", "l/2", "l/3"}) ASSERT_TRUE(Create(*b->stub, n, kCosineSpec).ok());
  EXPECT_TRUE(WaitFor([&] {
    return ListNames(*a->stub) == std::vector<std::string>{"l/1", "l/2", "l/3"};
  }));
  ASSERT_TRUE(Delete(*b->stub, "l/2").ok());
  EXPECT_TRUE(WaitFor([&] {
    return ListNames(*a->stub) == std::vector<std::string>{"l/1", "l/3"};
  }));
  EXPECT_THAT(ListNames(*a->stub), ElementsAre("l/1", "l/3"));

  for (int k = 0; k < 3; ++k) ASSERT_TRUE(Step(*b->stub, "l/1").ok());
  // consistent = true reads etcd: the step is there at once.
  auto la = a->registry().LookAhead("l/1", 0, 0, nullptr, ReadOptions{true});
  ASSERT_TRUE(la.ok()) << la.status();
  EXPECT_EQ(la->last_epoch, 3);
  auto got = a->registry().Get("l/3", ReadOptions{true});
  ASSERT_TRUE(got.ok()) << got.status();
  auto page = a->registry().List(ListQuery{"l/", {}, 1, ""}, ReadOptions{true});
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->sessions.size(), 1u);
  EXPECT_EQ(page->sessions[0].meta.name, "l/1");
  EXPECT_EQ(page->last_name, "l/1");
  // From memory: within the feed's delay.
  EXPECT_TRUE(WaitFor([&] { return Epoch(*a->stub, "l/1") == 3; }));
  FeedStatus feed = a->registry().feed_status();
  EXPECT_TRUE(feed.active);
  EXPECT_TRUE(feed.healthy);
  EXPECT_GT(feed.revision, 0);
}

// B's feed announces A's create before it installs it; a Step on B that re-reads the session
// in that window must install what it read, not answer NOT_FOUND (it did, now and then).
TEST_F(EtcdWatchTest, AStepOnBRightAfterACreateOnAFindsTheSession) {
  EtcdCluster etcd;
  ASSERT_TRUE(etcd.Start(1).ok());
  auto a = StartReplica(etcd.endpoints());
  auto b = StartReplica(etcd.endpoints());
  ASSERT_TRUE(a && b);
  for (int k = 0; k < 100; ++k) {
    const std::string name = absl::StrCat("n/", k);
    ASSERT_TRUE(Create(*a->stub, name, kCosineSpec).ok());
    grpc::Status st = Step(*b->stub, name);
    EXPECT_TRUE(st.ok()) << name << ": " << st.error_message();
  }
}

TEST_F(EtcdWatchTest, FeedSurvivesEtcdStoppedAndRestarted) {
  EtcdCluster etcd;
  ASSERT_TRUE(etcd.Start(1).ok());
  auto a = StartReplica(etcd.endpoints(), /*max_staleness=*/absl::Seconds(1));
  auto b = StartReplica(etcd.endpoints());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(Create(*a->stub, "r", kCosineSpec).ok());
  ASSERT_TRUE(Step(*b->stub, "r").ok());
  ASSERT_TRUE(WaitFor([&] { return Epoch(*a->stub, "r") == 1; }));

  etcd.Stop(0);
  ASSERT_TRUE(WaitFor([&] { return !a->registry().feed_status().healthy; }));
  // Served from memory for up to max_staleness, then refused, saying how stale it would be.
  grpc::Status st;
  ASSERT_TRUE(WaitFor([&] {
    st = Get(*a->stub, "r");
    return st.error_code() == grpc::StatusCode::UNAVAILABLE;
  }));
  EXPECT_THAT(st.error_message(), HasSubstr("stale"));
  EXPECT_FALSE(Step(*b->stub, "r").ok());  // mutations need etcd

  ASSERT_TRUE(etcd.Restart(0).ok());
  EXPECT_TRUE(WaitFor([&] { return a->registry().feed_status().healthy; }));
  ASSERT_TRUE(StepRetrying(*b->stub, "r").ok());
  EXPECT_TRUE(WaitFor([&] { return Epoch(*a->stub, "r") == 2; }));
}

// A replica on member 0 only; B on members 1 and 2, which keep a quorum while 0 is down.
TEST_F(EtcdWatchTest, FeedResumesAfterABreakAndReListsAfterCompaction) {
  EtcdCluster etcd;
  ASSERT_TRUE(etcd.Start(3).ok());
  auto a = StartReplica(etcd.endpoint(0));
  auto b = StartReplica(etcd.endpoint(1) + "," + etcd.endpoint(2));
  ASSERT_TRUE(a && b);
  std::atomic<int> reloads{0};
  logging::SetSinkForTest([&](const std::string& line) {
    if (line.find("event=sessions_reloaded") != std::string::npos) reloads.fetch_add(1);
  });
  ASSERT_TRUE(Create(*b->stub, "c/keep", kCosineSpec).ok());
  ASSERT_TRUE(Create(*b->stub, "c/gone", kCosineSpec).ok());
  ASSERT_TRUE(WaitFor([&] {
    return ListNames(*a->stub) == std::vector<std::string>{"c/gone", "c/keep"};
  }));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::WatchRequest wreq;
  wreq.set_name("c/gone");
  auto watcher = a->stub->Watch(&ctx, wreq);
  v1::Session s;
  ASSERT_TRUE(watcher->Read(&s));

  // A break: changes made meanwhile arrive once the feed resumes.
  etcd.Stop(0);
  ASSERT_TRUE(WaitFor([&] { return !a->registry().feed_status().healthy; }));
  ASSERT_TRUE(StepRetrying(*b->stub, "c/keep").ok());
  ASSERT_TRUE(StepRetrying(*b->stub, "c/keep").ok());
  ASSERT_TRUE(etcd.Restart(0).ok());
  EXPECT_TRUE(WaitFor([&] { return Epoch(*a->stub, "c/keep") == 2; }));
  EXPECT_EQ(reloads.load(), 0);

  // A break during which etcd compacts past A's position: A re-lists and converges.
  etcd.Stop(0);
  ASSERT_TRUE(WaitFor([&] { return !a->registry().feed_status().healthy; }));
  ASSERT_TRUE(StepRetrying(*b->stub, "c/keep").ok());
  ASSERT_TRUE(Delete(*b->stub, "c/gone").ok());
  ASSERT_TRUE(Create(*b->stub, "c/new", kCosineSpec).ok());
  {
    auto kv = etcdserverpb::KV::NewStub(
        grpc::CreateChannel(etcd.endpoint(1), grpc::InsecureChannelCredentials()));
    etcdserverpb::RangeRequest rreq;
    rreq.set_key("/lrsched-watch/");
    etcdserverpb::RangeResponse rresp;
    ASSERT_TRUE(kv->Range(Ctx().get(), rreq, &rresp).ok());
    etcdserverpb::CompactionRequest creq;
    creq.set_revision(rresp.header().revision());
    creq.set_physical(true);
    etcdserverpb::CompactionResponse cresp;
    grpc::Status cs = kv->Compact(Ctx().get(), creq, &cresp);
    ASSERT_TRUE(cs.ok()) << cs.error_message();
  }
  ASSERT_TRUE(etcd.Restart(0).ok());
  EXPECT_TRUE(WaitFor([&] {
    return ListNames(*a->stub) == std::vector<std::string>{"c/keep", "c/new"} &&
           Epoch(*a->stub, "c/keep") == 3;
  }));
  EXPECT_GE(reloads.load(), 1);
  EXPECT_FALSE(watcher->Read(&s));
  grpc::Status st = watcher->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  logging::SetSinkForTest(nullptr);
}

// Replicas racing each other lose compares all the time: that is logged at debug, not as a
// warning per occurrence.
TEST_F(EtcdWatchTest, LostComparesBetweenReplicasAreNotWarnings) {
  EtcdCluster etcd;
  ASSERT_TRUE(etcd.Start(1).ok());
  auto a = StartReplica(etcd.endpoints());
  auto b = StartReplica(etcd.endpoints());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(Create(*a->stub, "race", kCosineSpec).ok());
  std::atomic<int> warnings{0}, debug_lost{0};
  logging::SetMinLevel(logging::Level::kDebug);
  logging::SetSinkForTest([&](const std::string& line) {
    if (line.find("event=commit_failed") == std::string::npos) return;
    if (line.find("level=warning") != std::string::npos) warnings.fetch_add(1);
    if (line.find("level=debug") != std::string::npos) debug_lost.fetch_add(1);
  });
  std::vector<std::thread> ranks;
  for (int r = 0; r < 8; ++r) {
    ranks.emplace_back([&, r] {
      v1::LrScheduler::Stub& stub = r % 2 == 0 ? *a->stub : *b->stub;
      for (int i = 0; i < 10; ++i) {
        // No if_epoch: each acknowledged call is one step. ABORTED (contention beyond the
        // registry's retries) committed nothing, so calling again is safe.
        for (int attempt = 0; attempt < 5; ++attempt) {
          if (Step(stub, "race").error_code() != grpc::StatusCode::ABORTED) break;
        }
      }
    });
  }
  for (auto& t : ranks) t.join();
  logging::SetSinkForTest(nullptr);
  logging::SetMinLevel(logging::Level::kInfo);
  EXPECT_EQ(warnings.load(), 0);
  EXPECT_GT(debug_lost.load(), 0) << "no lost compare happened: the test proves nothing";
  auto got = a->registry().Get("race", ReadOptions{true});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->last_epoch, 80);
}

}  // namespace
}  // namespace lrsched::test_support
