// Copyright lrsched authors.
//
// Schedule::step_cost(): the estimate servers bound a call's work by. It must grow with what
// a step really does (param groups, lambda size, chained children, copied milestones), be
// the same for a schedule however it was built (Create, Clone, Restore, ImportState), and put
// a chain of long lambdas orders of magnitude above a plain schedule, as their step times are.
#include <string>

#include "gtest/gtest.h"
#include "scheduler/schedule.h"

namespace lrsched {
namespace {

using nlohmann::json;

std::string Groups(int n) {
  json g = json::array();
  for (int i = 0; i < n; ++i) g.push_back({{"lr", 0.1}, {"momentum", 0.9}});
  return g.dump();
}

int64_t Cost(const json& scheduler, int groups = 1) {
  json spec = {{"optimizer", {{"type", "SGD"}, {"param_groups", json::parse(Groups(groups))}}},
               {"scheduler", scheduler}};
  auto s = Schedule::Create(spec);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? (*s)->step_cost() : -1;
}

const json kCosine = {{"type", "CosineAnnealingLR"}, {"T_max", 100}};

// "0.99999+0*(epoch+epoch%7+...)": about `chars` characters, ~1 instruction per 2 of them.
std::string LongLambda(size_t chars, const std::string& var = "epoch") {
  std::string e = "0.99999+0*(" + var;
  while (e.size() + var.size() + 4 < chars) e += "+" + var + "%7";
  return e + ")";
}

json Chain(int n, const json& child) {
  json subs = json::array();
  for (int i = 0; i < n; ++i) subs.push_back(child);
  return {{"type", "ChainedScheduler"}, {"schedulers", subs}};
}

TEST(StepCostTest, PositiveAndLinearInGroups) {
  const int64_t one = Cost(kCosine, 1);
  const int64_t four = Cost(kCosine, 4);
  const int64_t sixteen = Cost(kCosine, 16);
  EXPECT_GE(one, 1);
  EXPECT_GT(four, one);
  // The same increment per group.
  EXPECT_EQ(sixteen - four, 4 * (four - one));
}

TEST(StepCostTest, GrowsWithTheLambda) {
  const int64_t short_lambda = Cost({{"type", "LambdaLR"}, {"lr_lambda", "0.95 ** epoch"}});
  const int64_t long_lambda = Cost({{"type", "LambdaLR"}, {"lr_lambda", LongLambda(1000)}});
  EXPECT_GT(short_lambda, Cost({{"type", "StepLR"}, {"step_size", 2}}));
  EXPECT_GT(long_lambda, 20 * short_lambda);
  // One lambda per group, each evaluated on every step.
  const int64_t per_group = Cost({{"type", "LambdaLR"}, {"lr_lambda", LongLambda(1000)}}, 4);
  EXPECT_GT(per_group, 3 * long_lambda);
  // CyclicLR's scale_fn counts too.
  json cyclic = {{"type", "CyclicLR"}, {"base_lr", 0.01}, {"max_lr", 0.1}};
  const int64_t plain = Cost(cyclic);
  cyclic["scale_fn"] = LongLambda(1000, "x");
  EXPECT_GT(Cost(cyclic), plain + 1000);
}

TEST(StepCostTest, ChainsAddSequencesTakeTheLargest) {
  const json costly = {{"type", "MultiplicativeLR"}, {"lr_lambda", LongLambda(1000)}};
  const int64_t child = Cost(costly);
  // A chain steps every child (and backs each one up first).
  const int64_t chain = Cost(Chain(60, costly));
  EXPECT_GE(chain, 60 * child);
  EXPECT_LT(chain, 60 * 2 * child);
  // A sequence steps one child at a time.
  json seq = {{"type", "SequentialLR"}, {"schedulers", {kCosine, costly}}, {"milestones", {5}}};
  const int64_t sequence = Cost(seq);
  EXPECT_GE(sequence, child);
  EXPECT_LE(sequence, child + Cost(kCosine));
  // A chain copies every milestone of its MultiStepLR children on each step.
  json few = {{"type", "MultiStepLR"}, {"milestones", {10}}};
  json many = {{"type", "MultiStepLR"}, {"milestones", json::array()}};
  for (int i = 0; i < 4096; ++i) many["milestones"].push_back(1000 + i);
  EXPECT_GT(Cost(Chain(2, many)), Cost(Chain(2, few)) + 2 * 4096);
}

// The spec: a step costs ~1000 times one of a plain cosine schedule, and so must its
// estimate, or --max_call_cost could not tell them apart.
TEST(StepCostTest, CostlySpecFarAboveAPlainOne) {
  const int64_t costly =
      Cost(Chain(60, {{"type", "MultiplicativeLR"}, {"lr_lambda", LongLambda(1000)}}));
  const int64_t plain = Cost(kCosine, 4);
  EXPECT_GT(costly, 500 * plain);
  // 1e6 steps of the plain one stay well inside the servers' default of 1e9 units; 1e6 steps
  // of the costly one do not.
  EXPECT_LT(plain * 1'000'000, int64_t{1'000'000'000} / 2);
  EXPECT_GT(costly * 1'000'000, int64_t{1'000'000'000} * 100);
}

TEST(StepCostTest, SameHoweverTheScheduleWasBuilt) {
  json spec = {{"optimizer", {{"type", "SGD"}, {"param_groups", json::parse(Groups(3))}}},
               {"scheduler", Chain(3, {{"type", "LambdaLR"}, {"lr_lambda", LongLambda(200)}})}};
  auto s = Schedule::Create(spec);
  ASSERT_TRUE(s.ok()) << s.status();
  const int64_t cost = (*s)->step_cost();
  ASSERT_TRUE((*s)->Step({}).ok());
  EXPECT_EQ((*s)->step_cost(), cost);
  EXPECT_EQ((*s)->Clone()->step_cost(), cost);
  auto imported = Schedule::ImportState((*s)->ExportState());
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ((*imported)->step_cost(), cost);
  auto restored = Schedule::Restore(spec, (*s)->ParamGroupsJson(), (*s)->StateDict());
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->step_cost(), cost);
}

}  // namespace
}  // namespace lrsched
