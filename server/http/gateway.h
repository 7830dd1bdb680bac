// Copyright lrsched authors.
//
// The HTTP/JSON gateway: every LrScheduler RPC as JSON over HTTP (the route table, JSON
// conventions, error body and Server-Sent Events framing are the contract at the top of
// proto/lrsched/v1/lrsched.proto), served by cpp-httplib on --http_listen.
//
// Each HTTP request is transcoded into the RPC's request message and sent to the server's own
// LrScheduler service over grpc::Server::InProcessChannel (no network hop), as grpc-gateway
// does: HTTP callers get the same registry, limits, bearer tokens and roles, access log and
// metrics as gRPC callers, by construction. The `Authorization` header travels as the
// `authorization` metadata, the HTTP client's address as `x-forwarded-for`.
//
// Threads: cpp-httplib runs each connection on a thread of its pool. A unary call holds one
// for the call; an idle keep-alive connection holds one for its timeout (2 s); a Watch stream
// holds one for its life. The pool has http_threads + http_max_watch_streams threads, and a
// Watch beyond http_max_watch_streams open at once is refused (429), so streams never starve
// unary calls.
//
// Invariants: Stop() ends every Watch stream (an `event: end` with UNAVAILABLE) and returns
// once no handler runs; a client that goes away ends its stream within a few seconds (the
// stream's keep-alive comment fails to write).
#ifndef LRSCHED_SERVER_HTTP_GATEWAY_H_
#define LRSCHED_SERVER_HTTP_GATEWAY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "server/ops/metrics.h"
#include "server/rpc/server.h"

namespace httplib {
class Server;
}

namespace lrsched::http {

class RouteHandlers;

// Starts serving on config.http_listen (HTTPS with config.tls_cert_file/tls_key_file). Matches
// HttpGatewayStarter: main.cc sets ServerConfig::start_http = StartGateway.
absl::StatusOr<std::unique_ptr<HttpGatewayHandle>> StartGateway(const ServerConfig& config,
                                                                grpc::Server* grpc_server,
                                                                Metrics* metrics);

// What the routes need: the in-process channel's stub, the Watch stream bound and the
// stopping flag. Shared by every handler registered on a server; outlives them.
struct GatewayOptions {
  int max_watch_streams = 16;
  // The server's request size limit (httplib's payload limit), for the 413's message.
  size_t max_body_bytes = 4 << 20;
};

// Registers the /v1 routes on `http` (and its error handler, which gives every error status
// the JSON error body). Other handlers (the dashboard) may be registered on the same server,
// on paths outside /v1. The returned object must outlive `http`'s serving, and Stop() on it
// ends open Watch streams.
std::shared_ptr<RouteHandlers> RegisterRoutes(httplib::Server& http, grpc::Server* grpc_server,
                                              const GatewayOptions& options);

// Ends every open Watch stream of `routes` promptly and refuses new ones (before
// httplib::Server::stop).
void StopStreams(RouteHandlers& routes);

}  // namespace lrsched::http

#endif  // LRSCHED_SERVER_HTTP_GATEWAY_H_
