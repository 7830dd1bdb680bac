// Copyright lrsched authors.
//
// megatron.OptimizerParamScheduler beyond what the golden traces show: Step's increment (its
// validation, and that torch's types refuse it), the refusals naming their argument, a refused
// step changing nothing, weight_decay reported only where it is driven, and load_state_dict's
// rules (checkpoint values win by default, must agree without use_checkpoint, older key names,
// the step to the loaded num_steps).
#include <string>

#include "gtest/gtest.h"
#include "scheduler/schedule.h"
#include "scheduler/trace.h"
#include "tests/scheduler/refusal_util.h"
#include "tests/scheduler/step_requests.h"

namespace lrsched {
namespace {

using nlohmann::json;

json Spec(json overrides = json::object(), json groups = nullptr) {
  json sched{{"type", "megatron.OptimizerParamScheduler"},
             {"init_lr", 0.0},
             {"max_lr", 0.001},
             {"min_lr", 1e-5},
             {"lr_warmup_steps", 10},
             {"lr_decay_steps", 100},
             {"lr_decay_style", "cosine"},
             {"start_wd", 0.0},
             {"end_wd", 0.1},
             {"wd_incr_steps", 100},
             {"wd_incr_style", "linear"}};
  for (auto it = overrides.begin(); it != overrides.end(); ++it) {
    if (it.value().is_null())
      sched.erase(it.key());
    else
      sched[it.key()] = it.value();
  }
  if (groups.is_null()) groups = json::array({json{{"lr", 0.0}, {"weight_decay", 0.1}}});
  return json{{"optimizer", {{"type", "AdamW"}, {"param_groups", groups}}}, {"scheduler", sched}};
}

using test_support::Epoch;
using test_support::Inc;
using test_support::Metric;

std::unique_ptr<Schedule> Make(json spec) {
  auto s = Schedule::Create(spec);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

void ExpectRefused(const json& spec, const std::string& needle) {
  test_support::ExpectCreateRefused(spec, needle);
}

TEST(MegatronTest, IncrementCountsSamples) {
  auto a = Make(Spec()), b = Make(Spec());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Step(Inc(32)).ok());
  for (int i = 0; i < 32; ++i) ASSERT_TRUE(b->Step({}).ok());
  EXPECT_EQ(a->last_epoch(), 32);
  EXPECT_EQ(a->param_groups(), b->param_groups());
  EXPECT_EQ(a->StateDict(), b->StateDict());
  // The spec's increment is the default; a Step's own wins.
  auto c = Make(Spec({{"increment", 8}}));
  ASSERT_TRUE(c->Step({}).ok());
  EXPECT_EQ(c->last_epoch(), 8);
  ASSERT_TRUE(c->Step(Inc(24)).ok());
  EXPECT_EQ(c->param_groups(), a->param_groups());
}

TEST(MegatronTest, IncrementValidated) {
  auto s = Make(Spec());
  json before = s->ExportState();
  for (int64_t bad : {0, -1}) test_support::ExpectStepRefusedUnchanged(*s, Inc(bad), "increment");
  EXPECT_FALSE(s->Step(Epoch(3)).ok());
  EXPECT_FALSE(s->Step(Metric(1.0)).ok());
  EXPECT_EQ(s->ExportState(), before);
  ExpectRefused(Spec({{"increment", 0}}), "scheduler.increment");
  // torch's types take none.
  auto torch = Schedule::Create(json::parse(R"J({"optimizer": {"type": "SGD",
      "param_groups": [{"lr": 0.1, "weight_decay": 0.01}]},
      "scheduler": {"type": "StepLR", "step_size": 2}})J"));
  ASSERT_TRUE(torch.ok());
  test_support::ExpectStepRefusedUnchanged(**torch, Inc(2),
                                           "increment: StepLR.step() takes no increment");
  // A torch type accepts a group's weight_decay and does not report it.
  EXPECT_FALSE((*torch)->drives_weight_decay());
  Trace t;
  ASSERT_TRUE(Simulate(**torch, 3, {}, {}, &t).ok());
  EXPECT_FALSE(t.has_weight_decay);
  EXPECT_TRUE(t.weight_decay.empty());
}

TEST(MegatronTest, ConstructionRefusalsNameTheArgument) {
  ExpectRefused(Spec({{"min_lr", -1}}), "scheduler.min_lr");
  ExpectRefused(Spec({{"min_lr", 0.01}}), "scheduler.max_lr");
  ExpectRefused(Spec({{"init_lr", 0.01}}), "scheduler.init_lr");
  ExpectRefused(Spec({{"lr_decay_steps", 0}}), "scheduler.lr_decay_steps");
  ExpectRefused(Spec({{"lr_warmup_steps", 100}}), "scheduler.lr_warmup_steps");
  ExpectRefused(Spec({{"lr_decay_style", "WSD"}}), "scheduler.wsd_decay_steps");
  ExpectRefused(Spec({{"start_wd", -0.1}}), "scheduler.start_wd");
  ExpectRefused(Spec({{"end_wd", 0.0}, {"start_wd", 0.1}}), "scheduler.end_wd");
  ExpectRefused(Spec({{"wd_incr_style", "constant"}}), "start_wd");
  ExpectRefused(Spec({{"wd_incr_style", "step"}}), "scheduler.wd_incr_style");
  ExpectRefused(Spec({{"wd_incr_steps", 0}}), "scheduler.wd_incr_steps");
  ExpectRefused(Spec({{"override_opt_param_scheduler", true}}),
                "scheduler.override_opt_param_scheduler");
  ExpectRefused(Spec({{"max_lr", nullptr}}), "scheduler.max_lr: required");
  ExpectRefused(Spec({{"lr_decay_style", 3}}), "scheduler.lr_decay_style");
  ExpectRefused(Spec({{"lr_mult", 2}}), "scheduler.lr_mult: unknown field");
  // Without warmup an unknown style is met by the constructor's step(0).
  ExpectRefused(Spec({{"lr_warmup_steps", 0}, {"lr_decay_style", "exponential"}}),
                "scheduler.lr_decay_style");
  // A group's own wd range must agree under the constant style, as Megatron asserts.
  ExpectRefused(Spec({{"wd_incr_style", "constant"}, {"start_wd", 0.1}},
                     json::array({json{{"lr", 0.0}, {"start_wd", 0.0}}})),
                "optimizer.param_groups[0].start_wd");
  // Not a torch scheduler: composites cannot drive it.
  json nested = Spec();
  nested["scheduler"] = json{{"type", "ChainedScheduler"}, {"schedulers", {Spec()["scheduler"]}}};
  ExpectRefused(nested, "cannot be nested");
}

TEST(MegatronTest, RefusedStepNamesTheStyleAndChangesNothing) {
  auto s = Make(Spec({{"lr_decay_style", "WSD"}, {"wsd_decay_steps", 10}}));
  for (int i = 0; i < 90; ++i) ASSERT_TRUE(s->Step({}).ok());
  test_support::ExpectStepRefusedUnchanged(*s, {}, "lr_wsd_decay_style");
  EXPECT_EQ(s->last_epoch(), 90);
}

TEST(MegatronTest, GroupsGetWeightDecayAndLrMultIsNotRead) {
  json groups = json::array({json{{"lr", 0.0}, {"lr_mult", 10.0}},
                             json{{"lr", 0.0}, {"wd_mult", 0.5}, {"max_lr", 0.002}}});
  auto s = Make(Spec({{"lr_decay_style", "constant"}, {"lr_warmup_steps", 0}}, groups));
  ASSERT_TRUE(s->Step(Inc(50)).ok());
  EXPECT_EQ(s->param_groups()[0].lr, 0.001);
  EXPECT_EQ(s->param_groups()[1].lr, 0.002);
  EXPECT_EQ(*s->param_groups()[0].weight_decay, 0.0 + 0.5 * (0.1 - 0.0));
  EXPECT_EQ(*s->param_groups()[1].weight_decay, (0.0 + 0.5 * (0.1 - 0.0)) * 0.5);
  EXPECT_TRUE(s->drives_weight_decay());
}

TEST(MegatronTest, LoadStateDictFollowsMegatron) {
  auto s = Make(Spec());
  ASSERT_TRUE(s->Step(Inc(40)).ok());
  json sd = s->StateDict();
  EXPECT_EQ(sd["num_steps"], 40);
  // The optimizer's groups as built (lr 0): load_state_dict's step writes them.
  auto restored = Schedule::Restore(Spec(), nullptr, sd);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->param_groups(), s->param_groups());
  EXPECT_EQ((*restored)->last_epoch(), 40);

  // Older checkpoints' key names.
  json old = sd;
  old["start_lr"] = old["max_lr"];
  old.erase("max_lr");
  old["num_iters"] = old["num_steps"];
  old.erase("num_steps");
  old["decay_style"] = old["lr_decay_style"];
  old.erase("lr_decay_style");
  old["warmup_iter"] = old["lr_warmup_steps"];
  old.erase("lr_warmup_steps");
  old["end_iter"] = old["lr_decay_steps"];
  old.erase("lr_decay_steps");
  restored = Schedule::Restore(Spec(), nullptr, old);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->StateDict(), sd);

  // use_checkpoint_opt_param_scheduler (default): the checkpoint's values win.
  json other = sd;
  other["max_lr"] = 0.002;
  restored = Schedule::Restore(Spec(), nullptr, other);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->StateDict()["max_lr"], 0.002);
  // Without it they must agree.
  auto strict =
      Schedule::Restore(Spec({{"use_checkpoint_opt_param_scheduler", false}}), nullptr, other);
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.status().message().find("state_dict.max_lr"), std::string::npos)
      << strict.status();
  // With override_opt_param_scheduler the class values stay.
  restored = Schedule::Restore(
      Spec({{"use_checkpoint_opt_param_scheduler", false}, {"override_opt_param_scheduler", true}}),
      nullptr, other);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->StateDict()["max_lr"], 0.001);
  // The checkpoint's weight-decay settings apply from the next step on (Megatron loads them
  // after its step).
  json wd = sd;
  wd["end_wd"] = 0.2;
  restored = Schedule::Restore(Spec(), nullptr, wd);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->param_groups()[0].weight_decay, s->param_groups()[0].weight_decay);
  ASSERT_TRUE((*restored)->Step({}).ok());
  EXPECT_EQ(*(*restored)->param_groups()[0].weight_decay, 0.0 + (41.0 / 100.0) * (0.2 - 0.0));
  // A loaded value Megatron's constructor would refuse is refused.
  json bad = sd;
  bad["lr_warmup_steps"] = 200;
  auto refused = Schedule::Restore(Spec(), nullptr, bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("state_dict.lr_warmup_steps"), std::string::npos)
      << refused.status();
  bad = sd;
  bad["last_epoch"] = 3;
  refused = Schedule::Restore(Spec(), nullptr, bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("state_dict.last_epoch: unknown field"),
            std::string::npos)
      << refused.status();
}

}  // namespace
}  // namespace lrsched
