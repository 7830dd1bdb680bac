// Copyright lrsched authors.
//
// LrSchedulerService: the lrsched.v1.LrScheduler gRPC service. It validates every request
// field (validate.h), calls the Registry, and converts results and errors (convert.h). Unary
// methods use the synchronous API (a Step blocks on its durable commit, which the sync thread
// pool is made for); Watch uses the callback API, so an idle watch holds no thread and a
// cancelled one ends at once.
#ifndef LRSCHED_SERVER_SERVICE_H_
#define LRSCHED_SERVER_SERVICE_H_

#include <cstdint>

#include "lrsched/v1/lrsched.grpc.pb.h"
#include "server/auth.h"
#include "server/registry.h"

namespace lrsched {

struct ServiceOptions {
  // Simulate computes at most this many steps x param groups.
  int64_t max_simulate_steps = 1'000'000;
  // Checks each call's bearer token (server/auth.h); null: no authorization.
  const Authorizer* authorizer = nullptr;
};

class LrSchedulerService final
    : public v1::LrScheduler::WithCallbackMethod_Watch<v1::LrScheduler::Service> {
 public:
  // `registry` must outlive the service.
  LrSchedulerService(Registry* registry, ServiceOptions options);

  grpc::Status CreateSession(grpc::ServerContext* ctx, const v1::CreateSessionRequest* req,
                             v1::Session* resp) override;
  grpc::Status GetSession(grpc::ServerContext* ctx, const v1::GetSessionRequest* req,
                          v1::Session* resp) override;
  grpc::Status ListSessions(grpc::ServerContext* ctx, const v1::ListSessionsRequest* req,
                            v1::ListSessionsResponse* resp) override;
  grpc::Status DeleteSession(grpc::ServerContext* ctx, const v1::DeleteSessionRequest* req,
                             v1::DeleteSessionResponse* resp) override;
  grpc::Status Step(grpc::ServerContext* ctx, const v1::StepRequest* req,
                    v1::StepResponse* resp) override;
  grpc::Status GetLR(grpc::ServerContext* ctx, const v1::GetLRRequest* req,
                     v1::GetLRResponse* resp) override;
  grpc::Status Simulate(grpc::ServerContext* ctx, const v1::SimulateRequest* req,
                        v1::SimulateResponse* resp) override;
  grpc::Status ExportState(grpc::ServerContext* ctx, const v1::ExportStateRequest* req,
                           v1::ExportStateResponse* resp) override;
  grpc::Status ImportState(grpc::ServerContext* ctx, const v1::ImportStateRequest* req,
                           v1::Session* resp) override;

  grpc::ServerWriteReactor<v1::Session>* Watch(grpc::CallbackServerContext* ctx,
                                               const v1::WatchRequest* req) override;

 private:
  // OK, or the refusal of a caller that may not call `method` (see ServiceOptions::authorizer).
  absl::Status Authorize(const grpc::ServerContextBase* ctx, const char* method) const;

  Registry* const registry_;
  const ServiceOptions options_;
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_SERVICE_H_
