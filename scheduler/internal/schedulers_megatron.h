// Copyright lrsched authors.
//
// Internal: megatron.OptimizerParamScheduler, Megatron-LM's scheduler of learning rate and
// weight decay (megatron/core/optimizer_param_scheduler.py as of commit 3d87bfc1b71c). The
// stepping formulas are in schedulers_megatron.cc, its state_dict and load_state_dict in
// schedulers_megatron_state.cc; BuildNode calls BuildMegatron for the type.
//
// Invariants: the values are a function of num_steps and the class values alone; a refused
// step leaves the node and the groups as they were (Megatron would already have advanced
// num_steps); stepping never allocates (the scratch vectors are sized at construction).
#ifndef LRSCHED_SCHEDULER_INTERNAL_SCHEDULERS_MEGATRON_H_
#define LRSCHED_SCHEDULER_INTERNAL_SCHEDULERS_MEGATRON_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "scheduler/internal/fields.h"
#include "scheduler/internal/node.h"
#include "scheduler/json_text.h"
#include "scheduler/optimizer.h"

namespace lrsched::scheduler_internal {

inline constexpr const char* kMegatronType = "megatron.OptimizerParamScheduler";

// A Python number as Megatron keeps it: the value, and whether it was an int (its state_dict
// shows it as given, 10 or 12.5).
struct MegatronNum {
  double v = 0;
  bool is_int = false;
  json Json() const { return is_int ? json(static_cast<int64_t>(v)) : json(v); }
  void Append(std::string* out) const {
    if (is_int)
      json_text::AppendInt(static_cast<int64_t>(v), out);
    else
      json_text::AppendDouble(v, out);
  }
};

// Reads an int or a float, keeping which.
MegatronNum ReadMegatronNum(Fields& f, const char* key, std::optional<double> def = std::nullopt,
                            double min = -1e300);
// A style name: any string (Megatron checks it only when a step reaches it).
std::optional<std::string> ReadMegatronStyle(Fields& f, const char* key, bool required);

// The style names, decided once (a step compares no strings); kOther: a name Megatron does not
// know (or, for WSD, none), refused by the step that needs it.
enum class MegatronLrStyle : uint8_t { kConstant, kLinear, kCosine, kInverseSqrt, kWsd, kOther };
enum class MegatronWsdStyle : uint8_t { kLinear, kCosine, kExponential, kMinusSqrt, kOther };
enum class MegatronWdStyle : uint8_t { kConstant, kLinear, kCosine, kOther };
MegatronLrStyle ClassifyLrStyle(const std::string& s);
MegatronWsdStyle ClassifyWsdStyle(const std::optional<std::string>& s);
MegatronWdStyle ClassifyWdStyle(const std::string& s);

class MegatronScheduler : public ValueNode<MegatronScheduler, SchedulerNode> {
 public:
  // The weight-decay half of the configuration, which load_state_dict sets after its step.
  struct WdConfig {
    MegatronNum start_wd, end_wd, wd_incr_steps;
    std::string wd_incr_style;
    MegatronWdStyle style = MegatronWdStyle::kOther;  // ClassifyWdStyle(wd_incr_style)
  };

  // The class values (Megatron's attributes of the same names); `wd` holds start_wd, end_wd,
  // wd_incr_steps and wd_incr_style. Set `lr_style` and `wsd_style` when the names change.
  double init_lr = 0;
  MegatronNum max_lr, min_lr, lr_warmup_steps, lr_decay_steps;
  std::string lr_decay_style;
  std::optional<double> wsd_decay_steps;
  std::optional<std::string> lr_wsd_decay_style;
  MegatronLrStyle lr_style = MegatronLrStyle::kOther;
  MegatronWsdStyle wsd_style = MegatronWsdStyle::kOther;
  WdConfig wd;
  bool use_checkpoint = true, override_values = false;
  int64_t increment = 1;  // lrsched's default increment of a Step
  int64_t num_steps = 0;
  // Values of the step being computed, committed only if every group's are valid.
  std::vector<double> lr_out, wd_out, last_lr_;

  const char* type() const override { return kMegatronType; }
  bool takes_epoch() const override { return false; }
  bool takes_increment() const override { return true; }
  bool drives_weight_decay() const override { return true; }
  int64_t last_epoch() const override { return num_steps; }
  const std::vector<double>& last_lr() const override { return last_lr_; }
  // An lr and a weight decay per group, each perhaps a cos.
  int64_t StepCost(size_t groups) const override {
    return kNodeCost + 2 * kGroupCost * static_cast<int64_t>(groups);
  }

  absl::Status Step(Optimizer& opt, const StepArgs& args) override;

  // step(): num_steps = n, then every group's lr and weight_decay; all or nothing.
  absl::Status StepTo(Optimizer& opt, int64_t n, const WdConfig& wd_config);
  // get_lr(param_group) at num_steps n.
  absl::Status GetLr(const ParamGroup& g, int64_t n, double* out) const;
  // get_wd(param_group) at num_steps n, with the weight-decay configuration `wd`; `i` names
  // the group in errors.
  static absl::Status GetWd(const ParamGroup& g, size_t i, int64_t n, const WdConfig& wd,
                            double* out);

  json StateDict() const override;
  void AppendStateDict(std::string* out) const override;
  absl::Status LoadStateDict(const json& sd, const std::string& path) override;
  absl::Status FinishLoad(Optimizer& opt) override;
  // Set by LoadStateDict: the checkpoint's weight-decay settings, taken after FinishLoad's step.
  std::optional<WdConfig> pending_wd;
};

// Megatron's constructor asserts, on the class values (also checked on values a state_dict
// brings in, which Megatron takes without asserting); errors name `path`.key.
absl::Status CheckMegatronValues(const MegatronScheduler& m, const std::string& path);

// Runs Megatron's constructor (its asserts, then step(0)) on `opt`. Refused inside a composite
// (depth > 0): torch's SequentialLR and ChainedScheduler cannot drive it.
absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildMegatron(Fields& f, Optimizer& opt, int depth);

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_SCHEDULERS_MEGATRON_H_
