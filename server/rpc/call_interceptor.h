// Copyright lrsched authors.
//
// RpcObserverFactory: the gRPC server interceptor that counts, in Metrics, every call the
// service does not report itself through CallObserver (server/ops/access_log.h): Watch streams
// (latency: the stream's lifetime), health checks, reflection. The unary LrScheduler calls get
// no interceptor: an interceptor costs each call it sees gRPC's own bookkeeping of every batch.
//
// Invariant: observing never changes a call: every interceptor hook Proceed()s unconditionally.
#ifndef LRSCHED_SERVER_RPC_CALL_INTERCEPTOR_H_
#define LRSCHED_SERVER_RPC_CALL_INTERCEPTOR_H_

#include "grpcpp/support/server_interceptor.h"
#include "server/ops/metrics.h"

namespace lrsched {

class RpcObserverFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `metrics` may be null (then nothing is intercepted); it must outlive the server.
  explicit RpcObserverFactory(Metrics* metrics) : metrics_(metrics) {}

  // Null (no interceptor) for the unary LrScheduler calls, which CallObserver sees.
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  Metrics* const metrics_;
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_RPC_CALL_INTERCEPTOR_H_
