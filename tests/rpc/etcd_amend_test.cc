// Copyright lrsched authors.
//
// Amendments on the shared store (etcd, two in-process replicas): they travel in the session's
// record, so the change feed brings them to the other replica: amended on A, B serves the new
// values (and its watchers get the amendment), steps on B go on with it, GetHistory on B lists
// it, and an if_revision that B's memory might still hold but the store does not is ABORTED.
// Skipped without the etcd binary.
#include <memory>
#include <string>

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

class Replica {
 public:
  absl::Status Start(const std::string& endpoint) {
    EtcdStore::Options o;
    o.endpoints = {endpoint};
    o.prefix = "/lrsched-amend/";
    o.timeout = absl::Seconds(2);
    auto store = EtcdStore::Open(o);
    if (!store.ok()) return store.status();
    store_ = *std::move(store);
    ServerConfig config;
    config.listen = "127.0.0.1:0";
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

 private:
  std::unique_ptr<EtcdStore> store_;
  std::unique_ptr<LrschedServer> server_;
  std::unique_ptr<v1::LrScheduler::Stub> stub_;
};

class EtcdAmendTest : public ::testing::Test {
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

TEST_F(EtcdAmendTest, AmendedOnAServedByB) {
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
