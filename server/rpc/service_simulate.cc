// Copyright lrsched authors.
//
// LrSchedulerService::Simulate: a trace of a spec without a session, on the heavy-call pool.
// The work is bounded before it starts (steps x param groups <= --max_simulate_steps, the reply
// within --max_reply_bytes, steps x the spec's step cost within --max_call_cost) and runs in
// chunks of about kCancelCheckCost units of work, checking between chunks whether the client
// is still waiting (deadline, cancellation).
#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "scheduler/trace.h"
#include "server/ops/log.h"
#include "server/rpc/convert.h"
#include "server/rpc/service.h"
#include "server/rpc/validate.h"

namespace lrsched {
namespace {

constexpr int64_t kMaxChunkSteps = 16384;

absl::Status CheckNumbers(const google::protobuf::RepeatedField<double>& values, const char* field,
                          int64_t steps) {
  if (!values.empty() && values.size() < steps) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", values.size(), " values for ", steps, " steps"));
  }
  for (int i = 0; i < values.size(); ++i) {
    absl::Status s = ValidateFinite(values[i], absl::StrCat(field, "[", i, "]"));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// The i-th chunk of a per-step list (empty stays empty).
absl::Span<const double> Chunk(const google::protobuf::RepeatedField<double>& values,
                               int64_t offset, int64_t n) {
  if (values.empty()) return {};
  return absl::Span<const double>(values.data() + offset, static_cast<size_t>(n));
}

}  // namespace

grpc::ServerUnaryReactor* LrSchedulerService::Simulate(grpc::CallbackServerContext* ctx,
                                                       const v1::SimulateRequest* req,
                                                       v1::SimulateResponse* resp) {
  return Serve(ctx, "Simulate", "", Where::kHeavy,
               [this, ctx, req, resp] { return DoSimulate(ctx, *req, resp); });
}

absl::Status LrSchedulerService::DoSimulate(grpc::CallbackServerContext* ctx,
                                            const v1::SimulateRequest& request,
                                            v1::SimulateResponse* resp) {
  const v1::SimulateRequest* req = &request;
  const int64_t steps = req->steps();
  absl::Status s;
  if (steps < 0) {
    s = absl::InvalidArgumentError(absl::StrCat("steps: must not be negative, got ", steps));
  } else if (steps > options_.max_simulate_steps) {
    s = absl::ResourceExhaustedError(absl::StrCat(
        "steps: ", steps, " is more than this server's limit of ", options_.max_simulate_steps));
  }
  if (s.ok()) s = CheckNumbers(req->metrics(), "metrics", steps);
  if (s.ok()) s = CheckNumbers(req->epochs(), "epochs", steps);
  if (!s.ok()) return s;
  auto spec = ParseSpecJson(req->spec_json());
  if (!spec.ok()) return spec.status();
  auto schedule = Schedule::Create(*spec);
  if (!schedule.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec_json: ", std::string(schedule.status().message())));
  }
  Schedule& sched = **schedule;
  const int64_t groups = static_cast<int64_t>(sched.param_groups().size());
  if (steps * groups > options_.max_simulate_steps) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "steps: ", steps, " steps x ", groups, " param groups is more than this server's limit of ",
        options_.max_simulate_steps, " values"));
  }
  // lr, momentum and weight_decay, packed.
  const int64_t value_bytes =
      8 * (1 + (sched.has_momentum() ? 1 : 0) + (sched.drives_weight_decay() ? 1 : 0));
  if (steps * groups > options_.max_reply_bytes / value_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("steps: ", steps, " steps x ", groups, " param groups x ", value_bytes,
                     " bytes is more than this server's reply limit of ", options_.max_reply_bytes,
                     " bytes (--max_reply_bytes)"));
  }
  const int64_t per_step = sched.step_cost();
  if (steps > options_.max_call_cost / per_step) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "steps: ", steps, " steps x ", per_step,
        " cost units per step of spec_json's schedule is more than this server's limit of ",
        options_.max_call_cost, " per call (--max_call_cost)"));
  }
  resp->set_groups(static_cast<int32_t>(groups));
  resp->set_has_momentum(sched.has_momentum());
  resp->set_has_weight_decay(sched.drives_weight_decay());
  resp->set_error_at_step(-1);
  // Reserved once, within the limit just checked: growing by doubling would hold up to three
  // times the reply while copying. Pages are only touched as values arrive, so a call
  // cancelled early has not claimed the whole reply.
  if (steps * groups <= std::numeric_limits<int>::max()) {  // a flag may allow more
    resp->mutable_lr()->Reserve(static_cast<int>(steps * groups));
    if (sched.has_momentum()) resp->mutable_momentum()->Reserve(static_cast<int>(steps * groups));
    if (sched.drives_weight_decay()) {
      resp->mutable_weight_decay()->Reserve(static_cast<int>(steps * groups));
    }
  }
  // A chunk is a few ms of work, whatever one step costs.
  const int64_t chunk_steps = std::clamp<int64_t>(kCancelCheckCost / per_step, 1, kMaxChunkSteps);
  Trace part;
  for (int64_t offset = 0; offset < steps; offset += chunk_steps) {
    if (ctx->IsCancelled()) return absl::CancelledError("simulate: cancelled");
    const int64_t n = std::min(chunk_steps, steps - offset);
    s = lrsched::Simulate(sched, n, Chunk(req->metrics(), offset, n),
                          Chunk(req->epochs(), offset, n), &part);
    if (!s.ok()) return s;  // bad arguments; checked above, so not expected
    resp->mutable_lr()->Add(part.lr.begin(), part.lr.end());
    if (part.has_momentum)
      resp->mutable_momentum()->Add(part.momentum.begin(), part.momentum.end());
    if (part.has_weight_decay) {
      resp->mutable_weight_decay()->Add(part.weight_decay.begin(), part.weight_decay.end());
    }
    if (!part.error.ok()) {
      resp->set_error(std::string(part.error.message()));
      resp->set_error_at_step(offset + part.error_at_step);
      break;
    }
  }
  resp->set_state_dict_json(sched.StateDict().dump());
  return absl::OkStatus();
}

}  // namespace lrsched
