// Copyright lrsched authors.
//
// PlateauCore: torch 1.13's ReduceLROnPlateau bookkeeping (torch/optim/lr_scheduler.py, step,
// _reduce_lr, is_better), shared by torch's ReduceLROnPlateau and timm's PlateauLRScheduler,
// which steps one inside: whether a metric beats the best, the bad-epoch and cooldown counters,
// and the reduction of one group's lr. The nodes keep the lrs and their own epochs.
#ifndef LRSCHED_SCHEDULER_INTERNAL_PLATEAU_CORE_H_
#define LRSCHED_SCHEDULER_INTERNAL_PLATEAU_CORE_H_

#include <cmath>
#include <cstdint>

#include "scheduler/internal/pymath.h"

namespace lrsched::scheduler_internal {

struct PlateauCore {
  double factor = 0.1, threshold = 1e-4, eps = 1e-8, best = INFINITY;
  int64_t patience = 10, cooldown = 0, cooldown_counter = 0, num_bad_epochs = 0;
  bool min_mode = true, rel = true;

  // torch's is_better (mode and threshold_mode).
  bool IsBetter(double a) const {
    if (min_mode && rel) return a < best * (1. - threshold);
    if (min_mode) return a < best - threshold;
    if (rel) return a > best * (threshold + 1.);
    return a > best + threshold;
  }

  // Counts `metric` as torch's step does; true when the lrs are to be reduced now (the counters
  // are then reset for the cooldown, as torch resets them right after _reduce_lr).
  bool Observe(double metric) {
    if (IsBetter(metric)) {
      best = metric;
      num_bad_epochs = 0;
    } else {
      num_bad_epochs += 1;
    }
    if (cooldown_counter > 0) {
      cooldown_counter -= 1;
      num_bad_epochs = 0;  // torch ignores bad epochs during cooldown
    }
    if (num_bad_epochs <= patience) return false;
    cooldown_counter = cooldown;
    num_bad_epochs = 0;
    return true;
  }

  // torch's _reduce_lr for one group: max(lr * factor, min_lr), kept only if it moved > eps.
  double Reduced(double old_lr, double min_lr) const {
    const double new_lr = PyMax(old_lr * factor, min_lr);
    return old_lr - new_lr > eps ? new_lr : old_lr;
  }
};

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_PLATEAU_CORE_H_
