// Copyright lrsched authors.
//
// timm's PlateauLRScheduler (timm/scheduler/plateau_lr.py at 31a85de79aad): a warmup, then
// torch 1.13's ReduceLROnPlateau (mode max by default) stepped whenever a metric comes, with
// noise laid on top of the groups' lr and taken off again before the next plateau step.
// Metric-driven, so not deterministic. timm's state_dict holds only the inner scheduler's
// `best` and `last_epoch`; the rest (t, the counters, the lr to restore) is lrsched's node
// state, so that lrsched's own export continues exactly.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/plateau_core.h"
#include "scheduler/internal/pymath.h"
#include "scheduler/internal/timm_common.h"

namespace lrsched::scheduler_internal {
namespace {

// The PlateauCore is timm's ReduceLROnPlateau(optimizer, patience=patience_t,
// factor=decay_rate, threshold, cooldown=cooldown_t, mode, min_lr=lr_min); threshold_mode 'rel',
// eps 1e-8 (PlateauCore's defaults).
class TimmPlateau : public ValueNode<TimmPlateau, SchedulerNode>, public PlateauCore {
 public:
  double min_lr = 0;
  int64_t plateau_epoch = 0;
  TimmNoise noise;
  int64_t warmup_t = 0;
  double warmup_lr_init = 0;
  std::vector<double> base_values, warmup_steps, values_, restore_lr, last_lr_;
  bool has_restore = false;
  int64_t t_ = 0;

  const char* type() const override { return "timm.PlateauLRScheduler"; }
  bool deterministic() const override { return false; }
  int64_t last_epoch() const override { return t_; }
  const std::vector<double>& last_lr() const override { return last_lr_; }
  int64_t StepCost(size_t groups) const override {
    return SchedulerNode::StepCost(groups) + noise.StepCost();
  }

  absl::Status Step(Optimizer& opt, const StepArgs& args) override {
    int64_t t;
    LRS_RETURN_IF_ERROR(TimmNextT(args, t_, type(), &t));
    if (args.metric && !std::isfinite(*args.metric)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric: expected a finite number, got ", FormatNumber(*args.metric)));
    }
    const size_t n = opt.groups.size();
    if (t <= warmup_t) {
      for (size_t g = 0; g < n; ++g)
        values_[g] = warmup_lr_init + static_cast<double>(t) * warmup_steps[g];
      LRS_RETURN_IF_ERROR(WriteTimmGroups(opt, values_.data(), type(), t));
    } else {
      // Computed into values_ first: the step may still be refused by its noise draw.
      double nz = 0;
      const bool noisy = noise.Applies(t);
      if (noisy) LRS_RETURN_IF_ERROR(noise.Draw(t, &nz));
      for (size_t g = 0; g < n; ++g) values_[g] = has_restore ? restore_lr[g] : opt.groups[g].lr;
      if (args.metric) {
        plateau_epoch += 1;
        if (Observe(*args.metric)) {
          for (size_t g = 0; g < n; ++g) values_[g] = Reduced(values_[g], min_lr);
        }
      }
      has_restore = noisy;
      for (size_t g = 0; g < n; ++g) {
        const double old_lr = values_[g];
        if (noisy) restore_lr[g] = old_lr;
        opt.groups[g].lr = noisy ? old_lr + old_lr * nz : old_lr;
      }
    }
    for (size_t g = 0; g < n; ++g) last_lr_[g] = opt.groups[g].lr;
    t_ = t;
    return absl::OkStatus();
  }

  json StateDict() const override {
    return json{{"best", StateNum(best)}, {"last_epoch", plateau_epoch}};
  }
  absl::Status LoadStateDict(const json& sd, const std::string& path) override {
    Fields f(sd, path);
    const json* b = f.Raw("best", true);
    if (b != nullptr && !ReadStateNum(*b, &best)) f.Fail(f.PathOf("best"), "expected a number");
    if (f.Has("last_epoch")) plateau_epoch = f.Int("last_epoch", std::nullopt, 0, kMaxInt);
    return f.Finish();
  }
  json NodeState() const override {
    return json{{"t", t_},
                {"num_bad_epochs", num_bad_epochs},
                {"cooldown_counter", cooldown_counter},
                {"restore_lr", has_restore ? StateNums(restore_lr) : json(nullptr)}};
  }
  absl::Status LoadNodeState(const json& s, const std::string& path) override {
    Fields f(s, path);
    t_ = f.Int("t", std::nullopt, 0, kMaxInt);
    num_bad_epochs = f.Int("num_bad_epochs", 0, 0, kMaxInt);
    cooldown_counter = f.Int("cooldown_counter", 0, 0, kMaxInt);
    has_restore = false;
    if (const json* r = f.Raw("restore_lr", false); r != nullptr && !r->is_null()) {
      restore_lr =
          f.FloatPerGroup("restore_lr", std::nullopt, restore_lr.size(), -kAnyFinite, kAnyFinite);
      has_restore = true;
    }
    return f.Finish();
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildTimmPlateau(Fields& f, Optimizer& opt) {
  auto node = std::make_unique<TimmPlateau>();
  TimmPlateau& s = *node;
  s.factor = f.Float("decay_rate", 0.1);
  s.patience = f.Int("patience_t", 10, 0);
  s.threshold = f.Float("threshold", 1e-4);
  s.cooldown = f.Int("cooldown_t", 0, 0);
  s.warmup_t = f.Int("warmup_t", 0, 0);
  s.warmup_lr_init = f.Float("warmup_lr_init", 0.);
  s.min_lr = f.Float("lr_min", 0., 0);
  s.min_mode = false;  // timm's mode defaults to "max"
  if (f.status().ok() && f.Has("mode")) {
    const json& m = *f.Raw("mode", true);
    if (!m.is_string() || (m != "min" && m != "max")) {
      // torch: ValueError('mode ' + mode + ' is unknown!')
      f.Fail(f.PathOf("mode"),
             absl::StrCat("mode ", m.is_string() ? m.get<std::string>() : m.dump(),
                          " is unknown! (expected min or max)"));
    }
    s.min_mode = m == "min";
  }
  s.noise.Read(f, /*with_type=*/true, 42);
  const bool initialize = f.Bool("initialize", true);
  if (f.status().ok() && s.factor >= 1.0) {
    f.Fail(f.PathOf("decay_rate"), "Factor should be < 1.0 (torch's ReduceLROnPlateau)");
  }
  LRS_RETURN_IF_ERROR(f.Finish());
  LRS_RETURN_IF_ERROR(AttachTimm(opt, initialize, f.path(), &s.base_values));
  const size_t n = opt.groups.size();
  s.values_.assign(n, 0.0);
  s.restore_lr.assign(n, 0.0);
  s.last_lr_.assign(n, 0.0);
  LRS_RETURN_IF_ERROR(WriteTimmGroups(opt, s.base_values.data(), s.type(), 0));
  s.best = s.min_mode ? INFINITY : -INFINITY;  // ReduceLROnPlateau._reset: mode_worse
  s.warmup_steps.assign(n, 1.0);
  if (s.warmup_t != 0) {
    for (size_t g = 0; g < n; ++g) {
      s.warmup_steps[g] = (s.base_values[g] - s.warmup_lr_init) / static_cast<double>(s.warmup_t);
    }
    std::vector<double> init(n, s.warmup_lr_init);
    LRS_RETURN_IF_ERROR(WriteTimmGroups(opt, init.data(), s.type(), 0));
  }
  for (size_t g = 0; g < n; ++g) s.last_lr_[g] = opt.groups[g].lr;
  return std::unique_ptr<SchedulerNode>(std::move(node));
}

}  // namespace lrsched::scheduler_internal
