// Copyright lrsched authors.
//
// LrSchedulerService: the lrsched.v1.LrScheduler gRPC service. It validates every request
// field (validate.h), calls the Registry, and converts results and errors (convert.h).
//
// Every method uses gRPC's callback API. A call whose work is short and never waits (a read of
// in-memory state, for a store this process alone writes) runs inline on gRPC's thread; any
// call that may wait (a mutation waiting for its durable commit, a read that goes to a shared
// store) runs on a WorkerPool, so gRPC's few threads are never blocked and a commit in progress
// holds one pool thread, not a connection; with SQLite a Step holds no thread at all while its
// commit waits (Registry::TryStepAsync). When the pool's queue is full the call is refused at
// once with RESOURCE_EXHAUSTED (retryable overload), as a well-run server sheds load rather
// than queueing without bound.
//
// Heavy calls (Simulate, ImportState, a lookahead costing more than kLightCost, a Step of a
// schedule whose step alone costs more) run on a pool of their own, small and with its own
// queue, so however many arrive they never hold a thread Create, Delete or an ordinary Step
// needs. Simulate and lookaheads are bounded before any work starts: their cost, steps x
// Schedule::step_cost() (the spec's work per step, not just the step count), must be within
// max_call_cost, and their reply's size within max_reply_bytes (RESOURCE_EXHAUSTED naming the
// field and the numbers). Long loops poll for the client's deadline or cancellation every
// kCancelCheckCost units of work.
#ifndef LRSCHED_SERVER_SERVICE_H_
#define LRSCHED_SERVER_SERVICE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "lrsched/v1/lrsched.grpc.pb.h"
#include "server/ops/access_log.h"
#include "server/ops/auth.h"
#include "server/ops/metrics.h"
#include "server/registry/registry.h"
#include "server/rpc/worker_pool.h"
#include "server/rpc/write_health.h"

namespace lrsched {

// Defaults of the service's limits: ServiceOptions, ServerConfig and main.cc's flags all start
// from these.
inline constexpr int64_t kDefaultMaxSimulateSteps = 1'000'000;
inline constexpr int64_t kDefaultMaxCallCost = 1'000'000'000;
inline constexpr int64_t kDefaultMaxReplyBytes = int64_t{64} << 20;
// A lookahead or a step costing more than this (~1-2 ms of work) is a heavy call.
inline constexpr int64_t kLightCost = int64_t{1} << 20;

struct ServiceOptions {
  // Simulate computes at most this many steps x param groups.
  int64_t max_simulate_steps = kDefaultMaxSimulateSteps;
  // The most work one call may ask for, in Schedule::step_cost() units x steps: Simulate's
  // steps, GetLR's ahead and window. The default is about a second of one core's work: 1e6
  // steps of a plain schedule with a dozen groups fit, 1e6 steps of a chain of 60 long
  // lambdas (~140 s) do not.
  int64_t max_call_cost = kDefaultMaxCallCost;
  // The largest reply one call may build (Simulate's trace, GetLR's window), estimated
  // before the work starts.
  int64_t max_reply_bytes = kDefaultMaxReplyBytes;
  // Checks each call's bearer token (server/ops/auth.h); null: no authorization.
  const Authorizer* authorizer = nullptr;
  // Runs the calls that may block (see above). Must outlive the service; required.
  WorkerPool* pool = nullptr;
  // Runs the heavy calls (see above). Must outlive the service; required.
  WorkerPool* heavy_pool = nullptr;
  // Counts each unary call as it ends (access_log.h); null: no metrics. The access log is
  // written either way. Must outlive the service.
  Metrics* metrics = nullptr;
  // Told when the store stops or starts taking writes, as mutations' outcomes show it
  // (write_health.h); the server sets the health service's status from it. Empty: not watched.
  std::function<void(bool writable)> on_store_writable;
  // The key of the HTTP/JSON gateway's calls (HttpGatewayEnv::call_key in server.h); empty:
  // no gateway, and no call's `x-forwarded-for` is believed.
  std::string http_gateway_key;
};

class LrSchedulerService final : public v1::LrScheduler::CallbackService {
 public:
  // `registry` and `options.pool` must outlive the service.
  LrSchedulerService(Registry* registry, ServiceOptions options);

  grpc::ServerUnaryReactor* CreateSession(grpc::CallbackServerContext* ctx,
                                          const v1::CreateSessionRequest* req,
                                          v1::Session* resp) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* ctx,
                                       const v1::GetSessionRequest* req,
                                       v1::Session* resp) override;
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* ctx,
                                         const v1::ListSessionsRequest* req,
                                         v1::ListSessionsResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteSession(grpc::CallbackServerContext* ctx,
                                          const v1::DeleteSessionRequest* req,
                                          v1::DeleteSessionResponse* resp) override;
  grpc::ServerUnaryReactor* Step(grpc::CallbackServerContext* ctx, const v1::StepRequest* req,
                                 v1::StepResponse* resp) override;
  grpc::ServerUnaryReactor* GetLR(grpc::CallbackServerContext* ctx, const v1::GetLRRequest* req,
                                  v1::GetLRResponse* resp) override;
  grpc::ServerUnaryReactor* Simulate(grpc::CallbackServerContext* ctx,
                                     const v1::SimulateRequest* req,
                                     v1::SimulateResponse* resp) override;
  grpc::ServerUnaryReactor* ExportState(grpc::CallbackServerContext* ctx,
                                        const v1::ExportStateRequest* req,
                                        v1::ExportStateResponse* resp) override;
  grpc::ServerUnaryReactor* ImportState(grpc::CallbackServerContext* ctx,
                                        const v1::ImportStateRequest* req,
                                        v1::Session* resp) override;

  grpc::ServerUnaryReactor* AmendSession(grpc::CallbackServerContext* ctx,
                                         const v1::AmendSessionRequest* req,
                                         v1::AmendSessionResponse* resp) override;
  grpc::ServerUnaryReactor* GetHistory(grpc::CallbackServerContext* ctx,
                                       const v1::GetHistoryRequest* req,
                                       v1::GetHistoryResponse* resp) override;

  grpc::ServerWriteReactor<v1::Session>* Watch(grpc::CallbackServerContext* ctx,
                                               const v1::WatchRequest* req) override;

 private:
  // kInline: on gRPC's thread; kPool: on options_.pool; kHeavy: on options_.heavy_pool.
  enum class Where { kInline, kPool, kHeavy };
  // Authorizes the call, runs `body` where `where` says, and finishes the call with its
  // outcome (see Finish). `body` may use the request and the response: both live until the
  // call is finished, and so must `name` (the request's, or a literal). `result`: the session
  // a mutation returns, for the access log.
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx, const char* method,
                                  std::string_view name, Where where,
                                  std::function<absl::Status()> body,
                                  const v1::Session* result = nullptr);
  // Logs and converts the outcome `s` of `call` (call.code is set from it), reports the call
  // to the observer and to write_health_, and finishes it.
  void Finish(grpc::ServerUnaryReactor* reactor, FinishedCall call, const absl::Status& s) const;
  // Inline for a read of memory, the pool for one that may go to the store (a consistent read
  // of a shared store, or one with no change feed running).
  Where ReadWhere(bool consistent) const {
    return registry_->ReadMayBlock(ReadOptions{consistent}) ? Where::kPool : Where::kInline;
  }

  // The methods' work, on whichever thread Serve picked.
  absl::Status DoCreateSession(const v1::CreateSessionRequest& req, v1::Session* resp);
  absl::Status DoListSessions(const v1::ListSessionsRequest& req, v1::ListSessionsResponse* resp);
  static absl::Status ParseStep(const v1::StepRequest& req, StepRequest* step,
                                std::optional<int64_t>* if_epoch);
  absl::Status DoGetLR(grpc::CallbackServerContext* ctx, const v1::GetLRRequest& req,
                       v1::GetLRResponse* resp);
  absl::Status DoSimulate(grpc::CallbackServerContext* ctx, const v1::SimulateRequest& req,
                          v1::SimulateResponse* resp);
  absl::Status DoImportState(const v1::ImportStateRequest& req, v1::Session* resp);
  // service_amend.cc.
  absl::Status DoAmendSession(grpc::CallbackServerContext* ctx, const v1::AmendSessionRequest& req,
                              v1::AmendSessionResponse* resp);
  absl::Status DoGetHistory(grpc::CallbackServerContext* ctx, const v1::GetHistoryRequest& req,
                            v1::GetHistoryResponse* resp);

  // OK, or the refusal of a caller that may not call `method` (see ServiceOptions::authorizer).
  absl::Status Authorize(const grpc::ServerContextBase* ctx, const char* method) const;
  // The caller of an authorized `method` call (its token's name and role); empty without
  // tokens.
  Caller CallerOf(const grpc::ServerContextBase* ctx, const char* method) const;
  // The HTTP client's address of a call the gateway made (FinishedCall::http_peer), else empty.
  std::string_view HttpPeer(const grpc::ServerContextBase* ctx) const;

  // Requests that do not parse (service_parse.cc). The constructor replaces grpc++'s handler
  // of every method with one that refuses them itself (parse_checked_handler.h).
  template <class Request, class Response>
  using UnaryMethod = grpc::ServerUnaryReactor* (
      LrSchedulerService::*)(grpc::CallbackServerContext*, const Request*, Response*);
  void ParseCheckAllMethods();
  template <class Request, class Response>
  void ParseChecked(const char* method, UnaryMethod<Request, Response> serve);
  // The refusal of a `method` call whose body is not a `type`: the authorization's, else
  // INVALID_ARGUMENT "could not parse request ...".
  absl::Status Unparsed(const grpc::ServerContextBase* ctx, const char* method,
                        const std::string& type) const;

  Registry* const registry_;
  const ServiceOptions options_;
  const CallObserver observer_;
  const WriteHealth write_health_;
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_SERVICE_H_
