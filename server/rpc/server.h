// Copyright lrsched authors.
//
// LrschedServer: one running lrsched service: the registry loaded from a Store, the gRPC
// service, health checking and reflection, bound to an address. Used by lrsched-server's main
// and, in-process, by tests.
//
//   auto server = LrschedServer::Start(config, store.get());   // loads, binds, serves
//   server.value()->address();                                 // "127.0.0.1:41234"
//   server.value()->Shutdown(absl::Seconds(5));                // graceful; closes the store
//
// Invariant: after Start returns OK the server serves until Shutdown; Shutdown ends every
// Watch stream, lets in-flight calls finish (cancelling them at the deadline; calls already
// handed to the worker pool still run to their reply), then closes the store, so every
// acknowledged mutation is flushed.
#ifndef LRSCHED_SERVER_SERVER_H_
#define LRSCHED_SERVER_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "server/ops/auth.h"
#include "server/ops/metrics.h"
#include "server/registry/registry.h"
#include "server/rpc/service.h"
#include "server/rpc/worker_pool.h"
#include "server/store/store.h"

namespace lrsched {

struct ServerConfig;

// The HTTP/JSON gateway (server/http/), which LrschedServer starts after its gRPC server and
// stops with it. It lives in the layer above rpc/, so this layer knows it only by this
// interface, and main.cc (or a test) hands in the function that starts it
// (ServerConfig::start_http, usually lrsched::http::StartGateway).
class HttpGatewayHandle {
 public:
  virtual ~HttpGatewayHandle() = default;
  // The TCP port bound.
  virtual int port() const = 0;
  // Ends every open stream, stops accepting, and returns once no handler runs. Idempotent.
  virtual void Stop() = 0;
};

// Starts a gateway for `config` (its http_* and tls_* fields) in front of `grpc_server`, whose
// in-process channel it calls; `metrics` (null: none) must outlive the gateway.
using HttpGatewayStarter = std::function<absl::StatusOr<std::unique_ptr<HttpGatewayHandle>>(
    const ServerConfig& config, grpc::Server* grpc_server, Metrics* metrics)>;

// What a server is started with. Its member initializers are the defaults of main.cc's flags
// (each flag's default reads ServerConfig{}), so a default is written once.
struct ServerConfig {
  // host:port; port 0 lets the OS choose (address() tells which).
  std::string listen = "127.0.0.1:50051";
  // Insecure when null.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  int64_t max_sessions = 100000;
  int64_t max_simulate_steps = kDefaultMaxSimulateSteps;
  // Larger requests are refused by gRPC itself (RESOURCE_EXHAUSTED).
  int max_receive_bytes = 4 << 20;
  // Upper bound on threads of gRPC's synchronous services (reflection; lrsched's own service
  // uses the callback API and the worker pool below).
  int max_threads = 512;
  // Threads that run the calls that may block (mutations waiting for their commit, reads from
  // a shared store; heavy calls have their own, below); at most this many commits group into one
  // SQLite transaction. Calls beyond max_queued_calls waiting for one are refused
  // RESOURCE_EXHAUSTED.
  int worker_threads = 128;
  size_t max_queued_calls = 4096;
  // Threads, and queue, of the heavy calls (Simulate, long lookaheads, ImportState), kept
  // apart so they never delay the others (service.h); calls beyond max_heavy_queued waiting
  // are refused RESOURCE_EXHAUSTED.
  int heavy_threads = 2;
  size_t max_heavy_queued = 64;
  // Per-call bounds on work and reply size (ServiceOptions).
  int64_t max_call_cost = kDefaultMaxCallCost;
  int64_t max_reply_bytes = kDefaultMaxReplyBytes;
  // Bearer-token authorization (server/ops/auth.h); null: every call is allowed. Must outlive the
  // server.
  const Authorizer* authorizer = nullptr;
  // HOST:PORT to serve Prometheus metrics on (GET /metrics); empty: no metrics.
  std::string metrics_listen;
  // Shared store (etcd) with a change feed: reads not marked consistent fail UNAVAILABLE once
  // the feed has been broken this long (Registry::StartFeed).
  absl::Duration max_staleness = absl::Seconds(5);
  // What start-up does with a stored record that does not decode (Registry::Load); a shared
  // store's feed sets such records aside whatever this says.
  DamagedRecords damaged_records = DamagedRecords::kRefuse;
  // Where the store keeps its data (a path, etcd endpoints and prefix), for error messages.
  std::string store_location;
  // HOST:PORT of the HTTP/JSON gateway (server/http/); empty: none. Needs start_http.
  std::string http_listen;
  HttpGatewayStarter start_http;
  // The gateway's threads for unary calls (and idle keep-alive connections), and the most
  // Watch streams it holds open at once (each holds a thread of its own; one more is refused
  // RESOURCE_EXHAUSTED, HTTP 429).
  int http_threads = 16;
  int http_max_watch_streams = 16;
  // PEM files: with tls_cert_file and tls_key_file the gateway serves HTTPS, with
  // tls_client_ca_file it requires client certificates signed by that CA (as `credentials`
  // does for gRPC; main.cc sets both from the same flags).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

class LrschedServer {
 public:
  // `store` must outlive the server; Shutdown closes it.
  static absl::StatusOr<std::unique_ptr<LrschedServer>> Start(const ServerConfig& config,
                                                              Store* store);
  ~LrschedServer();  // Shutdown(0) if still running

  // The address actually bound, e.g. "127.0.0.1:41234".
  const std::string& address() const { return address_; }
  int port() const { return port_; }
  Registry& registry() { return *registry_; }
  // Null unless config.metrics_listen was set; metrics_port() is the HTTP port bound.
  Metrics* metrics() { return metrics_.get(); }
  int metrics_port() const;
  // The HTTP/JSON gateway's port; 0 without config.http_listen.
  int http_port() const { return http_ != nullptr ? http_->port() : 0; }
  // Calls waiting for a worker thread (tests, metrics).
  size_t pool_queued() const { return pool_ != nullptr ? pool_->queued() : 0; }
  // Heavy calls waiting for a heavy-call thread, and running (tests, metrics).
  size_t heavy_queued() const { return heavy_pool_ != nullptr ? heavy_pool_->queued() : 0; }
  int64_t heavy_busy() const { return heavy_pool_ != nullptr ? heavy_pool_->busy() : 0; }

  // Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  LrschedServer() = default;

  Store* store_ = nullptr;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<WorkerPool> heavy_pool_;
  std::unique_ptr<LrSchedulerService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  std::unique_ptr<HttpGatewayHandle> http_;
  std::string address_;
  int port_ = 0;
  bool stopped_ = false;
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_SERVER_H_
