// Copyright lrsched authors.
//
// LrSchedulerService::AmendSession and GetHistory: changing a running session's schedule, and
// reading its record (README "Changing a running schedule"). Requests are validated completely
// (validate_amend.h) before the registry sees them; the engine's refusals come back with its
// code and words.
#include "absl/strings/str_cat.h"
#include "server/ops/log.h"
#include "server/rpc/convert.h"
#include "server/rpc/service.h"
#include "server/rpc/validate_amend.h"

namespace lrsched {

grpc::ServerUnaryReactor* LrSchedulerService::AmendSession(grpc::CallbackServerContext* ctx,
                                                           const v1::AmendSessionRequest* req,
                                                           v1::AmendSessionResponse* resp) {
  // A scale is cheap; a spec to build, a replay (reparameterize) or a dry run's walk may cost up
  // to --max_call_cost: those are heavy calls, never on a thread a Step needs.
  const bool cheap = req->kind_case() == v1::AmendSessionRequest::kScale && !req->dry_run();
  return Serve(
      ctx, "AmendSession", req->name(), cheap ? Where::kPool : Where::kHeavy,
      [this, ctx, req, resp] { return DoAmendSession(ctx, *req, resp); }, resp->mutable_session());
}

absl::Status LrSchedulerService::DoAmendSession(grpc::CallbackServerContext* ctx,
                                                const v1::AmendSessionRequest& req,
                                                v1::AmendSessionResponse* resp) {
  absl::StatusOr<AmendRequest> request = ParseAmendRequest(req);
  if (!request.ok()) return request.status();
  if (options_.authorizer != nullptr) {
    Caller caller = CallerOf(ctx, "AmendSession");
    request->caller = std::move(caller.name);
    request->role = RoleName(caller.role);
  }
  auto out = registry_->Amend(req.name(), *request,
                              LookaheadLimits{options_.max_call_cost, options_.max_reply_bytes},
                              [ctx] { return ctx->IsCancelled(); });
  if (!out.ok()) return out.status();
  ToProto(out->session, resp->mutable_session());
  ToProto(out->amendment, resp->mutable_amendment());
  for (const EpochGroups& e : out->current) ToProto(e, resp->add_current());
  for (const EpochGroups& e : out->amended) ToProto(e, resp->add_amended());
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* LrSchedulerService::GetHistory(grpc::CallbackServerContext* ctx,
                                                         const v1::GetHistoryRequest* req,
                                                         v1::GetHistoryResponse* resp) {
  // The record is replayed from the schedule's start: heavy, whatever the store.
  return Serve(ctx, "GetHistory", req->name(), Where::kHeavy,
               [this, ctx, req, resp] { return DoGetHistory(ctx, *req, resp); });
}

absl::Status LrSchedulerService::DoGetHistory(grpc::CallbackServerContext* ctx,
                                              const v1::GetHistoryRequest& req,
                                              v1::GetHistoryResponse* resp) {
  absl::StatusOr<HistoryQuery> query = ParseHistoryRequest(req);
  if (!query.ok()) return query.status();
  auto page = registry_->History(req.name(), *query, [ctx] { return ctx->IsCancelled(); });
  if (!page.ok()) return page.status();
  resp->set_spec_json(std::move(page->spec_json));
  for (const Amendment& a : page->amendments) ToProto(a, resp->add_amendments());
  resp->mutable_epochs()->Reserve(static_cast<int>(page->epochs.size()));
  for (const ServedEpoch& e : page->epochs) ToProto(e, resp->add_epochs());
  if (page->next_from) resp->set_next_page_token(HistoryPageToken(*page->next_from));
  resp->set_first_epoch(page->first_epoch);
  return absl::OkStatus();
}

}  // namespace lrsched
