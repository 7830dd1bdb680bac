// Copyright lrsched authors.
#include "client/client.h"

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace lrsched {
namespace {

absl::Status ReadFile(const std::string& what, const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read ", path));
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> Reply(absl::Status s, T reply) {
  if (!s.ok()) return s;
  return reply;
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(static_cast<int>(s.error_code())),
                      s.error_message());
}

const char* HealthStatusName(HealthStatus s) {
  switch (s) {
    case HealthStatus::kServing:
      return "SERVING";
    case HealthStatus::kNotServing:
      return "NOT_SERVING";
    case HealthStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
    default:
      return "UNKNOWN";
  }
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.ca_file.empty() && options.cert_file.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    absl::Status s;
    if (!options.ca_file.empty()) s = ReadFile("--tls_ca", options.ca_file, &ssl.pem_root_certs);
    if (s.ok() && !options.cert_file.empty()) {
      s = ReadFile("--tls_cert", options.cert_file, &ssl.pem_cert_chain);
      if (s.ok()) s = ReadFile("--tls_key", options.key_file, &ssl.pem_private_key);
    }
    if (!s.ok()) return s;
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  // Replies stay small, but allow what the server may send (a window of 1e6 values).
  args.SetMaxReceiveMessageSize(64 << 20);
  // gRPC's own reconnect backoff starts at 1 s and grows to 2 min; while it waits, calls fail
  // UNAVAILABLE at once, so our retries would all land inside it. Keep it near ours. (Not
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: it is also the connect-and-handshake timeout, 20 s by
  // default; at 100 ms a loaded machine cut handshakes short, "tcp handshaker shutdown", on
  // every attempt of a call. The Python client leaves it alone for the same reason.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.initial_backoff)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.max_backoff)));
  auto channel = grpc::CreateCustomChannel(options.server, creds, args);
  return std::unique_ptr<Client>(new Client(std::move(channel), options));
}

std::unique_ptr<Client> Client::FromChannel(std::shared_ptr<grpc::Channel> channel,
                                            const ClientOptions& options) {
  return std::unique_ptr<Client>(new Client(std::move(channel), options));
}

Client::Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options)
    : channel_(std::move(channel)), stub_(v1::LrScheduler::NewStub(channel_)), options_(options) {
  if (options_.max_attempts < 1) options_.max_attempts = 1;
}

void Client::Prepare(grpc::ClientContext* ctx, bool deadline) const {
  if (deadline) ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  if (!options_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + options_.token);
}

void Client::Count(const std::string& method) {
  std::lock_guard<std::mutex> lock(counts_mu_);
  ++counts_[method];
}

int64_t Client::rpc_count(const std::string& method) const {
  std::lock_guard<std::mutex> lock(counts_mu_);
  auto it = counts_.find(method);
  return it == counts_.end() ? 0 : it->second;
}

int64_t Client::rpc_count() const {
  std::lock_guard<std::mutex> lock(counts_mu_);
  int64_t n = 0;
  for (const auto& [m, c] : counts_) n += c;
  return n;
}

absl::Duration Client::Backoff(int attempt) const {
  absl::Duration d = options_.initial_backoff;
  for (int i = 0; i < attempt && d < options_.max_backoff; ++i) d *= 2;
  d = std::min(d, options_.max_backoff);
  // Jitter, so many clients retrying a restarted server do not arrive together.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return d * jitter(rng);
}

absl::Status Client::Call(const std::string& method, bool retry_safe,
                          const std::function<grpc::Status(grpc::ClientContext*)>& attempt) {
  const int attempts = retry_safe ? options_.max_attempts : 1;
  absl::Status s;
  for (int i = 0; i < attempts; ++i) {
    if (i > 0) absl::SleepFor(Backoff(i - 1));
    grpc::ClientContext ctx;
    Prepare(&ctx, /*deadline=*/true);
    Count(method);
    s = FromGrpcStatus(attempt(&ctx));
    if (s.code() != absl::StatusCode::kUnavailable) return s;
  }
  return s;
}

absl::StatusOr<v1::Session> Client::CreateSession(
    const std::string& name, const std::string& spec_json,
    const std::map<std::string, std::string>& labels) {
  v1::CreateSessionRequest req;
  req.set_name(name);
  req.set_spec_json(spec_json);
  for (const auto& [k, v] : labels) (*req.mutable_labels())[k] = v;
  v1::Session resp;
  absl::Status s = Call("CreateSession", true, [&](grpc::ClientContext* ctx) {
    return stub_->CreateSession(ctx, req, &resp);
  });
  return Reply(s, std::move(resp));
}

absl::StatusOr<v1::Session> Client::GetSession(const std::string& name, bool consistent) {
  v1::GetSessionRequest req;
  req.set_name(name);
  req.set_consistent(consistent);
  v1::Session resp;
  absl::Status s = Call("GetSession", true, [&](grpc::ClientContext* ctx) {
    return stub_->GetSession(ctx, req, &resp);
  });
  return Reply(s, std::move(resp));
}

absl::StatusOr<v1::ListSessionsResponse> Client::ListSessions(
    const v1::ListSessionsRequest& request) {
  v1::ListSessionsResponse resp;
  absl::Status s = Call("ListSessions", true, [&](grpc::ClientContext* ctx) {
    return stub_->ListSessions(ctx, request, &resp);
  });
  return Reply(s, std::move(resp));
}

absl::StatusOr<std::vector<v1::Session>> Client::ListAllSessions(const std::string& name_prefix,
                                                                 bool consistent) {
  std::vector<v1::Session> all;
  v1::ListSessionsRequest req;
  req.set_name_prefix(name_prefix);
  req.set_consistent(consistent);
  req.set_page_size(1000);
  // Bounded: the server holds at most --max_sessions sessions, 1000 per page.
  for (int page = 0; page < 100000; ++page) {
    auto r = ListSessions(req);
    if (!r.ok()) return r.status();
    for (v1::Session& s : *r->mutable_sessions()) all.push_back(std::move(s));
    if (r->next_page_token().empty()) break;
    req.set_page_token(r->next_page_token());
  }
  return all;
}

absl::Status Client::DeleteSession(const std::string& name, std::optional<int64_t> if_revision) {
  v1::DeleteSessionRequest req;
  req.set_name(name);
  if (if_revision) req.set_if_revision(*if_revision);
  v1::DeleteSessionResponse resp;
  return Call("DeleteSession", false,
              [&](grpc::ClientContext* ctx) { return stub_->DeleteSession(ctx, req, &resp); });
}

absl::StatusOr<v1::StepResponse> Client::Step(const std::string& name, const StepArgs& args) {
  v1::StepRequest req;
  req.set_name(name);
  if (args.metric) req.set_metric(*args.metric);
  if (args.epoch) req.set_epoch(*args.epoch);
  if (args.if_epoch) req.set_if_epoch(*args.if_epoch);
  if (args.increment) req.set_increment(*args.increment);
  v1::StepResponse resp;
  absl::Status s = Call("Step", args.if_epoch.has_value(),
                        [&](grpc::ClientContext* ctx) { return stub_->Step(ctx, req, &resp); });
  return Reply(s, std::move(resp));
}

absl::StatusOr<v1::GetLRResponse> Client::GetLR(const std::string& name, int64_t ahead,
                                                int32_t window, bool consistent) {
  v1::GetLRRequest req;
  req.set_name(name);
  req.set_consistent(consistent);
  req.set_ahead(ahead);
  req.set_window(window);
  v1::GetLRResponse resp;
  absl::Status s =
      Call("GetLR", true, [&](grpc::ClientContext* ctx) { return stub_->GetLR(ctx, req, &resp); });
  return Reply(s, std::move(resp));
}

absl::StatusOr<v1::SimulateResponse> Client::Simulate(const v1::SimulateRequest& request) {
  v1::SimulateResponse resp;
  absl::Status s = Call("Simulate", true, [&](grpc::ClientContext* ctx) {
    return stub_->Simulate(ctx, request, &resp);
  });
  return Reply(s, std::move(resp));
}

absl::StatusOr<v1::ExportStateResponse> Client::ExportState(const std::string& name) {
  v1::ExportStateRequest req;
  req.set_name(name);
  v1::ExportStateResponse resp;
  absl::Status s = Call("ExportState", true, [&](grpc::ClientContext* ctx) {
    return stub_->ExportState(ctx, req, &resp);
  });
  return Reply(s, std::move(resp));
}

absl::StatusOr<v1::Session> Client::ImportState(const v1::ImportStateRequest& request) {
  v1::Session resp;
  absl::Status s = Call("ImportState", false, [&](grpc::ClientContext* ctx) {
    return stub_->ImportState(ctx, request, &resp);
  });
  return Reply(s, std::move(resp));
}

void WatchCanceller::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  if (ctx_ != nullptr) ctx_->TryCancel();
  cv_.notify_all();
}

bool WatchCanceller::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

absl::Status Client::Watch(const std::string& name,
                           const std::function<bool(const v1::Session&)>& on_update,
                           WatchCanceller* canceller, bool definition_changes_only) {
  v1::WatchRequest req;
  req.set_name(name);
  req.set_definition_changes_only(definition_changes_only);
  const absl::Status cancelled = absl::CancelledError("watch cancelled");
  int failures = 0;  // consecutive attempts that broke UNAVAILABLE without delivering anything
  while (true) {
    if (failures > 0) {
      absl::Duration wait = Backoff(failures - 1);
      if (canceller == nullptr) {
        absl::SleepFor(wait);
      } else {
        std::unique_lock<std::mutex> lock(canceller->mu_);
        canceller->cv_.wait_for(lock, absl::ToChronoMilliseconds(wait),
                                [&] { return canceller->cancelled_; });
      }
    }
    grpc::ClientContext ctx;
    Prepare(&ctx, /*deadline=*/false);  // a watch lasts as long as the caller wants
    if (canceller != nullptr) {
      std::lock_guard<std::mutex> lock(canceller->mu_);
      if (canceller->cancelled_) return cancelled;
      canceller->ctx_ = &ctx;
    }
    // The context must not be cancelled through the canceller once it is gone.
    struct Unregister {
      WatchCanceller* c;
      ~Unregister() {
        if (c == nullptr) return;
        std::lock_guard<std::mutex> lock(c->mu_);
        c->ctx_ = nullptr;
      }
    } unregister{canceller};
    Count("Watch");
    auto reader = stub_->Watch(&ctx, req);
    v1::Session s;
    bool delivered = false;
    while (reader->Read(&s)) {
      delivered = true;
      if (!on_update(s)) {
        ctx.TryCancel();
        reader->Finish();
        return absl::OkStatus();
      }
    }
    absl::Status st = FromGrpcStatus(reader->Finish());
    if (canceller != nullptr && canceller->cancelled()) return cancelled;
    if (st.code() != absl::StatusCode::kUnavailable) {
      // A server ending the stream OK would be a protocol surprise; report it as such.
      if (st.ok()) return absl::UnavailableError("watch stream ended");
      return st;
    }
    failures = delivered ? 1 : failures + 1;
    if (failures >= options_.max_attempts) return st;
  }
}

absl::StatusOr<v1::AmendSessionResponse> Client::Amend(const v1::AmendSessionRequest& request) {
  v1::AmendSessionResponse resp;
  absl::Status s = Call("AmendSession", request.dry_run(), [&](grpc::ClientContext* ctx) {
    return stub_->AmendSession(ctx, request, &resp);
  });
  return Reply(s, std::move(resp));
}

absl::StatusOr<v1::GetHistoryResponse> Client::GetHistory(const v1::GetHistoryRequest& request) {
  v1::GetHistoryResponse resp;
  absl::Status s = Call("GetHistory", true, [&](grpc::ClientContext* ctx) {
    return stub_->GetHistory(ctx, request, &resp);
  });
  return Reply(s, std::move(resp));
}

absl::StatusOr<v1::GetHistoryResponse> Client::History(const std::string& name, int64_t from_epoch,
                                                       std::optional<int64_t> to_epoch) {
  v1::GetHistoryRequest req;
  req.set_name(name);
  req.set_from_epoch(from_epoch);
  if (to_epoch) req.set_to_epoch(*to_epoch);
  req.set_page_size(10000);
  v1::GetHistoryResponse all;
  // Bounded: a page holds up to 10000 epochs and the server keeps the record bounded; a server
  // that kept returning a token would stop here rather than loop forever.
  for (int page = 0; page < 100000; ++page) {
    auto r = GetHistory(req);
    if (!r.ok()) return r.status();
    if (page == 0) {
      all.set_spec_json(r->spec_json());
      *all.mutable_amendments() = r->amendments();
      all.set_first_epoch(r->first_epoch());
    }
    for (v1::EpochValues& e : *r->mutable_epochs()) *all.add_epochs() = std::move(e);
    if (r->next_page_token().empty()) return all;
    req.set_page_token(r->next_page_token());
  }
  return absl::InternalError(absl::StrCat("GetHistory of ", name, ": too many pages"));
}

absl::StatusOr<HealthStatus> Client::Health(const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  absl::Status s =
      Call("Health", true, [&](grpc::ClientContext* ctx) { return stub->Check(ctx, req, &resp); });
  if (!s.ok()) return s;
  return static_cast<HealthStatus>(resp.status());
}

}  // namespace lrsched
