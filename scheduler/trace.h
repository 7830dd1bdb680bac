// Copyright lrsched authors.
//
// Trace: what a schedule does over N steps, recorded the way shared/golden/torch_trace.py
// records torch: each group's lr (and momentum, or betas[0]; and weight_decay where the schedule
// drives it) *before* each step() call.
// Simulate reserves all storage up front, so the stepping loop itself never allocates.
#ifndef LRSCHED_SCHEDULER_TRACE_H_
#define LRSCHED_SCHEDULER_TRACE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "scheduler/schedule.h"

namespace lrsched {

struct Trace {
  size_t groups = 0;
  bool has_momentum = false;
  bool has_weight_decay = false;     // the schedule drives weight_decay (Megatron)
  std::vector<double> lr;            // rows() * groups values, row-major
  std::vector<double> momentum;      // same shape, where has_momentum
  std::vector<double> weight_decay;  // same shape, where has_weight_decay
  absl::Status error;                // the refused step's error, if one was refused
  int64_t error_at_step = -1;        // index of the refused step() call (-1: none)

  size_t rows() const { return groups == 0 ? 0 : lr.size() / groups; }
};

// Steps `s` `steps` times; metrics[i] / epochs[i] (when non-empty) go to the i-th call; a NaN
// metric means none at that call (JSON null: timm's Plateau stepped without a metric). A
// refused step ends the trace with `error` set; the return value is an error only for bad
// arguments (e.g. fewer metrics than steps), which are refused before any step.
absl::Status Simulate(Schedule& s, int64_t steps, absl::Span<const double> metrics,
                      absl::Span<const double> epochs, Trace* out);

}  // namespace lrsched

#endif  // LRSCHED_SCHEDULER_TRACE_H_
