// Copyright lrsched authors.
//
// RpcObserver: a gRPC server interceptor that sees every call of every service (the
// LrScheduler methods, health, reflection; unary and streaming alike) once it ends, and
//   - counts it in Metrics (by method and status code) with its latency, when metrics are on;
//   - writes one structured access-log line per mutation (CreateSession, DeleteSession, Step,
//     ImportState), whatever its outcome:
//       level=info event=access method=Step session=runs/a epoch=12 advanced=true code=OK ms=0.41
//     (epoch: the session's last_epoch after the call, when it succeeded).
// Tokens and request bodies other than the session name are never logged.
//
// Invariant: observing never changes a call: every hook Proceed()s unconditionally.
#ifndef LRSCHED_SERVER_ACCESS_LOG_H_
#define LRSCHED_SERVER_ACCESS_LOG_H_

#include "grpcpp/support/server_interceptor.h"
#include "server/metrics.h"

namespace lrsched {

class RpcObserverFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `metrics` may be null (access log only); it must outlive the server.
  explicit RpcObserverFactory(Metrics* metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  Metrics* const metrics_;
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_ACCESS_LOG_H_
