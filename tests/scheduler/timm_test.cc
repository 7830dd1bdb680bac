// Copyright lrsched authors.
//
// timm's schedulers beyond the golden traces: refusals name the argument (construction) or
// the math error (a step, which then changes nothing); a Step with `epoch` sets t as timm's
// trainers pass it; lrsched's export carries t and Plateau's counters (node_state).
#include "gtest/gtest.h"
#include "scheduler/schedule.h"
#include "tests/scheduler/refusal_util.h"

namespace lrsched {
namespace {

using nlohmann::json;

json Spec(const json& scheduler, json groups = json::array({{{"lr", 0.1}, {"momentum", 0.9}}})) {
  return json{{"optimizer", {{"type", "SGD"}, {"param_groups", groups}}}, {"scheduler", scheduler}};
}

void ExpectRefused(const json& scheduler, const std::string& needle) {
  test_support::ExpectCreateRefused(Spec(scheduler), needle);
}

TEST(TimmTest, ConstructionRefusalsNameTheArgument) {
  ExpectRefused({{"type", "timm.CosineLR"}, {"t_initial", 5}},
                "scheduler.type: expected one of timm.CosineLRScheduler");
  ExpectRefused({{"type", "timm.CosineLRScheduler"}, {"t_initial", 0}}, "scheduler.t_initial");
  ExpectRefused({{"type", "timm.CosineLRScheduler"}, {"t_initial", 5}, {"lr_min", -1}},
                "scheduler.lr_min");
  ExpectRefused({{"type", "timm.TanhLRScheduler"}, {"t_initial", 5}, {"lb", 3}, {"ub", 3}},
                "scheduler.lb");
  ExpectRefused({{"type", "timm.PlateauLRScheduler"}, {"mode", "avg"}},
                "scheduler.mode: mode avg is unknown!");
  ExpectRefused({{"type", "timm.PlateauLRScheduler"}, {"decay_rate", 1.0}}, "scheduler.decay_rate");
  ExpectRefused({{"type", "timm.StepLRScheduler"}, {"decay_t", 0}}, "scheduler.decay_t");
  ExpectRefused({{"type", "timm.CosineLRScheduler"}, {"t_initial", 5}, {"noise_type", "uniform"}},
                "scheduler.noise_type");  // only Plateau takes it
  ExpectRefused({{"type", "timm.CosineLRScheduler"},
                 {"t_initial", 5},
                 {"noise_range_t", 2},
                 {"noise_pct", 0}},
                "scheduler.noise_pct");
}

TEST(TimmTest, RefusedInsideTorchsComposites) {
  for (const char* composite : {"SequentialLR", "ChainedScheduler"}) {
    json sched = {{"type", composite},
                  {"schedulers",
                   {{{"type", "StepLR"}, {"step_size", 2}},
                    {{"type", "timm.CosineLRScheduler"}, {"t_initial", 5}}}}};
    if (std::string(composite) == "SequentialLR") sched["milestones"] = {3};
    ExpectRefused(sched, "scheduler.schedulers[1]: timm.CosineLRScheduler cannot be nested");
  }
}

TEST(TimmTest, MathDomainErrorRefusesTheStepAndChangesNothing) {
  auto s = Schedule::Create(Spec({{"type", "timm.CosineLRScheduler"},
                                  {"t_initial", 10},
                                  {"cycle_mul", 0.5},
                                  {"cycle_limit", 5}}));
  ASSERT_TRUE(s.ok()) << s.status();
  for (int i = 0; i < 19; ++i) ASSERT_TRUE((*s)->Step({}).ok()) << i;
  test_support::ExpectStepRefusedUnchanged(**s, {}, "math domain error");
  EXPECT_EQ((*s)->last_epoch(), 19);
}

TEST(TimmTest, StepWithEpochSetsT) {
  json sched = {{"type", "timm.CosineLRScheduler"}, {"t_initial", 20},    {"warmup_t", 3},
                {"warmup_lr_init", 0.001},          {"noise_range_t", 5}, {"noise_pct", 0.3}};
  auto straight = Schedule::Create(Spec(sched));
  auto jumped = Schedule::Create(Spec(sched));
  ASSERT_TRUE(straight.ok() && jumped.ok());
  for (int i = 0; i < 12; ++i) ASSERT_TRUE((*straight)->Step({}).ok());
  StepRequest r;
  r.epoch = 12;
  ASSERT_TRUE((*jumped)->Step(r).ok());
  EXPECT_EQ((*jumped)->last_epoch(), 12);
  EXPECT_EQ((*jumped)->param_groups()[0].lr, (*straight)->param_groups()[0].lr);
  ASSERT_TRUE((*straight)->Step({}).ok());
  ASSERT_TRUE((*jumped)->Step({}).ok());
  EXPECT_EQ((*jumped)->param_groups()[0].lr, (*straight)->param_groups()[0].lr);
  r.epoch = 2.5;
  EXPECT_TRUE(absl::IsInvalidArgument((*jumped)->Step(r)));
}

TEST(TimmTest, MetricIsKeptInTheStateDict) {
  // timm's train.py passes the eval metric to every scheduler's step; timm stores it.
  auto s = Schedule::Create(Spec({{"type", "timm.StepLRScheduler"}, {"decay_t", 2}}));
  ASSERT_TRUE(s.ok());
  StepRequest r;
  r.metric = 0.75;
  ASSERT_TRUE((*s)->Step(r).ok());
  EXPECT_EQ((*s)->StateDict()["metric"], 0.75);
  ASSERT_TRUE((*s)->Step({}).ok());
  EXPECT_TRUE((*s)->StateDict()["metric"].is_null());
}

TEST(TimmTest, ExportCarriesNodeStateAndImportRefusesABadOne) {
  auto s = Schedule::Create(Spec({{"type", "timm.PlateauLRScheduler"}, {"patience_t", 1}}));
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE((*s)->deterministic());
  StepRequest r;
  for (double m : {1.0, 0.5, 0.4}) {
    r.metric = m;
    ASSERT_TRUE((*s)->Step(r).ok());
  }
  json state = (*s)->ExportState();
  // mode max: 1.0 is best, then 2 bad epochs > patience 1: reduced, the count reset.
  EXPECT_EQ(state["node_state"]["num_bad_epochs"], 0);
  EXPECT_EQ((*s)->param_groups()[0].lr, 0.1 * 0.1);
  EXPECT_EQ(state["node_state"]["t"], 3);
  auto back = Schedule::ImportState(state);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)->ExportState(), state);
  state["node_state"]["t"] = -1;
  auto bad = Schedule::ImportState(state);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("state.node_state.t"), std::string::npos) << bad.status();
  // torch's types keep none.
  auto torch = Schedule::Create(Spec({{"type", "StepLR"}, {"step_size", 2}}));
  ASSERT_TRUE(torch.ok());
  json t = (*torch)->ExportState();
  EXPECT_FALSE(t.contains("node_state"));
  t["node_state"] = {{"t", 1}};
  EXPECT_FALSE(Schedule::ImportState(t).ok());
}

TEST(TimmTest, NoiseCostsMoreTheRarerADrawFits) {
  auto cost = [](json sched) {
    auto s = Schedule::Create(Spec(sched));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? (*s)->step_cost() : -1;
  };
  json plain = {{"type", "timm.CosineLRScheduler"}, {"t_initial", 10}};
  json noisy = plain, rare = plain;
  noisy["noise_range_t"] = 0;
  rare["noise_range_t"] = 0;
  rare["noise_pct"] = 0.01;  // a draw fits with probability 0.008
  EXPECT_GT(cost(noisy), cost(plain) + 900);
  EXPECT_GT(cost(rare), cost(noisy) + 5000);
}

// The cycle cache of timm Cosine/Tanh/Poly with cycle_mul != 1 (schedulers_timm.cc, Cycle):
// stepping forward, which reuses one cycle's i for its whole range, gives the bits of the
// formula evaluated afresh at every t (a schedule jumped to each t in descending order, so that
// no cached range ever covers it), across many cycle boundaries and both cycle_mul < 1 and > 1.
TEST(TimmTest, CycleCacheGivesTheFormulasBits) {
  struct Config {
    int64_t t_initial;
    double cycle_mul;
    int64_t steps;
  };
  for (const Config& c : {Config{7, 2.0, 4000}, Config{10, 1.5, 6000}, Config{3, 1.1, 6000},
                          Config{100, 0.9, 990}, Config{13, 3.7, 6000}, Config{1, 1.01, 3000}}) {
    json sched = {{"type", "timm.CosineLRScheduler"},
                  {"t_initial", c.t_initial},
                  {"cycle_mul", c.cycle_mul},
                  {"cycle_limit", 1000},
                  {"cycle_decay", 0.9},
                  {"lr_min", 1e-4}};
    auto forward = Schedule::Create(Spec(sched));
    auto jumper = Schedule::Create(Spec(sched));
    ASSERT_TRUE(forward.ok() && jumper.ok()) << forward.status() << jumper.status();
    std::vector<double> lrs;
    for (int64_t t = 1; t <= c.steps; ++t) {
      ASSERT_TRUE((*forward)->Step({}).ok()) << t;
      lrs.push_back((*forward)->param_groups()[0].lr);
    }
    for (int64_t t = c.steps; t >= 1; --t) {
      StepRequest r;
      r.epoch = static_cast<double>(t);
      ASSERT_TRUE((*jumper)->Step(r).ok()) << t;
      ASSERT_EQ((*jumper)->param_groups()[0].lr, lrs[t - 1])
          << "t_initial " << c.t_initial << " cycle_mul " << c.cycle_mul << " t " << t;
    }
  }
}

}  // namespace
}  // namespace lrsched
