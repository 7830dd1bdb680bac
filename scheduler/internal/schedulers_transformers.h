// Copyright lrsched authors.
//
// Internal: the lambdas of transformers' `get_scheduler` (transformers 2da00a3cec88,
// src/transformers/optimization.py), one function of the step for each schedule name, and the
// parameters get_scheduler routes to them. Every schedule name but reduce_lr_on_plateau is a
// torch LambdaLR whose lambda is one of these (lr = initial_lr * lambda(step)); the node and the
// routing of the spec's arguments are in schedulers_transformers.cc.
//
// Invariant: HfLambdaParams holds values the builder validated, so HfLambda can only fail
// where transformers' own lambda raises (polynomial's division by zero, pow errors), and it
// never allocates.
#ifndef LRSCHED_SCHEDULER_INTERNAL_SCHEDULERS_TRANSFORMERS_H_
#define LRSCHED_SCHEDULER_INTERNAL_SCHEDULERS_TRANSFORMERS_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"

namespace lrsched::scheduler_internal {

// The LambdaLR-based schedule names of transformers' SchedulerType.
enum class HfKind {
  kLinear,
  kCosine,
  kCosineWithRestarts,
  kPolynomial,
  kConstant,
  kConstantWithWarmup,
  kInverseSqrt,
  kCosineWithMinLr,
  kCosineWarmupWithMinLr,
  kWarmupStableDecay,
};

// warmup_stable_decay's `warmup_type` and `decay_type`.
enum class HfWsdShape { kLinear, kCosine, kOneMinusSqrt };

// The keyword arguments the lambda of each name is bound to (functools.partial), with
// transformers' defaults. Which ones a name reads is in HfLambda.
struct HfLambdaParams {
  HfKind kind = HfKind::kConstant;
  int64_t warmup = 0;        // num_warmup_steps
  int64_t training = 0;      // num_training_steps
  double num_cycles = 0.5;   // cosine 0.5, cosine_with_restarts 1
  double lr_end = 1e-7;      // polynomial
  double power = 1.0;        // polynomial
  double lr_init = 0;        // polynomial: optimizer.defaults["lr"] (the first group's lr)
  double timescale = 0;      // inverse_sqrt (resolved: W, or 10000 if W is 0)
  double min_lr_rate = 0.0;  // cosine, cosine_with_min_lr, cosine_warmup_with_min_lr
  std::optional<double> warmup_lr_rate;  // cosine_warmup_with_min_lr
  int64_t stable = 0;                    // warmup_stable_decay: num_stable_steps (resolved)
  int64_t decay = 0;                     // warmup_stable_decay: num_decay_steps
  HfWsdShape warmup_type = HfWsdShape::kLinear;
  HfWsdShape decay_type = HfWsdShape::kCosine;
  double min_lr_ratio = 0;  // warmup_stable_decay
};

// transformers' lambda for `step` (LambdaLR's last_epoch), in its order of floating-point
// operations. An error is INVALID_ARGUMENT with Python's exception ("ZeroDivisionError: ...").
absl::Status HfLambda(const HfLambdaParams& p, int64_t step, double* out);

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_SCHEDULERS_TRANSFORMERS_H_
