// Copyright lrsched authors.
//
// LrSchedulerService::GetLR: the session's values now, `ahead` steps ahead, and a window of
// epochs. A lookahead is routed by what it costs (steps x the schedule's step cost): a short
// one is answered where a read is, a long one on the heavy-call pool; LookAhead refuses one
// past --max_call_cost or --max_reply_bytes before stepping.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/rpc/convert.h"
#include "server/rpc/service.h"
#include "server/rpc/validate.h"

namespace lrsched {

grpc::ServerUnaryReactor* LrSchedulerService::GetLR(grpc::CallbackServerContext* ctx,
                                                    const v1::GetLRRequest* req,
                                                    v1::GetLRResponse* resp) {
  // A lookahead is routed by its cost: the session's step cost as memory holds it (a hint;
  // LookAhead checks the limit against the schedule it steps) times the steps asked. Where
  // memory cannot tell, only a short one stays off the heavy pool. One out of range is
  // refused at once, wherever it runs.
  constexpr int64_t kShortSteps = 4096;
  Where where = ReadWhere(req->consistent());
  const int64_t steps = std::max<int64_t>(req->ahead(), static_cast<int64_t>(req->window()) - 1);
  if (steps > 0 && req->ahead() <= kMaxAhead && req->window() <= kMaxWindow) {
    absl::StatusOr<int64_t> cost = registry_->StepCost(req->name());
    if (cost.ok() ? steps > kLightCost / *cost : steps > kShortSteps) where = Where::kHeavy;
  }
  return Serve(ctx, "GetLR", req->name(), where,
               [this, ctx, req, resp] { return DoGetLR(ctx, *req, resp); });
}

absl::Status LrSchedulerService::DoGetLR(grpc::CallbackServerContext* ctx,
                                         const v1::GetLRRequest& req, v1::GetLRResponse* resp) {
  absl::Status s = ValidateName(req.name());
  if (s.ok() && (req.ahead() < 0 || req.ahead() > kMaxAhead)) {
    s = absl::InvalidArgumentError(
        absl::StrCat("ahead: expected 0 to ", kMaxAhead, ", got ", req.ahead()));
  }
  if (s.ok() && (req.window() < 0 || req.window() > kMaxWindow)) {
    s = absl::InvalidArgumentError(
        absl::StrCat("window: expected 0 to ", kMaxWindow, ", got ", req.window()));
  }
  if (!s.ok()) return s;
  auto la = registry_->LookAhead(
      req.name(), req.ahead(), req.window(), [ctx] { return ctx->IsCancelled(); },
      ReadOptions{req.consistent()},
      LookaheadLimits{options_.max_call_cost, options_.max_reply_bytes});
  if (!la.ok()) return la.status();
  resp->set_name(req.name());
  resp->set_last_epoch(la->last_epoch);
  resp->set_revision(la->revision);
  resp->set_schedule_revision(la->schedule_revision);
  resp->set_epoch(la->epoch);
  for (const GroupValue& g : la->groups) ToProto(g, resp->add_groups());
  for (const EpochGroups& w : la->window) {
    v1::EpochValues* ev = resp->add_window();
    ev->set_epoch(w.epoch);
    for (const GroupValue& g : w.groups) ToProto(g, ev->add_groups());
  }
  return absl::OkStatus();
}

}  // namespace lrsched
