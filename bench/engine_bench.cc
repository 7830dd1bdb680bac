// Copyright lrsched authors.
//
// The engine's cost: one step() for each scheduler type in step_configs.json (torch's) and
// step_configs_<family>.json (issue #17's families; their lengths are 1e12 steps so that every
// iteration measures the decay's formula, not the constant tail), and 1,000,000-step simulates
// of CosineAnnealingLR and of transformers' cosine with warmup. A counting operator new reports
// heap allocations per step (the target is zero). Compare with bench/torch_step_bench.py on the
// same configs.
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
  StepRequest req{metric, std::nullopt, std::nullopt};
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

// A 1,000,000-step trace of `spec_text` (construction included), in ms.
void BM_Simulate1M(benchmark::State& state, const char* spec_text) {
  json spec = json::parse(spec_text);
  Trace t;
  for (auto _ : state) {
    auto s = Schedule::Create(spec);
    (void)Simulate(**s, 1'000'000, {}, {}, &t);
    benchmark::DoNotOptimize(t.lr.data());
  }
  state.counters["steps_per_s"] =
      benchmark::Counter(1e6 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_Simulate1M, CosineAnnealingLR,
                  R"J({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
                       "scheduler": {"type": "CosineAnnealingLR", "T_max": 1000}})J")
    ->Unit(benchmark::kMillisecond);
// transformers' cosine with warmup (a LambdaLR with transformers' lambda), beside
// CosineAnnealingLR's trace.
BENCHMARK_CAPTURE(BM_Simulate1M, TransformersCosineWarmup,
                  R"J({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
                       "scheduler": {"type": "transformers.get_scheduler", "name": "cosine",
                                     "num_warmup_steps": 10000, "num_training_steps": 1000000}})J")
    ->Unit(benchmark::kMillisecond);

// megatron.OptimizerParamScheduler (issue #17), kept here rather than in step_configs.json,
// which bench/torch_step_bench.py builds torch schedulers from. Decay spans 1e12 steps, so that
// every benchmarked step takes the decay formula (past it, a step just writes min_lr).
json MegatronConfigs() {
  json out = json::array();
  auto add = [&out](const char* name, json sched, size_t groups) {
    json base{{"type", "megatron.OptimizerParamScheduler"},
              {"init_lr", 0.0},
              {"max_lr", 0.001},
              {"min_lr", 1e-5},
              {"lr_warmup_steps", 10},
              {"lr_decay_steps", 1'000'000'000'000},
              {"start_wd", 0.01},
              {"end_wd", 0.1},
              {"wd_incr_steps", 1'000'000'000'000},
              {"wd_incr_style", "cosine"}};
    base.update(sched);
    json group{{"lr", 0.0}, {"betas", {0.9, 0.95}}, {"weight_decay", 0.1}};
    out.push_back({{"name", name},
                   {"optimizer",
                    {{"type", "AdamW"}, {"param_groups", json(std::vector<json>(groups, group))}}},
                   {"scheduler", base}});
  };
  add("megatron.cosine", {{"lr_decay_style", "cosine"}}, 1);
  add("megatron.cosine-4-groups", {{"lr_decay_style", "cosine"}}, 4);
  add("megatron.inverse-square-root",
      {{"lr_decay_style", "inverse-square-root"}, {"wd_incr_style", "linear"}}, 1);
  add("megatron.WSD-minus_sqrt",
      {{"lr_decay_style", "WSD"},
       {"wsd_decay_steps", 999'999'999'999},
       {"lr_wsd_decay_style", "minus_sqrt"}},
      1);
  add("megatron.WSD-exponential-increment-512",
      {{"lr_decay_style", "WSD"},
       {"wsd_decay_steps", 999'999'999'999},
       {"lr_wsd_decay_style", "exponential"},
       {"increment", 512}},
      1);
  return out;
}

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
  // step_configs.json holds torch's types (torch_step_bench.py runs the same file); the other
  // families' configs live beside it, for lrsched alone.
  for (const char* file : {"step_configs.json", "step_configs_transformers.json"}) {
    std::ifstream in(std::string(LRSCHED_BENCH_DIR) + "/" + file);
    json configs = json::parse(in);
    for (const json& c : configs) {
      benchmark::RegisterBenchmark(("BM_Step/" + c["name"].get<std::string>()).c_str(), BM_Step, c);
    }
  }
  for (json c : json::parse(kTimmConfigs)) {
    c["optimizer"] = json::parse(R"J({"type": "SGD", "param_groups": [{"lr": 0.1}]})J");
    benchmark::RegisterBenchmark(("BM_Step/" + c["name"].get<std::string>()).c_str(), BM_Step, c);
  }
  for (const json& c : MegatronConfigs()) {
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
