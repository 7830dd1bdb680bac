// Copyright lrsched authors.
//
// The durable record every acknowledged Step writes (server/registry/session.h EncodeRecord), for
// each scheduler type in step_configs.json, and DecodeRecord (start-up reads one per session).
// Encoding sits on Step's critical path: with synchronous=NORMAL it costs about as much CPU
// as the SQLite write itself (bench/HISTORY.md, "Service: the record each Step writes").
//
//   record_bench --benchmark_filter=Encode
#include <fstream>
#include <iostream>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "scheduler/schedule.h"
#include "server/registry/session.h"
#include "server/store/crc32c.h"

namespace lrsched {
namespace {

using nlohmann::json;

std::unique_ptr<Schedule> Make(benchmark::State& state, const json& config) {
  auto s = Schedule::Create(
      json{{"optimizer", config["optimizer"]}, {"scheduler", config["scheduler"]}});
  if (!s.ok()) {
    state.SkipWithError(std::string(s.status().message()).c_str());
    return nullptr;
  }
  std::optional<double> metric;
  if (config.contains("metric")) metric = config["metric"].get<double>();
  for (int i = 0; i < 3; ++i) (void)(*s)->Step(StepRequest{metric, std::nullopt, std::nullopt});
  return *std::move(s);
}

SessionMeta Meta() {
  SessionMeta m;
  m.name = "bench/runs/resnet50-0001";
  m.labels = {{"team", "vision"}, {"job", "resnet50"}};
  m.revision = 4;
  m.create_time = absl::Now();
  m.update_time = m.create_time + absl::Seconds(3);
  return m;
}

void BM_EncodeRecord(benchmark::State& state, json config) {
  std::unique_ptr<Schedule> s = Make(state, config);
  if (s == nullptr) return;
  SessionMeta meta = Meta();
  size_t bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<std::string> r = EncodeRecord(meta, *s);
    bytes = r->size();
    benchmark::DoNotOptimize(r->data());
  }
  state.counters["record_bytes"] = static_cast<double>(bytes);
}

// The checksum's share of EncodeRecord (record_frame.h): CRC32C over the same record's bytes,
// the work the frame adds to every step (and to every record read).
void BM_RecordChecksum(benchmark::State& state, json config) {
  std::unique_ptr<Schedule> s = Make(state, config);
  if (s == nullptr) return;
  const std::string record = *EncodeRecord(Meta(), *s);
  for (auto _ : state) benchmark::DoNotOptimize(crc32c::Value(record));
  state.counters["record_bytes"] = static_cast<double>(record.size());
}

void BM_DecodeRecord(benchmark::State& state, json config) {
  std::unique_ptr<Schedule> s = Make(state, config);
  if (s == nullptr) return;
  std::string record = *EncodeRecord(Meta(), *s);
  for (auto _ : state) {
    absl::StatusOr<DecodedRecord> d = DecodeRecord(record);
    if (!d.ok()) {
      state.SkipWithError(std::string(d.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(d->schedule.get());
  }
}

}  // namespace
}  // namespace lrsched

int main(int argc, char** argv) {
  std::ifstream in(LRSCHED_BENCH_CONFIGS);
  auto configs = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!configs.is_array()) {
    std::cerr << "cannot read " << LRSCHED_BENCH_CONFIGS << "\n";
    return 1;
  }
  for (const auto& c : configs) {
    std::string name = c["name"].get<std::string>();
    benchmark::RegisterBenchmark(("BM_EncodeRecord/" + name).c_str(), lrsched::BM_EncodeRecord, c);
    benchmark::RegisterBenchmark(("BM_RecordChecksum/" + name).c_str(), lrsched::BM_RecordChecksum,
                                 c);
    benchmark::RegisterBenchmark(("BM_DecodeRecord/" + name).c_str(), lrsched::BM_DecodeRecord, c);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
