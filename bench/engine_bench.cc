// Copyright lrsched authors.
//
// The engine's cost: one step() for each scheduler type in step_configs.json, and a 1,000,000-
// step CosineAnnealingLR simulate. A counting operator new reports heap allocations per step
// (the target is zero). Compare with bench/torch_step_bench.py on the same configs.
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <new>

#include "benchmark/benchmark.h"
#include "scheduler/schedule.h"
#include "scheduler/trace.h"

namespace {
std::atomic<int64_t> g_allocs{0};
}  // namespace

// Replacing the global allocator is what lets the benchmark count allocations per step.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace lrsched {
namespace {

using nlohmann::json;

void BM_Step(benchmark::State& state, json config) {
  std::optional<double> metric;
  if (config.contains("metric")) metric = config["metric"].get<double>();
  auto s = Schedule::Create(
      json{{"optimizer", config["optimizer"]}, {"scheduler", config["scheduler"]}});
  if (!s.ok()) {
    state.SkipWithError(std::string(s.status().message()).c_str());
    return;
  }
  StepRequest req{metric, std::nullopt};
  int64_t allocs_before = g_allocs.load();
  for (auto _ : state) {
    absl::Status st = (*s)->Step(req);
    if (!st.ok()) {
      state.SkipWithError(std::string(st.message()).c_str());
      break;
    }
    benchmark::DoNotOptimize((*s)->param_groups()[0].lr);
  }
  state.counters["allocs_per_step"] =
      benchmark::Counter(static_cast<double>(g_allocs.load() - allocs_before) /
                         static_cast<double>(state.iterations()));
}

void BM_Simulate1M_CosineAnnealingLR(benchmark::State& state) {
  json spec = json::parse(R"J({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
                              "scheduler": {"type": "CosineAnnealingLR", "T_max": 1000}})J");
  Trace t;
  for (auto _ : state) {
    auto s = Schedule::Create(spec);
    (void)Simulate(**s, 1'000'000, {}, {}, &t);
    benchmark::DoNotOptimize(t.lr.data());
  }
  state.counters["steps_per_s"] =
      benchmark::Counter(1e6 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Simulate1M_CosineAnnealingLR)->Unit(benchmark::kMillisecond);

// timm's types (not in step_configs.json, which torch_step_bench.py also runs through torch).
// t_initial is large so that every step computes the curve rather than the constant lr_min of
// a finished cycle; "noise" steps draw from a freshly seeded torch generator every time.
constexpr const char* kTimmConfigs = R"J([
 {"name": "timm.CosineLRScheduler", "scheduler": {"type": "timm.CosineLRScheduler", "t_initial": 1000000000}},
 {"name": "timm.CosineLRScheduler-cycle_mul", "scheduler": {"type": "timm.CosineLRScheduler", "t_initial": 1000, "cycle_mul": 2.0, "cycle_decay": 0.5, "cycle_limit": 1000}},
 {"name": "timm.CosineLRScheduler-noise", "scheduler": {"type": "timm.CosineLRScheduler", "t_initial": 1000000000, "noise_range_t": 0, "noise_pct": 0.67}},
 {"name": "timm.TanhLRScheduler", "scheduler": {"type": "timm.TanhLRScheduler", "t_initial": 1000000000}},
 {"name": "timm.StepLRScheduler", "scheduler": {"type": "timm.StepLRScheduler", "decay_t": 1000, "decay_rate": 0.99}},
 {"name": "timm.MultiStepLRScheduler", "scheduler": {"type": "timm.MultiStepLRScheduler", "decay_t": [100, 1000, 10000], "decay_rate": 0.5}},
 {"name": "timm.PolyLRScheduler", "scheduler": {"type": "timm.PolyLRScheduler", "t_initial": 1000000000, "power": 2.0, "k_decay": 0.5}},
 {"name": "timm.PlateauLRScheduler", "metric": 0.5, "scheduler": {"type": "timm.PlateauLRScheduler"}},
 {"name": "timm.PlateauLRScheduler-noise-uniform", "metric": 0.5, "scheduler": {"type": "timm.PlateauLRScheduler", "noise_range_t": 0, "noise_type": "uniform"}}
])J";

void Register() {
  std::ifstream in(LRSCHED_BENCH_CONFIGS);
  json configs = json::parse(in);
  for (json c : json::parse(kTimmConfigs)) {
    c["optimizer"] = json::parse(R"J({"type": "SGD", "param_groups": [{"lr": 0.1}]})J");
    configs.push_back(c);
  }
  for (const json& c : configs) {
    benchmark::RegisterBenchmark(("BM_Step/" + c["name"].get<std::string>()).c_str(), BM_Step, c);
  }
}

}  // namespace
}  // namespace lrsched

int main(int argc, char** argv) {
  lrsched::Register();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
