// Copyright lrsched authors.
//
// The engine's refusals: every class of hostile or absurd spec is INVALID_ARGUMENT with a
// message naming the field, and the engine keeps working afterwards. Plus behaviour the golden
// traces do not show (step inputs, lookahead clones, deep JSON).
#include "scheduler/schedule.h"

#include <string>

#include "gtest/gtest.h"
#include "scheduler/trace.h"

namespace lrsched {
namespace {

using nlohmann::json;

struct Bad {
  const char* what;
  std::string spec;    // JSON text of {"optimizer", "scheduler"}
  const char* needle;  // must appear in the message
};

std::string Sgd(const std::string& scheduler, const std::string& groups = R"J([{"lr": 0.1}])J") {
  return R"J({"optimizer": {"type": "SGD", "param_groups": )J" + groups + R"J(}, "scheduler": )J" +
         scheduler + "}";
}

std::string Nested(int depth) {
  std::string s = R"J({"type": "StepLR", "step_size": 2})J";
  for (int i = 0; i < depth; ++i)
    s = R"J({"type": "ChainedScheduler", "schedulers": [)J" + s + "]}";
  return s;
}

class BadSpecTest : public ::testing::TestWithParam<Bad> {};

TEST_P(BadSpecTest, RefusedWithFieldNamed) {
  const Bad& b = GetParam();
  absl::StatusOr<json> j = ParseJson(b.spec, "spec");
  absl::Status st = j.status();
  if (j.ok()) {
    auto s = Schedule::Create(*j);
    ASSERT_FALSE(s.ok()) << b.what << ": accepted " << b.spec;
    st = s.status();
  }
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << b.what << ": " << st;
  EXPECT_NE(st.message().find(b.needle), std::string::npos)
      << b.what << ": message '" << st.message() << "' lacks '" << b.needle << "'";
  // The engine still works after any refusal.
  auto good = Schedule::Create(json::parse(Sgd(R"J({"type": "StepLR", "step_size": 2})J")));
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE((*good)->Step({}).ok());
}

const Bad kBad[] = {
    {"unknown scheduler", Sgd(R"J({"type": "WarpLR"})J"), "scheduler.type"},
    {"unknown keyword", Sgd(R"J({"type": "StepLR", "step_size": 2, "T_Max": 3})J"),
     "scheduler.T_Max: unknown field"},
    {"unknown group key beside torch's ignored ones",
     Sgd(R"J({"type": "StepLR", "step_size": 2})J",
         R"J([{"lr": 0.1, "weight_decay": 0.01, "nesterov": true, "lrr": 0.2}])J"),
     "optimizer.param_groups[0].lrr: unknown field"},
    {"unknown optimizer key",
     R"J({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}], "fused": null,
         "param_group": 1}, "scheduler": {"type": "StepLR", "step_size": 2}})J",
     "optimizer.param_group: unknown field"},
    {"missing required", Sgd(R"J({"type": "StepLR"})J"), "scheduler.step_size: required"},
    {"string for number", Sgd(R"J({"type": "StepLR", "step_size": "10"})J"), "scheduler.step_size"},
    {"overflowing number", Sgd(R"J({"type": "ExponentialLR", "gamma": 1e999})J"),
     "number overflow parsing '1e999'"},
    {"negative size", Sgd(R"J({"type": "StepLR", "step_size": -3})J"), "scheduler.step_size"},
    {"zero size", Sgd(R"J({"type": "CosineAnnealingLR", "T_max": 0})J"), "scheduler.T_max"},
    {"huge int", Sgd(R"J({"type": "StepLR", "step_size": 99999999999999999999})J"),
     "scheduler.step_size"},
    {"fractional int", Sgd(R"J({"type": "StepLR", "step_size": 2.5})J"), "scheduler.step_size"},
    {"huge last_epoch",
     Sgd(R"J({"type": "StepLR", "step_size": 2, "last_epoch": 1e18})J",
         R"J([{"lr": 0.1, "initial_lr": 0.1}])J"),
     "scheduler.last_epoch"},
    {"negative lr", Sgd(R"J({"type": "StepLR", "step_size": 2})J", R"J([{"lr": -0.1}])J"),
     "optimizer.param_groups[0].lr"},
    {"no groups", Sgd(R"J({"type": "StepLR", "step_size": 2})J", "[]"), "optimizer.param_groups"},
    {"too many groups",
     Sgd(R"J({"type": "StepLR", "step_size": 2})J", "[" +
                                                        [] {
                                                          std::string s;
                                                          for (int i = 0; i < 1025; ++i)
                                                            s += std::string(i ? "," : "") +
                                                                 R"J({"lr": 0.1})J";
                                                          return s;
                                                        }() +
                                                        "]"),
     "optimizer.param_groups"},
    {"group not an object", Sgd(R"J({"type": "StepLR", "step_size": 2})J", "[3]"),
     "optimizer.param_groups[0]"},
    {"momentum on Adam",
     R"J({"optimizer": {"type": "Adam", "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
         "scheduler": {"type": "StepLR", "step_size": 2}})J",
     "optimizer.param_groups[0].momentum"},
    {"bad betas",
     R"J({"optimizer": {"type": "Adam", "param_groups": [{"lr": 0.1, "betas": [0.9]}]},
         "scheduler": {"type": "StepLR", "step_size": 2}})J",
     "optimizer.param_groups[0].betas"},
    {"unknown optimizer", R"J({"optimizer": {"type": "Lion", "param_groups": [{"lr": 0.1}]},
         "scheduler": {"type": "StepLR", "step_size": 2}})J",
     "optimizer.type"},
    {"extra top-level key", R"J({"optimizer": {"param_groups": [{"lr": 0.1}]},
         "scheduler": {"type": "StepLR", "step_size": 2}, "steps": 3})J",
     "spec.steps"},
    {"list length", Sgd(R"J({"type": "CyclicLR", "base_lr": [0.1, 0.2], "max_lr": 1})J"),
     "scheduler.base_lr"},
    {"bad enum", Sgd(R"J({"type": "CyclicLR", "base_lr": 0.1, "max_lr": 1, "mode": "square"})J"),
     "scheduler.mode"},
    {"malformed lambda", Sgd(R"J({"type": "LambdaLR", "lr_lambda": "epoch * (2 +"})J"),
     "scheduler.lr_lambda: column"},
    {"lambda with a call", Sgd(R"J({"type": "LambdaLR", "lr_lambda": "__import__('os')"})J"),
     "scheduler.lr_lambda"},
    {"long lambda",
     Sgd(R"J({"type": "LambdaLR", "lr_lambda": ")J" + std::string(5000, '1') + R"J("})J"),
     "scheduler.lr_lambda"},
    {"deep lambda",
     Sgd(R"J({"type": "LambdaLR", "lr_lambda": ")J" + std::string(500, '(') + "1" +
         std::string(500, ')') + R"J("})J"),
     "scheduler.lr_lambda"},
    {"lambda not a string", Sgd(R"J({"type": "LambdaLR", "lr_lambda": 0.5})J"),
     "scheduler.lr_lambda"},
    {"bad scale_fn",
     Sgd(R"J({"type": "CyclicLR", "base_lr": 0.1, "max_lr": 1, "scale_fn": "x +"})J"),
     "scheduler.scale_fn"},
    {"nested too deep", Sgd(Nested(8)), "nest"},
    {"deep JSON", std::string(100, '[') + std::string(100, ']'), "nested deeper"},
    {"not JSON", "{optimizer: 1", "not valid JSON"},
    {"plateau inside sequential",
     Sgd(R"J({"type": "SequentialLR", "milestones": [2], "schedulers": [
           {"type": "ReduceLROnPlateau"}, {"type": "StepLR", "step_size": 2}]})J"),
     "scheduler.schedulers[0]"},
    {"unsorted milestones", Sgd(R"J({"type": "SequentialLR", "milestones": [4, 2], "schedulers": [
           {"type": "ConstantLR"}, {"type": "ConstantLR"}, {"type": "ConstantLR"}]})J"),
     "scheduler.milestones"},
    {"ConstantLR factor 0", Sgd(R"J({"type": "ConstantLR", "factor": 0})J"), "scheduler.factor"},
    {"OneCycle steps overflow",
     Sgd(R"J({"type": "OneCycleLR", "max_lr": 0.1, "epochs": 1000000000, "steps_per_epoch": 1000000000})J"),
     "scheduler.epochs"},
    {"resume without initial_lr", Sgd(R"J({"type": "StepLR", "step_size": 2, "last_epoch": 5})J"),
     "optimizer.param_groups[0].initial_lr"},
    {"verbose not bool", Sgd(R"J({"type": "StepLR", "step_size": 2, "verbose": 1})J"),
     "scheduler.verbose"},
};

INSTANTIATE_TEST_SUITE_P(Classes, BadSpecTest, ::testing::ValuesIn(kBad),
                         [](const ::testing::TestParamInfo<Bad>& p) {
                           std::string n;
                           for (const char* c = p.param.what; *c; ++c) n += isalnum(*c) ? *c : '_';
                           return n;
                         });

absl::StatusOr<std::unique_ptr<Schedule>> Make(const std::string& spec) {
  return Schedule::Create(json::parse(spec));
}

TEST(StepInput, RefusesBadMetricsAndEpochs) {
  auto plateau = Make(Sgd(R"J({"type": "ReduceLROnPlateau"})J"));
  ASSERT_TRUE(plateau.ok());
  EXPECT_NE((*plateau)->Step({}).message().find("metric"), std::string::npos);
  EXPECT_NE((*plateau)->Step({NAN, {}}).message().find("metric"), std::string::npos);
  EXPECT_NE((*plateau)->Step({INFINITY, {}}).message().find("metric"), std::string::npos);
  EXPECT_NE((*plateau)->Step({1.0, -1.0}).message().find("epoch"), std::string::npos);
  EXPECT_EQ((*plateau)->last_epoch(), 0);
  EXPECT_TRUE((*plateau)->Step({1.0, {}}).ok());

  auto step = Make(Sgd(R"J({"type": "StepLR", "step_size": 2})J"));
  ASSERT_TRUE(step.ok());
  EXPECT_NE((*step)->Step({0.5, {}}).message().find("metric"), std::string::npos);
  EXPECT_NE((*step)->Step({{}, 1.5}).message().find("epoch"), std::string::npos);
  EXPECT_NE((*step)->Step({{}, NAN}).message().find("epoch"), std::string::npos);
  EXPECT_NE((*step)->Step({{}, 1e300}).message().find("epoch"), std::string::npos);
  EXPECT_EQ((*step)->last_epoch(), 0);

  auto seq = Make(Sgd(R"J({"type": "SequentialLR", "milestones": [2], "schedulers": [
      {"type": "ConstantLR"}, {"type": "ExponentialLR", "gamma": 0.5}]})J"));
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_NE((*seq)->Step({{}, 3.0}).message().find("epoch"), std::string::npos);
}

TEST(StepInput, ExponentialOverflowIsRefusedNotInfinite) {
  auto s = Make(Sgd(R"J({"type": "ExponentialLR", "gamma": 1e10})J"));
  ASSERT_TRUE(s.ok());
  absl::Status st;
  int steps = 0;
  while (steps < 1000 && (st = (*s)->Step({})).ok()) ++steps;
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("non-finite"), std::string::npos) << st;
  EXPECT_TRUE(std::isfinite((*s)->param_groups()[0].lr));
}

// A torch checkpoint restored without the optimizer's param groups gives OneCycleLR groups
// without initial_lr/max_lr/min_lr: each step is refused, naming the key (it read an empty
// optional before; found by fuzz_state, tests/fuzz/regressions/state/).
TEST(Restore, OneCycleWithoutItsGroupKeysRefusesEachStepNamingTheKey) {
  json spec = json::parse(R"({"optimizer": {"type": "Adam", "param_groups": [{"lr": 0.01}]},
      "scheduler": {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 50}})");
  auto fresh = Schedule::Create(spec);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  ASSERT_TRUE((*fresh)->Step({}).ok());
  auto restored = Schedule::Restore(spec, json(), (*fresh)->StateDict());
  ASSERT_TRUE(restored.ok()) << restored.status();
  const double before = (*restored)->param_groups()[0].lr;
  absl::Status s = (*restored)->Step({});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("optimizer.param_groups[0].initial_lr: missing"),
            absl::string_view::npos)
      << s;
  EXPECT_EQ((*restored)->param_groups()[0].lr, before);  // a refused step changes nothing
}

TEST(Clone, LookaheadDoesNotTouchTheOriginal) {
  auto s = Make(Sgd(R"J({"type": "CosineAnnealingLR", "T_max": 10})J"));
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Step({}).ok());
  json before = (*s)->ExportState();
  auto ahead = (*s)->Clone();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ahead->Step({}).ok());
  EXPECT_EQ((*s)->ExportState(), before);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*s)->Step({}).ok());
  EXPECT_EQ((*s)->ExportState(), ahead->ExportState());
  EXPECT_TRUE((*s)->deterministic());
  auto p = Make(Sgd(R"J({"type": "ReduceLROnPlateau"})J"));
  EXPECT_FALSE((*p)->deterministic());
}

TEST(Simulate, MillionStepsWithinTheStepLimit) {
  auto s = Make(Sgd(R"J({"type": "CosineAnnealingLR", "T_max": 1000})J"));
  ASSERT_TRUE(s.ok());
  Trace t;
  ASSERT_TRUE(Simulate(**s, 1'000'000, {}, {}, &t).ok());
  EXPECT_TRUE(t.error.ok());
  EXPECT_EQ(t.rows(), 1'000'000u);
  EXPECT_EQ((*s)->last_epoch(), 1'000'000);
}

TEST(Simulate, RefusesShortInputs) {
  auto s = Make(Sgd(R"J({"type": "ReduceLROnPlateau"})J"));
  Trace t;
  std::vector<double> metrics = {1, 2};
  EXPECT_FALSE(Simulate(**s, 3, metrics, {}, &t).ok());
  EXPECT_FALSE(Simulate(**s, -1, {}, {}, &t).ok());
}

TEST(Optimizer, DefaultsFollowTorch) {
  auto s = Make(R"J({"optimizer": {"type": "Adam", "param_groups": [{}]},
      "scheduler": {"type": "StepLR", "step_size": 1}})J");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->param_groups()[0].lr, 1e-3);
  EXPECT_EQ((*s)->param_groups()[0].reported_momentum(), 0.9);
  auto sgd = Make(R"J({"optimizer": {"type": "SGD", "param_groups": [{}]},
      "scheduler": {"type": "StepLR", "step_size": 1}})J");
  ASSERT_FALSE(sgd.ok());  // torch's SGD requires lr
  EXPECT_NE(sgd.status().message().find("optimizer.param_groups[0].lr"), std::string::npos);
  auto ada =
      Make(R"J({"optimizer": {"type": "Adagrad", "lr": 0.5, "param_groups": [{"params": [0]}]},
      "scheduler": {"type": "StepLR", "step_size": 1}})J");
  ASSERT_TRUE(ada.ok()) << ada.status();
  EXPECT_FALSE((*ada)->has_momentum());
  EXPECT_EQ((*ada)->param_groups()[0].lr, 0.5);
}

}  // namespace
}  // namespace lrsched
