// Copyright lrsched authors.
//
// What the server records about each call once it ends:
//   - it counts the call in Metrics (by method and status code) with its latency, when metrics
//     are on;
//   - it writes one structured access-log line per mutation (CreateSession, DeleteSession, Step,
//     ImportState, AmendSession), whatever its outcome:
//       level=info event=access method=Step session=runs/a epoch=12 advanced=true code=OK ms=0.41
//     (epoch: the session's last_epoch after the call, when it succeeded; a call made over
//     HTTP/JSON adds `via=http peer=ADDR`, its HTTP client's address).
// Tokens and request bodies other than the session name are never logged.
//
// Calls come in two ways:
//   - CallObserver: LrSchedulerService reports its own unary calls, with the fields it already
//     holds typed.
//   - RpcObserverFactory (server/rpc/call_interceptor.h): a gRPC server interceptor sees every
//     other call (Watch streams, health, reflection) as it ends.
// The unary LrScheduler calls are the ones under load, and an interceptor costs each call it
// sees gRPC's own bookkeeping of every batch: a few microseconds of a Step's ~120 µs of server
// CPU (bench/HISTORY.md). A request that does not parse is refused by the service itself
// (INVALID_ARGUMENT, service_parse.cc), so it is seen like any other call: counted with its
// method, and in the access log when the method is a mutation (session="").
//
// Invariant: observing never changes a call: every interceptor hook Proceed()s unconditionally.
#ifndef LRSCHED_SERVER_ACCESS_LOG_H_
#define LRSCHED_SERVER_ACCESS_LOG_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/ops/metrics.h"

namespace lrsched {

// The service whose unary calls CallObserver sees, as gRPC names it in "/SERVICE/Method".
inline constexpr std::string_view kLrSchedulerService = "lrsched.v1.LrScheduler";

// One finished unary call of lrsched.v1.LrScheduler, as its handler saw it.
// Whether `method` (a short name: "Step") writes to the store: CreateSession, DeleteSession,
// Step, ImportState, AmendSession (a dry run too: it is logged like the others).
bool IsMutation(std::string_view method);

struct FinishedCall {
  std::string_view method;                        // the method's name: "Step"
  std::string_view session;                       // the request's session name ("" if none)
  absl::Time start;                               // when the handler began
  absl::StatusCode code = absl::StatusCode::kOk;  // gRPC's codes have the same numbers
  std::optional<int64_t> epoch;  // the session's last_epoch after a successful mutation
  std::optional<bool> advanced;  // Step: whether it advanced
  // Set when the call came through the HTTP/JSON gateway (server/http/): the HTTP client's
  // address, logged as `via=http peer=ADDR`. Empty for a gRPC client.
  std::string_view http_peer;
};

class CallObserver {
 public:
  // `metrics` may be null (access log only); it must outlive the observer.
  explicit CallObserver(Metrics* metrics) : metrics_(metrics) {}
  void Finished(const FinishedCall& call) const;

 private:
  Metrics* const metrics_;
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_ACCESS_LOG_H_
