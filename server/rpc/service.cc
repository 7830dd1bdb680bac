// Copyright lrsched authors.
//
// The unary session methods of LrSchedulerService. Each one validates its request completely
// before touching the registry; GetLR is in service_lookahead.cc, Simulate in
// service_simulate.cc, Watch in service_watch.cc.
#include "server/rpc/service.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/ops/log.h"
#include "server/rpc/convert.h"
#include "server/rpc/validate.h"

namespace lrsched {
namespace {

using json = nlohmann::json;

// Logs the outcome (server-side failures loudly, client mistakes quietly) and converts it.
grpc::Status Done(std::string_view method, std::string_view name, const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      break;
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnknown:
      logging::Warning("rpc_failed").Kv("method", method).Kv("name", name).Err(s);
      break;
    default:
      logging::Debug("rpc_refused").Kv("method", method).Kv("name", name).Err(s);
  }
  return ToGrpc(s);
}

absl::Status Overloaded(bool heavy) {
  return absl::ResourceExhaustedError(
      heavy ? "server overloaded: too many heavy calls (Simulate, long lookaheads, ImportState) "
              "waiting; retry with backoff"
            : "server overloaded: too many calls waiting; retry with backoff");
}

// Page tokens are the last name returned, web-safe base64 encoded: opaque to clients, and
// validated like a name when they come back.
std::string EncodePageToken(const std::string& name) { return absl::WebSafeBase64Escape(name); }

absl::StatusOr<std::string> DecodePageToken(const std::string& token) {
  std::string name;
  if (!absl::WebSafeBase64Unescape(token, &name) || !ValidateName(name).ok()) {
    return absl::InvalidArgumentError("page_token: not a token from ListSessions");
  }
  return name;
}

// A session's schedule from ImportState's source, and the labels the source carries.
absl::StatusOr<std::unique_ptr<Schedule>> ScheduleFromImport(const v1::ImportStateRequest& req,
                                                             std::optional<Labels>* labels) {
  switch (req.source_case()) {
    case v1::ImportStateRequest::kStateJson: {
      auto state = ParseJson(req.state_json(), "state_json");
      if (!state.ok()) return state.status();
      if (!state->is_object())
        return absl::InvalidArgumentError("state_json: expected a JSON object");
      // An export adds name and labels to the engine's state; the name is the request's.
      state->erase("name");
      if (state->contains("labels")) {
        const json& l = (*state)["labels"];
        Labels from_state;
        if (!l.is_object())
          return absl::InvalidArgumentError("state_json.labels: expected an object");
        for (auto it = l.begin(); it != l.end(); ++it) {
          if (!it.value().is_string()) {
            return absl::InvalidArgumentError(
                absl::StrCat("state_json.labels[\"", it.key(), "\"]: expected a string"));
          }
          from_state[it.key()] = it.value().get<std::string>();
        }
        absl::Status s = ValidateLabels(from_state, "state_json.labels");
        if (!s.ok()) return s;
        *labels = std::move(from_state);
        state->erase("labels");
      }
      auto schedule = Schedule::ImportState(*state);
      if (!schedule.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("state_json: ", std::string(schedule.status().message())));
      }
      return schedule;
    }
    case v1::ImportStateRequest::kTorch: {
      auto spec = ParseSpecJson(req.torch().spec_json(), "torch.spec_json");
      if (!spec.ok()) return spec.status();
      auto sd = ParseJson(req.torch().state_dict_json(), "torch.state_dict_json");
      if (!sd.ok()) return sd.status();
      auto schedule = Schedule::Restore(*spec, json(nullptr), *sd);
      if (!schedule.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("torch: ", std::string(schedule.status().message())));
      }
      return schedule;
    }
    default:
      return absl::InvalidArgumentError("source: one of state_json or torch is required");
  }
}

}  // namespace

LrSchedulerService::LrSchedulerService(Registry* registry, ServiceOptions options)
    : registry_(registry),
      options_(options),
      observer_(options.metrics),
      write_health_(options.on_store_writable) {
  ParseCheckAllMethods();
}

void LrSchedulerService::Finish(grpc::ServerUnaryReactor* reactor, FinishedCall call,
                                const absl::Status& s) const {
  grpc::Status status = Done(call.method, call.session, s);
  call.code = static_cast<absl::StatusCode>(status.error_code());
  // Before the reply: a client that sees its reply and then scrapes sees its call counted.
  observer_.Finished(call);
  write_health_.Note(call.method, status.error_code(), /*wrote=*/call.advanced.value_or(true));
  reactor->Finish(std::move(status));
}

absl::Status LrSchedulerService::Authorize(const grpc::ServerContextBase* ctx,
                                           const char* method) const {
  if (options_.authorizer == nullptr) return absl::OkStatus();
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  absl::string_view header;
  if (it != md.end()) header = absl::string_view(it->second.data(), it->second.size());
  return options_.authorizer->Check(header, method);
}

Caller LrSchedulerService::CallerOf(const grpc::ServerContextBase* ctx, const char* method) const {
  if (options_.authorizer == nullptr) return Caller{};
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  absl::string_view header;
  if (it != md.end()) header = absl::string_view(it->second.data(), it->second.size());
  absl::StatusOr<Caller> caller = options_.authorizer->Authenticate(header, method);
  // Serve authorized the call already; a token file reloaded since may have dropped it.
  return caller.ok() ? *std::move(caller) : Caller{};
}

std::string_view LrSchedulerService::HttpPeer(const grpc::ServerContextBase* ctx) const {
  if (options_.http_gateway_key.empty()) return {};
  const auto& md = ctx->client_metadata();
  auto key = md.find("x-lrsched-gateway");
  auto peer = md.find("x-forwarded-for");
  if (key == md.end() || peer == md.end()) return {};
  if (absl::string_view(key->second.data(), key->second.size()) != options_.http_gateway_key) {
    return {};
  }
  return std::string_view(peer->second.data(), peer->second.size());
}

grpc::ServerUnaryReactor* LrSchedulerService::Serve(grpc::CallbackServerContext* ctx,
                                                    const char* method, std::string_view name,
                                                    Where where, std::function<absl::Status()> body,
                                                    const v1::Session* result) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  FinishedCall call;  // members by name: aggregate init would leave epoch/advanced to a warning
  call.method = method;
  call.session = name;
  call.start = absl::Now();
  call.http_peer = HttpPeer(ctx);
  auto finish = [this, reactor, call, result](const absl::Status& s) mutable {
    if (s.ok() && result != nullptr) call.epoch = result->last_epoch();
    Finish(reactor, call, s);
  };
  absl::Status allowed = Authorize(ctx, method);
  if (!allowed.ok()) {
    finish(allowed);
  } else if (where == Where::kInline) {
    finish(body());
  } else {
    const bool heavy = where == Where::kHeavy;
    WorkerPool* pool = heavy ? options_.heavy_pool : options_.pool;
    if (!pool->Submit([finish, ctx, heavy, body = std::move(body)]() mutable {
          // A heavy call may wait in its queue for seconds: if its client has given up
          // meanwhile (deadline, cancellation), spend nothing on it.
          if (heavy && ctx->IsCancelled()) {
            finish(
                absl::CancelledError("the call was cancelled, or its deadline passed, while "
                                     "it waited for a heavy-call thread"));
            return;
          }
          finish(body());
        })) {
      finish(Overloaded(heavy));
    }
  }
  return reactor;
}

grpc::ServerUnaryReactor* LrSchedulerService::CreateSession(grpc::CallbackServerContext* ctx,
                                                            const v1::CreateSessionRequest* req,
                                                            v1::Session* resp) {
  return Serve(
      ctx, "CreateSession", req->name(), Where::kPool,
      [this, req, resp] { return DoCreateSession(*req, resp); }, resp);
}

absl::Status LrSchedulerService::DoCreateSession(const v1::CreateSessionRequest& req,
                                                 v1::Session* resp) {
  absl::Status s = ValidateName(req.name());
  Labels labels = FromProto(req.labels());
  if (s.ok()) s = ValidateLabels(labels);
  if (!s.ok()) return s;
  auto spec = ParseSpecJson(req.spec_json());
  if (!spec.ok()) return spec.status();
  auto session = registry_->Create(req.name(), *spec, labels);
  if (!session.ok()) return session.status();
  ToProto(*session, resp);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* LrSchedulerService::GetSession(grpc::CallbackServerContext* ctx,
                                                         const v1::GetSessionRequest* req,
                                                         v1::Session* resp) {
  return Serve(ctx, "GetSession", req->name(), ReadWhere(req->consistent()), [this, req, resp] {
    absl::Status s = ValidateName(req->name());
    if (!s.ok()) return s;
    auto session = registry_->Get(req->name(), ReadOptions{req->consistent()});
    if (!session.ok()) return session.status();
    ToProto(*session, resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* LrSchedulerService::ListSessions(grpc::CallbackServerContext* ctx,
                                                           const v1::ListSessionsRequest* req,
                                                           v1::ListSessionsResponse* resp) {
  return Serve(ctx, "ListSessions", req->name_prefix(), ReadWhere(req->consistent()),
               [this, req, resp] { return DoListSessions(*req, resp); });
}

absl::Status LrSchedulerService::DoListSessions(const v1::ListSessionsRequest& req,
                                                v1::ListSessionsResponse* resp) {
  ListQuery q;
  absl::Status s;
  if (!req.name_prefix().empty()) s = ValidateNamePrefix(req.name_prefix(), "name_prefix");
  q.name_prefix = req.name_prefix();
  q.labels = FromProto(req.labels());
  if (s.ok()) s = ValidateLabels(q.labels);
  if (s.ok() && req.page_size() < 0) {
    s = absl::InvalidArgumentError(
        absl::StrCat("page_size: must not be negative, got ", req.page_size()));
  }
  q.page_size =
      req.page_size() == 0 ? kDefaultPageSize : std::min<int32_t>(req.page_size(), kMaxPageSize);
  if (s.ok() && !req.page_token().empty()) {
    auto after = DecodePageToken(req.page_token());
    if (after.ok()) q.after = *after;
    s = after.status();
  }
  if (!s.ok()) return s;
  auto page = registry_->List(q, ReadOptions{req.consistent()});
  if (!page.ok()) return page.status();
  for (const SessionSnapshot& snap : page->sessions) ToProto(snap, resp->add_sessions());
  if (!page->last_name.empty()) resp->set_next_page_token(EncodePageToken(page->last_name));
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* LrSchedulerService::DeleteSession(grpc::CallbackServerContext* ctx,
                                                            const v1::DeleteSessionRequest* req,
                                                            v1::DeleteSessionResponse*) {
  return Serve(ctx, "DeleteSession", req->name(), Where::kPool, [this, req] {
    absl::Status s = ValidateName(req->name());
    if (s.ok()) {
      std::optional<int64_t> if_revision;
      if (req->has_if_revision()) if_revision = req->if_revision();
      s = registry_->Delete(req->name(), if_revision);
    }
    if (s.ok()) logging::Info("session_deleted").Kv("name", req->name());
    return s;
  });
}

grpc::ServerUnaryReactor* LrSchedulerService::Step(grpc::CallbackServerContext* ctx,
                                                   const v1::StepRequest* req,
                                                   v1::StepResponse* resp) {
  // With a store that commits without blocking (SQLite's group commit, etcd's callback Txn)
  // the step is computed here and answered from the store's thread once durable: no worker
  // waits for the disk or for etcd. When that cannot start without waiting (the session is
  // busy with another mutation; a shared store's memory needs a re-read), or another replica
  // won the compare, the step runs on the pool like any blocking call.
  const absl::Time start = absl::Now();
  const std::string_view http_peer = HttpPeer(ctx);
  auto finish = [this, req, resp, start, http_peer](grpc::ServerUnaryReactor* reactor,
                                                    absl::StatusOr<StepOutcome> out) {
    FinishedCall call;
    call.method = "Step";
    call.session = req->name();
    call.start = start;
    call.http_peer = http_peer;
    if (out.ok()) {
      ToProto(out->session, resp->mutable_session());
      resp->set_advanced(out->advanced);
      call.epoch = out->session.last_epoch;
      call.advanced = out->advanced;
    }
    Finish(reactor, call, out.status());
  };
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status s = Authorize(ctx, "Step");
  StepRequest step;
  std::optional<int64_t> if_epoch;
  if (s.ok()) s = ParseStep(*req, &step, &if_epoch);
  if (!s.ok()) {
    finish(reactor, s);
    return reactor;
  }
  // The blocking path: Step re-reads a shared store and retries lost compares. A step that is
  // real work (a chain of 64 long lambdas over 1024 groups, an 80 KB spec, steps in ~0.3 s) is
  // a heavy call: on the heavy pool, never on gRPC's thread or a worker.
  auto on_pool = [this, ctx, reactor, finish, req, step, if_epoch](bool heavy) {
    WorkerPool* pool = heavy ? options_.heavy_pool : options_.pool;
    if (!pool->Submit([this, ctx, reactor, finish, req, step, if_epoch, heavy] {
          if (heavy && ctx->IsCancelled()) {  // its client gave up while it was queued
            finish(reactor, absl::CancelledError("the call was cancelled, or its deadline "
                                                 "passed, while it waited for a heavy-call "
                                                 "thread"));
            return;
          }
          finish(reactor, registry_->Step(req->name(), step, if_epoch));
        })) {
      finish(reactor, Overloaded(heavy));
    }
  };
  const Registry::StepVerdict verdict = registry_->TryStepAsync(
      req->name(), step, if_epoch, kLightCost,
      [reactor, finish, on_pool](Registry::StepVerdict v, absl::StatusOr<StepOutcome> out) {
        if (v == Registry::StepVerdict::kAnswered) {
          finish(reactor, std::move(out));
        } else {
          on_pool(/*heavy=*/false);  // another replica won the compare: decide afresh
        }
      });
  if (verdict != Registry::StepVerdict::kAnswered) {
    on_pool(/*heavy=*/verdict == Registry::StepVerdict::kHeavy);
  }
  return reactor;
}

absl::Status LrSchedulerService::ParseStep(const v1::StepRequest& req, StepRequest* step,
                                           std::optional<int64_t>* if_epoch) {
  absl::Status s = ValidateName(req.name());
  if (s.ok() && req.has_metric()) {
    s = ValidateFinite(req.metric(), "metric");
    step->metric = req.metric();
  }
  if (s.ok() && req.has_epoch()) {
    s = ValidateFinite(req.epoch(), "epoch");
    step->epoch = req.epoch();
  }
  if (req.has_if_epoch()) *if_epoch = req.if_epoch();
  if (s.ok() && req.has_increment()) {
    // A type that takes none is the engine's refusal (FAILED_PRECONDITION, like a metric).
    if (req.increment() < 1) {
      s = absl::InvalidArgumentError(
          absl::StrCat("increment: must be positive, got ", req.increment()));
    }
    step->increment = req.increment();
  }
  return s;
}

grpc::ServerUnaryReactor* LrSchedulerService::ExportState(grpc::CallbackServerContext* ctx,
                                                          const v1::ExportStateRequest* req,
                                                          v1::ExportStateResponse* resp) {
  // Export re-reads a shared store's session first, as a consistent read does.
  return Serve(ctx, "ExportState", req->name(), ReadWhere(/*consistent=*/true), [this, req, resp] {
    absl::Status s = ValidateName(req->name());
    if (!s.ok()) return s;
    auto ex = registry_->Export(req->name());
    if (!ex.ok()) return ex.status();
    resp->set_state_json(std::move(ex->state_json));
    resp->set_torch_state_dict_json(std::move(ex->torch_state_dict_json));
    resp->set_torch_param_groups_json(std::move(ex->torch_param_groups_json));
    ToProto(ex->session, resp->mutable_session());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* LrSchedulerService::ImportState(grpc::CallbackServerContext* ctx,
                                                          const v1::ImportStateRequest* req,
                                                          v1::Session* resp) {
  return Serve(
      ctx, "ImportState", req->name(), Where::kHeavy,  // parses and builds up to 4 MB of JSON
      [this, req, resp] { return DoImportState(*req, resp); }, resp);
}

absl::Status LrSchedulerService::DoImportState(const v1::ImportStateRequest& req,
                                               v1::Session* resp) {
  absl::Status s = ValidateName(req.name());
  std::optional<Labels> labels;
  if (s.ok() && !req.labels().empty()) {
    labels = FromProto(req.labels());
    s = ValidateLabels(*labels);
  }
  if (!s.ok()) return s;
  std::optional<Labels> state_labels;
  auto schedule = ScheduleFromImport(req, &state_labels);
  if (!schedule.ok()) return schedule.status();
  if (!labels) labels = std::move(state_labels);
  auto session = registry_->Import(
      req.name(), *std::move(schedule), std::move(labels), req.replace(),
      req.has_if_revision() ? std::optional<int64_t>(req.if_revision()) : std::nullopt);
  if (!session.ok()) return session.status();
  logging::Info("session_imported").Kv("name", req.name()).Kv("revision", session->meta.revision);
  ToProto(*session, resp);
  return absl::OkStatus();
}

}  // namespace lrsched
