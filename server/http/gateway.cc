// Copyright lrsched authors.
#include "server/http/gateway.h"

#include <httplib.h>

#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/support/channel_arguments.h"
#include "server/http/handlers.h"
#include "server/ops/log.h"

namespace lrsched::http {
namespace {

// Every path of the route table: /v1/sessions..., /v1:simulate. Anything else is left to
// other handlers (the dashboard) or httplib's 404.
constexpr char kRoutes[] = R"(/v1([/:].*)?)";

class Gateway final : public HttpGatewayHandle {
 public:
  ~Gateway() override { Stop(); }
  int port() const override { return port_; }
  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    // Streams first: each ends with an `event: end` at its next tick, freeing its thread,
    // so stop() below never waits on an open client.
    if (routes_ != nullptr) routes_->StopStreams();
    if (http_ != nullptr) http_->stop();
    if (thread_.joinable()) thread_.join();
    logging::Info("http_stopped").Kv("port", static_cast<int64_t>(port_));
  }

  std::unique_ptr<httplib::Server> http_;
  std::shared_ptr<RouteHandlers> routes_;
  std::thread thread_;
  int port_ = 0;
  bool stopped_ = false;
};

}  // namespace

std::shared_ptr<RouteHandlers> RegisterRoutes(httplib::Server& http, grpc::Server* grpc_server,
                                              const GatewayOptions& options) {
  grpc::ChannelArguments args;
  // Replies are bounded by the service (--max_reply_bytes), not by the channel's 4 MiB default.
  args.SetMaxReceiveMessageSize(-1);
  auto routes = std::make_shared<RouteHandlers>(grpc_server->InProcessChannel(args),
                                                options.max_watch_streams, options.max_body_bytes);
  RouteHandlers* r = routes.get();
  auto handle = [r](const httplib::Request& req, httplib::Response& res) { r->Handle(req, res); };
  http.Get(kRoutes, handle);
  http.Post(kRoutes, handle);
  http.Delete(kRoutes, handle);
  http.Put(kRoutes, handle);
  http.Patch(kRoutes, handle);
  http.Options(kRoutes, handle);
  httplib::Server::HandlerWithResponse on_error = [r](const httplib::Request& req,
                                                      httplib::Response& res) {
    r->FillError(req, res);
    return httplib::Server::HandlerResponse::Handled;
  };
  http.set_error_handler(std::move(on_error));
  std::shared_ptr<HttpCounters> counters = routes->counters();
  http.set_logger([counters](const httplib::Request&, const httplib::Response& res) {
    ++counters->requests;
    if (res.status >= 400) ++counters->errors;
  });
  return routes;
}

void StopStreams(RouteHandlers& routes) { routes.StopStreams(); }

absl::StatusOr<std::unique_ptr<HttpGatewayHandle>> StartGateway(const ServerConfig& config,
                                                                grpc::Server* grpc_server,
                                                                Metrics* metrics) {
  const std::string& listen = config.http_listen;
  size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_listen: expected HOST:PORT, got \"", listen, "\""));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (config.http_threads < 1 || config.http_max_watch_streams < 0) {
    return absl::InvalidArgumentError(
        "--http_threads must be at least 1 and --http_max_watch_streams not negative");
  }
  auto g = std::make_unique<Gateway>();
  const bool tls = !config.tls_cert_file.empty();
  if (tls) {
    auto ssl = std::make_unique<httplib::SSLServer>(
        config.tls_cert_file.c_str(), config.tls_key_file.c_str(),
        config.tls_client_ca_file.empty() ? nullptr : config.tls_client_ca_file.c_str());
    if (!ssl->is_valid()) {
      g->stopped_ = true;
      return absl::InvalidArgumentError(
          absl::StrCat("--http_listen: cannot set up TLS from --tls_cert=", config.tls_cert_file,
                       " and --tls_key=", config.tls_key_file,
                       config.tls_client_ca_file.empty() ? "" : " and --tls_client_ca=",
                       config.tls_client_ca_file));
    }
    g->http_ = std::move(ssl);
  } else {
    g->http_ = std::make_unique<httplib::Server>();
  }
  const int threads = config.http_threads + config.http_max_watch_streams;
  g->http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // An idle keep-alive connection holds a pool thread until this timeout, and stop() waits
  // for it: keep it short.
  g->http_->set_keep_alive_timeout(2);
  g->http_->set_payload_max_length(static_cast<size_t>(config.max_receive_bytes));
  // As for metrics: no SO_REUSEPORT, so a busy port fails rather than sharing connections.
  g->http_->set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  GatewayOptions options;
  options.max_watch_streams = config.http_max_watch_streams;
  options.max_body_bytes = static_cast<size_t>(config.max_receive_bytes);
  g->routes_ = RegisterRoutes(*g->http_, grpc_server, options);
  int bound = port == 0 ? g->http_->bind_to_any_port(host)
                        : (g->http_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    g->stopped_ = true;
    return absl::UnavailableError(absl::StrCat("--http_listen: cannot listen on ", listen));
  }
  g->port_ = bound;
  if (metrics != nullptr) {
    std::shared_ptr<HttpCounters> c = g->routes_->counters();
    metrics->AddGauge("lrsched_http_requests_total",
                      "HTTP requests answered by the HTTP/JSON gateway (their calls are also "
                      "in lrsched_rpc_total).",
                      "counter", [c] { return static_cast<double>(c->requests.load()); });
    metrics->AddGauge("lrsched_http_errors_total",
                      "HTTP/JSON gateway answers with an HTTP status of 400 or more.", "counter",
                      [c] { return static_cast<double>(c->errors.load()); });
    metrics->AddGauge("lrsched_http_watch_streams", "Watch streams open over HTTP (SSE).", "gauge",
                      [c] { return static_cast<double>(c->watch_streams.load()); });
  }
  httplib::Server* http = g->http_.get();
  g->thread_ = std::thread([http] { http->listen_after_bind(); });
  // stop() is a no-op until the listener runs; wait for it so Stop can never miss it.
  for (int i = 0; i < 5000 && !http->is_running(); ++i) absl::SleepFor(absl::Milliseconds(1));
  logging::Info("http_listening")
      .Kv("port", static_cast<int64_t>(bound))
      .Kv("tls", tls)
      .Kv("mtls", tls && !config.tls_client_ca_file.empty());
  return std::unique_ptr<HttpGatewayHandle>(std::move(g));
}

}  // namespace lrsched::http
