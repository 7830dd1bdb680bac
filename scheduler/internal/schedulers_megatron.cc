// Copyright lrsched authors.
//
// megatron.OptimizerParamScheduler: Megatron-LM's scheduler of learning rate and weight decay
// (megatron/core/optimizer_param_scheduler.py as of commit 3d87bfc1b71c), transcribed formula by
// formula in its order of operations. It counts num_steps (samples, in Megatron's sample-based
// training: a step adds the global batch size) and computes each group's lr and weight_decay
// from num_steps alone; construction calls step(0).
//
// The spec holds the constructor's keyword arguments (init_lr, max_lr, min_lr, lr_warmup_steps,
// lr_decay_steps, lr_decay_style, start_wd, end_wd, wd_incr_steps, wd_incr_style,
// use_checkpoint_opt_param_scheduler, override_opt_param_scheduler, wsd_decay_steps,
// lr_wsd_decay_style) plus lrsched's "increment": the default of a Step's increment.
// Param groups may override max_lr, min_lr, start_wd, end_wd and carry wd_mult.
//
// Megatron's asserts in the constructor are refusals at construction (INVALID_ARGUMENT naming
// the argument); what it raises while computing a step (an unknown decay style, WSD without
// lr_wsd_decay_style) refuses that step, which then changes nothing (Megatron would already
// have advanced num_steps).
#include "scheduler/internal/schedulers_megatron.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace lrsched::scheduler_internal {
namespace {
constexpr size_t kMaxStyleLength = 64;
}  // namespace

// Reads an int or a float, keeping which.
MegatronNum ReadMegatronNum(Fields& f, const char* key, std::optional<double> def, double min) {
  const json* v = f.Raw(key, false);
  if (v != nullptr && v->is_number_integer())
    return MegatronNum{static_cast<double>(f.Int(key, 0)), true};
  return MegatronNum{f.Float(key, def, min), false};
}

// A style name: any string (Megatron checks it only when a step reaches it).
std::optional<std::string> ReadMegatronStyle(Fields& f, const char* key, bool required) {
  const json* v = f.Raw(key, required);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string() || v->get_ref<const std::string&>().size() > kMaxStyleLength) {
    f.Fail(f.PathOf(key), absl::StrCat("expected a style name (a string of at most ",
                                       kMaxStyleLength, " characters)"));
    return std::nullopt;
  }
  return v->get<std::string>();
}

MegatronLrStyle ClassifyLrStyle(const std::string& s) {
  if (s == "constant") return MegatronLrStyle::kConstant;
  if (s == "linear") return MegatronLrStyle::kLinear;
  if (s == "cosine") return MegatronLrStyle::kCosine;
  if (s == "inverse-square-root") return MegatronLrStyle::kInverseSqrt;
  if (s == "WSD") return MegatronLrStyle::kWsd;
  return MegatronLrStyle::kOther;
}

MegatronWsdStyle ClassifyWsdStyle(const std::optional<std::string>& s) {
  if (s == "linear") return MegatronWsdStyle::kLinear;
  if (s == "cosine") return MegatronWsdStyle::kCosine;
  if (s == "exponential") return MegatronWsdStyle::kExponential;
  if (s == "minus_sqrt") return MegatronWsdStyle::kMinusSqrt;
  return MegatronWsdStyle::kOther;
}

MegatronWdStyle ClassifyWdStyle(const std::string& s) {
  if (s == "constant") return MegatronWdStyle::kConstant;
  if (s == "linear") return MegatronWdStyle::kLinear;
  if (s == "cosine") return MegatronWdStyle::kCosine;
  return MegatronWdStyle::kOther;
}

absl::Status MegatronScheduler::Step(Optimizer& opt, const StepArgs& args) {
  if (args.metric) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric: ", kMegatronType, ".step() takes no metric"));
  }
  const int64_t inc = args.increment.value_or(increment);
  if (inc > kMaxInt - num_steps) {
    return absl::InvalidArgumentError(absl::StrCat("increment: num_steps cannot pass ", kMaxInt));
  }
  return StepTo(opt, num_steps + inc, wd);
}

absl::Status MegatronScheduler::StepTo(Optimizer& opt, int64_t n, const WdConfig& wd_config) {
  for (size_t i = 0; i < opt.groups.size(); ++i) {
    const ParamGroup& g = opt.groups[i];
    LRS_RETURN_IF_ERROR(GetLr(g, n, &lr_out[i]));
    double w = 0;
    LRS_RETURN_IF_ERROR(GetWd(g, i, n, wd_config, &w));
    wd_out[i] = w * g.wd_mult.value_or(1.0);
    if (!std::isfinite(lr_out[i]) || !std::isfinite(wd_out[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(kMegatronType, ": param group ", i, " would get lr ",
                       FormatNumber(lr_out[i]), " and weight_decay ", FormatNumber(wd_out[i]),
                       " at num_steps ", n, "; refusing a non-finite value"));
    }
  }
  num_steps = n;
  for (size_t i = 0; i < opt.groups.size(); ++i) {
    opt.groups[i].lr = lr_out[i];
    opt.groups[i].weight_decay = wd_out[i];
    last_lr_[i] = lr_out[i];
  }
  return absl::OkStatus();
}

absl::Status MegatronScheduler::GetLr(const ParamGroup& g, int64_t n, double* out) const {
  const double max = g.max_lr.value_or(max_lr.v), min = g.min_lr.value_or(min_lr.v);
  const double steps = static_cast<double>(n), W = lr_warmup_steps.v, D = lr_decay_steps.v;
  if (W > 0 && steps <= W) {
    *out = init_lr + ((max - init_lr) * steps / W);
    return absl::OkStatus();
  }
  if (lr_style == MegatronLrStyle::kConstant) {
    *out = max;
    return absl::OkStatus();
  }
  if (steps > D) {
    *out = min;
    return absl::OkStatus();
  }
  if (lr_style == MegatronLrStyle::kInverseSqrt) {
    const double warmup = std::max(W, 1.0), s = std::max(steps, 1.0);
    const double lr = max * std::pow(warmup, 0.5) / std::pow(s, 0.5);
    *out = lr > min ? lr : min;  // Python's max(min_lr, lr)
    return absl::OkStatus();
  }
  const double decay_ratio = (steps - W) / (D - W);
  const double delta = max - min;
  double coeff;
  if (lr_style == MegatronLrStyle::kLinear) {
    coeff = 1.0 - decay_ratio;
  } else if (lr_style == MegatronLrStyle::kCosine) {
    coeff = 0.5 * (std::cos(M_PI * decay_ratio) + 1.0);
  } else if (lr_style == MegatronLrStyle::kWsd) {
    const double anneal_start = D - *wsd_decay_steps;
    if (steps <= anneal_start) {
      coeff = 1.0;
    } else {
      const double r = (steps - anneal_start) / *wsd_decay_steps;
      if (wsd_style == MegatronWsdStyle::kLinear) {
        coeff = 1.0 - r;
      } else if (wsd_style == MegatronWsdStyle::kCosine) {
        coeff = 0.5 * (std::cos(M_PI * r) + 1.0);
      } else if (wsd_style == MegatronWsdStyle::kExponential) {
        coeff = (2.0 * std::pow(0.5, r)) - 1.0;
      } else if (wsd_style == MegatronWsdStyle::kMinusSqrt) {
        coeff = 1.0 - std::sqrt(r);
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "lr_wsd_decay_style: WSD's annealing phase (num_steps ", n, " > ",
            FormatNumber(anneal_start), ") needs one of linear, cosine, exponential, minus_sqrt; ",
            lr_wsd_decay_style ? absl::StrCat("got \"", *lr_wsd_decay_style, "\"")
                               : "none was given",
            " (Megatron: AssertionError)"));
      }
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "lr_decay_style: \"", lr_decay_style, "\" decay style is not supported (at num_steps ", n,
        "; Megatron accepts it until a step past warmup needs it)"));
  }
  *out = min + coeff * delta;
  return absl::OkStatus();
}

absl::Status MegatronScheduler::GetWd(const ParamGroup& g, size_t i, int64_t n, const WdConfig& wd,
                                      double* out) {
  const double start = g.start_wd.value_or(wd.start_wd.v), end = g.end_wd.value_or(wd.end_wd.v);
  const double steps = static_cast<double>(n), N = wd.wd_incr_steps.v;
  if (steps > N) {
    *out = end;
    return absl::OkStatus();
  }
  if (wd.style == MegatronWdStyle::kConstant) {
    if (start != end) {
      return absl::InvalidArgumentError(absl::StrCat(
          g.start_wd || g.end_wd ? absl::StrCat("optimizer.param_groups[", i, "].start_wd")
                                 : std::string("start_wd"),
          ": wd_incr_style \"constant\" needs start_wd == end_wd, got ", FormatNumber(start),
          " and ", FormatNumber(end), " (Megatron: AssertionError)"));
    }
    *out = end;
    return absl::OkStatus();
  }
  if (N == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("wd_incr_steps: 0 divides by zero at num_steps 0 with wd_incr_style \"",
                     wd.wd_incr_style, "\" (Megatron: ZeroDivisionError)"));
  }
  const double incr_ratio = steps / N;
  double coeff;
  if (wd.style == MegatronWdStyle::kLinear) {
    coeff = incr_ratio;
  } else if (wd.style == MegatronWdStyle::kCosine) {
    coeff = 0.5 * (std::cos(M_PI * (1 - incr_ratio)) + 1.0);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "wd_incr_style: \"", wd.wd_incr_style, "\" weight decay increment style is not supported"));
  }
  *out = start + coeff * (end - start);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildMegatron(Fields& f, Optimizer& opt, int depth) {
  if (depth > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        f.path(), ": ", kMegatronType, " cannot be nested in a torch scheduler (it is not one)"));
  }
  auto m = std::make_unique<MegatronScheduler>();
  m->init_lr = f.Float("init_lr", std::nullopt);
  m->max_lr = MegatronNum{f.Float("max_lr", std::nullopt), false};  // float(max_lr)
  m->min_lr = ReadMegatronNum(f, "min_lr");
  m->lr_warmup_steps = ReadMegatronNum(f, "lr_warmup_steps");
  m->lr_decay_steps = ReadMegatronNum(f, "lr_decay_steps");
  m->lr_decay_style = ReadMegatronStyle(f, "lr_decay_style", true).value_or("");
  m->wd.start_wd = ReadMegatronNum(f, "start_wd");
  m->wd.end_wd = ReadMegatronNum(f, "end_wd");
  m->wd.wd_incr_steps = ReadMegatronNum(f, "wd_incr_steps");
  m->wd.wd_incr_style = ReadMegatronStyle(f, "wd_incr_style", true).value_or("");
  m->wd.style = ClassifyWdStyle(m->wd.wd_incr_style);
  m->use_checkpoint = f.Bool("use_checkpoint_opt_param_scheduler", true);
  m->override_values = f.Bool("override_opt_param_scheduler", false);
  if (f.Has("wsd_decay_steps")) m->wsd_decay_steps = f.Float("wsd_decay_steps", std::nullopt);
  m->lr_wsd_decay_style = ReadMegatronStyle(f, "lr_wsd_decay_style", false);
  m->lr_style = ClassifyLrStyle(m->lr_decay_style);
  m->wsd_style = ClassifyWsdStyle(m->lr_wsd_decay_style);
  m->increment = f.Int("increment", 1, 1, kMaxInt);
  LRS_RETURN_IF_ERROR(f.Finish());
  LRS_RETURN_IF_ERROR(CheckMegatronValues(*m, f.path()));
  if (m->override_values && m->use_checkpoint) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.PathOf("override_opt_param_scheduler"),
                     ": both override and use-checkpoint are set (Megatron: AssertionError); set "
                     "use_checkpoint_opt_param_scheduler to false"));
  }
  const size_t n = opt.groups.size();
  m->lr_out.assign(n, 0.0);
  m->wd_out.assign(n, 0.0);
  m->last_lr_.assign(n, 0.0);
  absl::Status s = m->StepTo(opt, 0, m->wd);  // the constructor's step(0)
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(f.path(), ".", s.message()));
  return std::unique_ptr<SchedulerNode>(std::move(m));
}

}  // namespace lrsched::scheduler_internal
