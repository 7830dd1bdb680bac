// Copyright lrsched authors.
//
// The record's cost on the stepping path (issue #18): a plain step never allocates, nor does a
// step carrying input that extends the newest change run or, once the bound is reached, reuses
// a dropped run's storage. Counted with a global allocator of this test binary.
#include <atomic>
#include <cstdlib>
#include <new>

#include "gtest/gtest.h"
#include "scheduler/internal/served_record.h"
#include "scheduler/schedule.h"
#include "tests/scheduler/counting_allocator.h"
#include "tests/scheduler/step_requests.h"

namespace lrsched {
namespace {

using nlohmann::json;

// Allocations made by `n` steps of `r` on `s` (every step must succeed).
int64_t AllocationsOf(Schedule& s, int n, const StepRequest& r) {
  bool ok = true;
  const int64_t allocations = test_support::AllocationsDuring([&] {
    for (int i = 0; i < n; ++i) ok = s.Step(r).ok() && ok;
  });
  EXPECT_TRUE(ok);
  return allocations;
}

TEST(HistoryAlloc, PlainStepsDoNotAllocate) {
  auto s = Schedule::Create(
      json{{"optimizer", {{"type", "SGD"}, {"param_groups", {{{"lr", 0.1}, {"momentum", 0.9}}}}}},
           {"scheduler", {{"type", "CosineAnnealingLR"}, {"T_max", 100}}}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(AllocationsOf(**s, 1000, {}), 0);
}

TEST(HistoryAlloc, ChangeRunsAllocateOnlyUntilTheBound) {
  // factor 0.9, patience 0: a new run on nearly every step until eps stops the reductions.
  auto s = Schedule::Create(
      json{{"optimizer", {{"type", "SGD"}, {"param_groups", {{{"lr", 1.0}}}}}},
           {"scheduler", {{"type", "ReduceLROnPlateau"}, {"factor", 0.9}, {"patience", 0}}}});
  ASSERT_TRUE(s.ok()) << s.status();
  const StepRequest m = test_support::Metric(1.0);
  // Past the bound: the ring of runs is full and reused.
  ASSERT_GT(AllocationsOf(**s, 2 * scheduler_internal::kMaxRecordedChanges, m), 0);
  EXPECT_EQ(AllocationsOf(**s, 50, m), 0) << "new runs reuse dropped runs' storage";
  EXPECT_EQ(AllocationsOf(**s, 1000, m), 0) << "reductions stopped: the newest run extends";
}

}  // namespace
}  // namespace lrsched
