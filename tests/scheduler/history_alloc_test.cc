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

namespace {
std::atomic<bool> g_count_allocations{false};
std::atomic<int64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (g_count_allocations.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) std::abort();
  return p;
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace lrsched {
namespace {

using nlohmann::json;

// Allocations made by `n` steps of `r` on `s` (every step must succeed).
int64_t AllocationsOf(Schedule& s, int n, const StepRequest& r) {
  g_allocations = 0;
  g_count_allocations = true;
  bool ok = true;
  for (int i = 0; i < n; ++i) ok = s.Step(r).ok() && ok;
  g_count_allocations = false;
  EXPECT_TRUE(ok);
  return g_allocations.load();
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
  const StepRequest m{.metric = 1.0};
  // Past the bound: the ring of runs is full and reused.
  ASSERT_GT(AllocationsOf(**s, 2 * scheduler_internal::kMaxRecordedChanges, m), 0);
  EXPECT_EQ(AllocationsOf(**s, 50, m), 0) << "new runs reuse dropped runs' storage";
  EXPECT_EQ(AllocationsOf(**s, 1000, m), 0) << "reductions stopped: the newest run extends";
}

}  // namespace
}  // namespace lrsched
