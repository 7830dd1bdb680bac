// Copyright lrsched authors.
//
// lrsched-server: serves lrsched.v1.LrScheduler over gRPC, sessions stored in SQLite under
// --data_dir (the default) or in etcd (--store=etcd). Owns every flag of the server (no library
// defines one, so a binary that links a store gets no flags with it). Logs one key=value line per
// event on stderr; the first line after start-up is
//   ... event=listening addr=HOST:PORT
// with the port actually bound (useful with --listen=127.0.0.1:0).
//
// SIGHUP re-reads --tokens_file (a malformed file is logged and the old tokens stay).
// SIGTERM or SIGINT: stop accepting calls, end Watch streams, let in-flight calls finish (up to
// --shutdown_grace), flush and close the store, exit 0. The signals are blocked in every thread
// and taken by sigwait() in main, so no work happens inside a signal handler.
// Exit codes: 0 after a graceful shutdown, 1 when the server cannot start (a bad flag, a store
// that cannot be opened or holds a damaged record, an address in use).
#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"
#include "server/http/gateway.h"
#include "server/ops/auth.h"
#include "server/ops/log.h"
#include "server/ops/metrics.h"
#include "server/rpc/server.h"
#include "server/store/etcd/etcd_store.h"
#include "server/store/sqlite/sqlite_store.h"

ABSL_FLAG(std::string, listen, lrsched::ServerConfig{}.listen,
          "address to serve on (port 0: any free port)");
ABSL_FLAG(std::string, data_dir, "./data",
          "directory of the session database (created if missing)");
ABSL_FLAG(int64_t, max_sessions, lrsched::ServerConfig{}.max_sessions,
          "most sessions the server holds");
ABSL_FLAG(int32_t, worker_threads, lrsched::ServerConfig{}.worker_threads,
          "threads running calls that may block (commits, shared-store reads); at most this "
          "many Step commits share one SQLite transaction");
ABSL_FLAG(int64_t, max_queued_calls, static_cast<int64_t>(lrsched::ServerConfig{}.max_queued_calls),
          "calls waiting for a worker thread beyond which new ones get RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_simulate_steps, lrsched::ServerConfig{}.max_simulate_steps,
          "most steps x param groups one Simulate call may compute");
ABSL_FLAG(int64_t, max_call_cost, lrsched::ServerConfig{}.max_call_cost,
          "most work one call may ask for: steps (Simulate's steps, GetLR's ahead or window) x "
          "the schedule's estimated cost per step (units of about 1 ns of work)");
ABSL_FLAG(int64_t, max_reply_bytes, lrsched::ServerConfig{}.max_reply_bytes,
          "largest reply one call may build (Simulate's trace, GetLR's window), estimated "
          "before the work starts");
ABSL_FLAG(int32_t, heavy_threads, lrsched::ServerConfig{}.heavy_threads,
          "threads running heavy calls (Simulate, ImportState, costly lookaheads and steps), "
          "apart from --worker_threads so they never delay the other calls");
ABSL_FLAG(int64_t, max_heavy_queued, static_cast<int64_t>(lrsched::ServerConfig{}.max_heavy_queued),
          "heavy calls waiting for a heavy-call thread beyond which new ones get "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain file: serve TLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key file for --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA file: require client certificates signed by it (mutual TLS)");
ABSL_FLAG(std::string, sqlite_synchronous, "full",
          "full: every acknowledged mutation survives power loss (with --journal, the journal "
          "is fdatasynced before each reply); normal: it survives the death of the process, "
          "kill -9 included, but not of the machine (faster)");
ABSL_FLAG(bool, journal, true,
          "append each commit batch to DATA_DIR/journal/ with one write before replying, and "
          "apply it to lrsched.db in the background (README \"The journal\"); false: a SQLite "
          "transaction per batch on the reply path. A journal left by an earlier run is "
          "replayed at start-up either way");
ABSL_FLAG(int32_t, journal_segment_mb, 64,
          "MiB after which the journal starts a new segment file (applied ones are deleted)");
ABSL_FLAG(int32_t, journal_max_backlog_mb, 256,
          "MiB of journal not yet applied to lrsched.db beyond which commits wait for the "
          "applier (lrsched_store_journal_waits_total counts them)");
ABSL_FLAG(absl::Duration, journal_apply_delay, absl::Seconds(1),
          "how long appended commits wait before the applier copies them into lrsched.db: "
          "longer folds more steps of a session into one row write");
ABSL_FLAG(int32_t, sqlite_checkpoint_pages, 4000,
          "WAL pages (4 KiB each) after which the WAL is copied back into the database file; "
          "commits wait during that copy, so larger values make those pauses rarer and the WAL "
          "file larger");
ABSL_FLAG(bool, accept_data_loss, false,
          "start even though DATA_DIR/COMMITTED shows that acknowledged commits are missing "
          "from the database (a cut or damaged lrsched.db-wal), or is itself damaged: serve the "
          "older state and reset the file (logged with both commit numbers); use once");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "how long in-flight calls may run on after SIGTERM");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error");
ABSL_FLAG(std::string, tokens_file, "",
          "file of `TOKEN ROLE` lines (roles: reader, stepper, admin): require bearer tokens; "
          "re-read on SIGHUP");
ABSL_FLAG(std::string, damaged_records, "",
          "what start-up does with a stored session record that fails its checksum or does not "
          "decode: refuse (exit 1, naming it) or quarantine (serve the others; that name answers "
          "DATA_LOSS until deleted). Default: refuse on --store=sqlite, quarantine on "
          "--store=etcd, where a stray key must not stop every new replica");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT to serve Prometheus metrics on at /metrics (e.g. 127.0.0.1:9464); off if "
          "empty");
ABSL_FLAG(std::string, http_listen, "",
          "HOST:PORT to serve every RPC as JSON over HTTP on (README \"HTTP/JSON\"; HTTPS with "
          "--tls_cert/--tls_key); empty: off");
ABSL_FLAG(int32_t, http_threads, lrsched::ServerConfig{}.http_threads,
          "threads of the HTTP gateway for unary calls and keep-alive connections");
ABSL_FLAG(int32_t, http_max_watch_streams, lrsched::ServerConfig{}.http_max_watch_streams,
          "Watch streams (Server-Sent Events) open at once over HTTP, each holding a thread of "
          "its own; one more is refused with 429");
ABSL_FLAG(std::string, store, "sqlite",
          "where sessions live: sqlite (embedded, one process, --data_dir) or etcd (several "
          "replicas share them, --etcd_endpoints)");
ABSL_FLAG(std::string, etcd_endpoints, "127.0.0.1:2379",
          "comma-separated host:port of etcd members (all are used, failing over between them)");
ABSL_FLAG(std::string, etcd_prefix, "/lrsched/", "etcd key prefix holding the sessions");
ABSL_FLAG(absl::Duration, etcd_timeout, absl::Seconds(5), "deadline of each etcd call");
ABSL_FLAG(std::string, etcd_tls_ca, "", "PEM CA file: talk TLS to etcd, verifying it");
ABSL_FLAG(std::string, etcd_tls_cert, "", "PEM client certificate for etcd (with --etcd_tls_ca)");
ABSL_FLAG(std::string, etcd_tls_key, "", "PEM private key for --etcd_tls_cert");
ABSL_FLAG(absl::Duration, etcd_max_staleness, lrsched::ServerConfig{}.max_staleness,
          "reads are served from memory, kept fresh by a watch on etcd; once that watch has been "
          "broken this long they fail UNAVAILABLE (reads with consistent=true always ask etcd)");

namespace lrsched {
namespace {

// true for --store=etcd, false for --store=sqlite (the default); INVALID_ARGUMENT otherwise.
absl::StatusOr<bool> StoreFlagIsEtcd() {
  const std::string store = absl::GetFlag(FLAGS_store);
  if (store == "sqlite") return false;
  if (store == "etcd") return true;
  return absl::InvalidArgumentError("--store: sqlite or etcd");
}

// The EtcdStore the --etcd_* flags describe (it contacts etcd only when loading).
absl::StatusOr<std::unique_ptr<EtcdStore>> OpenEtcdStoreFromFlags() {
  EtcdStore::Options o;
  for (absl::string_view e :
       absl::StrSplit(absl::GetFlag(FLAGS_etcd_endpoints), ',', absl::SkipWhitespace())) {
    o.endpoints.emplace_back(e);
  }
  o.prefix = absl::GetFlag(FLAGS_etcd_prefix);
  o.timeout = absl::GetFlag(FLAGS_etcd_timeout);
  o.tls_ca_file = absl::GetFlag(FLAGS_etcd_tls_ca);
  o.tls_cert_file = absl::GetFlag(FLAGS_etcd_tls_cert);
  o.tls_key_file = absl::GetFlag(FLAGS_etcd_tls_key);
  if (o.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--etcd_timeout must be positive");
  }
  return EtcdStore::Open(o);
}

// --etcd_max_staleness (ServerConfig::max_staleness); INVALID_ARGUMENT unless positive.
absl::StatusOr<absl::Duration> EtcdMaxStalenessFromFlags() {
  const absl::Duration d = absl::GetFlag(FLAGS_etcd_max_staleness);
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--etcd_max_staleness must be positive");
  }
  return d;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return static_cast<bool>(f) || f.eof();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials() {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  const std::string ca = absl::GetFlag(FLAGS_tls_client_ca);
  if (cert.empty() && key.empty() && ca.empty()) return grpc::InsecureServerCredentials();
  if (cert.empty() || key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  if (!ReadFile(cert, &pair.cert_chain)) {
    return absl::InvalidArgumentError(absl::StrCat("--tls_cert: cannot read ", cert));
  }
  if (!ReadFile(key, &pair.private_key)) {
    return absl::InvalidArgumentError(absl::StrCat("--tls_key: cannot read ", key));
  }
  grpc::SslServerCredentialsOptions opts(
      ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                 : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!ca.empty() && !ReadFile(ca, &opts.pem_root_certs)) {
    return absl::InvalidArgumentError(absl::StrCat("--tls_client_ca: cannot read ", ca));
  }
  opts.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(opts);
}

// Feeds the store's group-commit batches and backlog into the server's metrics.
void ObserveStore(SqliteStore* store, Metrics* metrics) {
  store->SetBatchObserver(
      [metrics](int64_t n, absl::Duration d) { metrics->ObserveStoreBatch(n, d); });
  metrics->AddGauge("lrsched_store_queue", "Mutations waiting for the store's committer.", "gauge",
                    [store] { return static_cast<double>(store->backlog().queued); });
  metrics->AddGauge("lrsched_store_commits_total", "Mutations committed to the store.", "counter",
                    [store] { return static_cast<double>(store->stats().commits); });
  metrics->AddGauge("lrsched_store_transactions_total", "Store transactions committed.", "counter",
                    [store] { return static_cast<double>(store->stats().transactions); });
  metrics->AddGauge("lrsched_store_wal_checkpoints_total",
                    "WAL checkpoints (copies of the WAL into the database file).", "counter",
                    [store] { return static_cast<double>(store->checkpoints()); });
  metrics->AddGauge("lrsched_store_wal_checkpoint_seconds_total",
                    "Time spent in WAL checkpoints; commits wait meanwhile.", "counter",
                    [store] { return absl::ToDoubleSeconds(store->checkpoint_time()); });
  metrics->AddGauge("lrsched_store_wal_syncs_total",
                    "Background syncs of the WAL (--sqlite_synchronous=normal).", "counter",
                    [store] { return static_cast<double>(store->wal_syncs()); });
  if (!store->journaled()) return;
  struct JournalMetric {
    const char* name;
    const char* help;
    const char* type;
    int64_t SqliteStore::JournalStats::*field;
  };
  using J = SqliteStore::JournalStats;
  for (const JournalMetric& m : {
           JournalMetric{"lrsched_store_journal_bytes_total", "Bytes appended to the journal.",
                         "counter", &J::bytes},
           JournalMetric{"lrsched_store_journal_syncs_total",
                         "fdatasyncs of the journal (--sqlite_synchronous=full).", "counter",
                         &J::syncs},
           JournalMetric{"lrsched_store_journal_backlog_bytes",
                         "Journal bytes appended but not yet applied to lrsched.db.", "gauge",
                         &J::backlog_bytes},
           JournalMetric{"lrsched_store_journal_waits_total",
                         "Commits that waited for the applier (--journal_max_backlog_mb).",
                         "counter", &J::waits},
           JournalMetric{"lrsched_store_journal_applies_total",
                         "Transactions that applied the journal to lrsched.db.", "counter",
                         &J::applies},
           JournalMetric{"lrsched_store_journal_segments", "Journal segment files.", "gauge",
                         &J::segments},
           JournalMetric{"lrsched_store_journal_replayed_records",
                         "Journal records replayed at start-up.", "gauge", &J::replayed_records},
       }) {
    metrics->AddGauge(m.name, m.help, m.type, [store, field = m.field] {
      return static_cast<double>(store->journal_stats().*field);
    });
  }
}

// The test hooks of SqliteStore::Options, from the environment (tests/python start the real
// binary with them; nothing else sets them): LRSCHED_TEST_CRASH_POINT=apply_before_commit or
// apply_after_commit, LRSCHED_TEST_JOURNAL_ENOSPC=N:K.
absl::Status TestHooksFromEnv(SqliteStore::Options* o) {
  if (const char* crash = std::getenv("LRSCHED_TEST_CRASH_POINT")) {
    o->crash_point_for_testing = crash;
  }
  if (const char* enospc = std::getenv("LRSCHED_TEST_JOURNAL_ENOSPC")) {
    std::pair<std::string, std::string> nk = absl::StrSplit(enospc, absl::MaxSplits(':', 1));
    if (!absl::SimpleAtoi(nk.first, &o->journal_enospc_after_for_testing) ||
        !absl::SimpleAtoi(nk.second, &o->journal_enospc_count_for_testing) ||
        o->journal_enospc_after_for_testing < 0 || o->journal_enospc_count_for_testing < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("LRSCHED_TEST_JOURNAL_ENOSPC: N:K (two counts), got \"", enospc, "\""));
    }
  }
  return absl::OkStatus();
}

int Fail(const char* event, const absl::Status& s) {
  logging::Error(event).Err(s);
  return 1;
}

int Run() {
  // Block the shutdown signals before any thread exists (building the TLS credentials starts
  // gRPC's threads), so every thread inherits the mask and only sigwait() receives them: a
  // SIGTERM right after start-up would otherwise kill the process instead of stopping it.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);  // re-read --tokens_file
  // A write to a peer that has gone away must fail, not kill the process: OpenSSL's writes
  // (the HTTPS gateway) do not ask the kernel for MSG_NOSIGNAL as gRPC and httplib do.
  signal(SIGPIPE, SIG_IGN);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  logging::Level level;
  if (!logging::ParseLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return Fail("bad_flag",
                absl::InvalidArgumentError("--log_level: debug, info, warning or error"));
  }
  logging::SetMinLevel(level);

  SqliteStore::Options store_opts;
  store_opts.dir = absl::GetFlag(FLAGS_data_dir);
  const std::string sync = absl::GetFlag(FLAGS_sqlite_synchronous);
  if (sync == "full") {
    store_opts.synchronous = SqliteStore::Options::Synchronous::kFull;
  } else if (sync == "normal") {
    store_opts.synchronous = SqliteStore::Options::Synchronous::kNormal;
  } else {
    return Fail("bad_flag", absl::InvalidArgumentError("--sqlite_synchronous: full or normal"));
  }
  store_opts.checkpoint_pages = absl::GetFlag(FLAGS_sqlite_checkpoint_pages);
  store_opts.accept_data_loss = absl::GetFlag(FLAGS_accept_data_loss);
  store_opts.journal = absl::GetFlag(FLAGS_journal);
  const int32_t segment_mb = absl::GetFlag(FLAGS_journal_segment_mb);
  const int32_t backlog_mb = absl::GetFlag(FLAGS_journal_max_backlog_mb);
  store_opts.journal_apply_delay = absl::GetFlag(FLAGS_journal_apply_delay);
  if (segment_mb < 1 || segment_mb > 4096 || backlog_mb < 1 || backlog_mb > 65536 ||
      store_opts.journal_apply_delay < absl::ZeroDuration()) {
    return Fail("bad_flag", absl::InvalidArgumentError(
                                "--journal_segment_mb must be 1 to 4096, --journal_max_backlog_mb "
                                "1 to 65536 and --journal_apply_delay not negative"));
  }
  store_opts.journal_segment_bytes = int64_t{segment_mb} << 20;
  store_opts.journal_max_backlog_bytes = int64_t{backlog_mb} << 20;
  if (absl::Status hooks = TestHooksFromEnv(&store_opts); !hooks.ok()) {
    return Fail("bad_flag", hooks);
  }
  if (store_opts.checkpoint_pages < 1 || store_opts.checkpoint_pages > (1 << 24)) {
    return Fail("bad_flag",
                absl::InvalidArgumentError("--sqlite_checkpoint_pages: between 1 and 16777216"));
  }
  ServerConfig config;
  config.listen = absl::GetFlag(FLAGS_listen);
  config.max_sessions = absl::GetFlag(FLAGS_max_sessions);
  config.max_simulate_steps = absl::GetFlag(FLAGS_max_simulate_steps);
  config.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  if (config.worker_threads < 1 || config.worker_threads > 4096 ||
      absl::GetFlag(FLAGS_max_queued_calls) < 1) {
    return Fail("bad_flag", absl::InvalidArgumentError(
                                "--worker_threads must be 1 to 4096 and --max_queued_calls at "
                                "least 1"));
  }
  config.max_queued_calls = static_cast<size_t>(absl::GetFlag(FLAGS_max_queued_calls));
  config.heavy_threads = absl::GetFlag(FLAGS_heavy_threads);
  if (config.heavy_threads < 1 || config.heavy_threads > 1024 ||
      absl::GetFlag(FLAGS_max_heavy_queued) < 1) {
    return Fail("bad_flag", absl::InvalidArgumentError(
                                "--heavy_threads must be 1 to 1024 and --max_heavy_queued at "
                                "least 1"));
  }
  config.max_heavy_queued = static_cast<size_t>(absl::GetFlag(FLAGS_max_heavy_queued));
  config.max_call_cost = absl::GetFlag(FLAGS_max_call_cost);
  config.max_reply_bytes = absl::GetFlag(FLAGS_max_reply_bytes);
  if (config.max_call_cost < 1 || config.max_reply_bytes < 1) {
    return Fail("bad_flag", absl::InvalidArgumentError(
                                "--max_call_cost and --max_reply_bytes must be at least 1"));
  }
  if (config.max_sessions < 0 || config.max_simulate_steps < 0) {
    return Fail("bad_flag", absl::InvalidArgumentError(
                                "--max_sessions and --max_simulate_steps must not be negative"));
  }
  auto creds = Credentials();
  if (!creds.ok()) return Fail("bad_flag", creds.status());
  config.credentials = *creds;
  config.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  config.http_listen = absl::GetFlag(FLAGS_http_listen);
  config.start_http = http::StartGateway;
  config.http_threads = absl::GetFlag(FLAGS_http_threads);
  config.http_max_watch_streams = absl::GetFlag(FLAGS_http_max_watch_streams);
  if (config.http_threads < 1 || config.http_threads > 4096 || config.http_max_watch_streams < 0 ||
      config.http_max_watch_streams > 4096) {
    return Fail("bad_flag", absl::InvalidArgumentError(
                                "--http_threads must be 1 to 4096 and --http_max_watch_streams 0 "
                                "to 4096"));
  }
  config.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  config.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  config.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  const std::string tokens_file = absl::GetFlag(FLAGS_tokens_file);
  std::unique_ptr<Authorizer> authorizer;
  if (!tokens_file.empty()) {
    auto tokens = LoadTokensFile(tokens_file);
    if (!tokens.ok()) return Fail("bad_tokens_file", tokens.status());
    authorizer = std::make_unique<Authorizer>(*std::move(tokens));
    config.authorizer = authorizer.get();
    if (absl::GetFlag(FLAGS_tls_cert).empty()) {
      logging::Warning("tokens_without_tls")
          .Kv("msg", "bearer tokens travel in clear text without --tls_cert/--tls_key");
    }
  }

  // --store=etcd: sessions in etcd, shared with other replicas; then
  // `store` holds no SQLite store and `active` is the etcd one.
  absl::StatusOr<bool> use_etcd = StoreFlagIsEtcd();
  if (!use_etcd.ok()) return Fail("bad_flag", use_etcd.status());
  const std::string damaged = absl::GetFlag(FLAGS_damaged_records);
  if (damaged == "quarantine" || (damaged.empty() && *use_etcd)) {
    config.damaged_records = DamagedRecords::kQuarantine;
  } else if (damaged == "refuse" || damaged.empty()) {
    config.damaged_records = DamagedRecords::kRefuse;
  } else {
    return Fail("bad_flag", absl::InvalidArgumentError("--damaged_records: refuse or quarantine"));
  }
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = std::unique_ptr<SqliteStore>();
  std::unique_ptr<EtcdStore> etcd_store;
  if (*use_etcd) {
    auto opened = OpenEtcdStoreFromFlags();
    if (!opened.ok()) return Fail("store_open_failed", opened.status());
    etcd_store = *std::move(opened);
    auto staleness = EtcdMaxStalenessFromFlags();
    if (!staleness.ok()) return Fail("bad_flag", staleness.status());
    config.max_staleness = *staleness;
  } else {
    store = SqliteStore::Open(store_opts);
  }
  if (!store.ok()) return Fail("store_open_failed", store.status());
  Store* active = etcd_store ? static_cast<Store*>(etcd_store.get()) : store->get();
  config.store_location =
      etcd_store ? absl::StrCat("etcd prefix ", etcd_store->prefix()) : (*store)->path();
  auto server = LrschedServer::Start(config, active);
  if (!server.ok()) {
    active->Close();
    return Fail("start_failed", server.status());
  }
  logging::Info("listening")
      .Kv("addr", (*server)->address())
      .Kv("tls", !absl::GetFlag(FLAGS_tls_cert).empty())
      .Kv("mtls", !absl::GetFlag(FLAGS_tls_client_ca).empty())
      .Kv("store", *use_etcd ? "etcd" : "sqlite")
      .Kv("data_dir", store_opts.dir)
      .Kv("synchronous", sync);

  if (Metrics* metrics = (*server)->metrics()) {
    if (*store) ObserveStore(store->get(), metrics);
    logging::Info("metrics_listening").Kv("port", static_cast<int64_t>((*server)->metrics_port()));
  }

  // Scripts and supervisors wait for these lines to know the server is ready: not a moment
  // later than it is.
  logging::Flush();

  int sig = 0;
  while (sigwait(&signals, &sig) != 0 || sig == SIGHUP) {
    if (sig != SIGHUP) continue;
    sig = 0;
    if (authorizer == nullptr) continue;
    // A bad file keeps the tokens in force: a typo must not lock everyone out.
    auto tokens = LoadTokensFile(tokens_file);
    if (tokens.ok()) {
      authorizer->Replace(*std::move(tokens));
      logging::Info("tokens_reloaded").Kv("count", static_cast<int64_t>(authorizer->size()));
    } else {
      logging::Error("tokens_reload_failed").Err(tokens.status());
    }
  }
  logging::Info("shutting_down").Kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  if (*store) (*store)->SetBatchObserver(nullptr);
  Store::Stats stats = active->stats();
  logging::Info("stopped").Kv("commits", stats.commits).Kv("transactions", stats.transactions);
  return 0;
}

// `--help` lists the server's own flags (all defined in this file); absl's default
// looks for a file named after the program, finds none and says "No flags matched".
void ConfigureHelp() {
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "server/main.cc");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  config.normalize_filename = [](absl::string_view file) {
    size_t at = file.rfind("server/");
    return std::string(at == absl::string_view::npos ? file : file.substr(at));
  };
  absl::SetFlagsUsageConfig(config);
}

}  // namespace
}  // namespace lrsched

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "lrsched-server [--listen=HOST:PORT] [--data_dir=DIR | --store=etcd "
      "--etcd_endpoints=HOST:PORT,...] [FLAGS]\n"
      "Serves lrsched.v1.LrScheduler over gRPC (README.md has the details).");
  lrsched::ConfigureHelp();
  // Debian's Abseil is built without NDEBUG, so every Mutex would otherwise record its lock
  // order in a process-wide graph: a global lock taken on each acquisition and ~0.5 KB per
  // mutex (each session has one). Release builds of Abseil never do this; the unit tests,
  // which construct their own servers, keep it on to catch lock-order inversions.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Heavy calls build large replies (a 1000-step x 1000-group Simulate: two 8 MB arrays, then
  // 16 MB encoded). Once the first such block is freed glibc raises its mmap threshold and
  // serves the next ones from per-thread arenas, which keep what is freed: 128 of those calls
  // left 0.6-0.8 GB resident for good. A fixed threshold maps every block over 1 MiB on its own
  // and unmaps it when freed (measured: ~100 MB peak, ~30 MB after, for the same calls).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1) {
    std::fprintf(stderr, "lrsched-server: unexpected argument %s\n", args[1]);
    return 1;
  }
  return lrsched::Run();
}
