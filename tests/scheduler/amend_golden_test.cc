// Copyright lrsched authors.
//
// Amendments over every golden case (torch's, lrsched's extra, transformers', timm's and
// Megatron's traces), so that every type lrsched knows, nested ones included, is covered:
//   - continue_with a case's spec with its param groups given, after another scheduler ran a
//     while, serves exactly the case's reference trace from then on (its construction row
//     first): the new piece is a fresh run of that spec;
//   - reparameterize with the arguments a case already has changes nothing (jump 0, every
//     later value bit-identical), at once and pending: the replay from the piece's start is
//     the run itself.
#include <cstring>

#include "gtest/gtest.h"
#include "scheduler/internal/param_groups.h"
#include "scheduler/schedule.h"
#include "scheduler/trace.h"
#include "tests/scheduler/golden_util.h"

namespace lrsched {
namespace {

using nlohmann::json;
using test_support::GoldenCase;

uint64_t Bits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

// Plain-step cases torch ran to the end (no metrics, no explicit epochs, no refusal).
bool Plain(const json& c) {
  return !c.contains("metrics") && !c.contains("epochs") && c["expected"].contains("lr") &&
         !c["expected"].contains("error_at_step");
}

void ExpectRows(const json& want, const std::vector<double>& got, size_t groups,
                const std::string& what) {
  ASSERT_EQ(want.size() * groups, got.size()) << what << ": row count";
  for (size_t r = 0; r < want.size(); ++r) {
    for (size_t g = 0; g < groups; ++g) {
      ASSERT_EQ(Bits(want[r][g].get<double>()), Bits(got[r * groups + g]))
          << what << " row " << r << " group " << g << ": torch " << want[r][g] << ", lrsched "
          << got[r * groups + g];
    }
  }
}

class AmendGoldenTest : public testing::TestWithParam<GoldenCase> {};

TEST_P(AmendGoldenTest, ContinueWithGivenGroupsIsAFreshRunOfTheSpec) {
  const json& c = GetParam().j;
  if (!Plain(c)) GTEST_SKIP() << "not a plain-step case";
  auto opt = ParseOptimizer(c["optimizer"]);
  ASSERT_TRUE(opt.ok()) << opt.status();
  json given = json::array();
  for (const ParamGroup& g : opt->groups) given.push_back(scheduler_internal::ParamGroupJson(g));
  json first{{"optimizer", c["optimizer"]},
             {"scheduler", {{"type", "StepLR"}, {"step_size", 3}, {"gamma", 0.5}}}};
  auto s = Schedule::Create(first);
  ASSERT_TRUE(s.ok()) << s.status();
  for (int i = 0; i < 7; ++i) ASSERT_TRUE((*s)->Step({}).ok());
  Amendment a;
  a.kind = Amendment::Kind::kContinueWith;
  a.at_epoch = 7;
  a.args = json{{"scheduler", c["scheduler"]}, {"param_groups", given}};
  auto r = (*s)->Amend(a);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->applied);
  Trace t;
  ASSERT_TRUE(Simulate(**s, c["steps"].get<int64_t>(), {}, {}, &t).ok());
  ASSERT_TRUE(t.error.ok()) << t.error;
  const size_t groups = opt->groups.size();
  ExpectRows(c["expected"]["lr"], t.lr, groups, "lr");
  if (c["expected"].contains("momentum") && t.has_momentum) {
    ExpectRows(c["expected"]["momentum"], t.momentum, groups, "momentum");
  }
  if (c["expected"].contains("weight_decay")) {
    ASSERT_TRUE(t.has_weight_decay);
    ExpectRows(c["expected"]["weight_decay"], t.weight_decay, groups, "weight_decay");
  }
}

TEST_P(AmendGoldenTest, ReparameterizeWithTheSameArgumentsChangesNothing) {
  const json& c = GetParam().j;
  if (!Plain(c)) GTEST_SKIP() << "not a plain-step case";
  json kwargs = c["scheduler"];
  kwargs.erase("type");
  if (kwargs.empty()) GTEST_SKIP() << "no keyword arguments";
  json spec{{"optimizer", c["optimizer"]}, {"scheduler", c["scheduler"]}};
  const int64_t steps = c["steps"].get<int64_t>(), k = steps / 2;
  for (bool pending : {false, true}) {
    auto plain = Schedule::Create(spec);
    auto amended = Schedule::Create(spec);
    ASSERT_TRUE(plain.ok() && amended.ok());
    for (int64_t i = 0; i < k; ++i) ASSERT_TRUE((*plain)->Step({}).ok());
    Amendment a;
    a.kind = Amendment::Kind::kReparameterize;
    a.at_epoch = (*plain)->last_epoch();  // Megatron's steps may count by increments
    a.args = kwargs;
    if (pending) {
      auto r = (*amended)->Amend(a);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->applied, k == 0);
    }
    for (int64_t i = 0; i < k; ++i) ASSERT_TRUE((*amended)->Step({}).ok());
    if (!pending) {
      auto r = (*amended)->Amend(a);
      ASSERT_TRUE(r.ok()) << r.status();
    }
    ASSERT_EQ((*amended)->amendments().size(), 1u);
    ASSERT_TRUE((*amended)->amendments()[0].applied);
    for (double j : (*amended)->amendments()[0].jump) EXPECT_EQ(j, 0.0);
    Trace want, got;
    ASSERT_TRUE(Simulate(**plain, steps - k, {}, {}, &want).ok());
    ASSERT_TRUE(Simulate(**amended, steps - k, {}, {}, &got).ok());
    ASSERT_EQ(want.lr.size(), got.lr.size());
    for (size_t i = 0; i < want.lr.size(); ++i) {
      ASSERT_EQ(Bits(want.lr[i]), Bits(got.lr[i])) << "pending " << pending << " value " << i;
    }
    ASSERT_EQ(want.momentum.size(), got.momentum.size());
    for (size_t i = 0; i < want.momentum.size(); ++i) {
      ASSERT_EQ(Bits(want.momentum[i]), Bits(got.momentum[i])) << "momentum " << i;
    }
  }
}

// Metric-driven cases (ReduceLROnPlateau, timm's Plateau): the state carries over, so the
// same arguments change nothing either (best, counters, timm's t, noise and lr to restore).
TEST_P(AmendGoldenTest, MetricDrivenReparameterizeCarriesTheState) {
  const json& c = GetParam().j;
  if (!c.contains("metrics") || c.contains("epochs") || !c["expected"].contains("lr") ||
      c["expected"].contains("error_at_step")) {
    GTEST_SKIP() << "not a metric-driven case";
  }
  json kwargs = c["scheduler"];
  kwargs.erase("type");
  json spec{{"optimizer", c["optimizer"]}, {"scheduler", c["scheduler"]}};
  const std::vector<double> metrics = test_support::Numbers(c, "metrics");
  const int64_t steps = c["steps"].get<int64_t>();
  for (int64_t k : {steps / 3, steps / 2, steps - 2}) {
    auto plain = Schedule::Create(spec);
    auto amended = Schedule::Create(spec);
    ASSERT_TRUE(plain.ok() && amended.ok());
    ASSERT_FALSE((*amended)->deterministic());
    Trace head;
    ASSERT_TRUE(Simulate(**plain, k, absl::MakeConstSpan(metrics).subspan(0, k), {}, &head).ok());
    ASSERT_TRUE(Simulate(**amended, k, absl::MakeConstSpan(metrics).subspan(0, k), {}, &head).ok());
    Amendment a;
    a.kind = Amendment::Kind::kReparameterize;
    a.at_epoch = (*amended)->last_epoch();
    a.args = kwargs;
    auto r = (*amended)->Amend(a);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*amended)->ExportState()["state_dict"], (*plain)->ExportState()["state_dict"]);
    EXPECT_EQ((*amended)->ExportState()["node_state"], (*plain)->ExportState()["node_state"]);
    Trace want, got;
    auto tail = absl::MakeConstSpan(metrics).subspan(k);
    ASSERT_TRUE(Simulate(**plain, steps - k, tail, {}, &want).ok());
    ASSERT_TRUE(Simulate(**amended, steps - k, tail, {}, &got).ok());
    ASSERT_EQ(want.lr.size(), got.lr.size());
    for (size_t i = 0; i < want.lr.size(); ++i) {
      ASSERT_EQ(Bits(want.lr[i]), Bits(got.lr[i])) << "k " << k << " value " << i;
    }
  }
}

// A changed argument of a metric-driven schedule takes effect with the state kept: a
// ReduceLROnPlateau whose patience is raised mid-plateau waits longer from where it is.
TEST(AmendMetricDriven, ChangedArgumentKeepsTheCounters) {
  json spec{{"optimizer", {{"type", "SGD"}, {"param_groups", {{{"lr", 1.0}}}}}},
            {"scheduler", {{"type", "ReduceLROnPlateau"}, {"patience", 3}}}};
  auto s = Schedule::Create(spec);
  ASSERT_TRUE(s.ok());
  StepRequest m;
  m.metric = 1.0;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*s)->Step(m).ok());  // best 1.0, 2 bad epochs
  EXPECT_EQ((*s)->StateDict()["num_bad_epochs"], 2);
  Amendment a;
  a.kind = Amendment::Kind::kReparameterize;
  a.at_epoch = (*s)->last_epoch();
  a.args = {{"patience", 5}};
  ASSERT_TRUE((*s)->Amend(a).ok());
  EXPECT_EQ((*s)->StateDict()["num_bad_epochs"], 2);
  EXPECT_EQ((*s)->StateDict()["best"], 1.0);
  EXPECT_EQ((*s)->StateDict()["patience"], 5);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*s)->Step(m).ok());  // 5 bad epochs: not > 5
  EXPECT_EQ((*s)->param_groups()[0].lr, 1.0);
  ASSERT_TRUE((*s)->Step(m).ok());  // 6 > 5: reduced
  EXPECT_EQ((*s)->param_groups()[0].lr, 0.1);
}

INSTANTIATE_TEST_SUITE_P(Golden, AmendGoldenTest, testing::ValuesIn(test_support::AllGolden()),
                         [](const testing::TestParamInfo<GoldenCase>& p) {
                           return test_support::CaseTestName(p.param);
                         });

}  // namespace
}  // namespace lrsched
