// Copyright lrsched authors.
//
// What a torch LR scheduler sees of an optimizer: its param groups (lr, initial_lr, momentum or
// betas, weight_decay, and the keys OneCycleLR and Megatron keep in a group) and which
// hyper-parameters the optimizer's `defaults` carry (CyclicLR and OneCycleLR decide from that
// whether momentum can be cycled). Schedulers read and write these groups exactly as torch's read
// and write `param_groups`.
#ifndef LRSCHED_SCHEDULER_OPTIMIZER_H_
#define LRSCHED_SCHEDULER_OPTIMIZER_H_

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace lrsched {

// One `optimizer.param_groups[i]`, restricted to the keys a scheduler reads or writes.
struct ParamGroup {
  double lr = 0.0;
  std::optional<double> initial_lr;
  std::optional<double> momentum;              // SGD, RMSprop: group["momentum"]
  std::optional<std::array<double, 2>> betas;  // Adam family: group["betas"]
  // Written by OneCycleLR (and read back on resume).
  std::optional<double> max_lr;
  std::optional<double> min_lr;
  std::optional<double> max_momentum;
  std::optional<double> base_momentum;
  // group["weight_decay"]: read from the spec where given; written on every step by schedules
  // that drive it (megatron.OptimizerParamScheduler), reported only for those.
  std::optional<double> weight_decay;
  // Megatron's per-group overrides of its scheduler's start_wd, end_wd, and the group's wd_mult
  // (its max_lr and min_lr overrides are the fields above).
  std::optional<double> start_wd;
  std::optional<double> end_wd;
  std::optional<double> wd_mult;
  // timm: every value its schedulers write to the group is multiplied by it.
  std::optional<double> lr_scale;

  // The value a trace reports as "momentum": betas[0] where the group has betas, else momentum.
  std::optional<double> reported_momentum() const {
    if (betas) return (*betas)[0];
    return momentum;
  }
  bool operator==(const ParamGroup& o) const {
    return lr == o.lr && initial_lr == o.initial_lr && momentum == o.momentum && betas == o.betas &&
           max_lr == o.max_lr && min_lr == o.min_lr && max_momentum == o.max_momentum &&
           base_momentum == o.base_momentum && weight_decay == o.weight_decay &&
           start_wd == o.start_wd && end_wd == o.end_wd && wd_mult == o.wd_mult &&
           lr_scale == o.lr_scale;
  }
};

// The optimizer: its torch class name, what its `defaults` hold, and its groups.
// Invariant: groups is non-empty and at most kMaxParamGroups long once built from a spec.
struct Optimizer {
  static constexpr size_t kMaxParamGroups = 1024;

  std::string type;                // "SGD", "Adam", ...
  bool defaults_momentum = false;  // 'momentum' in optimizer.defaults
  bool defaults_betas = false;     // 'betas' in optimizer.defaults
  std::vector<ParamGroup> groups;
};

}  // namespace lrsched

#endif  // LRSCHED_SCHEDULER_OPTIMIZER_H_
