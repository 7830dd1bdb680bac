// Copyright lrsched authors.
//
// Faults with a real 3-member etcd cluster and two lrsched replicas (in-process servers, each
// with an EtcdStore over all three endpoints): steps flow through both replicas while the etcd
// leader is killed (SIGKILL) and then one replica is stopped abruptly (Shutdown with no grace:
// in-process, the nearest to kill -9 that keeps the test's own process alive); every
// acknowledged step is still in etcd afterwards, the survivor keeps serving, and a replica
// started afterwards catches up from etcd. Skipped without the etcd binary.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/rpc/server.h"
#include "server/store/etcd/etcd_store.h"
#include "tests/rpc/server_harness.h"
#include "tests/store/etcd/etcd_cluster.h"

namespace lrsched::test_support {
namespace {

struct Replica {
  std::unique_ptr<EtcdStore> store;
  std::unique_ptr<LrschedServer> server;
  std::unique_ptr<v1::LrScheduler::Stub> stub;
};

std::unique_ptr<Replica> StartReplica(const std::string& endpoints) {
  EtcdStore::Options o;
  for (absl::string_view e : absl::StrSplit(endpoints, ',')) o.endpoints.emplace_back(e);
  o.prefix = "/lrsched-fault/";
  o.timeout = absl::Seconds(2);
  auto r = std::make_unique<Replica>();
  auto store = EtcdStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return nullptr;
  r->store = *std::move(store);
  ServerConfig config;
  config.listen = "127.0.0.1:0";
  auto server = LrschedServer::Start(config, r->store.get());
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return nullptr;
  r->server = *std::move(server);
  r->stub = v1::LrScheduler::NewStub(
      grpc::CreateChannel(r->server->address(), grpc::InsecureChannelCredentials()));
  return r;
}

TEST(EtcdFaultTest, LeaderAndReplicaKilledLoseNoAcknowledgedStep) {
  if (!EtcdCluster::Available()) GTEST_SKIP() << "etcd binary not found";
  EtcdCluster etcd;
  absl::Status s = etcd.Start(3);
  ASSERT_TRUE(s.ok()) << s;
  auto a = StartReplica(etcd.endpoints());
  auto b = StartReplica(etcd.endpoints());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(Create(*a->stub, "runs/fault", kCosineSpec).ok());

  // 8 clients step (no if_epoch: every acknowledged call is one step) through A and B until
  // told to stop; client 0..3 use A, which is stopped midway: they then move to B.
  constexpr int kClients = 8;
  std::atomic<bool> stop{false}, a_down{false};
  std::atomic<int64_t> acked{0}, failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 100000 && !stop.load(); ++i) {
        v1::LrScheduler::Stub& stub = (c % 2 == 0 && !a_down.load()) ? *a->stub : *b->stub;
        v1::StepRequest req;
        req.set_name("runs/fault");
        v1::StepResponse resp;
        grpc::Status st = StepOnce(stub, req, &resp);
        if (st.ok() && resp.advanced()) {
          acked.fetch_add(1);
        } else {
          failed.fetch_add(1);
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    });
  }
  auto wait_acks = [&](int64_t more) {
    const int64_t target = acked.load() + more;
    for (int i = 0; i < 300 && acked.load() < target; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return acked.load() >= target;
  };
  EXPECT_TRUE(wait_acks(50));
  const int leader = etcd.Leader();
  ASSERT_GE(leader, 0) << "no etcd leader found";
  etcd.Kill(leader);
  EXPECT_TRUE(wait_acks(50)) << "no progress after the etcd leader was killed";
  a_down = true;
  a->server->Shutdown(absl::ZeroDuration());
  EXPECT_TRUE(wait_acks(50)) << "no progress after replica A went down";
  stop = true;
  for (auto& t : clients) t.join();

  // Every acknowledged step is in etcd; a call that timed out may have landed too (never
  // acknowledged), so the epoch may exceed the acknowledged count, by at most the failures.
  v1::Session got;
  ASSERT_TRUE(Get(*b->stub, "runs/fault", &got).ok());
  EXPECT_GE(got.last_epoch(), acked.load());
  EXPECT_LE(got.last_epoch(), acked.load() + failed.load());
  auto c = StartReplica(etcd.endpoints());
  ASSERT_TRUE(c);
  v1::Session caught_up;
  ASSERT_TRUE(Get(*c->stub, "runs/fault", &caught_up).ok());
  EXPECT_EQ(caught_up.last_epoch(), got.last_epoch());
  EXPECT_EQ(caught_up.revision(), got.revision());
  std::cout << "[          ] " << acked.load() << " steps acknowledged, " << failed.load()
            << " failed, final epoch " << got.last_epoch() << "\n";
  c->server->Shutdown(absl::Seconds(1));
  b->server->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace lrsched::test_support
