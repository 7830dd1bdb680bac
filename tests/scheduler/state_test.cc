// Copyright lrsched authors.
//
// State round trips: a schedule exported at step k and imported (lrsched's own format, and
// torch's state_dict + param_groups as a checkpoint holds them) continues bit-identically to
// the uninterrupted run, for every golden case and several k. Also: torch's own state_dict
// from the golden files imports and continues, and a refused step changes nothing.
#include <algorithm>
#include <set>

#include "gtest/gtest.h"
#include "scheduler/schedule.h"
#include "scheduler/trace.h"
#include "tests/scheduler/golden_util.h"

namespace lrsched {
namespace {

using nlohmann::json;
using test_support::GoldenCase;

struct Recorded {
  std::vector<double> lr, momentum, weight_decay;
  json state_dict;
};

// Steps `s` over steps [from, to) of case `c`, appending the trace.
void Continue(Schedule& s, const json& c, int64_t from, int64_t to, Recorded* run) {
  std::vector<double> metrics = test_support::Numbers(c, "metrics");
  std::vector<double> epochs = test_support::Numbers(c, "epochs");
  auto tail = [from](const std::vector<double>& v) {
    return v.empty() ? std::vector<double>{} : std::vector<double>(v.begin() + from, v.end());
  };
  Trace t;
  ASSERT_TRUE(Simulate(s, to - from, tail(metrics), tail(epochs), &t).ok());
  ASSERT_TRUE(t.error.ok()) << t.error;
  run->lr.insert(run->lr.end(), t.lr.begin(), t.lr.end());
  run->momentum.insert(run->momentum.end(), t.momentum.begin(), t.momentum.end());
  run->weight_decay.insert(run->weight_decay.end(), t.weight_decay.begin(), t.weight_decay.end());
  run->state_dict = s.StateDict();
}

json Spec(const json& c) {
  return json{{"optimizer", c["optimizer"]}, {"scheduler", c["scheduler"]}};
}

// Text round trip, as storage and the network carry it.
json Reparse(const json& j) {
  auto r = ParseJson(j.dump(), "test");
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : json();
}

// timm's schedulers keep no t in their state_dict: timm's train.py resumes with
// lr_scheduler.step(start_epoch) (step_update(start_epoch * updates) on updates), which sets it.
// Plateau's state_dict (best, last_epoch) also loses the patience and cooldown counters and the
// lr its noise will restore, in timm too: only lrsched's own export continues it exactly.
enum class TorchResume { kAsIs, kPassT, kLossy };
TorchResume HowTorchCheckpointResumes(const json& c) {
  const std::string type = c["scheduler"].value("type", "");
  if (type == "timm.PlateauLRScheduler") return TorchResume::kLossy;
  if (type.rfind("timm.", 0) == 0) return TorchResume::kPassT;
  return TorchResume::kAsIs;
}

// What timm's trainer does after loading a checkpoint taken after `t` calls.
void ResumeAt(Schedule& s, const json& c, int64_t t) {
  if (HowTorchCheckpointResumes(c) != TorchResume::kPassT) return;
  StepRequest r;
  r.epoch = static_cast<double>(t);
  ASSERT_TRUE(s.Step(r).ok());
}

bool Traceable(const json& c) {
  const json& e = c["expected"];
  return !e.contains("error_at_step");
}

class StateTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(StateTest, ExportImportContinuesBitExactly) {
  const json& c = GetParam().j;
  if (!Traceable(c)) GTEST_SKIP() << "torch refuses this case; nothing to resume";
  const int64_t steps = c["steps"].get<int64_t>();
  auto whole = Schedule::Create(Spec(c));
  ASSERT_TRUE(whole.ok()) << whole.status();
  Recorded uninterrupted;
  Continue(**whole, c, 0, steps, &uninterrupted);

  std::set<int64_t> ks = {0, 1, steps / 3, steps / 2, steps - 1};
  for (int64_t k : ks) {
    if (k < 0 || k >= steps) continue;
    SCOPED_TRACE("k=" + std::to_string(k));
    auto first = Schedule::Create(Spec(c));
    ASSERT_TRUE(first.ok());
    Recorded native, torch;
    Continue(**first, c, 0, k, &native);
    torch = native;

    // lrsched's own format.
    auto imported = Schedule::ImportState(Reparse((*first)->ExportState()));
    ASSERT_TRUE(imported.ok()) << imported.status();
    EXPECT_EQ((*imported)->last_epoch(), (*first)->last_epoch());
    Continue(**imported, c, k, steps, &native);
    EXPECT_EQ(native.lr, uninterrupted.lr);
    EXPECT_EQ(native.momentum, uninterrupted.momentum);
    EXPECT_EQ(native.weight_decay, uninterrupted.weight_decay);
    EXPECT_EQ(native.state_dict, uninterrupted.state_dict);

    // A torch checkpoint: the optimizer's param_groups and the scheduler's state_dict.
    if (HowTorchCheckpointResumes(c) == TorchResume::kLossy) continue;
    json spec = Spec(c);
    spec["optimizer"]["param_groups"] = Reparse((*first)->ParamGroupsJson());
    auto restored = Schedule::Restore(spec, nullptr, Reparse((*first)->StateDict()));
    ASSERT_TRUE(restored.ok()) << restored.status();
    ResumeAt(**restored, c, k);
    Continue(**restored, c, k, steps, &torch);
    EXPECT_EQ(torch.lr, uninterrupted.lr);
    EXPECT_EQ(torch.momentum, uninterrupted.momentum);
    EXPECT_EQ(torch.weight_decay, uninterrupted.weight_decay);
  }
}

TEST_P(StateTest, ImportsTorchsOwnStateDict) {
  const json& c = GetParam().j;
  if (!Traceable(c) || !c["expected"].contains("state_dict")) GTEST_SKIP();
  if (c.contains("metrics") || c.contains("epochs")) GTEST_SKIP() << "needs step inputs";
  const int64_t steps = c["steps"].get<int64_t>();
  auto ours = Schedule::Create(Spec(c));
  ASSERT_TRUE(ours.ok());
  Recorded ran;
  Continue(**ours, c, 0, steps, &ran);
  // torch's state_dict as the golden file recorded it; the param groups as torch's optimizer
  // holds them (their lr equals torch's, which the golden test checks).
  auto restored =
      Schedule::Restore(Spec(c), (*ours)->ParamGroupsJson(), c["expected"]["state_dict"]);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->StateDict(), c["expected"]["state_dict"]);
  ResumeAt(**restored, c, steps);
  for (int i = 0; i < 10; ++i) {
    absl::Status a = (*ours)->Step({}), b = (*restored)->Step({});
    ASSERT_EQ(a.ok(), b.ok());
    if (!a.ok()) break;
    for (size_t g = 0; g < (*ours)->param_groups().size(); ++g) {
      EXPECT_EQ((*ours)->param_groups()[g], (*restored)->param_groups()[g]) << "step " << i;
    }
  }
}

// The text a server stores on every step (Schedule::AppendStateMembers, written without a tree)
// holds exactly ExportState()'s values, at several points of every case.
TEST_P(StateTest, StateTextParsesToTheExportedTree) {
  const json& c = GetParam().j;
  if (!Traceable(c)) GTEST_SKIP() << "torch refuses this case";
  const int64_t steps = c["steps"].get<int64_t>();
  for (int64_t k : std::set<int64_t>{0, 1, steps / 2, steps}) {
    if (k > steps) continue;
    SCOPED_TRACE("k=" + std::to_string(k));
    auto s = Schedule::Create(Spec(c));
    ASSERT_TRUE(s.ok()) << s.status();
    Recorded ran;
    if (k > 0) Continue(**s, c, 0, k, &ran);
    std::string text = "{";
    (*s)->AppendStateMembers(&text);
    text += "}";
    auto parsed = ParseJson(text, "state text");
    ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << text;
    EXPECT_EQ(*parsed, (*s)->ExportState(/*include_spec=*/false)) << text;
    // The tree compares numbers by value; the float/integer kind matters to torch too.
    EXPECT_EQ((*parsed)["state_dict"].dump(), (*s)->StateDict().dump());
  }
}

std::vector<GoldenCase> AllCases() { return test_support::AllGolden(); }

INSTANTIATE_TEST_SUITE_P(Golden, StateTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<GoldenCase>& p) {
                           return test_support::CaseTestName(p.param);
                         });

TEST(StateTest, RefusedStepChangesNothing) {
  json spec = json::parse(R"J({"optimizer": {"type": "Adam", "param_groups": [{"lr": 0.01}]},
      "scheduler": {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 3}})J");
  auto s = Schedule::Create(spec);
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*s)->Step({}).ok());
  json before = (*s)->ExportState();
  absl::Status st = (*s)->Step({});
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_NE(st.message().find("total steps"), std::string::npos) << st;
  EXPECT_EQ((*s)->ExportState(), before);
}

TEST(StateTest, RefusedLambdaStepChangesNothing) {
  json spec =
      json::parse(R"J({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}, {"lr": 1}]},
      "scheduler": {"type": "LambdaLR", "lr_lambda": ["1", "1 / (epoch - 2)"]}})J");
  auto s = Schedule::Create(spec);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE((*s)->Step({}).ok());
  json before = (*s)->ExportState();
  absl::Status st = (*s)->Step({});
  EXPECT_NE(st.message().find("ZeroDivisionError"), std::string::npos) << st;
  EXPECT_EQ((*s)->ExportState(), before);
  EXPECT_EQ((*s)->last_epoch(), 1);
}

TEST(StateTest, ImportRefusesMismatchedOrBrokenState) {
  json spec = json::parse(R"J({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
      "scheduler": {"type": "StepLR", "step_size": 3}})J");
  auto s = Schedule::Create(spec);
  ASSERT_TRUE(s.ok());
  json good = (*s)->ExportState();
  auto expect_refused = [](json state, const std::string& needle) {
    auto r = Schedule::ImportState(state);
    ASSERT_FALSE(r.ok()) << state.dump();
    EXPECT_TRUE(absl::IsInvalidArgument(r.status()));
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status();
  };
  json bad = good;
  bad["version"] = 99;
  expect_refused(bad, "version");
  bad = good;
  bad["state_dict"]["step_size"] = 4;
  expect_refused(bad, "state_dict.step_size");
  bad = good;
  bad["state_dict"]["T_max"] = 4;
  expect_refused(bad, "state_dict.T_max");
  bad = good;
  bad["state_dict"]["last_epoch"] = -5;
  expect_refused(bad, "state_dict.last_epoch");
  bad = good;
  bad["param_groups"][0]["lr"] = "inf";
  expect_refused(bad, "param_groups[0].lr");
  bad = good;
  bad["state_dict"]["base_lrs"] = json::array({0.1, 0.2});
  expect_refused(bad, "state_dict.base_lrs");
  bad = good;
  bad.erase("spec");
  expect_refused(bad, "state.spec");
}

}  // namespace
}  // namespace lrsched
