// Copyright lrsched authors.
//
// AmendSession through the server, on both stores: each kind served as the engine computes it
// from the epoch it takes effect, revisions (revision and schedule_revision on Session, the
// amendment's record, GetLR's schedule_revision), if_revision (a mismatch and a race of two
// operators: exactly one wins), the dry run (nothing changes), an acknowledged amendment kept
// across a restart, a failed commit changing nothing, the Watch snapshot that carries the
// amendment, and the bound on the work before it starts.
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/rpc/amend_util.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr char kLinearCooldown[] =
    R"({"type": "LinearLR", "start_factor": 1.0, "end_factor": 0.0, "total_iters": 4})";

class AmendTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override { h_ = std::make_unique<ServerHarness>(GetParam()); }
  v1::LrScheduler::Stub& stub() { return h_->stub(); }
  void StepN(const std::string& name, int n) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(Step(stub(), name).ok());
  }
  std::unique_ptr<ServerHarness> h_;
};

TEST_P(AmendTest, ScaleNowChangesServedValuesAndRevisions) {
  ASSERT_TRUE(Create(stub(), "s", kCosineSpec).ok());
  StepN("s", 3);
  v1::Session before;
  ASSERT_TRUE(Get(stub(), "s", &before).ok());
  EXPECT_EQ(before.schedule_revision(), 1);  // steps leave it
  const int64_t rev = before.revision();

  v1::AmendSessionResponse r;
  grpc::Status st = Amend(stub(), ScaleReq("s", 0.5), &r);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(r.session().revision(), rev + 1);
  EXPECT_EQ(r.session().schedule_revision(), rev + 1);
  EXPECT_EQ(r.amendment().kind(), "scale");
  EXPECT_EQ(r.amendment().at_epoch(), 3);
  EXPECT_EQ(r.amendment().revision(), rev + 1);
  EXPECT_EQ(r.amendment().reason(), "test scale");
  EXPECT_TRUE(r.amendment().applied());
  EXPECT_GT(r.amendment().time().seconds(), 0);
  EXPECT_EQ(r.amendment().caller(), "");  // no tokens
  EXPECT_EQ(json::parse(r.amendment().args_json())["factor"], 0.5);
  EXPECT_TRUE(r.current().empty());

  auto local = Local(kCosineSpec);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(local->Step({}).ok());
  ASSERT_TRUE(local->Amend(LocalAmendment(Amendment::Kind::kScale, {{"factor", 0.5}}, 3)).ok());
  EXPECT_EQ(Lrs(r.session()), Lrs(*local));
  EXPECT_NE(Lrs(r.session()), Lrs(before));
  for (int i = 0; i < 5; ++i) {
    v1::StepResponse sr;
    ASSERT_TRUE(Step(stub(), "s", &sr).ok());
    ASSERT_TRUE(local->Step({}).ok());
    EXPECT_EQ(Lrs(sr.session()), Lrs(*local)) << "epoch " << sr.session().last_epoch();
    EXPECT_EQ(sr.session().schedule_revision(), rev + 1);
  }
  v1::GetLRRequest lr;
  lr.set_name("s");
  v1::GetLRResponse lresp;
  ASSERT_TRUE(stub().GetLR(Ctx().get(), lr, &lresp).ok());
  EXPECT_EQ(lresp.schedule_revision(), rev + 1);
}

TEST_P(AmendTest, ContinueWithAtAFutureEpochTakesOverThere) {
  ASSERT_TRUE(Create(stub(), "c", kCosineSpec).ok());
  StepN("c", 2);
  v1::AmendSessionResponse r;
  grpc::Status st = Amend(stub(), ContinueReq("c", kLinearCooldown, 5), &r);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_FALSE(r.amendment().applied());
  EXPECT_EQ(r.session().last_epoch(), 2);

  auto plain = Local(kCosineSpec);
  auto local = Local(kCosineSpec);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(plain->Step({}).ok() && local->Step({}).ok());
  ASSERT_TRUE(
      local->Amend(LocalAmendment(Amendment::Kind::kContinueWith, json::parse(kLinearCooldown), 5))
          .ok());
  EXPECT_EQ(Lrs(r.session()), Lrs(*plain));  // not in force yet
  for (int epoch = 3; epoch <= 10; ++epoch) {
    v1::StepResponse sr;
    ASSERT_TRUE(Step(stub(), "c", &sr).ok());
    ASSERT_TRUE(plain->Step({}).ok() && local->Step({}).ok());
    ASSERT_EQ(sr.session().last_epoch(), epoch);
    EXPECT_EQ(Lrs(sr.session()), Lrs(*local)) << "epoch " << epoch;
    if (epoch < 5) {
      EXPECT_EQ(Lrs(sr.session()), Lrs(*plain)) << "epoch " << epoch;
    } else if (epoch > 5) {
      EXPECT_NE(Lrs(sr.session()), Lrs(*plain)) << "epoch " << epoch;
    }
  }
  // The cooldown ends at 0 four epochs after it took over.
  v1::Session now;
  ASSERT_TRUE(Get(stub(), "c", &now).ok());
  EXPECT_EQ(Lrs(now), std::vector<double>({0.0, 0.0}));
}

TEST_P(AmendTest, IfRevisionMismatchIsAbortedNamingTheCurrentRevision) {
  ASSERT_TRUE(Create(stub(), "r", kCosineSpec).ok());
  StepN("r", 2);  // revision 3
  v1::AmendSessionRequest req = ScaleReq("r", 2.0);
  req.set_if_revision(2);
  grpc::Status st = Amend(stub(), req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(st.error_message(), HasSubstr("is at revision 3"));
  v1::Session s;
  ASSERT_TRUE(Get(stub(), "r", &s).ok());
  EXPECT_EQ(s.revision(), 3);
  req.set_if_revision(3);
  ASSERT_TRUE(Amend(stub(), req).ok());
}

TEST_P(AmendTest, TwoOperatorsRacingOnOneRevisionExactlyOneWins) {
  ASSERT_TRUE(Create(stub(), "race", kCosineSpec).ok());
  auto other = h_->NewStub();
  for (int round = 0; round < 20; ++round) {
    v1::Session s;
    ASSERT_TRUE(Get(stub(), "race", &s).ok());
    const int64_t rev = s.revision();
    std::atomic<int> ready{0};
    grpc::Status results[2];
    auto operate = [&](int i, v1::LrScheduler::Stub* st) {
      v1::AmendSessionRequest req = ScaleReq("race", i == 0 ? 0.5 : 2.0);
      req.set_if_revision(rev);
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
      results[i] = Amend(*st, req);
    };
    std::thread a(operate, 0, &stub());
    std::thread b(operate, 1, other.get());
    a.join();
    b.join();
    const int won = results[0].ok() + results[1].ok();
    ASSERT_EQ(won, 1) << results[0].error_message() << " / " << results[1].error_message();
    const grpc::Status& lost = results[0].ok() ? results[1] : results[0];
    EXPECT_EQ(lost.error_code(), grpc::StatusCode::ABORTED);
    EXPECT_THAT(lost.error_message(), HasSubstr(absl::StrCat("is at revision ", rev + 1)));
    ASSERT_TRUE(Get(stub(), "race", &s).ok());
    EXPECT_EQ(s.revision(), rev + 1);
  }
}

TEST_P(AmendTest, DryRunReturnsBothFuturesAndChangesNothing) {
  ASSERT_TRUE(Create(stub(), "d", kCosineSpec).ok());
  StepN("d", 2);
  v1::Session before;
  ASSERT_TRUE(Get(stub(), "d", &before).ok());
  v1::AmendSessionRequest req = ContinueReq("d", kLinearCooldown, 4);
  req.set_dry_run(true);
  req.set_dry_run_window(6);
  v1::AmendSessionResponse r;
  grpc::Status st = Amend(stub(), req, &r);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(r.current_size(), 6);
  ASSERT_EQ(r.amended_size(), 6);
  EXPECT_EQ(r.session().revision(), before.revision());

  auto plain = Local(kCosineSpec);
  auto local = Local(kCosineSpec);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(plain->Step({}).ok() && local->Step({}).ok());
  ASSERT_TRUE(
      local->Amend(LocalAmendment(Amendment::Kind::kContinueWith, json::parse(kLinearCooldown), 4))
          .ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(plain->Step({}).ok() && local->Step({}).ok());
  for (int i = 0; i < 6; ++i) {
    if (i > 0) {
      ASSERT_TRUE(plain->Step({}).ok() && local->Step({}).ok());
    }
    EXPECT_EQ(r.current(i).epoch(), 4 + i);
    EXPECT_EQ(r.amended(i).epoch(), 4 + i);
    for (int g = 0; g < 2; ++g) {
      EXPECT_EQ(r.current(i).groups(g).lr(), plain->param_groups()[g].lr) << i;
      EXPECT_EQ(r.amended(i).groups(g).lr(), local->param_groups()[g].lr) << i;
    }
  }
  // Nothing changed: same revision, no amendment in force, steps as without it.
  v1::Session after;
  ASSERT_TRUE(Get(stub(), "d", &after).ok());
  EXPECT_EQ(after.revision(), before.revision());
  EXPECT_EQ(after.schedule_revision(), before.schedule_revision());
  StepN("d", 4);
  ASSERT_TRUE(Get(stub(), "d", &after).ok());
  EXPECT_EQ(after.groups(0).lr(), r.current(2).groups(0).lr());
}

TEST_P(AmendTest, AcknowledgedAmendmentSurvivesARestart) {
  ASSERT_TRUE(Create(stub(), "k", kCosineSpec).ok());
  StepN("k", 3);
  v1::AmendSessionResponse now, later;
  ASSERT_TRUE(Amend(stub(), ScaleReq("k", 0.25), &now).ok());
  ASSERT_TRUE(Amend(stub(), ContinueReq("k", kLinearCooldown, 6), &later).ok());
  h_->Restart();
  v1::Session s;
  ASSERT_TRUE(Get(stub(), "k", &s).ok());
  EXPECT_EQ(s.revision(), later.session().revision());
  EXPECT_EQ(s.schedule_revision(), later.session().revision());
  EXPECT_EQ(Lrs(s), Lrs(now.session()));
  auto local = Local(kCosineSpec);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(local->Step({}).ok());
  ASSERT_TRUE(local->Amend(LocalAmendment(Amendment::Kind::kScale, {{"factor", 0.25}}, 3)).ok());
  ASSERT_TRUE(
      local->Amend(LocalAmendment(Amendment::Kind::kContinueWith, json::parse(kLinearCooldown), 6))
          .ok());
  for (int i = 0; i < 6; ++i) {
    v1::StepResponse sr;
    ASSERT_TRUE(Step(stub(), "k", &sr).ok());
    ASSERT_TRUE(local->Step({}).ok());
    EXPECT_EQ(Lrs(sr.session()), Lrs(*local)) << "epoch " << sr.session().last_epoch();
  }
}

TEST_P(AmendTest, WatchCarriesTheAmendmentOnTheSnapshotAfterIt) {
  ASSERT_TRUE(Create(stub(), "w", kCosineSpec).ok());
  auto ctx = Ctx();
  v1::WatchRequest wreq;
  wreq.set_name("w");
  auto reader = stub().Watch(ctx.get(), wreq);
  v1::Session got;
  ASSERT_TRUE(reader->Read(&got));  // the current state
  EXPECT_FALSE(got.has_amendment());
  ASSERT_TRUE(Step(stub(), "w").ok());
  ASSERT_TRUE(reader->Read(&got));
  EXPECT_FALSE(got.has_amendment());
  v1::AmendSessionResponse r;
  ASSERT_TRUE(Amend(stub(), ScaleReq("w", 0.5), &r).ok());
  ASSERT_TRUE(reader->Read(&got));
  ASSERT_TRUE(got.has_amendment());
  EXPECT_EQ(got.amendment().revision(), r.session().revision());
  EXPECT_EQ(got.amendment().kind(), "scale");
  EXPECT_EQ(got.schedule_revision(), r.session().revision());
  EXPECT_EQ(Lrs(got), Lrs(r.session()));
  ASSERT_TRUE(Step(stub(), "w").ok());
  ASSERT_TRUE(reader->Read(&got));
  EXPECT_FALSE(got.has_amendment());  // a step after it
  ctx->TryCancel();
  reader->Finish();
}

// WatchRequest.definition_changes_only: the current state, then only states whose definition
// changed; the steps in between send nothing (a step's state would arrive first otherwise).
TEST_P(AmendTest, DefinitionChangesOnlyWatchSkipsSteps) {
  ASSERT_TRUE(Create(stub(), "wd", kCosineSpec).ok());
  auto ctx = Ctx();
  v1::WatchRequest wreq;
  wreq.set_name("wd");
  wreq.set_definition_changes_only(true);
  auto reader = stub().Watch(ctx.get(), wreq);
  v1::Session got;
  ASSERT_TRUE(reader->Read(&got));
  EXPECT_EQ(got.revision(), 1);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(Step(stub(), "wd").ok());
    v1::AmendSessionResponse r;
    ASSERT_TRUE(Amend(stub(), ScaleReq("wd", 0.5), &r).ok());
    ASSERT_TRUE(reader->Read(&got));
    EXPECT_EQ(got.revision(), r.session().revision()) << "round " << round;
    EXPECT_TRUE(got.has_amendment());
    EXPECT_EQ(got.schedule_revision(), r.session().revision());
  }
  ctx->TryCancel();
  reader->Finish();
}

TEST_P(AmendTest, AmendingADeletedSessionIsNotFound) {
  ASSERT_TRUE(Create(stub(), "gone", kCosineSpec).ok());
  ASSERT_TRUE(Delete(stub(), "gone").ok());
  grpc::Status st = Amend(stub(), ScaleReq("gone", 0.5));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("gone"));
  EXPECT_EQ(Amend(stub(), ScaleReq("never", 0.5)).error_code(), grpc::StatusCode::NOT_FOUND);
}

INSTANTIATE_TEST_SUITE_P(Stores, AmendTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kSqlite), StoreKindName);

TEST(AmendCommitTest, AFailedCommitChangesNothing) {
  ServerHarness h(StoreKind::kMemory);
  ASSERT_TRUE(Create(h.stub(), "f", kCosineSpec).ok());
  ASSERT_TRUE(Step(h.stub(), "f").ok());
  v1::Session before, after;
  ASSERT_TRUE(Get(h.stub(), "f", &before).ok());
  h.memory()->FailNextCommits(1, absl::UnavailableError("disk gone"));
  grpc::Status st = Amend(h.stub(), ScaleReq("f", 0.5));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  ASSERT_TRUE(Get(h.stub(), "f", &after).ok());
  EXPECT_EQ(after.revision(), before.revision());
  EXPECT_EQ(after.schedule_revision(), before.schedule_revision());
  EXPECT_EQ(Lrs(after), Lrs(before));
  v1::StepResponse sr;
  ASSERT_TRUE(Step(h.stub(), "f", &sr).ok());
  auto local = Local(kCosineSpec);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(local->Step({}).ok());
  EXPECT_EQ(Lrs(sr.session()), Lrs(*local));  // no scale slipped in
  ASSERT_TRUE(Amend(h.stub(), ScaleReq("f", 0.5)).ok());
}

TEST(AmendAccessLogTest, AmendCallsAreLoggedAndCountedLikeTheOtherMutations) {
  ServerConfig config;
  config.metrics_listen = "127.0.0.1:0";
  ServerHarness h(StoreKind::kMemory, config);
  ASSERT_TRUE(Create(h.stub(), "log", kCosineSpec).ok());
  std::vector<std::string> lines = CaptureAccessLog([&] {
    ASSERT_TRUE(Amend(h.stub(), ScaleReq("log", 0.5)).ok());
    EXPECT_EQ(Amend(h.stub(), ScaleReq("log", -1)).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  });
  EXPECT_THAT(lines, ::testing::ElementsAre(
                         "event=access method=AmendSession session=log epoch=0 code=OK",
                         "event=access method=AmendSession session=log code=INVALID_ARGUMENT"));
  ASSERT_NE(h.server()->metrics(), nullptr);
  const std::string text = h.server()->metrics()->Render();
  EXPECT_THAT(text, HasSubstr("LrScheduler/AmendSession\",code=\"OK\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("LrScheduler/AmendSession\",code=\"INVALID_ARGUMENT\"} 1\n"));
}

TEST(AmendLimitsTest, WorkBeyondMaxCallCostIsRefusedBeforeItStarts) {
  ServerConfig config;
  config.max_call_cost = 10'000;
  ServerHarness h(StoreKind::kMemory, config);
  ASSERT_TRUE(Create(h.stub(), "big", kCosineSpec).ok());
  v1::AmendSessionRequest req = ScaleReq("big", 0.5, 1'000'000);
  req.set_dry_run(true);
  grpc::Status st = Amend(h.stub(), req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(st.error_message(), ::testing::StartsWith("at_epoch:"));
  EXPECT_THAT(st.error_message(), HasSubstr("--max_call_cost"));
  req.set_at_epoch(int64_t{1} << 62);  // no overflow in the bound
  EXPECT_EQ(Amend(h.stub(), req).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  req.set_at_epoch(3);
  req.set_dry_run_window(10);
  st = Amend(h.stub(), req);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

}  // namespace
}  // namespace lrsched::test_support
