// Copyright lrsched authors.
//
// transformers' schedule lambdas (optimization.py at 2da00a3cec88), transcribed in their order
// of operations and with Python's int/float conversions: int arithmetic on steps is exact here
// (steps and lengths are below 2^53), `float(a) / float(b)` is one double division, and
// `max(0, x)` keeps its first argument unless x compares greater.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/pymath.h"
#include "scheduler/internal/pynum.h"
#include "scheduler/internal/schedulers_transformers.h"

namespace lrsched::scheduler_internal {
namespace {

// The warmup every LambdaLR schedule but two shares:
// `float(current_step) / float(max(1, num_warmup_steps))`.
double LinearWarmup(int64_t s, int64_t w) {
  return static_cast<double>(s) / static_cast<double>(std::max<int64_t>(1, w));
}

// `0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))`.
double HalfCosine(double num_cycles, double progress) {
  return 0.5 * (1.0 + std::cos(kPi * num_cycles * 2.0 * progress));
}

// The second `_get_cosine_schedule_with_warmup_lr_lambda` of optimization.py: the module
// defines the name twice and the later one (with min_lr_rate) is what both `cosine`
// (min_lr_rate=0.0) and `cosine_with_min_lr` are bound to.
double CosineWithMinLr(const HfLambdaParams& p, int64_t s) {
  if (s < p.warmup) return LinearWarmup(s, p.warmup);
  double progress = static_cast<double>(s - p.warmup) /
                    static_cast<double>(std::max<int64_t>(1, p.training - p.warmup));
  double factor = HalfCosine(p.num_cycles, progress);
  factor = factor * (1 - p.min_lr_rate) + p.min_lr_rate;
  return PyMax(0.0, factor);
}

// `_get_cosine_with_min_lr_schedule_with_warmup_lr_rate_lambda`: everything on floats, and the
// step counted one ahead (row 0 of the warmup is 1/W; the cosine starts at step W-1).
double CosineWarmupWithMinLr(const HfLambdaParams& p, int64_t step) {
  double s = static_cast<double>(step);
  double w = static_cast<double>(p.warmup);
  double t = static_cast<double>(p.training);
  if (s < w) {
    if (!p.warmup_lr_rate) return (s + 1.) / std::max(1., w);
    double wr = *p.warmup_lr_rate;
    return wr + (1.0 - wr) * s / PyMax(1.0, w - 1);
  }
  double progress = (s - w + 1.) / PyMax(1., t - w);
  double factor = 0.5 * (1.0 + std::cos(kPi * p.num_cycles * 2.0 * progress));
  factor = factor * (1 - p.min_lr_rate) + p.min_lr_rate;
  return PyMax(0.0, factor);
}

double WsdShape(HfWsdShape shape, bool warmup, double progress, double num_cycles) {
  switch (shape) {
    case HfWsdShape::kLinear:
      return warmup ? progress : 1.0 - progress;
    case HfWsdShape::kCosine:
      return warmup ? 0.5 * (1.0 - std::cos(kPi * progress)) : HalfCosine(num_cycles, progress);
    case HfWsdShape::kOneMinusSqrt:
      // progress is in [0, 1) during warmup and >= 0 during decay: sqrt never sees a negative.
      return warmup ? 1.0 - std::sqrt(1.0 - progress) : 1.0 - std::sqrt(progress);
  }
  return 0;
}

// `_get_wsd_scheduler_lambda`.
double WarmupStableDecay(const HfLambdaParams& p, int64_t s) {
  if (s < p.warmup) {
    double progress = LinearWarmup(s, p.warmup);
    double factor = WsdShape(p.warmup_type, true, progress, p.num_cycles);
    factor = factor * (1.0 - p.min_lr_ratio) + p.min_lr_ratio;
    return PyMax(0.0, factor);
  }
  if (s < p.warmup + p.stable) return 1.0;
  if (s < p.warmup + p.stable + p.decay) {
    double progress = static_cast<double>(s - p.warmup - p.stable) /
                      static_cast<double>(std::max<int64_t>(1, p.decay));
    double factor = WsdShape(p.decay_type, false, progress, p.num_cycles);
    factor = factor * (1.0 - p.min_lr_ratio) + p.min_lr_ratio;
    return PyMax(0.0, factor);
  }
  return p.min_lr_ratio;
}

// `_get_polynomial_decay_schedule_with_warmup_lr_lambda`: decay / lr_init, which LambdaLR
// multiplies by each group's base again (two roundings, as in transformers).
absl::Status Polynomial(const HfLambdaParams& p, int64_t s, double* out) {
  if (s < p.warmup) {
    *out = LinearWarmup(s, p.warmup);
    return absl::OkStatus();
  }
  if (s > p.training) return PyDiv(p.lr_end, p.lr_init, out);
  double lr_range = p.lr_init - p.lr_end;
  int64_t decay_steps = p.training - p.warmup;
  if (decay_steps == 0) {
    // `(current_step - num_warmup_steps) / decay_steps` on ints.
    return absl::InvalidArgumentError(
        "ZeroDivisionError: division by zero (polynomial: num_training_steps equals "
        "num_warmup_steps, and the decay divides by their difference)");
  }
  double pct_remaining = 1 - static_cast<double>(s - p.warmup) / static_cast<double>(decay_steps);
  double pw;
  if (pct_remaining > 0 && p.power >= 0) {
    // CPython's float_pow is C's pow() for a positive finite base and a finite exponent; the
    // result is in [0, 1], so nothing overflows. Other cases take PyPow's rules (0 ** -1 raises).
    pw = std::pow(pct_remaining, p.power);
  } else {
    absl::Status st = PyPow(pct_remaining, p.power, &pw);
    if (!st.ok()) return st;
  }
  double decay = lr_range * pw + p.lr_end;
  return PyDiv(decay, p.lr_init, out);
}

}  // namespace

absl::Status HfLambda(const HfLambdaParams& p, int64_t s, double* out) {
  switch (p.kind) {
    case HfKind::kLinear:
      if (s < p.warmup) {
        *out = LinearWarmup(s, p.warmup);
      } else {
        *out = PyMax(0.0, static_cast<double>(p.training - s) /
                              static_cast<double>(std::max<int64_t>(1, p.training - p.warmup)));
      }
      return absl::OkStatus();
    case HfKind::kCosine:
    case HfKind::kCosineWithMinLr:
      *out = CosineWithMinLr(p, s);
      return absl::OkStatus();
    case HfKind::kCosineWithRestarts: {
      if (s < p.warmup) {
        *out = LinearWarmup(s, p.warmup);
        return absl::OkStatus();
      }
      double progress = static_cast<double>(s - p.warmup) /
                        static_cast<double>(std::max<int64_t>(1, p.training - p.warmup));
      if (progress >= 1.0) {
        *out = 0.0;
        return absl::OkStatus();
      }
      double frac;
      absl::Status st = PyMod(p.num_cycles * progress, 1.0, &frac);
      if (!st.ok()) return st;
      *out = PyMax(0.0, 0.5 * (1.0 + std::cos(kPi * frac)));
      return absl::OkStatus();
    }
    case HfKind::kPolynomial:
      return Polynomial(p, s, out);
    case HfKind::kConstant:
      *out = 1;
      return absl::OkStatus();
    case HfKind::kConstantWithWarmup:
      // `float(current_step) / float(max(1.0, num_warmup_steps))`
      *out = s < p.warmup ? static_cast<double>(s) / std::max(1.0, static_cast<double>(p.warmup))
                          : 1.0;
      return absl::OkStatus();
    case HfKind::kInverseSqrt: {
      if (s < p.warmup) {
        *out = LinearWarmup(s, p.warmup);
        return absl::OkStatus();
      }
      // timescale > 0 (the builder refuses others) and s >= W: the root's argument is >= 1.
      double shift = p.timescale - static_cast<double>(p.warmup);
      *out = 1.0 / std::sqrt((static_cast<double>(s) + shift) / p.timescale);
      return absl::OkStatus();
    }
    case HfKind::kCosineWarmupWithMinLr:
      *out = CosineWarmupWithMinLr(p, s);
      return absl::OkStatus();
    case HfKind::kWarmupStableDecay:
      *out = WarmupStableDecay(p, s);
      return absl::OkStatus();
  }
  return absl::InternalError("unknown transformers schedule kind");
}

}  // namespace lrsched::scheduler_internal
