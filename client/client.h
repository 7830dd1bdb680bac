// Copyright lrsched authors.
//
// lrsched::Client: the C++ client library for lrsched-server (target lrsched::client). One
// object per channel; thread-safe (gRPC stubs are), so one Client may serve many threads.
//
//   lrsched::ClientOptions o;
//   o.server = "127.0.0.1:50051";
//   auto client = lrsched::Client::Connect(o);
//   auto s = client.value()->CreateSession("run1/lr", spec_json, {});
//   lrsched::StepArgs step;
//   step.if_epoch = s->last_epoch();
//   auto r = client.value()->Step("run1/lr", step);
//
// Every RPC returns the reply or the call's status as absl::Status (gRPC's code and message).
// Each attempt has its own deadline (`timeout`). Calls that are safe to repeat are retried with
// exponential backoff while they fail UNAVAILABLE (server restarting, connection refused):
// GetSession, ListSessions, GetLR, Simulate, ExportState, health checks, Watch's (re)subscribe,
// CreateSession (idempotent by contract: the same create returns the existing session) and Step
// only when it carries if_epoch (a repeated conditional step cannot step twice), GetHistory, and
// AmendSession's dry runs. Delete, Import, unconditional Steps and AmendSession (not dry) are
// never retried: a repeat could act twice or fail spuriously.
// With a token every call carries `authorization: Bearer <token>`.
#ifndef LRSCHED_CLIENT_CLIENT_H_
#define LRSCHED_CLIENT_CLIENT_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "lrsched/v1/lrsched.grpc.pb.h"

namespace lrsched {

struct ClientOptions {
  std::string server = "127.0.0.1:50051";
  // Deadline of each attempt (Watch streams have none).
  absl::Duration timeout = absl::Seconds(30);
  // TLS when ca_file is set; a client certificate (mutual TLS) when cert_file/key_file are.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // Sent as `authorization: Bearer <token>` when non-empty.
  std::string token;
  // Attempts of a retry-safe call (1: no retries), and the backoff between them: initial,
  // doubled per attempt up to max, with +-20% jitter.
  int max_attempts = 6;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
};

// One Step call's arguments (see StepRequest in lrsched.proto).
struct StepArgs {
  std::optional<double> metric;
  std::optional<double> epoch;
  std::optional<int64_t> if_epoch;
  // megatron.OptimizerParamScheduler.step(increment); absent: the spec's default.
  std::optional<int64_t> increment;
};

// Stops a Watch from another thread: Cancel() ends the stream (the Watch returns CANCELLED) and
// makes every later Watch given this object return CANCELLED at once. RemoteSchedule's followers
// stop their background watch with it.
class WatchCanceller {
 public:
  void Cancel();
  bool cancelled() const;

 private:
  friend class Client;
  mutable std::mutex mu_;
  std::condition_variable cv_;          // wakes a Watch waiting out its backoff
  grpc::ClientContext* ctx_ = nullptr;  // the stream in progress, if any
  bool cancelled_ = false;
};

enum class HealthStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };
const char* HealthStatusName(HealthStatus s);

class Client {
 public:
  // Builds the channel (TLS files are read here: INVALID_ARGUMENT if unreadable). Connecting
  // is lazy: an unreachable server shows as UNAVAILABLE on the first call.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  // Over an existing channel (tests, or callers with their own credentials); TLS fields of
  // `options` are ignored.
  static std::unique_ptr<Client> FromChannel(std::shared_ptr<grpc::Channel> channel,
                                             const ClientOptions& options);

  absl::StatusOr<v1::Session> CreateSession(const std::string& name, const std::string& spec_json,
                                            const std::map<std::string, std::string>& labels);
  // `consistent`: with an etcd-backed server, read etcd rather than the replica's memory (which
  // may lag another replica's commit briefly); no difference on SQLite. Also ListAllSessions
  // and GetLR.
  absl::StatusOr<v1::Session> GetSession(const std::string& name, bool consistent = false);
  absl::StatusOr<v1::ListSessionsResponse> ListSessions(const v1::ListSessionsRequest& request);
  // Every page of ListSessions, in name order.
  absl::StatusOr<std::vector<v1::Session>> ListAllSessions(const std::string& name_prefix,
                                                           bool consistent = false);
  absl::Status DeleteSession(const std::string& name,
                             std::optional<int64_t> if_revision = std::nullopt);
  absl::StatusOr<v1::StepResponse> Step(const std::string& name, const StepArgs& args);
  absl::StatusOr<v1::GetLRResponse> GetLR(const std::string& name, int64_t ahead = 0,
                                          int32_t window = 0, bool consistent = false);
  absl::StatusOr<v1::SimulateResponse> Simulate(const v1::SimulateRequest& request);
  absl::StatusOr<v1::ExportStateResponse> ExportState(const std::string& name);
  absl::StatusOr<v1::Session> ImportState(const v1::ImportStateRequest& request);

  // Streams the session: `on_update` gets the current state, then each change, until it
  // returns false (then OK). Ends NOT_FOUND when the session is deleted (or does not exist).
  // A stream broken by UNAVAILABLE is resubscribed with backoff; `revision` shows any gap.
  // `definition_changes_only`: only the first state and those after an amendment or import
  // (WatchRequest.definition_changes_only), not one per step.
  absl::Status Watch(const std::string& name,
                     const std::function<bool(const v1::Session&)>& on_update,
                     WatchCanceller* canceller = nullptr, bool definition_changes_only = false);

  // Changes a running schedule (AmendSessionRequest in lrsched.proto: continue_with,
  // reparameterize or scale at at_epoch; dry_run changes nothing and returns both futures).
  // A dry run is retried like a read; an amendment is not (the server may have applied it
  // before an UNAVAILABLE reply; GetHistory shows whether it did).
  absl::StatusOr<v1::AmendSessionResponse> Amend(const v1::AmendSessionRequest& request);
  // One page of a session's record (GetHistoryRequest).
  absl::StatusOr<v1::GetHistoryResponse> GetHistory(const v1::GetHistoryRequest& request);
  // Every page of the record of epochs from_epoch .. to_epoch (absent: the session's
  // last_epoch), as one reply: the epochs of all pages in order, the spec, amendments and
  // first_epoch of the first page, no next_page_token.
  absl::StatusOr<v1::GetHistoryResponse> History(const std::string& name, int64_t from_epoch = 0,
                                                 std::optional<int64_t> to_epoch = std::nullopt);

  // grpc.health.v1.Health/Check for `service` ("" = the whole server).
  absl::StatusOr<HealthStatus> Health(const std::string& service = "");

  // RPC attempts made so far (every retry counts), by method name ("GetLR", "Step", ...).
  int64_t rpc_count(const std::string& method) const;
  int64_t rpc_count() const;

 private:
  Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options);
  void Prepare(grpc::ClientContext* ctx, bool deadline) const;
  void Count(const std::string& method);
  // Runs `attempt` (one RPC with a fresh context) until it succeeds, fails other than
  // UNAVAILABLE, or retry_safe is false / attempts run out.
  absl::Status Call(const std::string& method, bool retry_safe,
                    const std::function<grpc::Status(grpc::ClientContext*)>& attempt);
  absl::Duration Backoff(int attempt) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LrScheduler::Stub> stub_;
  ClientOptions options_;
  mutable std::mutex counts_mu_;
  std::map<std::string, int64_t> counts_;
};

// gRPC's status as absl::Status (same code numbers and message).
absl::Status FromGrpcStatus(const grpc::Status& s);

}  // namespace lrsched

#endif  // LRSCHED_CLIENT_CLIENT_H_
