// Copyright lrsched authors.
//
// Amendments refused (each naming its field, each changing nothing), Steps whose amendment or
// scale fails (changing nothing), the kinds' names, and what an amended schedule exports.
#include <cmath>
#include <limits>

#include "gtest/gtest.h"
#include "scheduler/schedule.h"

namespace lrsched {
namespace {

using nlohmann::json;

std::unique_ptr<Schedule> Make(const json& scheduler, const json& groups = json::array(
                                                          {{{"lr", 0.1}}, {{"lr", 0.05}}})) {
  json spec{{"optimizer", {{"type", "SGD"}, {"momentum", 0.9}, {"param_groups", groups}}},
            {"scheduler", scheduler}};
  auto s = Schedule::Create(spec);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

Amendment A(Amendment::Kind kind, int64_t at, json args) {
  Amendment a;
  a.kind = kind;
  a.at_epoch = at;
  a.args = std::move(args);
  return a;
}

constexpr auto kCont = Amendment::Kind::kContinueWith;
constexpr auto kRep = Amendment::Kind::kReparameterize;
constexpr auto kScale = Amendment::Kind::kScale;

// A schedule mid-run with an applied continue_with, a scale in force and a pending amendment.
std::unique_ptr<Schedule> Amended() {
  auto s = Make({{"type", "CosineAnnealingLR"}, {"T_max", 50}});
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(s->Step({}).ok());
  EXPECT_TRUE(s->Amend(A(kCont, 10, {{"type", "StepLR"}, {"step_size", 5}})).ok());
  EXPECT_TRUE(s->Step({}).ok());
  EXPECT_TRUE(s->Amend(A(kScale, 11, {{"factor", 0.5}, {"groups", {1}}})).ok());
  EXPECT_TRUE(s->Amend(A(kRep, 20, {{"gamma", 0.5}})).ok());
  return s;
}

struct Refusal {
  Amendment a;
  absl::StatusCode code;
  const char* says;
};

TEST(AmendRefusal, EachNamesItsFieldAndChangesNothing) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<Refusal> refusals = {
      {A(kScale, 5, {{"factor", 0.5}}), absl::StatusCode::kFailedPrecondition, "at_epoch"},
      {A(kScale, 5, {{"factor", 0.5}}), absl::StatusCode::kFailedPrecondition,
       "the past is never rewritten"},
      {A(kScale, 11, {{"factor", 0}}), absl::StatusCode::kInvalidArgument,
       "scale.factor: must be finite and > 0"},
      {A(kScale, 11, {{"factor", -2}}), absl::StatusCode::kInvalidArgument, "scale.factor"},
      {A(kScale, 11, {{"factor", inf}}), absl::StatusCode::kInvalidArgument, "scale.factor"},
      {A(kScale, 11, {{"factor", NAN}}), absl::StatusCode::kInvalidArgument, "scale.factor"},
      {A(kScale, 11, {{"factor", "2"}}), absl::StatusCode::kInvalidArgument, "scale.factor"},
      {A(kScale, 11, {{"factor", 2}, {"groups", {7}}}), absl::StatusCode::kInvalidArgument,
       "scale.groups: 7 out of range"},
      {A(kScale, 11, {{"factor", 2}, {"grups", {1}}}), absl::StatusCode::kInvalidArgument,
       "scale.grups"},
      {A(kCont, 11, {{"type", "CosineAnnealingLR"}, {"T_max", 0}}),
       absl::StatusCode::kInvalidArgument, "continue_with: scheduler.T_max"},
      {A(kCont, 11, {{"type", "NoSuchLR"}}), absl::StatusCode::kInvalidArgument,
       "continue_with: scheduler.type"},
      {A(kCont, 11, {{"T_max", 3}}), absl::StatusCode::kInvalidArgument, "continue_with.type"},
      {A(kCont, 11, {{"scheduler", {{"type", "StepLR"}, {"step_size", 2}}},
                     {"param_groups", {{{"lr", 0.1}}}}}),
       absl::StatusCode::kFailedPrecondition, "continue_with.param_groups"},
      {A(kCont, 30, {{"type", "ExponentialLR"}}), absl::StatusCode::kInvalidArgument,
       "continue_with: scheduler.gamma"},
      {A(kRep, 11, {{"type", "ExponentialLR"}}), absl::StatusCode::kFailedPrecondition, "type"},
      {A(kRep, 11, {{"optimizer", {{"type", "Adam"}}}}), absl::StatusCode::kFailedPrecondition,
       "optimizer"},
      {A(kRep, 11, {{"param_groups", json::array()}}), absl::StatusCode::kFailedPrecondition,
       "param_groups"},
      {A(kRep, 11, {{"T_max", 300}}), absl::StatusCode::kInvalidArgument, "T_max"},
      {A(kRep, 11, {{"step_size", -1}}), absl::StatusCode::kInvalidArgument, "step_size"},
      {A(kRep, 25, {{"T_max", 300}}), absl::StatusCode::kInvalidArgument, "T_max"},
      {A(kRep, 11, json::object()), absl::StatusCode::kInvalidArgument, "reparameterize"},
      {A(kScale, 11, json::array()), absl::StatusCode::kInvalidArgument, "scale"},
  };
  for (const Refusal& r : refusals) {
    auto s = Amended();
    ASSERT_EQ(s->last_epoch(), 11);
    const std::string before = s->ExportState().dump();
    const size_t n = s->amendments().size();
    auto got = s->Amend(r.a);
    ASSERT_FALSE(got.ok()) << r.says;
    EXPECT_EQ(got.status().code(), r.code) << got.status();
    EXPECT_NE(got.status().message().find(r.says), std::string::npos) << got.status();
    if (getenv("AMEND_TEST_SHOW")) printf("%s\n", got.status().ToString().c_str());
    EXPECT_EQ(s->ExportState().dump(), before) << got.status();
    EXPECT_EQ(s->amendments().size(), n);
  }
}

TEST(AmendRefusal, ReparameterizeOfSequentialLRCannotChangeItsSchedulers) {
  auto s = Make({{"type", "SequentialLR"},
                 {"milestones", {3}},
                 {"schedulers",
                  {{{"type", "LinearLR"}, {"start_factor", 0.5}, {"total_iters", 3}},
                   {{"type", "ExponentialLR"}, {"gamma", 0.9}}}}});
  const std::string before = s->ExportState().dump();
  auto r = s->Amend(A(kRep, 0, {{"schedulers", {json::object()}}}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find("schedulers"), std::string::npos) << r.status();
  r = s->Amend(A(kRep, 0, {{"schedulers", {json::object(), {{"type", "StepLR"}}}}}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find("schedulers[1].type"), std::string::npos) << r.status();
  EXPECT_EQ(s->ExportState().dump(), before);
  EXPECT_TRUE(s->amendments().empty());
}

// A pending scale whose served lr overflows when it applies: the Step that reaches it is
// refused and changes nothing, and so is every later attempt.
TEST(AmendStep, FailingPendingAmendmentRefusesTheStepAndChangesNothing) {
  auto s = Make({{"type", "ExponentialLR"}, {"gamma", 10.0}}, json::array({{{"lr", 1e-10}}}));
  ASSERT_TRUE(s->Amend(A(kScale, 20, {{"factor", 1e300}})).ok());
  for (int i = 0; i < 19; ++i) ASSERT_TRUE(s->Step({}).ok()) << i;
  const std::string before = s->ExportState().dump();
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::Status st = s->Step({});
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
    EXPECT_NE(st.message().find("scale"), std::string::npos) << st;
    EXPECT_EQ(s->ExportState().dump(), before);
    EXPECT_EQ(s->last_epoch(), 19);
  }
}

// A scale in force whose product overflows on a later plain step: refused, nothing changed.
TEST(AmendStep, ScaleOverflowOnAStepIsRefusedAndChangesNothing) {
  auto s = Make({{"type", "ExponentialLR"}, {"gamma", 10.0}}, json::array({{{"lr", 1e-10}}}));
  ASSERT_TRUE(s->Step({}).ok());
  ASSERT_TRUE(s->Amend(A(kScale, 1, {{"factor", 1e300}})).ok());
  int64_t ok_steps = 0;
  while (s->last_epoch() < 40) {
    const std::string before = s->ExportState().dump();
    absl::Status st = s->Step({});
    if (!st.ok()) {
      EXPECT_EQ(s->ExportState().dump(), before);
      break;
    }
    ++ok_steps;
  }
  EXPECT_EQ(s->last_epoch(), 18);  // 1e-10 x 10^18 x 1e300 = 1e308; one more overflows
  EXPECT_EQ(ok_steps, 17);
  EXPECT_TRUE(std::isfinite(s->param_groups()[0].lr));
}

TEST(AmendKinds, NamesRoundTrip) {
  for (auto k : {kCont, kRep, kScale}) {
    auto back = ParseAmendmentKind(AmendmentKindName(k));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, k);
  }
  EXPECT_EQ(AmendmentKindName(kCont), "continue_with");
  auto bad = ParseAmendmentKind("rescale");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("kind"), std::string::npos);
}

TEST(AmendState, NeverAmendedExportsAsBefore) {
  auto s = Make({{"type", "StepLR"}, {"step_size", 3}});
  ASSERT_TRUE(s->Step({}).ok());
  EXPECT_TRUE(s->amendments().empty());
  json st = s->ExportState();
  EXPECT_FALSE(st.contains("amendments"));
  EXPECT_FALSE(st.contains("amended"));
}

// Torch's state_dict of an amended schedule is that of the piece in force.
TEST(AmendState, StateDictIsThePieceInForce) {
  auto s = Amended();
  EXPECT_EQ(s->StateDict()["step_size"], 5);
  EXPECT_EQ(s->StateDict()["last_epoch"], 1);  // the StepLR started at epoch 10
  EXPECT_EQ(s->last_epoch(), 11);
  EXPECT_EQ(s->ParamGroupsJson()[1]["lr"].get<double>(), s->param_groups()[1].lr);
  EXPECT_EQ(s->scheduler_type(), "CosineAnnealingLR");  // the created type
  // step(epoch) counts the schedule's epochs; the piece in force counts from its start.
  auto c = s->Clone();
  StepRequest at12, at9;
  at12.epoch = 12;
  at9.epoch = 9;
  EXPECT_TRUE(c->Step(at12).ok());
  EXPECT_EQ(c->last_epoch(), 12);
  absl::Status before = c->Step(at9);
  EXPECT_EQ(before.code(), absl::StatusCode::kInvalidArgument) << before;
  EXPECT_NE(before.message().find("epoch"), std::string::npos);
}

TEST(AmendCost, ReparameterizeCountsTheReplay) {
  auto s = Make({{"type", "CosineAnnealingLR"}, {"T_max", 50}});
  EXPECT_LT(s->AmendCost(A(kScale, 0, {{"factor", 2}})), 100);
  EXPECT_GE(s->AmendCost(A(kRep, 5000, {{"T_max", 60}})), 5000);
}

// A pending reparameterize is replayed when made: the amendment's cost is paid then, and the
// Step that reaches it gives the values of the fresh trace.
TEST(AmendPending, ReparameterizeAppliedAtItsEpochMatchesAFreshRun) {
  auto s = Make({{"type", "CosineAnnealingLR"}, {"T_max", 50}});
  auto fresh = Make({{"type", "CosineAnnealingLR"}, {"T_max", 80}});
  ASSERT_TRUE(s->Amend(A(kRep, 30, {{"T_max", 80}})).ok());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(s->Step({}).ok());
    ASSERT_TRUE(fresh->Step({}).ok());
    EXPECT_EQ(s->amendments()[0].applied, s->last_epoch() >= 30);
    if (s->last_epoch() >= 30) {
      EXPECT_EQ(s->param_groups()[0].lr, fresh->param_groups()[0].lr);
    }
  }
}

}  // namespace
}  // namespace lrsched
