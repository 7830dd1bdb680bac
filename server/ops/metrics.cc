// Copyright lrsched authors.
#include "server/ops/metrics.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace lrsched {
namespace {

// Latencies from 0.5 ms (a cached read) to 10 s (a deadline); a commit is an fsync or several.
constexpr double kSecondsBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
// Group-commit batches: powers of two up to SqliteStore's default max_batch.
constexpr double kBatchBounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

template <size_t N>
void Observe(HistogramData& h, const double (&bounds)[N], double v) {
  if (h.counts.empty()) h.counts.assign(N + 1, 0);
  size_t i = static_cast<size_t>(std::lower_bound(bounds, bounds + N, v) - bounds);
  ++h.counts[i];
  h.sum += v;
  ++h.count;
}

// The 17 status codes in the order of their names, as the exposition lists them.
const std::vector<int>& CodesByName() {
  static const std::vector<int>* const codes = [] {
    auto* v = new std::vector<int>(17);
    for (int i = 0; i < 17; ++i) (*v)[i] = i;
    std::sort(v->begin(), v->end(),
              [](int a, int b) { return std::string_view(StatusCodeName(a)) < StatusCodeName(b); });
    return v;
  }();
  return *codes;
}

std::string Num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  return absl::StrFormat("%.9g", v);
}

// A label value as the text format wants it: backslash, quote and newline escaped.
std::string Label(absl::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// `labels` is "" or `a="x",` (with the trailing comma) to precede le.
template <size_t N>
void RenderHistogram(std::string& out, absl::string_view name, absl::string_view labels,
                     const HistogramData& h, const double (&bounds)[N]) {
  int64_t cumulative = 0;
  for (size_t i = 0; i <= N; ++i) {
    cumulative += h.counts.empty() ? 0 : h.counts[i];
    absl::StrAppend(&out, name, "_bucket{", labels, "le=\"", i < N ? Num(bounds[i]) : "+Inf",
                    "\"} ", cumulative, "\n");
  }
  std::string plain(labels.empty() ? "" : labels.substr(0, labels.size() - 1));
  std::string braces = plain.empty() ? "" : absl::StrCat("{", plain, "}");
  absl::StrAppend(&out, name, "_sum", braces, " ", Num(h.sum), "\n");
  absl::StrAppend(&out, name, "_count", braces, " ", h.count, "\n");
}

}  // namespace

const char* StatusCodeName(int code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  if (code < 0 || code > 16) return "UNKNOWN";
  return kNames[code];
}

Metrics::Metrics() = default;

void Metrics::ObserveRpc(absl::string_view method, int code, absl::Duration latency) {
  if (code < 0 || code > 16) code = 2;  // UNKNOWN, as StatusCodeName says
  const double seconds = absl::ToDoubleSeconds(latency);
  absl::MutexLock l(&mu_);
  auto it = rpc_.find(method);
  if (it == rpc_.end()) it = rpc_.emplace(std::string(method), RpcStats{}).first;
  ++it->second.calls[code];
  Observe(it->second.duration, kSecondsBounds, seconds);
}

void Metrics::ObserveStoreBatch(int64_t size, absl::Duration latency) {
  absl::MutexLock l(&mu_);
  Observe(commit_duration_, kSecondsBounds, absl::ToDoubleSeconds(latency));
  Observe(batch_size_, kBatchBounds, static_cast<double>(size));
}

void Metrics::AddGauge(std::string name, std::string help, std::string type,
                       std::function<double()> read) {
  absl::MutexLock l(&mu_);
  gauges_.push_back(Gauge{std::move(name), std::move(help), std::move(type), std::move(read)});
}

std::string Metrics::Render() const {
  std::string out;
  absl::MutexLock l(&mu_);
  out += "# HELP lrsched_rpc_total Finished RPCs by method and status code.\n";
  out += "# TYPE lrsched_rpc_total counter\n";
  for (const auto& [method, stats] : rpc_) {
    for (int code : CodesByName()) {
      if (stats.calls[code] == 0) continue;
      absl::StrAppend(&out, "lrsched_rpc_total{method=\"", Label(method), "\",code=\"",
                      StatusCodeName(code), "\"} ", stats.calls[code], "\n");
    }
  }
  out += "# HELP lrsched_rpc_duration_seconds RPC latency by method (Watch: stream lifetime).\n";
  out += "# TYPE lrsched_rpc_duration_seconds histogram\n";
  for (const auto& [method, stats] : rpc_) {
    RenderHistogram(out, "lrsched_rpc_duration_seconds",
                    absl::StrCat("method=\"", Label(method), "\","), stats.duration,
                    kSecondsBounds);
  }
  out += "# HELP lrsched_store_commit_duration_seconds Time of one store transaction.\n";
  out += "# TYPE lrsched_store_commit_duration_seconds histogram\n";
  RenderHistogram(out, "lrsched_store_commit_duration_seconds", "", commit_duration_,
                  kSecondsBounds);
  out += "# HELP lrsched_store_batch_size Mutations per store transaction (group commit).\n";
  out += "# TYPE lrsched_store_batch_size histogram\n";
  RenderHistogram(out, "lrsched_store_batch_size", "", batch_size_, kBatchBounds);
  for (const Gauge& g : gauges_) {
    absl::StrAppend(&out, "# HELP ", g.name, " ", g.help, "\n# TYPE ", g.name, " ", g.type, "\n",
                    g.name, " ", Num(g.read()), "\n");
  }
  return out;
}

MetricsHttpServer::MetricsHttpServer() = default;

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, const Metrics* metrics) {
  size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_listen: expected HOST:PORT, got \"", listen, "\""));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer());
  s->http_ = std::make_unique<httplib::Server>();
  // Scrapes are rare and cheap: two threads, not one per core.
  s->http_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  // httplib's default also sets SO_REUSEPORT, with which a second server on a busy port would
  // start and take half the scrapes. Fail instead (SO_REUSEADDR only allows quick restarts).
  s->http_->set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s->http_->Get("/metrics", [metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  if (port == 0) {
    port = s->http_->bind_to_any_port(host);
    if (port <= 0) port = 0;
  } else if (!s->http_->bind_to_port(host, port)) {
    port = 0;
  }
  if (port == 0) {
    return absl::UnavailableError(absl::StrCat("--metrics_listen: cannot listen on ", listen));
  }
  s->port_ = port;
  httplib::Server* http = s->http_.get();
  s->thread_ = std::thread([http] { http->listen_after_bind(); });
  // stop() is a no-op until the listener runs; wait for it so Stop can never miss it.
  for (int i = 0; i < 5000 && !http->is_running(); ++i) absl::SleepFor(absl::Milliseconds(1));
  return s;
}

void MetricsHttpServer::Stop() {
  if (http_ == nullptr) return;
  http_->stop();
  if (thread_.joinable()) thread_.join();
  http_.reset();
}

}  // namespace lrsched
