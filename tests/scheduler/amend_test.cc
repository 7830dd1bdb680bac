// Copyright lrsched authors.
//
// Amendments (scheduler/amendment.h) against real torch: every case of
// tests/data/amend-torch.jsonl (scripts/amend_torch_reference.py) replayed bit for bit, also
// through an export/import or a Clone after every step; refusals that change nothing; a Step
// whose amendment fails changing nothing; kind names.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "gtest/gtest.h"
#include "scheduler/schedule.h"
#include "tests/scheduler/golden_util.h"

namespace lrsched {
namespace {

using nlohmann::json;
using test_support::GoldenCase;

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

json Reparse(const json& j) {
  auto r = ParseJson(j.dump(), "test");
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : json();
}

Amendment MakeAmendment(const json& op) {
  Amendment a;
  auto kind = ParseAmendmentKind(op["kind"].get<std::string>());
  EXPECT_TRUE(kind.ok()) << kind.status();
  a.kind = *kind;
  a.at_epoch = op["at_epoch"].get<int64_t>();
  a.args = op["args"];
  a.meta = json{{"reason", "test"}, {"revision", 3}};
  return a;
}

struct Rows {
  std::vector<std::vector<double>> lr, momentum;
};

void Record(const Schedule& s, Rows* rows) {
  std::vector<double> lr, m;
  for (const ParamGroup& g : s.param_groups()) {
    lr.push_back(g.lr);
    if (auto v = g.reported_momentum()) m.push_back(*v);
  }
  rows->lr.push_back(lr);
  rows->momentum.push_back(m);
}

// Runs a case's script; `between` may replace the schedule after every step (import, clone).
using Hook = std::function<void(std::unique_ptr<Schedule>&)>;
std::unique_ptr<Schedule> RunScript(const json& c, const Hook& between, Rows* rows) {
  auto created = Schedule::Create(c["spec"]);
  EXPECT_TRUE(created.ok()) << created.status();
  if (!created.ok()) return nullptr;
  std::unique_ptr<Schedule> s = *std::move(created);
  for (const json& op : c["script"]) {
    if (op["op"] == "amend") {
      auto r = s->Amend(MakeAmendment(op));
      EXPECT_TRUE(r.ok()) << r.status() << " at " << op.dump();
      continue;
    }
    std::vector<std::optional<double>> steps;
    if (op.contains("metrics")) {
      for (const json& m : op["metrics"]) steps.push_back(m.get<double>());
    } else {
      steps.assign(op["n"].get<size_t>(), std::nullopt);
    }
    for (const auto& m : steps) {
      Record(*s, rows);
      StepRequest req;
      req.metric = m;
      absl::Status st = s->Step(req);
      EXPECT_TRUE(st.ok()) << st << " at epoch " << s->last_epoch();
      if (between) between(s);
    }
  }
  Record(*s, rows);
  return s;
}

void ExpectRows(const std::vector<std::vector<double>>& got, const json& want, const char* what,
                const std::string& name) {
  ASSERT_EQ(got.size(), want.size()) << name << " " << what;
  for (size_t r = 0; r < got.size(); ++r) {
    ASSERT_EQ(got[r].size(), want[r].size()) << name << " " << what << " row " << r;
    for (size_t g = 0; g < got[r].size(); ++g) {
      double w = want[r][g].get<double>();
      ASSERT_TRUE(SameBits(got[r][g], w)) << name << " " << what << " row " << r << " group " << g
                                          << ": " << got[r][g] << " vs torch " << w;
    }
  }
}

class AmendTorchTest : public testing::TestWithParam<GoldenCase> {};

void CheckCase(const GoldenCase& gc, const Hook& between) {
  const json& c = gc.j;
  Rows rows;
  std::unique_ptr<Schedule> s = RunScript(c, between, &rows);
  ASSERT_NE(s, nullptr);
  ExpectRows(rows.lr, c["expected"]["lr"], "lr", gc.name());
  if (!c["expected"]["momentum"].is_null()) {
    ExpectRows(rows.momentum, c["expected"]["momentum"], "momentum", gc.name());
  }
  const json& jumps = c["expected"]["jumps"];
  ASSERT_EQ(s->amendments().size(), jumps.size());
  for (size_t i = 0; i < jumps.size(); ++i) {
    const Amendment& a = s->amendments()[i];
    EXPECT_EQ(a.meta, (json{{"reason", "test"}, {"revision", 3}}));
    ASSERT_EQ(a.applied, !jumps[i].is_null()) << gc.name() << " amendment " << i;
    if (!a.applied) continue;
    ASSERT_EQ(a.jump.size(), jumps[i].size());
    for (size_t g = 0; g < a.jump.size(); ++g) {
      EXPECT_TRUE(SameBits(a.jump[g], jumps[i][g].get<double>()))
          << gc.name() << " amendment " << i << " group " << g << ": " << a.jump[g] << " vs "
          << jumps[i][g];
    }
  }
}

TEST_P(AmendTorchTest, MatchesTorch) { CheckCase(GetParam(), nullptr); }

// ExportState after every step, as text, imported: the run goes on bit-exactly (applied and
// pending amendments, the piece in force, the scale and its unscaled groups all carried).
TEST_P(AmendTorchTest, ExportImportEveryStepContinuesExactly) {
  CheckCase(GetParam(), [](std::unique_ptr<Schedule>& s) {
    auto in = Schedule::ImportState(Reparse(s->ExportState()));
    ASSERT_TRUE(in.ok()) << in.status();
    s = *std::move(in);
  });
}

// What servers write on every step (AppendStateMembers) holds the same, and imports too.
TEST_P(AmendTorchTest, AppendedStateImportsAndMatchesExport) {
  CheckCase(GetParam(), [](std::unique_ptr<Schedule>& s) {
    std::string text = "{";
    s->AppendStateMembers(&text);
    text += "}";
    auto parsed = ParseJson(text, "state");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    ASSERT_EQ(*parsed, Reparse(s->ExportState(false)));
    (*parsed)["spec"] = s->spec();
    auto in = Schedule::ImportState(*parsed);
    ASSERT_TRUE(in.ok()) << in.status();
    s = *std::move(in);
  });
}

TEST_P(AmendTorchTest, CloneEveryStepContinuesExactly) {
  CheckCase(GetParam(), [](std::unique_ptr<Schedule>& s) {
    std::unique_ptr<Schedule> c = s->Clone();
    s->Step({}).IgnoreError();  // the original moves on (or is refused); the clone must not
    s = std::move(c);
  });
}

std::vector<GoldenCase> Cases() { return test_support::LoadGolden("amend-torch.jsonl"); }

INSTANTIATE_TEST_SUITE_P(Torch, AmendTorchTest, testing::ValuesIn(Cases()),
                         [](const testing::TestParamInfo<GoldenCase>& i) {
                           return test_support::SafeName(i.param.name());
                         });

TEST(AmendTorchData, HasTheCases) { EXPECT_GE(Cases().size(), 9u); }

}  // namespace
}  // namespace lrsched
