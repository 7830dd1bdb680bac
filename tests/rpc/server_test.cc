// Copyright lrsched authors.
//
// The gRPC service, in-process over a real channel, with the in-memory and the SQLite store:
// every RPC's behaviour and result codes on good requests. Export and import:
// server_state_test.cc; bad input: server_errors_test.cc; concurrency, Watch and restarts:
// server_concurrency_test.cc.
#include <memory>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/schedule.h"
#include "scheduler/trace.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

std::unique_ptr<Schedule> Local(const char* spec) {
  auto s = Schedule::Create(json::parse(spec));
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

// The session's values equal the local schedule's, bit for bit.
void ExpectSameValues(const v1::Session& s, const Schedule& ref) {
  ASSERT_EQ(s.groups_size(), static_cast<int>(ref.param_groups().size()));
  EXPECT_EQ(s.last_epoch(), ref.last_epoch());
  for (int i = 0; i < s.groups_size(); ++i) {
    EXPECT_EQ(s.groups(i).lr(), ref.param_groups()[i].lr) << "group " << i;
    EXPECT_EQ(s.groups(i).has_momentum(), ref.has_momentum());
    if (ref.has_momentum()) {
      EXPECT_EQ(s.groups(i).momentum(), *ref.param_groups()[i].reported_momentum());
    }
  }
}

class ServerTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override { h_ = std::make_unique<ServerHarness>(GetParam()); }
  v1::LrScheduler::Stub& stub() { return h_->stub(); }
  std::unique_ptr<ServerHarness> h_;
};

TEST_P(ServerTest, CreateGetDelete) {
  v1::Session s;
  ASSERT_TRUE(Create(stub(), "team/run-1", kCosineSpec, &s, {{"team", "a"}}).ok());
  EXPECT_EQ(s.name(), "team/run-1");
  EXPECT_EQ(s.revision(), 1);
  EXPECT_EQ(s.last_epoch(), 0);
  EXPECT_EQ(s.scheduler_type(), "CosineAnnealingLR");
  EXPECT_TRUE(s.deterministic());
  EXPECT_EQ(s.labels().at("team"), "a");
  EXPECT_EQ(s.spec_json(), json::parse(kCosineSpec).dump());  // canonical: keys sorted
  EXPECT_GT(s.create_time().seconds(), 0);
  ExpectSameValues(s, *Local(kCosineSpec));

  v1::Session got;
  ASSERT_TRUE(Get(stub(), "team/run-1", &got).ok());
  EXPECT_EQ(got.SerializeAsString(), s.SerializeAsString());

  ASSERT_TRUE(Delete(stub(), "team/run-1").ok());
  EXPECT_EQ(Get(stub(), "team/run-1").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Delete(stub(), "team/run-1").error_code(), grpc::StatusCode::NOT_FOUND);
  // The name is free again.
  EXPECT_TRUE(Create(stub(), "team/run-1", kStepLRSpec).ok());
}

TEST_P(ServerTest, CreateIsIdempotentForTheSameSpec) {
  v1::Session first, again;
  ASSERT_TRUE(Create(stub(), "r", kCosineSpec, &first).ok());
  ASSERT_TRUE(Step(stub(), "r").ok());
  // Same spec written differently: other key order, 10.0 for 10.
  json spec = json::parse(kCosineSpec);
  spec["scheduler"]["T_max"] = 10.0;
  std::string reordered = R"({"scheduler": )" + spec["scheduler"].dump() + R"(, "optimizer": )" +
                          spec["optimizer"].dump() + "}";
  ASSERT_TRUE(Create(stub(), "r", reordered, &again).ok());
  EXPECT_EQ(again.revision(), 2);  // the existing session, stepped once
  EXPECT_EQ(again.create_time().SerializeAsString(), first.create_time().SerializeAsString());

  grpc::Status s = Create(stub(), "r", kStepLRSpec);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(s.error_message(), HasSubstr("different spec"));
  // The message names the first field that differs, and how to use the session anyway.
  EXPECT_THAT(s.error_message(), HasSubstr("(first difference: optimizer.param_groups[0]."
                                           "momentum: only the session has it)"));
  EXPECT_THAT(s.error_message(), HasSubstr("attach=True"));
  spec["scheduler"]["T_max"] = 20;
  s = Create(stub(), "r", spec.dump());
  EXPECT_THAT(s.error_message(),
              HasSubstr("first difference: scheduler.T_max: 10 in the session, 20 in the request"));
  spec["scheduler"]["T_max"] = 10;
  spec["optimizer"]["param_groups"].push_back(json{{"lr", 0.3}});
  s = Create(stub(), "r", spec.dump());
  EXPECT_THAT(s.error_message(),
              HasSubstr("optimizer.param_groups: 2 entries in the session, 3 in the request"));
  s = Create(stub(), "r", kCosineSpec, nullptr, {{"k", "v"}});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(s.error_message(), HasSubstr("set of labels (first difference: labels.k: only the "
                                           "request has it)"));
}

TEST_P(ServerTest, StepsExactlyAsTheEngine) {
  auto ref = Local(kCosineSpec);
  ASSERT_TRUE(Create(stub(), "c", kCosineSpec).ok());
  for (int i = 1; i <= 25; ++i) {
    v1::StepResponse r;
    ASSERT_TRUE(Step(stub(), "c", &r).ok());
    ASSERT_TRUE(ref->Step({}).ok());
    EXPECT_TRUE(r.advanced());
    EXPECT_EQ(r.session().revision(), i + 1);
    ExpectSameValues(r.session(), *ref);
  }
}

TEST_P(ServerTest, StepWithMetricAndEpoch) {
  auto plateau = Local(kPlateauSpec);
  ASSERT_TRUE(Create(stub(), "p", kPlateauSpec).ok());
  for (double m : {1.0, 1.0, 1.0, 0.5, 0.6, 0.7, 0.8}) {
    v1::StepRequest req;
    req.set_name("p");
    req.set_metric(m);
    v1::StepResponse r;
    ASSERT_TRUE(StepOnce(stub(), req, &r).ok());
    ASSERT_TRUE(plateau->Step({m, std::nullopt, std::nullopt}).ok());
    ExpectSameValues(r.session(), *plateau);
  }
  EXPECT_FALSE(plateau->deterministic());

  auto steplr = Local(kStepLRSpec);
  ASSERT_TRUE(Create(stub(), "s", kStepLRSpec).ok());
  v1::StepRequest req;
  req.set_name("s");
  req.set_epoch(7);
  v1::StepResponse r;
  ASSERT_TRUE(StepOnce(stub(), req, &r).ok());
  ASSERT_TRUE(steplr->Step({std::nullopt, 7.0, std::nullopt}).ok());
  ExpectSameValues(r.session(), *steplr);
  EXPECT_EQ(r.session().last_epoch(), 7);
  EXPECT_FALSE(r.session().groups(0).has_momentum());  // Adagrad has none
}

TEST_P(ServerTest, IfEpochMismatchChangesNothing) {
  ASSERT_TRUE(Create(stub(), "e", kCosineSpec).ok());
  v1::StepRequest req;
  req.set_name("e");
  req.set_if_epoch(0);
  v1::StepResponse first, second;
  ASSERT_TRUE(StepOnce(stub(), req, &first).ok());
  EXPECT_TRUE(first.advanced());
  EXPECT_EQ(first.session().last_epoch(), 1);
  ASSERT_TRUE(StepOnce(stub(), req, &second).ok());  // a retry of the same step
  EXPECT_FALSE(second.advanced());
  EXPECT_EQ(second.session().SerializeAsString(), first.session().SerializeAsString());
}

TEST_P(ServerTest, RefusedStepIsFailedPreconditionAndChangesNothing) {
  ASSERT_TRUE(Create(stub(), "one", kOneCycleSpec).ok());
  v1::StepResponse last;
  // torch steps OneCycleLR up to last_epoch == total_steps, and refuses the step after.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Step(stub(), "one", &last).ok());
  v1::StepResponse r;
  grpc::Status s = Step(stub(), "one", &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("total steps"));
  v1::Session now;
  ASSERT_TRUE(Get(stub(), "one", &now).ok());
  EXPECT_EQ(now.SerializeAsString(), last.session().SerializeAsString());

  // A metric for a scheduler that takes none; no metric for ReduceLROnPlateau.
  ASSERT_TRUE(Create(stub(), "s", kStepLRSpec).ok());
  v1::StepRequest req;
  req.set_name("s");
  req.set_metric(1.0);
  EXPECT_EQ(StepOnce(stub(), req).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(Create(stub(), "p", kPlateauSpec).ok());
  EXPECT_EQ(Step(stub(), "p").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Step(stub(), "missing").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_P(ServerTest, GetLRLooksAheadWithoutStepping) {
  ASSERT_TRUE(Create(stub(), "c", kCosineSpec).ok());
  ASSERT_TRUE(Step(stub(), "c").ok());
  auto ref = Local(kCosineSpec);
  ASSERT_TRUE(ref->Step({}).ok());

  v1::GetLRRequest req;
  req.set_name("c");
  req.set_ahead(4);
  req.set_window(6);
  v1::GetLRResponse r;
  ASSERT_TRUE(stub().GetLR(Ctx().get(), req, &r).ok());
  EXPECT_EQ(r.last_epoch(), 1);
  EXPECT_EQ(r.revision(), 2);
  ASSERT_EQ(r.window_size(), 6);
  auto walk = ref->Clone();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(r.window(i).epoch(), walk->last_epoch());
    for (int g = 0; g < 2; ++g) EXPECT_EQ(r.window(i).groups(g).lr(), walk->param_groups()[g].lr);
    if (i == 4) {
      for (int g = 0; g < 2; ++g) EXPECT_EQ(r.groups(g).lr(), walk->param_groups()[g].lr);
    }
    ASSERT_TRUE(walk->Step({}).ok());
  }
  v1::Session now;
  ASSERT_TRUE(Get(stub(), "c", &now).ok());
  EXPECT_EQ(now.last_epoch(), 1);
  EXPECT_EQ(now.revision(), 2);

  // ahead = 0: the current values.
  req.set_ahead(0);
  req.set_window(0);
  ASSERT_TRUE(stub().GetLR(Ctx().get(), req, &r).ok());
  ExpectSameValues(now, *ref);
  EXPECT_EQ(r.groups(0).lr(), ref->param_groups()[0].lr);
}

TEST_P(ServerTest, GetLRRefusesLookaheadWhereItCannot) {
  ASSERT_TRUE(Create(stub(), "p", kPlateauSpec).ok());
  v1::GetLRRequest req;
  req.set_name("p");
  v1::GetLRResponse r;
  req.set_window(1);
  EXPECT_TRUE(stub().GetLR(Ctx().get(), req, &r).ok());  // now is fine
  EXPECT_EQ(r.window_size(), 1);
  req.set_ahead(1);
  EXPECT_EQ(stub().GetLR(Ctx().get(), req, &r).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  req.set_ahead(0);
  req.set_window(2);
  EXPECT_EQ(stub().GetLR(Ctx().get(), req, &r).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // OneCycleLR refuses steps past total_steps: so does a lookahead past them.
  ASSERT_TRUE(Create(stub(), "one", kOneCycleSpec).ok());
  req.set_name("one");
  req.set_window(0);
  req.set_ahead(5);
  EXPECT_TRUE(stub().GetLR(Ctx().get(), req, &r).ok());
  req.set_ahead(6);
  grpc::Status s = stub().GetLR(Ctx().get(), req, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("lookahead: step 6"));
  req.set_name("nope");
  EXPECT_EQ(stub().GetLR(Ctx().get(), req, &r).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_P(ServerTest, ListPagesFiltersByPrefixAndLabels) {
  for (int i = 0; i < 25; ++i) {
    std::string name = (i % 2 == 0 ? "even/" : "odd/") + std::to_string(100 + i);
    ASSERT_TRUE(Create(stub(), name, kStepLRSpec, nullptr,
                       {{"parity", i % 2 == 0 ? "even" : "odd"}, {"n", std::to_string(i)}})
                    .ok());
  }
  std::vector<std::string> names;
  std::string token;
  int pages = 0;
  do {
    v1::ListSessionsRequest req;
    req.set_page_size(10);
    req.set_page_token(token);
    v1::ListSessionsResponse r;
    ASSERT_TRUE(stub().ListSessions(Ctx().get(), req, &r).ok());
    for (const auto& s : r.sessions()) names.push_back(s.name());
    token = r.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(names.size(), 25u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), 25u);

  v1::ListSessionsRequest req;
  req.set_name_prefix("odd/");
  v1::ListSessionsResponse r;
  ASSERT_TRUE(stub().ListSessions(Ctx().get(), req, &r).ok());
  EXPECT_EQ(r.sessions_size(), 12);
  EXPECT_TRUE(r.next_page_token().empty());

  req.Clear();
  (*req.mutable_labels())["parity"] = "even";
  (*req.mutable_labels())["n"] = "4";
  ASSERT_TRUE(stub().ListSessions(Ctx().get(), req, &r).ok());
  ASSERT_EQ(r.sessions_size(), 1);
  EXPECT_EQ(r.sessions(0).name(), "even/104");

  req.Clear();
  (*req.mutable_labels())["parity"] = "even";
  req.set_page_size(5);
  ASSERT_TRUE(stub().ListSessions(Ctx().get(), req, &r).ok());
  EXPECT_EQ(r.sessions_size(), 5);
  EXPECT_FALSE(r.next_page_token().empty());

  req.Clear();
  req.set_page_size(1 << 30);  // more than the maximum: coerced to it
  ASSERT_TRUE(stub().ListSessions(Ctx().get(), req, &r).ok());
  EXPECT_EQ(r.sessions_size(), 25);
}

TEST_P(ServerTest, DeleteIfRevision) {
  v1::Session s;
  ASSERT_TRUE(Create(stub(), "d", kStepLRSpec, &s).ok());
  ASSERT_TRUE(Step(stub(), "d").ok());
  grpc::Status st = Delete(stub(), "d", 1);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), HasSubstr("revision 2"));
  EXPECT_TRUE(Get(stub(), "d").ok());
  EXPECT_TRUE(Delete(stub(), "d", 2).ok());
  EXPECT_EQ(Get(stub(), "d").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_P(ServerTest, SimulateMatchesTheEngine) {
  v1::SimulateRequest req;
  req.set_spec_json(kCosineSpec);
  req.set_steps(30);
  v1::SimulateResponse r;
  ASSERT_TRUE(stub().Simulate(Ctx().get(), req, &r).ok());
  auto ref = Local(kCosineSpec);
  Trace t;
  ASSERT_TRUE(Simulate(*ref, 30, {}, {}, &t).ok());
  EXPECT_EQ(r.groups(), 2);
  EXPECT_TRUE(r.has_momentum());
  EXPECT_EQ(std::vector<double>(r.lr().begin(), r.lr().end()), t.lr);
  EXPECT_EQ(std::vector<double>(r.momentum().begin(), r.momentum().end()), t.momentum);
  EXPECT_EQ(r.state_dict_json(), ref->StateDict().dump());
  EXPECT_EQ(r.error_at_step(), -1);

  // A refused step ends the trace; the response says where.
  req.set_spec_json(kOneCycleSpec);
  req.set_steps(8);
  ASSERT_TRUE(stub().Simulate(Ctx().get(), req, &r).ok());
  EXPECT_EQ(r.error_at_step(), 5);
  EXPECT_THAT(r.error(), HasSubstr("total steps"));
  EXPECT_EQ(r.lr_size(), 6);

  // Metrics for ReduceLROnPlateau.
  req.set_spec_json(kPlateauSpec);
  req.set_steps(4);
  for (double m : {1.0, 1.0, 1.0, 1.0}) req.add_metrics(m);
  ASSERT_TRUE(stub().Simulate(Ctx().get(), req, &r).ok());
  EXPECT_EQ(r.error_at_step(), -1);
  EXPECT_EQ(r.lr_size(), 4);
}

INSTANTIATE_TEST_SUITE_P(Stores, ServerTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kSqlite), StoreKindName);

}  // namespace
}  // namespace lrsched::test_support
