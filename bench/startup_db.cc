// Copyright lrsched authors.
//
// startup_db: writes a session database for the start-up benchmark (bench/startup_bench.sh).
// Sessions are created through the server's own Registry over SqliteStore, so every record is
// exactly what lrsched-server writes (server/registry/session.h: ExportState + name, labels,
// revision, times). Specs rotate over four realistic shapes (cosine, warm-up then cosine, OneCycle
// with momentum, multi-step with two param groups), each with two labels, and every session is
// stepped `--steps` times after its creation.
//
//   startup_db --dir=/tmp/lrsched-startup --sessions=100000 [--threads=8] [--steps=3]
//   startup_db --dir=DIR --sessions=100000 --store=etcd --etcd_endpoints=HOST:PORT
//              [--etcd_prefix=/lrsched/]
//
// With --store=etcd (bench/etcd_startup_bench.sh) the sessions are written as above into the
// SQLite database in --dir, then every record is copied byte for byte to etcd under
// --etcd_prefix (the key lrsched-server --store=etcd reads: prefix + name) with batched Txns of
// plain puts (at most 128 puts, etcd's default --max-txn-ops, and 1 MiB, under its 1.5 MiB
// request limit). A record holds no store revision (server/registry/session.h), so it is exactly
// what a replica would have written; writing through EtcdStore instead would be 400k Txns (a create
// and three steps per session), 1-2 minutes at the 4-7k Txns/s etcd managed on the build
// machine, against seconds for the copy.
// With --store=etcd --load_only=1 it writes nothing and splits a replica's start-up: the
// EtcdStore::LoadAll alone (etcd's paged Range, no decoding), then Registry::Load over it.
//
// With --journal_records=N (SQLite only) it then appends N journal records to DIR/journal
// (server/store/sqlite/journal.h), the start-up benchmark's replay
// (bench/startup_bench.sh with RECORDS): after the store's clean Close, which applies everything
// and removes the journal, it starts one with JournalWriter at the database's commit_seq + 1 (where
// a replay starts) and appends one put per record, walking the sessions round-robin: each record
// re-writes a session's record bytes as they are in the database (a valid record, which
// Registry::Load accepts) at the next revision, as a Step would. Unsynced (the page cache is
// enough for a benchmark).
//
// With --load_only=1 it writes nothing: it times Registry::Load of an existing database in this
// process and prints the RSS it added, with absl's Mutex deadlock detection as the library's
// default (--deadlock_detection=default) or off (=off), to show what that detection costs.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "server/ops/log.h"
#include "server/registry/registry.h"
#include "server/store/etcd/etcd_store.h"
#include "server/store/sqlite/journal.h"
#include "server/store/sqlite/schema.h"
#include "server/store/sqlite/sqlite_store.h"

namespace {

std::string Flag(int argc, char** argv, const char* name, const char* def) {
  const std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) return argv[i] + prefix.size();
  }
  return def;
}

const char* const kSpecs[] = {
    R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
        "scheduler": {"type": "CosineAnnealingLR", "T_max": 90000, "eta_min": 0.0001}})",
    R"({"optimizer": {"type": "AdamW", "param_groups": [{"lr": 0.0003}]},
        "scheduler": {"type": "SequentialLR", "milestones": [2000], "schedulers": [
          {"type": "LinearLR", "start_factor": 0.01, "total_iters": 2000},
          {"type": "CosineAnnealingLR", "T_max": 100000}]}})",
    R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.05, "momentum": 0.9}]},
        "scheduler": {"type": "OneCycleLR", "max_lr": 0.5, "total_steps": 50000}})",
    R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9},
                                                     {"lr": 0.01, "momentum": 0.9}]},
        "scheduler": {"type": "MultiStepLR", "milestones": [30000, 60000, 80000], "gamma": 0.1}})",
};

long RssKib() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  long kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::atol(line + 6);
  }
  std::fclose(f);
  return kib;
}

// Copies every record of `store` to etcd at `endpoint` under `prefix` in batched Txns.
bool CopyToEtcd(lrsched::SqliteStore* store, const std::string& endpoint,
                const std::string& prefix) {
  auto channel = grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials());
  auto kv = etcdserverpb::KV::NewStub(channel);
  constexpr int kMaxOps = 128;
  constexpr size_t kMaxBytes = 1 << 20;
  etcdserverpb::TxnRequest txn;
  size_t bytes = 0;
  int64_t records = 0, total_bytes = 0, txns = 0;
  auto flush = [&]() -> absl::Status {
    if (txn.success_size() == 0) return absl::OkStatus();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    etcdserverpb::TxnResponse resp;
    grpc::Status st = kv->Txn(&ctx, txn, &resp);
    if (!st.ok()) return absl::UnavailableError("etcd Txn: " + st.error_message());
    ++txns;
    txn.Clear();
    bytes = 0;
    return absl::OkStatus();
  };
  const auto t0 = std::chrono::steady_clock::now();
  absl::Status s =
      store->LoadAll([&](std::string_view name, std::string_view value, int64_t) -> absl::Status {
        const size_t size = prefix.size() + name.size() + value.size();
        if (txn.success_size() == kMaxOps || (bytes > 0 && bytes + size > kMaxBytes)) {
          if (absl::Status f = flush(); !f.ok()) return f;
        }
        auto* put = txn.add_success()->mutable_request_put();
        put->set_key(prefix + std::string(name));
        put->set_value(std::string(value));
        bytes += size;
        ++records;
        total_bytes += static_cast<int64_t>(value.size());
        return absl::OkStatus();
      });
  if (s.ok()) s = flush();
  if (!s.ok()) {
    std::fprintf(stderr, "startup_db: copy to etcd: %s\n", s.ToString().c_str());
    return false;
  }
  std::printf("etcd_records=%lld etcd_txns=%lld record_bytes_avg=%.0f copied_in_s=%.1f\n",
              static_cast<long long>(records), static_cast<long long>(txns),
              records ? static_cast<double>(total_bytes) / static_cast<double>(records) : 0.0,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return true;
}

// One database record, as LoadAll returned it.
struct Record {
  std::string name;
  std::string value;
  int64_t revision;
};

// Appends `count` journal records to `dir`/journal after a clean Close (see the file comment).
bool WriteJournal(const std::string& dir, const std::vector<Record>& recs, int64_t count) {
  namespace si = lrsched::sqlite_internal;
  namespace fs = std::filesystem;
  const std::string jdir = (fs::path(dir) / si::kJournalDirName).string();
  std::error_code ec;
  if (fs::exists(jdir, ec) && !fs::is_empty(jdir, ec)) {
    std::fprintf(stderr, "startup_db: %s: not empty, as a clean Close leaves it\n", jdir.c_str());
    return false;
  }
  // The journal continues the database's commit numbers: replay starts past commit_seq.
  auto info = si::InspectFile((fs::path(dir) / "lrsched.db").string());
  if (!info.ok() || recs.empty()) {
    std::fprintf(stderr, "startup_db: %s\n",
                 info.ok() ? "no sessions to journal" : info.status().ToString().c_str());
    return false;
  }
  si::JournalWriter::Options jo;
  jo.dir = jdir;
  jo.sync = false;
  auto writer = si::JournalWriter::Open(jo, info->commit_seq + 1);
  if (!writer.ok()) {
    std::fprintf(stderr, "startup_db: %s\n", writer.status().ToString().c_str());
    return false;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n = static_cast<int64_t>(recs.size());
  for (int64_t j = 0; j < count; ++j) {
    const Record& r = recs[static_cast<size_t>(j % n)];
    si::JournalEntry e;
    e.kind = si::JournalEntry::Kind::kPut;
    e.name = r.name;
    e.value = r.value;
    e.revision = r.revision + 1 + j / n;
    if (auto s = (*writer)->Append({e}); !s.ok()) {
      std::fprintf(stderr, "startup_db: journal record %lld: %s\n", static_cast<long long>(j),
                   s.status().ToString().c_str());
      return false;
    }
  }
  std::printf("journal_records=%lld journal_bytes=%lld journal_segments=%lld wrote_in_s=%.1f\n",
              static_cast<long long>(count), static_cast<long long>((*writer)->bytes_appended()),
              static_cast<long long>((*writer)->segments()),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = Flag(argc, argv, "dir", "");
  const int n = std::atoi(Flag(argc, argv, "sessions", "100000").c_str());
  const int threads = std::atoi(Flag(argc, argv, "threads", "8").c_str());
  const int steps = std::atoi(Flag(argc, argv, "steps", "3").c_str());
  const std::string store_kind = Flag(argc, argv, "store", "sqlite");
  const std::string etcd_endpoint = Flag(argc, argv, "etcd_endpoints", "");
  const std::string etcd_prefix = Flag(argc, argv, "etcd_prefix", "/lrsched/");
  const int64_t journal_records = std::atoll(Flag(argc, argv, "journal_records", "0").c_str());
  if (dir.empty() || n <= 0 || journal_records < 0 ||
      (journal_records > 0 && store_kind != "sqlite") || threads <= 0 || threads > 64 ||
      steps < 0 || (store_kind != "sqlite" && store_kind != "etcd") ||
      (store_kind == "etcd" && (etcd_endpoint.empty() || etcd_prefix.empty() ||
                                etcd_endpoint.find(',') != std::string::npos))) {
    std::fprintf(stderr,
                 "usage: startup_db --dir=DIR --sessions=N [--threads=T] [--steps=K]\n"
                 "                  [--store=etcd --etcd_endpoints=HOST:PORT "
                 "[--etcd_prefix=/lrsched/]]\n"
                 "                  [--journal_records=N]  (sqlite only)\n");
    return 2;
  }
  lrsched::logging::SetMinLevel(lrsched::logging::Level::kWarning);
  if (Flag(argc, argv, "deadlock_detection", "default") == std::string("off")) {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
  const bool load_only = Flag(argc, argv, "load_only", "0") == std::string("1");
  const long rss0 = RssKib();
  if (load_only && store_kind == "etcd") {
    lrsched::EtcdStore::Options eo;
    eo.endpoints = {etcd_endpoint};
    eo.prefix = etcd_prefix;
    eo.timeout = absl::Seconds(60);
    auto etcd = lrsched::EtcdStore::Open(eo);
    if (!etcd.ok()) {
      std::fprintf(stderr, "startup_db: %s\n", etcd.status().ToString().c_str());
      return 1;
    }
    int64_t rows = 0, bytes = 0;
    const auto r0 = std::chrono::steady_clock::now();
    absl::Status s = (*etcd)->LoadAll([&](std::string_view, std::string_view v, int64_t) {
      ++rows;
      bytes += static_cast<int64_t>(v.size());
      return absl::OkStatus();
    });
    const double range_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
    lrsched::Registry registry(etcd->get(), n);
    const auto l0 = std::chrono::steady_clock::now();
    if (s.ok()) s = registry.Load();
    if (!s.ok()) {
      std::fprintf(stderr, "startup_db: etcd load: %s\n", s.ToString().c_str());
      return 1;
    }
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - l0).count();
    std::printf("etcd_range_only_s=%.2f rows=%lld value_mb=%.1f registry_load_s=%.2f loaded=%zu\n",
                range_s, static_cast<long long>(rows), static_cast<double>(bytes) / 1e6, load_s,
                registry.size());
    return 0;
  }
  lrsched::SqliteStore::Options opts;
  opts.dir = dir;
  // Only the file matters here, not the durability of its writing.
  opts.synchronous = lrsched::SqliteStore::Options::Synchronous::kNormal;
  auto store = lrsched::SqliteStore::Open(opts);
  if (!store.ok()) {
    std::fprintf(stderr, "startup_db: %s\n", store.status().ToString().c_str());
    return 1;
  }
  lrsched::Registry registry(store->get(), n);
  const auto l0 = std::chrono::steady_clock::now();
  if (absl::Status s = registry.Load(); !s.ok()) {
    std::fprintf(stderr, "startup_db: load: %s\n", s.ToString().c_str());
    return 1;
  }
  if (load_only) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - l0).count();
    const long added = RssKib() - rss0;
    std::printf("loaded=%zu load_s=%.2f rss_added_kib=%ld bytes_per_session=%.0f\n",
                registry.size(), secs, added,
                registry.size() ? added * 1024.0 / static_cast<double>(registry.size()) : 0.0);
    return 0;
  }
  std::vector<nlohmann::json> specs;
  for (const char* s : kSpecs) specs.push_back(nlohmann::json::parse(s));

  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<int> next{static_cast<int>(registry.size())};
  std::atomic<bool> failed{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = next++; i < n && !failed; i = next++) {
        char name[64];
        std::snprintf(name, sizeof name, "team%02d/run-%06d", i % 37, i);
        lrsched::Labels labels{{"team", std::to_string(i % 37)}, {"job", "pretrain"}};
        auto c = registry.Create(name, specs[static_cast<size_t>(i) % specs.size()], labels);
        if (!c.ok()) {
          std::fprintf(stderr, "startup_db: create %s: %s\n", name, c.status().ToString().c_str());
          failed = true;
          return;
        }
        for (int k = 0; k < steps; ++k) {
          auto st = registry.Step(name, lrsched::StepRequest{}, std::nullopt);
          if (!st.ok()) {
            std::fprintf(stderr, "startup_db: step %s: %s\n", name, st.status().ToString().c_str());
            failed = true;
            return;
          }
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("sessions=%zu wrote_in_s=%.1f\n", registry.size(), secs);
  if (!failed && store_kind == "etcd" && !CopyToEtcd(store->get(), etcd_endpoint, etcd_prefix)) {
    failed = true;
  }
  std::vector<Record> recs;
  if (!failed && journal_records > 0) {
    absl::Status s = (*store)->LoadAll(
        [&](std::string_view name, std::string_view value, int64_t revision) -> absl::Status {
          recs.push_back(Record{std::string(name), std::string(value), revision});
          return absl::OkStatus();
        });
    if (!s.ok()) {
      std::fprintf(stderr, "startup_db: %s\n", s.ToString().c_str());
      failed = true;
    }
  }
  (*store)->Close();
  if (!failed && journal_records > 0 && !WriteJournal(dir, recs, journal_records)) failed = true;
  return failed ? 1 : 0;
}
