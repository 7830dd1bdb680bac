// Copyright lrsched authors.
//
// RouteHandlers: the gateway's request handling behind the routes RegisterRoutes adds
// (gateway.h): match the route, build the request message, call the LrScheduler service over
// the in-process channel, write the reply or the JSON error body. handlers.cc has the unary
// calls, watch_sse.cc the Server-Sent Events of Watch.
//
// Thread-safe: cpp-httplib calls Handle on many threads at once.
#ifndef LRSCHED_SERVER_HTTP_HANDLERS_H_
#define LRSCHED_SERVER_HTTP_HANDLERS_H_

#include <httplib.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/client_context.h"
#include "lrsched/v1/lrsched.grpc.pb.h"
#include "server/http/routes.h"

namespace lrsched::http {

// Counters the metrics read (shared: the metrics may outlive the handlers).
struct HttpCounters {
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> errors{0};         // answered with a status >= 400
  std::atomic<int64_t> watch_streams{0};  // open now
};

class RouteHandlers {
 public:
  // `max_body_bytes`: what the server's payload limit is, for the 413's message.
  RouteHandlers(std::shared_ptr<grpc::ChannelInterface> channel, int max_watch_streams,
                size_t max_body_bytes);

  // Any method on a /v1 path.
  void Handle(const httplib::Request& req, httplib::Response& res);
  // The body of an error status that has none (httplib's own 404, 413, 400), as JSON.
  void FillError(const httplib::Request& req, httplib::Response& res);

  // Ends open Watch streams at their next wake-up and refuses new ones.
  void StopStreams() { stopping_ = true; }
  bool stopping() const { return stopping_; }
  const std::shared_ptr<HttpCounters>& counters() const { return counters_; }

 private:
  template <class Req, class Resp>
  using StubMethod = grpc::Status (v1::LrScheduler::Stub::*)(grpc::ClientContext*, const Req&,
                                                             Resp*);
  // Builds the request from the body (when `has_body`), the query and the path's name, calls
  // `method`, and writes the reply as JSON.
  template <class Req, class Resp>
  void Unary(const httplib::Request& req, httplib::Response& res, const RouteMatch& route,
             bool has_body, StubMethod<Req, Resp> method);
  // watch_sse.cc.
  void Watch(const httplib::Request& req, httplib::Response& res, const RouteMatch& route);

  std::unique_ptr<v1::LrScheduler::Stub> stub_;
  const int max_watch_streams_;
  const size_t max_body_bytes_;
  std::atomic<bool> stopping_{false};
  std::shared_ptr<HttpCounters> counters_ = std::make_shared<HttpCounters>();
};

// The gateway's metadata of a call: the caller's Authorization header as `authorization`, its
// address as `x-forwarded-for`. INVALID_ARGUMENT for a header gRPC could not carry.
absl::Status PrepareContext(const httplib::Request& req, grpc::ClientContext* ctx);

// Writes the JSON error body with the HTTP status of gRPC `code`.
void WriteError(httplib::Response& res, int code, const std::string& message);

}  // namespace lrsched::http

#endif  // LRSCHED_SERVER_HTTP_HANDLERS_H_
