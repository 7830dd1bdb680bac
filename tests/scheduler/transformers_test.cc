// Copyright lrsched authors.
//
// transformers.get_scheduler beyond what the golden lines show: the routing of arguments
// (what get_scheduler drops silently, what it passes on and thereby refuses), the refusals'
// messages naming the argument, a refused step changing nothing, and lookahead clones.
// The values themselves are checked bit for bit against transformers by golden_test.
#include <cmath>
#include <string>

#include "gtest/gtest.h"
#include "scheduler/schedule.h"
#include "scheduler/trace.h"
#include "tests/scheduler/refusal_util.h"

namespace lrsched {
namespace {

using nlohmann::json;

absl::StatusOr<std::unique_ptr<Schedule>> Hf(const std::string& args,
                                             const std::string& groups = R"([{"lr": 0.1}])") {
  return Schedule::Create(
      json::parse(R"({"optimizer": {"type": "AdamW", "param_groups": )" + groups +
                  R"(}, "scheduler": {"type": "transformers.get_scheduler", )" + args + "}}"));
}

std::vector<double> Lrs(Schedule& s, int steps) {
  std::vector<double> out;
  for (int i = 0; i < steps; ++i) {
    out.push_back(s.param_groups()[0].lr);
    EXPECT_TRUE(s.Step({}).ok());
  }
  return out;
}

struct Refusal {
  const char* what;
  std::string args;
  const char* needle;  // must appear in the INVALID_ARGUMENT message
};

class HfRefusalTest : public ::testing::TestWithParam<Refusal> {};

TEST_P(HfRefusalTest, InvalidArgumentNamingTheArgument) {
  const Refusal& r = GetParam();
  auto s = Hf(r.args);
  ASSERT_FALSE(s.ok()) << r.what << ": accepted";
  test_support::ExpectInvalidArgumentNaming(s.status(), r.needle);
}

const Refusal kRefusals[] = {
    {"unknown name", R"("name": "cosine_annealing", "num_warmup_steps": 1,
      "num_training_steps": 9)",
     "scheduler.name: \"cosine_annealing\" is not a valid transformers SchedulerType; expected "
     "one of linear, cosine, cosine_with_restarts, polynomial, constant, constant_with_warmup, "
     "inverse_sqrt, reduce_lr_on_plateau, cosine_with_min_lr, cosine_warmup_with_min_lr, "
     "warmup_stable_decay"},
    {"greedy is transformers' but not served", R"("name": "greedy")",
     "scheduler.name: \"greedy\" (transformers' GreedyLR) is not served"},
    {"name missing", R"("num_warmup_steps": 1)", "scheduler.name: required"},
    {"W missing", R"("name": "linear", "num_training_steps": 9)",
     "scheduler.num_warmup_steps: linear requires `num_warmup_steps`"},
    {"T missing", R"("name": "cosine", "num_warmup_steps": 1)",
     "scheduler.num_training_steps: cosine requires `num_training_steps`"},
    {"unknown kwarg (TypeError)", R"("name": "cosine", "num_warmup_steps": 1,
      "num_training_steps": 9, "scheduler_specific_kwargs": {"power": 2})",
     "scheduler.scheduler_specific_kwargs.power: unknown field"},
    {"W inside the kwargs (TypeError: multiple values)", R"("name": "linear",
      "num_warmup_steps": 1, "num_training_steps": 9,
      "scheduler_specific_kwargs": {"num_warmup_steps": 2})",
     "scheduler.scheduler_specific_kwargs.num_warmup_steps: unknown field"},
    {"kwargs not an object", R"("name": "linear", "num_warmup_steps": 1,
      "num_training_steps": 9, "scheduler_specific_kwargs": [1])",
     "scheduler.scheduler_specific_kwargs: expected an object"},
    {"last_epoch twice", R"("name": "linear", "num_warmup_steps": 1, "num_training_steps": 9,
      "last_epoch": 3, "scheduler_specific_kwargs": {"last_epoch": 3})",
     "scheduler.scheduler_specific_kwargs.last_epoch: given twice"},
    {"resume without initial_lr", R"("name": "linear", "num_warmup_steps": 1,
      "num_training_steps": 9, "last_epoch": 3)",
     "optimizer.param_groups[0].initial_lr: required when resuming"},
    {"polynomial lr_end not below lr", R"("name": "polynomial", "num_warmup_steps": 1,
      "num_training_steps": 9, "scheduler_specific_kwargs": {"lr_end": 0.5})",
     "scheduler.scheduler_specific_kwargs.lr_end: lr_end (0.5) must be smaller than initial lr "
     "(0.1"},
    {"min_lr and min_lr_rate", R"("name": "cosine_with_min_lr", "num_warmup_steps": 1,
      "num_training_steps": 9, "scheduler_specific_kwargs": {"min_lr": 0.01,
      "min_lr_rate": 0.1})",
     "scheduler.scheduler_specific_kwargs.min_lr: only one of min_lr or min_lr_rate"},
    {"neither min_lr nor min_lr_rate", R"("name": "cosine_warmup_with_min_lr",
      "num_warmup_steps": 1, "num_training_steps": 9)",
     "scheduler.scheduler_specific_kwargs.min_lr: one of min_lr or min_lr_rate must be set"},
    {"wsd without num_decay_steps", R"("name": "warmup_stable_decay", "num_warmup_steps": 1,
      "num_training_steps": 9)",
     "scheduler.scheduler_specific_kwargs.num_decay_steps: required"},
    {"wsd without T or num_stable_steps", R"("name": "warmup_stable_decay",
      "num_warmup_steps": 1, "scheduler_specific_kwargs": {"num_decay_steps": 3})",
     "scheduler.num_training_steps: either num_training_steps or"},
    {"wsd unknown warmup_type", R"("name": "warmup_stable_decay", "num_warmup_steps": 1,
      "num_training_steps": 9, "scheduler_specific_kwargs": {"num_decay_steps": 3,
      "warmup_type": "exp"})",
     "scheduler.scheduler_specific_kwargs.warmup_type: expected one of linear, cosine, 1-sqrt"},
    {"inverse_sqrt timescale 0 (ZeroDivisionError later)", R"("name": "inverse_sqrt",
      "num_warmup_steps": 1, "scheduler_specific_kwargs": {"timescale": 0})",
     "scheduler.scheduler_specific_kwargs.timescale: must be positive"},
    {"plateau with last_epoch (torch's takes none)", R"("name": "reduce_lr_on_plateau",
      "last_epoch": 4)",
     "scheduler.last_epoch: reduce_lr_on_plateau passes its kwargs"},
    {"plateau unknown kwarg", R"("name": "reduce_lr_on_plateau",
      "scheduler_specific_kwargs": {"num_cycles": 2})",
     "scheduler.scheduler_specific_kwargs.num_cycles: unknown field"},
    {"plateau factor >= 1", R"("name": "reduce_lr_on_plateau",
      "scheduler_specific_kwargs": {"factor": 1.0})",
     "scheduler.scheduler_specific_kwargs.factor"},
    {"negative W", R"("name": "linear", "num_warmup_steps": -1, "num_training_steps": 9)",
     "scheduler.num_warmup_steps"},
    {"unknown top-level key", R"("name": "linear", "num_warmup_steps": 1,
      "num_training_steps": 9, "num_cycles": 2)",
     "scheduler.num_cycles: unknown field"},
};

INSTANTIATE_TEST_SUITE_P(Hf, HfRefusalTest, ::testing::ValuesIn(kRefusals),
                         [](const ::testing::TestParamInfo<Refusal>& p) {
                           std::string n;
                           for (const char* c = p.param.what; *c; ++c) n += isalnum(*c) ? *c : '_';
                           return n;
                         });

// get_scheduler passes nothing to `constant` and only W to `constant_with_warmup`: their kwargs
// (whatever they hold), T and last_epoch are dropped without a word.
TEST(HfRouting, ConstantAndConstantWithWarmupDropTheirKwargs) {
  auto c = Hf(R"("name": "constant", "num_warmup_steps": 5, "num_training_steps": 7,
      "last_epoch": 9, "scheduler_specific_kwargs": {"anything": [1, 2], "power": "x"})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->last_epoch(), 0);
  EXPECT_EQ(Lrs(**c, 3), (std::vector<double>{0.1, 0.1, 0.1}));
  EXPECT_EQ((*c)->StateDict()["lr_lambdas"], json::parse("[null]"));  // a plain function

  auto w = Hf(R"("name": "constant_with_warmup", "num_warmup_steps": 4,
      "scheduler_specific_kwargs": {"num_cycles": 3, "last_epoch": 2}, "last_epoch": 2)");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->last_epoch(), 0);
  EXPECT_EQ(Lrs(**w, 5), (std::vector<double>{0.0, 0.1 * 0.25, 0.1 * 0.5, 0.1 * 0.75, 0.1}));
  EXPECT_EQ((*w)->StateDict()["lr_lambdas"], json::parse("[{}]"));  // a functools.partial
}

// inverse_sqrt gets W and the kwargs (last_epoch among them) but not T; timescale defaults to
// W, or 10000 when W is 0.
TEST(HfRouting, InverseSqrtTakesKwargsAndDefaultsItsTimescale) {
  auto zero_w = Hf(R"("name": "inverse_sqrt", "num_warmup_steps": 0, "num_training_steps": 3)");
  ASSERT_TRUE(zero_w.ok()) << zero_w.status();
  std::vector<double> got = Lrs(**zero_w, 3);
  EXPECT_EQ(got[2], 0.1 * (1.0 / std::sqrt((2.0 + 10000.0) / 10000.0)));

  auto resumed = Hf(R"("name": "inverse_sqrt", "num_warmup_steps": 2,
      "scheduler_specific_kwargs": {"last_epoch": 7})",
                    R"([{"lr": 0.05, "initial_lr": 0.1}])");
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ((*resumed)->last_epoch(), 8);
  EXPECT_EQ((*resumed)->param_groups()[0].lr, 0.1 * (1.0 / std::sqrt((8.0 + 0.0) / 2.0)));
}

// warmup_stable_decay: an explicit num_stable_steps wins over T - W - D.
TEST(HfRouting, WsdStableStepsWinOverTrainingSteps) {
  auto s = Hf(R"("name": "warmup_stable_decay", "num_warmup_steps": 1,
      "num_training_steps": 100, "scheduler_specific_kwargs": {"num_decay_steps": 2,
      "num_stable_steps": 2, "decay_type": "linear"})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(Lrs(**s, 6), (std::vector<double>{0.0, 0.1, 0.1, 0.1, 0.1 * 0.5, 0.0}));
}

// polynomial with W == T divides by zero at step W, as transformers does: refused at that
// step, naming the cause, with nothing changed; a clone looking ahead stops there too.
TEST(HfStep, PolynomialZeroDivisionRefusesTheStepAndChangesNothing) {
  auto s = Hf(R"("name": "polynomial", "num_warmup_steps": 3, "num_training_steps": 3)");
  ASSERT_TRUE(s.ok()) << s.status();
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*s)->Step({}).ok());
  auto ahead = (*s)->Clone();
  test_support::ExpectStepRefusedUnchanged(
      **s, {}, "transformers.get_scheduler(polynomial) at step 3: ZeroDivisionError");
  EXPECT_FALSE(ahead->Step({}).ok());
  // step(epoch) past the hole works, as LambdaLR's does.
  EXPECT_TRUE((*s)->Step({std::nullopt, 5.0, std::nullopt}).ok());
  EXPECT_EQ((*s)->param_groups()[0].lr, 0.1 * (1e-7 / 0.1));
}

// polynomial's `pct_remaining**power` with Python's rules where C's pow differs: a negative
// power at the last decay step (0.0 ** -1.0) is transformers' ZeroDivisionError, refused there.
TEST(HfStep, PolynomialNegativePowerAtTheEndIsPythonsZeroDivision) {
  auto s = Hf(R"("name": "polynomial", "num_warmup_steps": 0, "num_training_steps": 2,
      "scheduler_specific_kwargs": {"power": -1.0, "lr_end": 0.05})");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE((*s)->Step({}).ok());  // pct_remaining 0.5: 0.5 ** -1 = 2
  EXPECT_EQ((*s)->param_groups()[0].lr, 0.1 * (((0.1 - 0.05) * 2.0 + 0.05) / 0.1));
  absl::Status st = (*s)->Step({});
  EXPECT_NE(st.message().find("ZeroDivisionError"), std::string::npos) << st;
  EXPECT_EQ((*s)->last_epoch(), 1);
}

TEST(HfStep, LambdaTypesAreDeterministicPlateauIsNot) {
  auto cos = Hf(R"("name": "cosine", "num_warmup_steps": 2, "num_training_steps": 10)");
  ASSERT_TRUE(cos.ok());
  EXPECT_TRUE((*cos)->deterministic());
  EXPECT_EQ((*cos)->scheduler_type(), "transformers.get_scheduler");
  auto ahead = (*cos)->Clone();
  std::vector<double> a = Lrs(*ahead, 12), b = Lrs(**cos, 12);
  EXPECT_EQ(a, b);
  auto plateau = Hf(R"("name": "reduce_lr_on_plateau", "num_warmup_steps": 3,
      "num_training_steps": 4, "scheduler_specific_kwargs": {"patience": 0, "verbose": false})");
  ASSERT_TRUE(plateau.ok()) << plateau.status();
  EXPECT_FALSE((*plateau)->deterministic());
  EXPECT_EQ((*plateau)->scheduler_type(), "ReduceLROnPlateau");
  EXPECT_NE((*plateau)->Step({}).message().find("metric"), std::string::npos);
  ASSERT_TRUE((*plateau)->Step({1.0, {}, {}}).ok());
  ASSERT_TRUE((*plateau)->Step({2.0, {}, {}}).ok());
  EXPECT_EQ((*plateau)->param_groups()[0].lr, 0.1 * 0.1);
}

// A transformers LambdaLR may be a child of torch's composites (it is a LambdaLR); its
// reduce_lr_on_plateau may not, as torch's ReduceLROnPlateau may not.
TEST(HfComposite, LambdaChildAcceptedPlateauChildRefused) {
  auto seq = Schedule::Create(json::parse(R"({"optimizer": {"type": "SGD",
      "param_groups": [{"lr": 0.1}]}, "scheduler": {"type": "SequentialLR", "milestones": [3],
      "schedulers": [{"type": "transformers.get_scheduler", "name": "linear",
      "num_warmup_steps": 3, "num_training_steps": 3}, {"type": "ConstantLR"}]}})"));
  EXPECT_TRUE(seq.ok()) << seq.status();
  auto chained = Schedule::Create(json::parse(R"({"optimizer": {"type": "SGD",
      "param_groups": [{"lr": 0.1}]}, "scheduler": {"type": "ChainedScheduler",
      "schedulers": [{"type": "transformers.get_scheduler", "name": "reduce_lr_on_plateau"}]}})"));
  ASSERT_FALSE(chained.ok());
  EXPECT_NE(chained.status().message().find("ReduceLROnPlateau cannot be nested"),
            std::string::npos)
      << chained.status();
}

}  // namespace
}  // namespace lrsched
