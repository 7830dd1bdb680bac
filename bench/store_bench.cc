// Copyright lrsched authors.
//
// SqliteStore group commit: commits/s with 1, 8, 32 and 64 concurrent committers, under
// synchronous=NORMAL and FULL. Every committer puts a 256-byte value under its own key, so no
// commit waits on another's compare-and-swap; the counters show the average batch size
// (commits per transaction), i.e. how many commits share one fsync.
//
// The database lives in a fresh directory under $LRSCHED_BENCH_DIR (default $TMPDIR or /tmp):
// point it at the disk you care about, since FULL is bounded by that disk's fsync latency.
//
//   store_bench --benchmark_counters_tabular=true
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "server/store/sqlite/sqlite_store.h"

namespace lrsched {
namespace {

std::string BenchRoot() {
  for (const char* var : {"LRSCHED_BENCH_DIR", "TMPDIR"}) {
    if (const char* v = getenv(var); v != nullptr && *v != '\0') return v;
  }
  return "/tmp";
}

// Shared by the benchmark's threads: thread 0 sets it up before the timed loop and tears it
// down after; Google Benchmark puts a barrier at both ends of the loop.
std::unique_ptr<SqliteStore> g_store;
std::string g_dir;

void BM_GroupCommit(benchmark::State& state) {
  if (state.thread_index() == 0) {
    std::string templ = BenchRoot() + "/store_bench.XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) {
      state.SkipWithError("mkdtemp failed");
      return;
    }
    g_dir = templ;
    SqliteStore::Options o;
    o.dir = g_dir;
    o.synchronous = state.range(0) != 0 ? SqliteStore::Options::Synchronous::kFull
                                        : SqliteStore::Options::Synchronous::kNormal;
    absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(o);
    if (!s.ok()) {
      state.SkipWithError(s.status().ToString().c_str());
      return;
    }
    g_store = *std::move(s);
  }
  Mutation m;
  m.name = absl::StrCat("bench-", state.thread_index());
  m.value = std::string(256, 'v');
  for (auto _ : state) {
    if (g_store == nullptr) {  // thread 0 failed to open it
      state.SkipWithError("no store");
      break;
    }
    absl::StatusOr<int64_t> r = g_store->Commit(m);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0 && g_store != nullptr) {
    // Counters are summed over threads: only thread 0 reports these.
    Store::Stats st = g_store->stats();
    state.counters["commits"] = static_cast<double>(st.commits);
    state.counters["txns"] = static_cast<double>(st.transactions);
    state.counters["avg_batch"] =
        st.transactions > 0 ? static_cast<double>(st.commits) / st.transactions : 0;
    g_store.reset();
    std::error_code ec;
    std::filesystem::remove_all(g_dir, ec);
  }
}
BENCHMARK(BM_GroupCommit)
    ->ArgName("full")
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(8)
    ->Threads(32)
    ->Threads(64)
    ->UseRealTime();

}  // namespace
}  // namespace lrsched

BENCHMARK_MAIN();
