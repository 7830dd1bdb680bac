// Copyright lrsched authors.
#include "server/rpc/server.h"

#include <atomic>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/ops/access_log.h"
#include "server/ops/log.h"
#include "server/rpc/call_interceptor.h"

namespace lrsched {
namespace {

// "host:0" + port -> "host:port" (the host part as given, brackets and all).
std::string BoundAddress(const std::string& listen, int port) {
  size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  return absl::StrCat(host, ":", port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<LrschedServer>> LrschedServer::Start(const ServerConfig& config,
                                                                    Store* store) {
  std::unique_ptr<LrschedServer> s(new LrschedServer());
  s->store_ = store;
  s->registry_ = std::make_unique<Registry>(store, config.max_sessions);
  absl::Time t0 = absl::Now();
  absl::Status loaded = s->registry_->Load(LoadOptions{config.damaged_records});
  if (!loaded.ok()) {
    s->stopped_ = true;  // nothing to shut down yet
    std::string msg(loaded.message());
    if (!config.store_location.empty()) msg = absl::StrCat(config.store_location, ": ", msg);
    if (absl::IsDataLoss(loaded)) {
      absl::StrAppend(&msg, "; to serve the other sessions and set this one aside (it answers ",
                      "DATA_LOSS until deleted), start with --damaged_records=quarantine");
    }
    return absl::Status(loaded.code(), msg);
  }
  logging::Info("sessions_loaded")
      .Kv("count", static_cast<int64_t>(s->registry_->size()))
      .Kv("damaged", static_cast<int64_t>(s->registry_->damaged_count()))
      .Kv("ms", absl::ToInt64Milliseconds(absl::Now() - t0));
  // A shared store (etcd): keep the sessions in memory fresh from its change feed, so reads
  // need not re-read the store. Every SharedStore has a feed; a store this process alone
  // writes needs none.
  if (store->shared()) {
    absl::Status feed = s->registry_->StartFeed(FeedOptions{config.max_staleness});
    if (!feed.ok()) {
      s->stopped_ = true;  // nothing to shut down yet
      return feed;
    }
  }
  s->pool_ = std::make_unique<WorkerPool>(
      WorkerPool::Options{config.worker_threads, config.max_queued_calls});
  s->heavy_pool_ = std::make_unique<WorkerPool>(
      WorkerPool::Options{config.heavy_threads, config.max_heavy_queued});
  if (!config.metrics_listen.empty()) {
    s->metrics_ = std::make_unique<Metrics>();
    Registry* registry = s->registry_.get();
    s->metrics_->AddGauge("lrsched_sessions", "Sessions held.", "gauge",
                          [registry] { return static_cast<double>(registry->size()); });
    s->metrics_->AddGauge("lrsched_damaged_records",
                          "Sessions whose stored record is damaged and set aside (DATA_LOSS).",
                          "gauge",
                          [registry] { return static_cast<double>(registry->damaged_count()); });
    if (store->shared()) {
      s->metrics_->AddGauge("lrsched_store_feed_healthy",
                            "1 while the shared store's change feed works (or none runs).", "gauge",
                            [registry] { return registry->feed_status().healthy ? 1.0 : 0.0; });
      s->metrics_->AddGauge(
          "lrsched_store_feed_revision", "Store revision the sessions in memory are current to.",
          "gauge", [registry] { return static_cast<double>(registry->feed_status().revision); });
      s->metrics_->AddGauge(
          "lrsched_store_feed_broken_seconds",
          "How long the change feed has been broken (0 while it works).", "gauge", [registry] {
            FeedStatus st = registry->feed_status();
            return st.healthy ? 0.0 : absl::ToDoubleSeconds(absl::Now() - st.broken_since);
          });
    }
    WorkerPool* pool = s->pool_.get();
    s->metrics_->AddGauge("lrsched_calls_queued", "Calls waiting for a worker thread.", "gauge",
                          [pool] { return static_cast<double>(pool->queued()); });
    s->metrics_->AddGauge("lrsched_workers_busy", "Worker threads running a call.", "gauge",
                          [pool] { return static_cast<double>(pool->busy()); });
    WorkerPool* heavy = s->heavy_pool_.get();
    s->metrics_->AddGauge("lrsched_heavy_calls_queued",
                          "Heavy calls (Simulate, long lookaheads, ImportState) waiting for a "
                          "heavy-call thread.",
                          "gauge", [heavy] { return static_cast<double>(heavy->queued()); });
    s->metrics_->AddGauge("lrsched_heavy_workers_busy", "Heavy-call threads running a call.",
                          "gauge", [heavy] { return static_cast<double>(heavy->busy()); });
    auto http = MetricsHttpServer::Start(config.metrics_listen, s->metrics_.get());
    if (!http.ok()) {
      s->stopped_ = true;  // nothing to shut down yet
      return http.status();
    }
    s->metrics_http_ = *std::move(http);
  }
  ServiceOptions service_options;
  service_options.max_simulate_steps = config.max_simulate_steps;
  service_options.authorizer = config.authorizer;
  service_options.pool = s->pool_.get();
  service_options.heavy_pool = s->heavy_pool_.get();
  service_options.max_call_cost = config.max_call_cost;
  service_options.max_reply_bytes = config.max_reply_bytes;
  service_options.metrics = s->metrics_.get();
  // The health service says NOT_SERVING while the store refuses writes (write_health.h). It
  // exists once the server is built; a change before that is not reported.
  auto health = std::make_shared<std::atomic<grpc::HealthCheckServiceInterface*>>(nullptr);
  service_options.on_store_writable = [health](bool writable) {
    if (auto* h = health->load()) h->SetServingStatus(writable);
  };
  s->service_ = std::make_unique<LrSchedulerService>(s->registry_.get(), service_options);

  // Both are process-wide switches that take effect for servers built afterwards.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  auto creds = config.credentials ? config.credentials : grpc::InsecureServerCredentials();
  builder.AddListeningPort(config.listen, creds, &s->port_);
  builder.RegisterService(s->service_.get());
  builder.SetMaxReceiveMessageSize(config.max_receive_bytes);
  // gRPC sets SO_REUSEPORT by default: a second server on a busy port would then start and
  // take half the connections. Fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  grpc::ResourceQuota quota("lrsched");
  quota.SetMaxThreads(config.max_threads);
  builder.SetResourceQuota(quota);
  // The service reports its unary calls itself; this sees the rest (access_log.h).
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> observers;
  observers.push_back(std::make_unique<RpcObserverFactory>(s->metrics_.get()));
  builder.experimental().SetInterceptorCreators(std::move(observers));
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    if (s->server_ != nullptr) s->server_->Shutdown();
    s->stopped_ = true;
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.listen));
  }
  s->address_ = BoundAddress(config.listen, s->port_);
  if (!config.http_listen.empty()) {
    absl::StatusOr<std::unique_ptr<HttpGatewayHandle>> http =
        config.start_http ? config.start_http(config, s->server_.get(), s->metrics_.get())
                          : absl::InvalidArgumentError(
                                "--http_listen: this program has no HTTP gateway linked in");
    if (!http.ok()) {
      s->Shutdown(absl::ZeroDuration());
      return http.status();
    }
    s->http_ = *std::move(http);
  }
  if (auto* h = s->server_->GetHealthCheckService()) {
    // Also by the service's own name, for clients that check the service they call.
    h->SetServingStatus(v1::LrScheduler::service_full_name(), true);
    health->store(h);
  }
  return s;
}

int LrschedServer::metrics_port() const {
  return metrics_http_ != nullptr ? metrics_http_->port() : 0;
}

LrschedServer::~LrschedServer() { Shutdown(absl::ZeroDuration()); }

void LrschedServer::Shutdown(absl::Duration grace) {
  // Start marks every early failure stopped_; a server_ that is null here would be a missed
  // path, which must not turn a refused start into a crash.
  if (stopped_ || server_ == nullptr) return;
  stopped_ = true;
  // Watch streams first: they would otherwise hold Shutdown until its deadline (those of the
  // HTTP gateway too: they end with UNAVAILABLE like any other).
  registry_->Shutdown();
  // Then the gateway, while the gRPC server still answers the calls it has in flight.
  if (http_ != nullptr) http_->Stop();
  auto* health = server_->GetHealthCheckService();
  // NOT_SERVING for good: a write that succeeds during the grace period must not undo it.
  if (health != nullptr) health->Shutdown();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  // Every call is answered by now; the pool has nothing left but its idle threads.
  pool_->Shutdown();
  heavy_pool_->Shutdown();
  registry_->StopFeed();  // before the store it reads from closes
  store_->Close();
  // After the store: a scrape during shutdown still answers (and reads only in-memory state).
  if (metrics_http_ != nullptr) metrics_http_->Stop();
  logging::Info("server_stopped").Kv("addr", address_);
}

}  // namespace lrsched
