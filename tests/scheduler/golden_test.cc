// Copyright lrsched authors.
//
// Parity with the reference frameworks: every line of every golden file in tests/data (traced by
// torch itself, and by transformers', timm's and Megatron's own scheduler code; see
// shared/golden/README.md) is replayed through the engine; every group's lr and momentum (and
// weight_decay, where the reference drives it) at every
// step must be bit-identical, errors must happen at the same step, and the final state_dict must
// equal the reference's.
#include <cstring>

#include "gtest/gtest.h"
#include "scheduler/schedule.h"
#include "scheduler/trace.h"
#include "tests/scheduler/golden_util.h"

namespace lrsched {
namespace {

using nlohmann::json;
using test_support::GoldenCase;

// Where lrsched deliberately refuses earlier than torch 1.13, with the reason.
const char* KnownDeviation(const std::string& name) {
  if (name == "errors/LinearLR-start-factor") {
    return "start_factor 0 is refused at construction (as torch >= 2.0 does); torch 1.13 "
           "accepts it and divides by zero at the first step";
  }
  return nullptr;
}

uint64_t Bits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

void ExpectRowsBitEqual(const json& want, const std::vector<double>& got, size_t groups,
                        const char* what) {
  ASSERT_EQ(want.size() * groups, got.size()) << what << ": row count";
  for (size_t r = 0; r < want.size(); ++r) {
    ASSERT_EQ(want[r].size(), groups) << what << " row " << r;
    for (size_t g = 0; g < groups; ++g) {
      double w = want[r][g].get<double>(), v = got[r * groups + g];
      EXPECT_EQ(Bits(w), Bits(v)) << what << " step " << r << " group " << g << ": torch "
                                  << json(w).dump() << ", lrsched " << json(v).dump();
    }
  }
}

class GoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenTest, MatchesTorch) {
  const json& c = GetParam().j;
  const json& want = c["expected"];
  json spec{{"optimizer", c["optimizer"]}, {"scheduler", c["scheduler"]}};
  auto s = Schedule::Create(spec);
  int64_t want_err_at = want.value("error_at_step", int64_t{-2});
  if (const char* why = KnownDeviation(c["name"])) {
    EXPECT_FALSE(s.ok()) << why;
    if (!s.ok()) {
      EXPECT_TRUE(absl::IsInvalidArgument(s.status()));
      EXPECT_NE(s.status().message().find("start_factor"), std::string::npos);
    }
    return;
  }
  if (want_err_at == -1) {
    ASSERT_FALSE(s.ok()) << "torch refused: " << want["error"];
    EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
    return;
  }
  ASSERT_TRUE(s.ok()) << s.status();
  std::vector<double> metrics = test_support::Numbers(c, "metrics");
  std::vector<double> epochs = test_support::Numbers(c, "epochs");
  Trace t;
  ASSERT_TRUE(Simulate(**s, c["steps"].get<int64_t>(), metrics, epochs, &t).ok());
  size_t groups = c["optimizer"]["param_groups"].size();
  ExpectRowsBitEqual(want["lr"], t.lr, groups, "lr");
  // weight_decay rows only where the reference drives it (Megatron); never for torch's types.
  EXPECT_EQ(t.has_weight_decay, want.contains("weight_decay"));
  if (want.contains("weight_decay") && t.has_weight_decay) {
    ExpectRowsBitEqual(want["weight_decay"], t.weight_decay, groups, "weight_decay");
  }
  if (want_err_at >= 0) {
    EXPECT_FALSE(t.error.ok()) << "torch refused step " << want_err_at << ": " << want["error"];
    EXPECT_EQ(t.error_at_step, want_err_at) << t.error;
    return;
  }
  EXPECT_TRUE(t.error.ok()) << t.error;
  if (want.contains("momentum")) {
    ASSERT_TRUE(t.has_momentum);
    ExpectRowsBitEqual(want["momentum"], t.momentum, groups, "momentum");
  }
  if (want.contains("state_dict")) {
    json mine = (*s)->StateDict();
    const json& theirs = want["state_dict"];
    for (auto it = theirs.begin(); it != theirs.end(); ++it) {
      ASSERT_TRUE(mine.contains(it.key())) << "missing state_dict key " << it.key();
      EXPECT_EQ(mine[it.key()], it.value()) << "state_dict." << it.key();
    }
    for (auto it = mine.begin(); it != mine.end(); ++it) {
      EXPECT_TRUE(theirs.contains(it.key())) << "extra state_dict key " << it.key();
    }
  }
}

std::vector<GoldenCase> AllCases() { return test_support::AllGolden(); }

INSTANTIATE_TEST_SUITE_P(Torch113, GoldenTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<GoldenCase>& p) {
                           return test_support::CaseTestName(p.param);
                         });

TEST(GoldenFile, HasEveryLine) {
  // The copies in tests/data must be the whole golden files (as many cases as when written).
  EXPECT_GE(test_support::LoadGolden("torch-1.13-traces.jsonl").size(), 35u);
  // beyond-traces.jsonl: transformers', timm's and Megatron's own code (54 cases).
  EXPECT_GE(test_support::LoadGolden("beyond-traces.jsonl").size(), 54u);
}

}  // namespace
}  // namespace lrsched
