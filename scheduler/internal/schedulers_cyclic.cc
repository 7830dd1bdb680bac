// Copyright lrsched authors.
//
// The per-batch schedulers of torch 1.13 that also drive momentum or restart: CyclicLR,
// OneCycleLR and CosineAnnealingWarmRestarts. Their constructors write into the param groups
// before the base class attaches (and only when last_epoch == -1); that order is kept because
// it decides what the initial step sees on resume.
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/expr.h"
#include "scheduler/internal/node.h"
#include "scheduler/internal/pymath.h"
#include "scheduler/internal/pynum.h"

namespace lrsched::scheduler_internal {
namespace {

class CyclicLR : public ValueNode<CyclicLR> {
 public:
  std::vector<double> max_lrs, base_momentums, max_momentums;
  double total_size = 0, step_ratio = 0, gamma = 1.0;
  std::string mode, scale_mode;
  std::optional<Expr> scale_fn;
  bool cycle_momentum = true;

  const char* type() const override { return "CyclicLR"; }
  int64_t StepCost(size_t groups) const override {
    return SchedulerNode::StepCost(groups) + (scale_fn ? kInstrCost * scale_fn->cost() : 0);
  }

  absl::Status Scale(int64_t x, double* out) const {
    if (scale_fn) {
      auto r = scale_fn->Eval(x);
      if (!r.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("scale_fn (", scale_fn->source(),
                                                       ") at x = ", x, ": ", r.status().message()));
      }
      *out = *r;
      return absl::OkStatus();
    }
    if (mode == "triangular") {
      *out = 1.;
      return absl::OkStatus();
    }
    if (mode == "triangular2") {  // 1 / (2. ** (x - 1))
      double p;
      LRS_RETURN_IF_ERROR(PyPow(2., static_cast<double>(x - 1), &p));
      return PyDiv(1.0, p, out);
    }
    return PyPow(gamma, static_cast<double>(x), out);  // exp_range: gamma ** x
  }

  absl::Status GetLr(const Optimizer&, double* out) override {
    const double e = static_cast<double>(last_epoch_);
    int64_t cycle;
    LRS_RETURN_IF_ERROR(PyFloorToInt(1 + e / total_size, &cycle));
    double x = 1. + e / total_size - static_cast<double>(cycle);
    double scale_factor;
    if (x <= step_ratio) {
      LRS_RETURN_IF_ERROR(PyDiv(x, step_ratio, &scale_factor));
    } else {
      LRS_RETURN_IF_ERROR(PyDiv(x - 1, step_ratio - 1, &scale_factor));
    }
    double scale;
    LRS_RETURN_IF_ERROR(Scale(scale_mode == "cycle" ? cycle : last_epoch_, &scale));
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      double base_height = (max_lrs[i] - base_lrs_[i]) * scale_factor;
      out[i] = base_lrs_[i] + base_height * scale;
    }
    if (cycle_momentum) {
      for (size_t i = 0; i < base_momentums.size(); ++i) {
        double base_height = (max_momentums[i] - base_momentums[i]) * scale_factor;
        momentum_out_[i] = max_momentums[i] - base_height * scale;
      }
    }
    return absl::OkStatus();
  }

  json Config() const override {
    json c{{"max_lrs", StateNums(max_lrs)},
           {"total_size", total_size},
           {"step_ratio", step_ratio},
           {"mode", mode},
           {"gamma", gamma},
           {"_scale_fn_custom", nullptr},
           {"_scale_fn_ref", nullptr},
           {"scale_mode", scale_mode},
           {"cycle_momentum", cycle_momentum}};
    if (cycle_momentum) c["max_momentums"] = StateNums(max_momentums);
    return c;
  }
  // On resume torch takes base_momentums from the groups, so they are state, not config.
  void AddExtraState(json& sd) const override {
    if (cycle_momentum) sd["base_momentums"] = StateNums(base_momentums);
  }
  void LoadExtraState(Fields& f) override {
    if (cycle_momentum && f.Has("base_momentums")) {
      base_momentums = f.FloatPerGroup("base_momentums", std::nullopt, base_momentums.size(), 0, 1);
    }
  }
};

class OneCycleLR : public ValueNode<OneCycleLR> {
 public:
  struct Phase {
    double end_step;
    bool end_is_int;                       // torch stores the last phase's end as an int
    int start_lr, end_lr, start_m, end_m;  // group keys, see KeyName()
  };
  int64_t total_steps = 0;
  std::vector<Phase> phases;
  bool linear = false, cycle_momentum = true, use_beta1 = false;

  const char* type() const override { return "OneCycleLR"; }

  static const char* KeyName(int k) {
    static const char* kNames[] = {"initial_lr", "max_lr", "min_lr", "max_momentum",
                                   "base_momentum"};
    return kNames[k];
  }
  // The group's value of key `k`. A group restored from a checkpoint may lack one (a torch
  // checkpoint without optimizer param groups, or one whose groups were not OneCycleLR's):
  // that step is refused, naming the key, instead of reading an empty optional.
  static absl::Status KeyValue(const ParamGroup& g, int k, size_t index, double* out) {
    const std::optional<double>* v;
    switch (k) {
      case 0:
        v = &g.initial_lr;
        break;
      case 1:
        v = &g.max_lr;
        break;
      case 2:
        v = &g.min_lr;
        break;
      case 3:
        v = &g.max_momentum;
        break;
      default:
        v = &g.base_momentum;
    }
    if (!v->has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer.param_groups[", index, "].",
                                                     KeyName(k),
                                                     ": missing; OneCycleLR reads it at every "
                                                     "step (restore the optimizer's param groups "
                                                     "from the same checkpoint)"));
    }
    *out = **v;
    return absl::OkStatus();
  }
  double Anneal(double start, double end, double pct) const {
    if (linear) return (end - start) * pct + start;
    double cos_out = std::cos(kPi * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
  }

  absl::Status GetLr(const Optimizer& opt, double* out) override {
    const int64_t step_num = last_epoch_;
    if (step_num > total_steps) {
      return absl::InvalidArgumentError(absl::StrCat("OneCycleLR: tried to step ", step_num + 1,
                                                     " times; the specified number of total "
                                                     "steps is ",
                                                     total_steps));
    }
    for (size_t g = 0; g < opt.groups.size(); ++g) {
      const ParamGroup& group = opt.groups[g];
      double start_step = 0;
      for (size_t i = 0; i < phases.size(); ++i) {
        const Phase& p = phases[i];
        if (static_cast<double>(step_num) <= p.end_step || i == phases.size() - 1) {
          double pct;
          LRS_RETURN_IF_ERROR(
              PyDiv(static_cast<double>(step_num) - start_step, p.end_step - start_step, &pct));
          double start, end;
          LRS_RETURN_IF_ERROR(KeyValue(group, p.start_lr, g, &start));
          LRS_RETURN_IF_ERROR(KeyValue(group, p.end_lr, g, &end));
          out[g] = Anneal(start, end, pct);
          if (cycle_momentum) {
            LRS_RETURN_IF_ERROR(KeyValue(group, p.start_m, g, &start));
            LRS_RETURN_IF_ERROR(KeyValue(group, p.end_m, g, &end));
            momentum_out_[g] = Anneal(start, end, pct);
          }
          break;
        }
        start_step = p.end_step;
      }
    }
    return absl::OkStatus();
  }

  json Config() const override {
    json ph = json::array();
    for (const Phase& p : phases) {
      ph.push_back(
          {{"end_step", p.end_is_int ? json(static_cast<int64_t>(p.end_step)) : json(p.end_step)},
           {"start_lr", KeyName(p.start_lr)},
           {"end_lr", KeyName(p.end_lr)},
           {"start_momentum", KeyName(p.start_m)},
           {"end_momentum", KeyName(p.end_m)}});
    }
    json c{{"total_steps", total_steps},
           {"_schedule_phases", ph},
           {"anneal_func", nullptr},
           {"cycle_momentum", cycle_momentum}};
    if (cycle_momentum) c["use_beta1"] = use_beta1;
    return c;
  }
};

class CosineAnnealingWarmRestarts : public ValueNode<CosineAnnealingWarmRestarts> {
 public:
  int64_t T_0 = 1, T_i = 1, T_mult = 1;
  double eta_min = 0, T_cur = -1;

  const char* type() const override { return "CosineAnnealingWarmRestarts"; }

  absl::Status GetLr(const Optimizer&, double* out) override {
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      out[i] = eta_min + (base_lrs_[i] - eta_min) *
                             (1 + std::cos(kPi * T_cur / static_cast<double>(T_i))) / 2;
    }
    return absl::OkStatus();
  }

  static absl::Status MulInt(int64_t a, int64_t b, int64_t* out) {
    if (__builtin_mul_overflow(a, b, out) || *out > kMaxInt) {
      return absl::InvalidArgumentError(
          "CosineAnnealingWarmRestarts: the restart period T_i grew past 1e15");
    }
    return absl::OkStatus();
  }

  // torch's CosineAnnealingWarmRestarts.step(epoch), which does not count _step_count.
  absl::Status Step(Optimizer& opt, const StepArgs& args) override {
    const int64_t saved_epoch = last_epoch_, saved_T_i = T_i;
    const double saved_T_cur = T_cur;
    absl::Status s = Advance(args);
    if (s.ok()) s = GetLr(opt, scratch_.data());
    if (s.ok()) s = Commit(opt);
    if (!s.ok()) {
      last_epoch_ = saved_epoch;
      T_i = saved_T_i;
      T_cur = saved_T_cur;
    }
    return s;
  }

  // The part of step() that moves T_cur, T_i and last_epoch.
  absl::Status Advance(const StepArgs& args) {
    if (args.metric) {
      return absl::InvalidArgumentError(
          "metric: CosineAnnealingWarmRestarts.step() takes no metric");
    }
    std::optional<double> epoch = args.epoch;
    if (!epoch && last_epoch_ < 0) epoch = 0;
    if (!epoch) {
      if (last_epoch_ >= kMaxInt) {
        return absl::InvalidArgumentError(absl::StrCat("last_epoch: cannot step past ", kMaxInt));
      }
      epoch = static_cast<double>(last_epoch_ + 1);
      T_cur = T_cur + 1;
      if (T_cur >= static_cast<double>(T_i)) {
        T_cur = T_cur - static_cast<double>(T_i);
        LRS_RETURN_IF_ERROR(MulInt(T_i, T_mult, &T_i));
      }
    } else {
      double e = *epoch;
      if (!(e >= 0) || !(e <= static_cast<double>(kMaxInt))) {
        return absl::InvalidArgumentError(
            absl::StrCat("epoch: expected a non-negative epoch of at most ", kMaxInt, ", got ",
                         FormatNumber(e)));
      }
      if (e >= static_cast<double>(T_0)) {
        if (T_mult == 1) {
          LRS_RETURN_IF_ERROR(PyMod(e, static_cast<double>(T_0), &T_cur));
        } else {
          double tm = static_cast<double>(T_mult);
          double num, den;
          LRS_RETURN_IF_ERROR(PyLog(e / static_cast<double>(T_0) * (tm - 1) + 1, &num));
          LRS_RETURN_IF_ERROR(PyLog(tm, &den));
          int64_t n = static_cast<int64_t>(std::trunc(num / den));  // int() truncates
          int64_t pow_n = 1;
          for (int64_t k = 0; k < n; ++k) LRS_RETURN_IF_ERROR(MulInt(pow_n, T_mult, &pow_n));
          int64_t t0_pow;
          LRS_RETURN_IF_ERROR(MulInt(T_0, pow_n - 1, &t0_pow));
          T_cur = e - static_cast<double>(t0_pow) / static_cast<double>(T_mult - 1);
          LRS_RETURN_IF_ERROR(MulInt(T_0, pow_n, &T_i));
        }
      } else {
        T_i = T_0;
        T_cur = e;
      }
    }
    last_epoch_ = static_cast<int64_t>(std::floor(*epoch));
    return absl::OkStatus();
  }

  json Config() const override {
    return json{{"T_0", T_0}, {"T_mult", T_mult}, {"eta_min", eta_min}};
  }
  void AddExtraState(json& sd) const override {
    sd["T_i"] = T_i;
    if (T_cur == std::floor(T_cur))
      sd["T_cur"] = static_cast<int64_t>(T_cur);
    else
      sd["T_cur"] = T_cur;
  }
  void LoadExtraState(Fields& f) override {
    T_i = f.Int("T_i", T_i, 1);
    T_cur = f.Float("T_cur", T_cur, -1, static_cast<double>(kMaxInt));
  }
};

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildCyclicLR(Fields& f, Optimizer& opt,
                                                             int64_t last_epoch) {
  const size_t n = opt.groups.size();
  auto node = std::make_unique<CyclicLR>();
  std::vector<double> base_lrs = f.FloatPerGroup("base_lr", std::nullopt, n, 0);
  node->max_lrs = f.FloatPerGroup("max_lr", std::nullopt, n, 0);
  double up = f.Float("step_size_up", 2000, 1e-9, 1e15);
  double down = f.Has("step_size_down") ? f.Float("step_size_down", std::nullopt, 1e-9, 1e15) : up;
  f.Ignore("step_size_down");
  node->mode = f.Enum("mode", "triangular", {"triangular", "triangular2", "exp_range"});
  node->gamma = f.Float("gamma", 1.0, 0);
  if (const json* fn = f.Raw("scale_fn", false)) {
    if (!fn->is_string()) {
      f.Fail(f.PathOf("scale_fn"), "expected a Python expression as a string");
    } else {
      auto x = Expr::Compile(fn->get_ref<const std::string&>(), {"x", "step"});
      if (!x.ok())
        f.Fail(f.PathOf("scale_fn"), std::string(x.status().message()));
      else
        node->scale_fn = *std::move(x);
    }
    node->scale_mode = f.Enum("scale_mode", "cycle", {"cycle", "iterations"});
  } else {
    f.Enum("scale_mode", "cycle", {"cycle", "iterations"});  // torch ignores it without scale_fn
    node->scale_mode = node->mode == "exp_range" ? "iterations" : "cycle";
  }
  node->cycle_momentum = f.Bool("cycle_momentum", true);
  std::vector<double> base_m = f.FloatPerGroup("base_momentum", 0.8, n, 0, 1);
  node->max_momentums = f.FloatPerGroup("max_momentum", 0.9, n, 0, 1);
  LRS_RETURN_IF_ERROR(f.Finish());
  node->total_size = up + down;
  node->step_ratio = up / node->total_size;
  if (last_epoch == -1) {
    for (size_t i = 0; i < n; ++i) opt.groups[i].lr = base_lrs[i];
  }
  if (node->cycle_momentum) {
    if (!opt.defaults_momentum) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.PathOf("cycle_momentum"), ": optimizer ", opt.type,
                       " has no momentum to cycle (torch 1.13's CyclicLR needs 'momentum' in the "
                       "optimizer's defaults); set cycle_momentum to false"));
    }
    if (last_epoch == -1) {
      for (size_t i = 0; i < n; ++i) opt.groups[i].momentum = base_m[i];
    }
    for (size_t i = 0; i < n; ++i) node->base_momentums.push_back(*opt.groups[i].momentum);
    node->cycles_momentum_ = true;
  } else {
    node->max_momentums.clear();
  }
  LRS_RETURN_IF_ERROR(node->Attach(opt, last_epoch, f.path()));
  LRS_RETURN_IF_ERROR(node->InitialStep(opt));
  // torch assigns base_lrs only after the initial step, which therefore used initial_lr.
  node->base_lrs_ = base_lrs;
  return std::unique_ptr<SchedulerNode>(std::move(node));
}

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildOneCycleLR(Fields& f, Optimizer& opt,
                                                               int64_t last_epoch) {
  const size_t n = opt.groups.size();
  auto node = std::make_unique<OneCycleLR>();
  std::vector<double> max_lrs = f.FloatPerGroup("max_lr", std::nullopt, n, 0);
  if (f.Has("total_steps")) {
    node->total_steps = f.Int("total_steps", std::nullopt, 1);
    f.Ignore("epochs");
    f.Ignore("steps_per_epoch");
  } else if (f.Has("epochs") || f.Has("steps_per_epoch")) {
    int64_t epochs = f.Int("epochs", std::nullopt, 1, 1'000'000'000);
    int64_t spe = f.Int("steps_per_epoch", std::nullopt, 1, 1'000'000'000);
    node->total_steps = epochs * spe;
    if (f.status().ok() && node->total_steps > kMaxInt) {
      f.Fail(f.PathOf("epochs"), "epochs * steps_per_epoch exceeds 1e15");
    }
  } else {
    f.Fail(f.path(), "OneCycleLR needs total_steps, or epochs and steps_per_epoch");
  }
  double pct_start = f.Float("pct_start", 0.3, 0, 1);
  node->linear = f.Enum("anneal_strategy", "cos", {"cos", "linear"}) == "linear";
  node->cycle_momentum = f.Bool("cycle_momentum", true);
  std::vector<double> base_m = f.FloatPerGroup("base_momentum", 0.85, n, 0, 1);
  std::vector<double> max_m = f.FloatPerGroup("max_momentum", 0.95, n, 0, 1);
  double div_factor = f.Float("div_factor", 25., 1e-300);
  double final_div = f.Float("final_div_factor", 1e4, 1e-300);
  bool three_phase = f.Bool("three_phase", false);
  LRS_RETURN_IF_ERROR(f.Finish());
  const double t = static_cast<double>(node->total_steps);
  enum { kInitial, kMax, kMin, kMaxM, kBaseM };
  using P = OneCycleLR::Phase;
  if (three_phase) {
    node->phases = {P{pct_start * t - 1, false, kInitial, kMax, kMaxM, kBaseM},
                    P{2 * pct_start * t - 2, false, kMax, kInitial, kBaseM, kMaxM},
                    P{t - 1, true, kInitial, kMin, kMaxM, kMaxM}};
  } else {
    node->phases = {P{pct_start * t - 1, false, kInitial, kMax, kMaxM, kBaseM},
                    P{t - 1, true, kMax, kMin, kBaseM, kMaxM}};
  }
  if (last_epoch == -1) {
    for (size_t i = 0; i < n; ++i) {
      ParamGroup& g = opt.groups[i];
      g.initial_lr = max_lrs[i] / div_factor;
      g.max_lr = max_lrs[i];
      g.min_lr = *g.initial_lr / final_div;
    }
  }
  if (node->cycle_momentum) {
    if (!opt.defaults_momentum && !opt.defaults_betas) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.PathOf("cycle_momentum"), ": optimizer ", opt.type,
                       " has neither momentum nor betas to cycle; set cycle_momentum to false"));
    }
    node->use_beta1 = opt.defaults_betas;
    node->cycles_momentum_ = true;
    node->use_beta1_ = node->use_beta1;
    if (last_epoch == -1) {
      for (size_t i = 0; i < n; ++i) {
        ParamGroup& g = opt.groups[i];
        if (node->use_beta1)
          (*g.betas)[0] = max_m[i];
        else
          g.momentum = max_m[i];
        g.max_momentum = max_m[i];
        g.base_momentum = base_m[i];
      }
    }
  }
  // On resume torch reads these group keys at the first step; say which one is missing.
  for (size_t i = 0; i < n; ++i) {
    const ParamGroup& g = opt.groups[i];
    const char* missing = !g.max_lr ? "max_lr" : !g.min_lr ? "min_lr" : nullptr;
    if (!missing && node->cycle_momentum) {
      missing = !g.max_momentum ? "max_momentum" : !g.base_momentum ? "base_momentum" : nullptr;
    }
    if (missing) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer.param_groups[", i, "].", missing,
                                                     ": required when resuming OneCycleLR (",
                                                     f.path(), ".last_epoch = ", last_epoch, ")"));
    }
  }
  return StartNode(std::move(node), opt, last_epoch, f.path());
}

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildWarmRestarts(Fields& f, Optimizer& opt,
                                                                 int64_t last_epoch) {
  auto node = std::make_unique<CosineAnnealingWarmRestarts>();
  node->T_0 = f.Int("T_0", std::nullopt, 1);
  node->T_mult = f.Int("T_mult", 1, 1, 1'000'000);
  node->eta_min = f.Float("eta_min", 0);
  LRS_RETURN_IF_ERROR(f.Finish());
  node->T_i = node->T_0;
  node->T_cur = static_cast<double>(last_epoch);
  return StartNode(std::move(node), opt, last_epoch, f.path());
}

}  // namespace

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildCyclic(const std::string& type, Fields& f,
                                                           Optimizer& opt) {
  int64_t last_epoch = f.Int("last_epoch", -1, -1, kMaxInt);
  if (type == "CyclicLR") return BuildCyclicLR(f, opt, last_epoch);
  if (type == "OneCycleLR") return BuildOneCycleLR(f, opt, last_epoch);
  return BuildWarmRestarts(f, opt, last_epoch);
}

}  // namespace lrsched::scheduler_internal
