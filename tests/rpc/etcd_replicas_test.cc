// Copyright lrsched authors.
//
// Two lrsched replicas (in-process LrschedServers, each with its own EtcdStore and gRPC port)
// serving the same sessions from one real single-member etcd: what one replica commits the
// other serves (reads come from memory, kept fresh by etcd's Watch: within a bounded wait, or
// at once with consistent = true); 32 ranks stepping one session through both with if_epoch
// advance it exactly once per epoch and each sees torch's values; etcd stopped: mutations and
// consistent reads UNAVAILABLE, nothing acknowledged that is not stored; etcd back: serving
// again; an amendment made on one replica served by the other. Skipped without the etcd binary.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/rpc/server.h"
#include "server/store/etcd/etcd_store.h"
#include "tests/rpc/amend_util.h"
#include "tests/rpc/server_harness.h"
#include "tests/store/etcd/etcd_cluster.h"

namespace lrsched::test_support {
namespace {

// An EtcdStore on the replicas' prefix, for writing raw bytes under it as a stray program
// (or damage) would.
std::unique_ptr<EtcdStore> RawStore(const std::string& endpoint) {
  EtcdStore::Options o;
  o.endpoints = {endpoint};
  o.prefix = "/lrsched-replicas/";
  o.timeout = absl::Seconds(2);
  auto store = EtcdStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

class Replica {
 public:
  absl::Status Start(const std::string& endpoints,
                     DamagedRecords damaged = DamagedRecords::kRefuse) {
    EtcdStore::Options o;
    for (size_t i = 0, j; i <= endpoints.size(); i = j + 1) {
      j = endpoints.find(',', i);
      if (j == std::string::npos) j = endpoints.size();
      o.endpoints.push_back(endpoints.substr(i, j - i));
    }
    o.prefix = "/lrsched-replicas/";
    o.timeout = absl::Seconds(2);
    auto store = EtcdStore::Open(o);
    if (!store.ok()) return store.status();
    store_ = *std::move(store);
    ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.damaged_records = damaged;
    auto server = LrschedServer::Start(config, store_.get());
    if (!server.ok()) return server.status();
    server_ = *std::move(server);
    stub_ = v1::LrScheduler::NewStub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
    return absl::OkStatus();
  }
  ~Replica() {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }
  v1::LrScheduler::Stub& stub() { return *stub_; }
  Registry& registry() { return server_->registry(); }

 private:
  std::unique_ptr<EtcdStore> store_;
  std::unique_ptr<LrschedServer> server_;
  std::unique_ptr<v1::LrScheduler::Stub> stub_;
};

class EtcdReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EtcdCluster::Available()) {
      GTEST_SKIP() << "etcd binary not found (apt-get install etcd-server, or set ETCD_BIN)";
    }
    absl::Status s = etcd_.Start(1);
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_TRUE((s = a_.Start(etcd_.endpoints())).ok()) << s;
    ASSERT_TRUE((s = b_.Start(etcd_.endpoints())).ok()) << s;
  }
  EtcdCluster etcd_;
  Replica a_, b_;
};

TEST_F(EtcdReplicasTest, CreateOnAStepOnBGetOnA) {
  v1::Session created, got;
  ASSERT_TRUE(Create(a_.stub(), "runs/x", kCosineSpec, &created).ok());
  v1::StepResponse stepped;
  grpc::Status st = Step(b_.stub(), "runs/x", &stepped);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(stepped.advanced());
  EXPECT_EQ(stepped.session().last_epoch(), 1);
  auto consistent = a_.registry().Get("runs/x", ReadOptions{true});
  ASSERT_TRUE(consistent.ok()) << consistent.status();
  EXPECT_EQ(consistent->last_epoch, 1);
  ASSERT_TRUE(
      Eventually([&] { return Get(a_.stub(), "runs/x", &got).ok() && got.last_epoch() == 1; }));
  EXPECT_EQ(got.revision(), stepped.session().revision());
  EXPECT_EQ(Lrs(got), Lrs(stepped.session()));
  // The same create repeated on B returns the existing session; deleted on B, gone on A.
  v1::Session again;
  ASSERT_TRUE(Create(b_.stub(), "runs/x", kCosineSpec, &again).ok());
  EXPECT_EQ(again.last_epoch(), 1);
  ASSERT_TRUE(Delete(b_.stub(), "runs/x").ok());
  EXPECT_EQ(a_.registry().Get("runs/x", ReadOptions{true}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(Eventually(
      [&] { return Get(a_.stub(), "runs/x").error_code() == grpc::StatusCode::NOT_FOUND; }));
}

TEST_F(EtcdReplicasTest, ThirtyTwoRanksThroughBothReplicasAdvanceOncePerEpoch) {
  constexpr int kRanks = 32, kEpochs = 30;
  ASSERT_TRUE(Create(a_.stub(), "runs/ranks", kCosineSpec).ok());
  // torch's values per epoch, from the server's Simulate (bit-exact with torch's goldens).
  v1::SimulateRequest sreq;
  sreq.set_spec_json(kCosineSpec);
  sreq.set_steps(kEpochs + 1);
  v1::SimulateResponse sim;
  ASSERT_TRUE(a_.stub().Simulate(Ctx().get(), sreq, &sim).ok());
  ASSERT_EQ(sim.error(), "");
  const int groups = sim.groups();

  std::atomic<int> advanced{0};
  std::vector<std::string> errors(kRanks);
  std::vector<std::thread> ranks;
  for (int r = 0; r < kRanks; ++r) {
    ranks.emplace_back([&, r] {
      v1::LrScheduler::Stub& stub = r % 2 == 0 ? a_.stub() : b_.stub();
      for (int k = 0; k < kEpochs; ++k) {
        v1::StepRequest req;
        req.set_name("runs/ranks");
        req.set_if_epoch(k);
        v1::StepResponse resp;
        grpc::Status st;
        for (int attempt = 0; attempt < 20; ++attempt) {  // ABORTED: heavy contention, retry
          st = StepOnce(stub, req, &resp);
          if (st.error_code() != grpc::StatusCode::ABORTED) break;
        }
        if (!st.ok()) {
          errors[r] = absl::StrCat("epoch ", k, ": ", st.error_message());
          return;
        }
        if (resp.advanced()) advanced.fetch_add(1);
        const int64_t e = resp.session().last_epoch();
        if (e < k + 1 || e > kEpochs) {
          errors[r] = absl::StrCat("if_epoch ", k, " answered epoch ", e);
          return;
        }
        for (int g = 0; g < groups; ++g) {
          if (resp.session().groups(g).lr() != sim.lr(e * groups + g)) {
            errors[r] =
                absl::StrCat("epoch ", e, " group ", g, ": lr ", resp.session().groups(g).lr(),
                             " torch ", sim.lr(e * groups + g));
            return;
          }
        }
      }
    });
  }
  for (auto& t : ranks) t.join();
  for (int r = 0; r < kRanks; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
  EXPECT_EQ(advanced.load(), kEpochs);
  v1::Session a, b;
  ASSERT_TRUE(Eventually([&] {
    return Get(a_.stub(), "runs/ranks", &a).ok() && Get(b_.stub(), "runs/ranks", &b).ok() &&
           a.last_epoch() == kEpochs && b.last_epoch() == kEpochs;
  }));
  EXPECT_EQ(a.last_epoch(), kEpochs);
  EXPECT_EQ(b.last_epoch(), kEpochs);
  EXPECT_EQ(a.revision(), b.revision());
}

TEST_F(EtcdReplicasTest, EtcdStoppedIsUnavailableAndBackIsServing) {
  ASSERT_TRUE(Create(a_.stub(), "runs/f", kCosineSpec).ok());
  ASSERT_TRUE(Step(a_.stub(), "runs/f").ok());
  etcd_.Kill(0);
  v1::StepRequest req;
  req.set_name("runs/f");
  req.set_if_epoch(1);
  v1::StepResponse resp;
  grpc::Status st = StepOnce(b_.stub(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("etcd"));
  // Reads: from memory for a while (--etcd_max_staleness, 5 s here), unless consistent.
  EXPECT_EQ(a_.registry().Get("runs/f", ReadOptions{true}).status().code(),
            absl::StatusCode::kUnavailable);
  absl::Status s = etcd_.Restart(0);
  ASSERT_TRUE(s.ok()) << s;
  // Nothing was acknowledged while etcd was down: the session is still at epoch 1, and both
  // replicas serve again without a restart (bounded wait for their channels to reconnect).
  for (int i = 0; i < 100; ++i) {
    st = StepOnce(b_.stub(), req, &resp);
    if (st.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(resp.advanced());
  EXPECT_EQ(resp.session().last_epoch(), 2);
  v1::Session got;
  EXPECT_TRUE(
      Eventually([&] { return Get(a_.stub(), "runs/f", &got).ok() && got.last_epoch() == 2; }));
  EXPECT_EQ(got.last_epoch(), 2);
}

// Issue #14: one garbage key under the prefix made every newly started replica crash. Now a
// foreign or damaged record, at start-up or through the change feed, is set aside: its name
// answers DATA_LOSS, the other sessions are served, and deleting it frees the name.
TEST_F(EtcdReplicasTest, GarbageUnderThePrefixIsSetAsideNeverACrash) {
  ASSERT_TRUE(Create(a_.stub(), "runs/g", kCosineSpec).ok());
  ASSERT_TRUE(Step(a_.stub(), "runs/g").ok());
  std::unique_ptr<EtcdStore> raw = RawStore(etcd_.endpoint(0));
  ASSERT_NE(raw, nullptr);
  ASSERT_TRUE(raw->Commit(Mutation{Mutation::Kind::kPut, "evil", "garbage", std::nullopt}).ok());
  absl::StatusOr<SharedStore::ReadResult> good = raw->Read("runs/g");
  ASSERT_TRUE(good.ok() && good->found);
  std::string flipped = good->value;
  flipped[flipped.size() / 2] ^= 0x10;
  ASSERT_TRUE(raw->Commit(Mutation{Mutation::Kind::kPut, "runs/g", flipped, good->revision}).ok());

  // Through the feed, on both running replicas.
  for (Replica* r : {&a_, &b_}) {
    EXPECT_TRUE(Eventually([&] {
      return Get(r->stub(), "evil").error_code() == grpc::StatusCode::DATA_LOSS &&
             Get(r->stub(), "runs/g").error_code() == grpc::StatusCode::DATA_LOSS;
    }));
    EXPECT_EQ(r->registry().damaged_count(), 2u);
  }
  grpc::Status st = Get(a_.stub(), "runs/g");
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("checksum mismatch"));

  // A new replica starts (quarantine, --store=etcd's default) and serves the rest; one told to
  // refuse says why and exits cleanly.
  ASSERT_TRUE(Create(a_.stub(), "runs/ok", kCosineSpec).ok());
  Replica c;
  absl::Status s = c.Start(etcd_.endpoints(), DamagedRecords::kQuarantine);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.registry().damaged_count(), 2u);
  EXPECT_EQ(Get(c.stub(), "evil").error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_TRUE(Get(c.stub(), "runs/ok").ok());
  Replica refusing;
  s = refusing.Start(etcd_.endpoints(), DamagedRecords::kRefuse);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;

  // Deleting through one replica frees the name everywhere.
  ASSERT_TRUE(Delete(b_.stub(), "runs/g").ok());
  for (Replica* r : {&a_, &b_, &c}) {
    EXPECT_TRUE(Eventually(
        [&] { return Get(r->stub(), "runs/g").error_code() == grpc::StatusCode::NOT_FOUND; }));
  }
  EXPECT_TRUE(Create(c.stub(), "runs/g", kCosineSpec).ok());
  EXPECT_EQ(Get(a_.stub(), "evil").error_code(), grpc::StatusCode::DATA_LOSS);
}

// Amendments travel in the session's record, so the change feed brings them to the other
// replica: amended on A, B serves the new values (and its watchers get the amendment), steps on B
// go on with it, GetHistory on B lists it, and an if_revision that B's memory might still hold
// but the store does not is ABORTED (issue #18).
TEST_F(EtcdReplicasTest, AmendedOnAServedByB) {
  ASSERT_TRUE(Create(a_.stub(), "runs/amend", kCosineSpec).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Step(a_.stub(), "runs/amend").ok());
  v1::Session on_b;
  ASSERT_TRUE(Eventually(
      [&] { return Get(b_.stub(), "runs/amend", &on_b).ok() && on_b.last_epoch() == 3; }));
  const int64_t rev = on_b.revision();

  // A watcher on B, fed by the change feed.
  auto wctx = Ctx(absl::Seconds(20));
  v1::WatchRequest wreq;
  wreq.set_name("runs/amend");
  auto watch = b_.stub().Watch(wctx.get(), wreq);
  v1::Session watched;
  ASSERT_TRUE(watch->Read(&watched));

  v1::AmendSessionResponse r;
  grpc::Status st = Amend(a_.stub(), ScaleReq("runs/amend", 0.5), &r);
  ASSERT_TRUE(st.ok()) << st.error_message();
  st = Amend(a_.stub(), ContinueReq("runs/amend", R"({"type": "ExponentialLR", "gamma": 0.7})", 5),
             &r);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const int64_t amended = r.session().revision();
  EXPECT_EQ(amended, rev + 2);

  // B serves the new values once the feed brings the record.
  ASSERT_TRUE(Eventually([&] {
    return Get(b_.stub(), "runs/amend", &on_b).ok() && on_b.schedule_revision() == amended;
  }));
  EXPECT_EQ(Lrs(on_b), Lrs(r.session()));
  bool saw_amendment = false;
  for (int i = 0; i < 10 && !saw_amendment; ++i) {
    ASSERT_TRUE(watch->Read(&watched));
    saw_amendment = watched.has_amendment() && watched.amendment().kind() == "continue_with";
  }
  EXPECT_TRUE(saw_amendment);
  EXPECT_EQ(watched.amendment().revision(), amended);
  wctx->TryCancel();
  watch->Finish();

  // An operator on B still holding the old revision loses, whatever B's memory holds.
  v1::AmendSessionRequest stale = ScaleReq("runs/amend", 2.0);
  stale.set_if_revision(rev);
  st = Amend(b_.stub(), stale);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr(absl::StrCat("is at revision ", amended)));

  // Steps through B go on with both amendments, as the engine gives them.
  auto local = Local(kCosineSpec);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(local->Step({}).ok());
  ASSERT_TRUE(local->Amend(LocalAmendment(Amendment::Kind::kScale, {{"factor", 0.5}}, 3)).ok());
  ASSERT_TRUE(local
                  ->Amend(LocalAmendment(Amendment::Kind::kContinueWith,
                                         {{"type", "ExponentialLR"}, {"gamma", 0.7}}, 5))
                  .ok());
  for (int i = 0; i < 5; ++i) {
    v1::StepResponse sr;
    ASSERT_TRUE(Step(b_.stub(), "runs/amend", &sr).ok());
    ASSERT_TRUE(local->Step({}).ok());
    EXPECT_EQ(Lrs(sr.session()), Lrs(*local)) << "epoch " << sr.session().last_epoch();
  }
  v1::GetHistoryRequest hreq;
  hreq.set_name("runs/amend");
  v1::GetHistoryResponse h;
  ASSERT_TRUE(b_.stub().GetHistory(Ctx().get(), hreq, &h).ok());
  ASSERT_EQ(h.amendments_size(), 2);
  EXPECT_EQ(h.amendments(1).at_epoch(), 5);
  EXPECT_TRUE(h.amendments(1).applied());
  EXPECT_EQ(h.epochs_size(), 9);  // epochs 0..8
}

}  // namespace
}  // namespace lrsched::test_support
