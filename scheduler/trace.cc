// Copyright lrsched authors.
#include "scheduler/trace.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace lrsched {

absl::Status Simulate(Schedule& s, int64_t steps, absl::Span<const double> metrics,
                      absl::Span<const double> epochs, Trace* out) {
  if (steps < 0) return absl::InvalidArgumentError("steps: must not be negative");
  if (!metrics.empty() && metrics.size() < static_cast<size_t>(steps)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics: ", metrics.size(), " values for ", steps, " steps"));
  }
  if (!epochs.empty() && epochs.size() < static_cast<size_t>(steps)) {
    return absl::InvalidArgumentError(
        absl::StrCat("epochs: ", epochs.size(), " values for ", steps, " steps"));
  }
  const size_t g = s.param_groups().size();
  *out = Trace{};
  out->groups = g;
  out->has_momentum = s.has_momentum();
  out->lr.reserve(static_cast<size_t>(steps) * g);
  if (out->has_momentum) out->momentum.reserve(static_cast<size_t>(steps) * g);
  out->has_weight_decay = s.drives_weight_decay();
  if (out->has_weight_decay) out->weight_decay.reserve(static_cast<size_t>(steps) * g);
  StepRequest req;
  for (int64_t i = 0; i < steps; ++i) {
    for (const ParamGroup& pg : s.param_groups()) {
      out->lr.push_back(pg.lr);
      if (out->has_momentum) out->momentum.push_back(pg.reported_momentum().value_or(0.0));
      if (out->has_weight_decay) out->weight_decay.push_back(pg.weight_decay.value_or(0.0));
    }
    if (!metrics.empty()) {
      req.metric = metrics[i];
      if (std::isnan(metrics[i])) req.metric.reset();
    }
    if (!epochs.empty()) req.epoch = epochs[i];
    absl::Status st = s.Step(req);
    if (!st.ok()) {
      out->error = st;
      out->error_at_step = i;
      break;
    }
  }
  return absl::OkStatus();
}

}  // namespace lrsched
