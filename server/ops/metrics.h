// Copyright lrsched authors.
//
// Metrics: the server's Prometheus metrics, and MetricsHttpServer, which serves them as text
// exposition (format 0.0.4) at GET /metrics over plain HTTP (cpp-httplib), e.g. on
// --metrics_listen=127.0.0.1:9464. Off unless configured.
//
//   lrsched_rpc_total{method,code}                  counter: finished calls
//   lrsched_rpc_duration_seconds{method}            histogram: call latency (Watch: stream life)
//   lrsched_store_commit_duration_seconds           histogram: one group-commit transaction
//   lrsched_store_batch_size                        histogram: mutations per transaction
//   lrsched_sessions, lrsched_store_queue, ...      gauges/counters read at scrape (AddGauge)
//
// `method` is the gRPC path without its leading slash ("lrsched.v1.LrScheduler/Step").
// Invariants: all methods are thread-safe; a histogram's buckets are cumulative in the output
// and its _count equals its +Inf bucket; gauge callbacks run on the scraping thread and must
// stay valid until the HTTP server is stopped.
#ifndef LRSCHED_SERVER_METRICS_H_
#define LRSCHED_SERVER_METRICS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace httplib {
class Server;
}

namespace lrsched {

// Bucket counts (non-cumulative) plus sum; guarded by its owner's mutex.
struct HistogramData {
  std::vector<int64_t> counts;  // one per bound, plus +Inf
  double sum = 0;
  int64_t count = 0;
};

// The name of gRPC status code `code` ("OK", "NOT_FOUND", ...), "UNKNOWN" outside 0..16: as
// the exposition's `code` label and the access log write it.
const char* StatusCodeName(int code);

class Metrics {
 public:
  Metrics();

  // One finished call; `code` is the gRPC status code number.
  void ObserveRpc(absl::string_view method, int code, absl::Duration latency);
  // One store transaction of `size` mutations that took `latency`.
  void ObserveStoreBatch(int64_t size, absl::Duration latency);
  // A value read at each scrape. `type` is "gauge" or "counter".
  void AddGauge(std::string name, std::string help, std::string type, std::function<double()> read);

  // The whole exposition text.
  std::string Render() const;

 private:
  struct Gauge {
    std::string name, help, type;
    std::function<double()> read;
  };

  struct RpcStats {
    int64_t calls[17] = {};  // by gRPC status code
    HistogramData duration;
  };

  mutable absl::Mutex mu_;
  // By method; looked up without building a string (std::less<> compares string_views).
  std::map<std::string, RpcStats, std::less<>> rpc_ ABSL_GUARDED_BY(mu_);
  HistogramData commit_duration_ ABSL_GUARDED_BY(mu_);
  HistogramData batch_size_ ABSL_GUARDED_BY(mu_);
  std::vector<Gauge> gauges_ ABSL_GUARDED_BY(mu_);
};

// Serves GET /metrics on its own small thread pool until Stop (or destruction).
class MetricsHttpServer {
 public:
  // `listen` is HOST:PORT ([::1]:PORT for IPv6; port 0: any free port). `metrics` must outlive
  // the server.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& listen,
                                                                  const Metrics* metrics);
  ~MetricsHttpServer();  // Stop()s

  int port() const { return port_; }
  void Stop();  // idempotent

 private:
  MetricsHttpServer();

  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_METRICS_H_
