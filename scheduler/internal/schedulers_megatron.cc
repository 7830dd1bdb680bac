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
#include <cmath>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/node.h"
#include "scheduler/internal/schedulers_megatron.h"
#include "scheduler/json_text.h"

namespace lrsched::scheduler_internal {
namespace {

constexpr const char* kType = "megatron.OptimizerParamScheduler";
constexpr size_t kMaxStyleLength = 64;

// A Python number as Megatron keeps it: the value, and whether it was an int (its state_dict
// shows it as given, 10 or 12.5).
struct Num {
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
Num ReadNum(Fields& f, const char* key, std::optional<double> def = std::nullopt,
            double min = -1e300) {
  const json* v = f.Raw(key, false);
  if (v != nullptr && v->is_number_integer()) return Num{static_cast<double>(f.Int(key, 0)), true};
  return Num{f.Float(key, def, min), false};
}

// A style name: any string (Megatron checks it only when a step reaches it).
std::optional<std::string> ReadStyle(Fields& f, const char* key, bool required) {
  const json* v = f.Raw(key, required);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string() || v->get_ref<const std::string&>().size() > kMaxStyleLength) {
    f.Fail(f.PathOf(key), absl::StrCat("expected a style name (a string of at most ",
                                       kMaxStyleLength, " characters)"));
    return std::nullopt;
  }
  return v->get<std::string>();
}

class MegatronScheduler : public ValueNode<MegatronScheduler, SchedulerNode> {
 public:
  // The class values (Megatron's attributes of the same names).
  double init_lr = 0;
  Num max_lr, min_lr, lr_warmup_steps, lr_decay_steps, start_wd, end_wd, wd_incr_steps;
  std::string lr_decay_style, wd_incr_style;
  std::optional<double> wsd_decay_steps;
  std::optional<std::string> lr_wsd_decay_style;
  bool use_checkpoint = true, override_values = false;
  int64_t increment = 1;  // lrsched's default increment of a Step
  int64_t num_steps = 0;
  // Values of the step being computed, committed only if every group's are valid.
  std::vector<double> lr_out, wd_out, last_lr_;

  const char* type() const override { return kType; }
  bool takes_epoch() const override { return false; }
  bool takes_increment() const override { return true; }
  bool drives_weight_decay() const override { return true; }
  int64_t last_epoch() const override { return num_steps; }
  const std::vector<double>& last_lr() const override { return last_lr_; }
  // An lr and a weight decay per group, each perhaps a cos.
  int64_t StepCost(size_t groups) const override {
    return kNodeCost + 2 * kGroupCost * static_cast<int64_t>(groups);
  }

  absl::Status Step(Optimizer& opt, const StepArgs& args) override {
    if (args.metric) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric: ", kType, ".step() takes no metric"));
    }
    const int64_t inc = args.increment.value_or(increment);
    if (inc > kMaxInt - num_steps) {
      return absl::InvalidArgumentError(
          absl::StrCat("increment: num_steps cannot pass ", kMaxInt));
    }
    return StepTo(opt, num_steps + inc, wd_config());
  }

  // The weight-decay half of the configuration, which load_state_dict sets after its step.
  struct WdConfig {
    Num start_wd, end_wd, wd_incr_steps;
    std::string wd_incr_style;
  };
  WdConfig wd_config() const { return {start_wd, end_wd, wd_incr_steps, wd_incr_style}; }

  // step(): num_steps = n, then every group's lr and weight_decay; all or nothing.
  absl::Status StepTo(Optimizer& opt, int64_t n, const WdConfig& wd) {
    for (size_t i = 0; i < opt.groups.size(); ++i) {
      const ParamGroup& g = opt.groups[i];
      LRS_RETURN_IF_ERROR(GetLr(g, n, &lr_out[i]));
      double w = 0;
      LRS_RETURN_IF_ERROR(GetWd(g, i, n, wd, &w));
      wd_out[i] = w * g.wd_mult.value_or(1.0);
      if (!std::isfinite(lr_out[i]) || !std::isfinite(wd_out[i])) {
        return absl::InvalidArgumentError(absl::StrCat(
            kType, ": param group ", i, " would get lr ", FormatNumber(lr_out[i]),
            " and weight_decay ", FormatNumber(wd_out[i]), " at num_steps ", n,
            "; refusing a non-finite value"));
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

  // get_lr(param_group) at num_steps n.
  absl::Status GetLr(const ParamGroup& g, int64_t n, double* out) const {
    const double max = g.max_lr.value_or(max_lr.v), min = g.min_lr.value_or(min_lr.v);
    const double steps = static_cast<double>(n), W = lr_warmup_steps.v, D = lr_decay_steps.v;
    if (W > 0 && steps <= W) {
      *out = init_lr + ((max - init_lr) * steps / W);
      return absl::OkStatus();
    }
    if (lr_decay_style == "constant") {
      *out = max;
      return absl::OkStatus();
    }
    if (steps > D) {
      *out = min;
      return absl::OkStatus();
    }
    if (lr_decay_style == "inverse-square-root") {
      const double warmup = std::max(W, 1.0), s = std::max(steps, 1.0);
      const double lr = max * std::pow(warmup, 0.5) / std::pow(s, 0.5);
      *out = lr > min ? lr : min;  // Python's max(min_lr, lr)
      return absl::OkStatus();
    }
    const double decay_ratio = (steps - W) / (D - W);
    const double delta = max - min;
    double coeff;
    if (lr_decay_style == "linear") {
      coeff = 1.0 - decay_ratio;
    } else if (lr_decay_style == "cosine") {
      coeff = 0.5 * (std::cos(M_PI * decay_ratio) + 1.0);
    } else if (lr_decay_style == "WSD") {
      const double anneal_start = D - *wsd_decay_steps;
      if (steps <= anneal_start) {
        coeff = 1.0;
      } else {
        const double r = (steps - anneal_start) / *wsd_decay_steps;
        const std::string style = lr_wsd_decay_style.value_or("");
        if (style == "linear") {
          coeff = 1.0 - r;
        } else if (style == "cosine") {
          coeff = 0.5 * (std::cos(M_PI * r) + 1.0);
        } else if (style == "exponential") {
          coeff = (2.0 * std::pow(0.5, r)) - 1.0;
        } else if (style == "minus_sqrt") {
          coeff = 1.0 - std::sqrt(r);
        } else {
          return absl::InvalidArgumentError(absl::StrCat(
              "lr_wsd_decay_style: WSD's annealing phase (num_steps ", n, " > ",
              FormatNumber(anneal_start), ") needs one of linear, cosine, exponential, minus_sqrt; ",
              lr_wsd_decay_style ? absl::StrCat("got \"", style, "\"") : "none was given",
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

  // get_wd(param_group) at num_steps n, with the weight-decay configuration `wd`.
  static absl::Status GetWd(const ParamGroup& g, size_t i, int64_t n, const WdConfig& wd,
                            double* out) {
    const double start = g.start_wd.value_or(wd.start_wd.v), end = g.end_wd.value_or(wd.end_wd.v);
    const double steps = static_cast<double>(n), N = wd.wd_incr_steps.v;
    if (steps > N) {
      *out = end;
      return absl::OkStatus();
    }
    if (wd.wd_incr_style == "constant") {
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
      return absl::InvalidArgumentError(absl::StrCat(
          "wd_incr_steps: 0 divides by zero at num_steps 0 with wd_incr_style \"",
          wd.wd_incr_style, "\" (Megatron: ZeroDivisionError)"));
    }
    const double incr_ratio = steps / N;
    double coeff;
    if (wd.wd_incr_style == "linear") {
      coeff = incr_ratio;
    } else if (wd.wd_incr_style == "cosine") {
      coeff = 0.5 * (std::cos(M_PI * (1 - incr_ratio)) + 1.0);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("wd_incr_style: \"", wd.wd_incr_style,
                       "\" weight decay increment style is not supported"));
    }
    *out = start + coeff * (end - start);
    return absl::OkStatus();
  }

  json StateDict() const override {
    return json{{"max_lr", max_lr.Json()},
                {"lr_warmup_steps", lr_warmup_steps.Json()},
                {"num_steps", num_steps},
                {"lr_decay_style", lr_decay_style},
                {"lr_decay_steps", lr_decay_steps.Json()},
                {"min_lr", min_lr.Json()},
                {"start_wd", start_wd.Json()},
                {"end_wd", end_wd.Json()},
                {"wd_incr_style", wd_incr_style},
                {"wd_incr_steps", wd_incr_steps.Json()}};
  }

  void AppendStateDict(std::string* out) const override {
    auto num = [out](const char* key, const Num& v) {
      json_text::AppendKey(key, out);
      v.Append(out);
      out->push_back(',');
    };
    out->push_back('{');
    num("max_lr", max_lr);
    num("lr_warmup_steps", lr_warmup_steps);
    json_text::AppendKey("num_steps", out);
    json_text::AppendInt(num_steps, out);
    out->push_back(',');
    json_text::AppendKey("lr_decay_style", out);
    json_text::AppendString(lr_decay_style, out);
    out->push_back(',');
    num("lr_decay_steps", lr_decay_steps);
    num("min_lr", min_lr);
    num("start_wd", start_wd);
    num("end_wd", end_wd);
    json_text::AppendKey("wd_incr_style", out);
    json_text::AppendString(wd_incr_style, out);
    out->push_back(',');
    json_text::AppendKey("wd_incr_steps", out);
    wd_incr_steps.Append(out);
    out->push_back('}');
  }

  absl::Status LoadStateDict(const json& sd, const std::string& path) override;
  absl::Status FinishLoad(Optimizer& opt) override;
  // Set by LoadStateDict: the checkpoint's weight-decay settings, taken after FinishLoad's step.
  std::optional<WdConfig> pending_wd;
};

// Megatron's constructor asserts, on the class values (also checked on values a state_dict
// brings in, which Megatron takes without asserting).
absl::Status CheckValues(const MegatronScheduler& m, const std::string& path) {
  auto fail = [&path](const char* key, const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".", key, ": ", what, " (Megatron: AssertionError)"));
  };
  if (!(m.min_lr.v >= 0.0)) return fail("min_lr", "must be >= 0");
  if (!(m.max_lr.v >= m.min_lr.v)) return fail("max_lr", "must be >= min_lr");
  if (!(m.init_lr <= m.max_lr.v)) return fail("init_lr", "must be <= max_lr");
  if (!(m.lr_decay_steps.v > 0)) return fail("lr_decay_steps", "must be > 0");
  if (!(m.lr_warmup_steps.v < m.lr_decay_steps.v)) {
    return fail("lr_warmup_steps", "must be < lr_decay_steps");
  }
  if (m.lr_decay_style == "WSD" && !m.wsd_decay_steps) {
    return fail("wsd_decay_steps", "required with lr_decay_style \"WSD\"");
  }
  if (!(m.start_wd.v >= 0.0)) return fail("start_wd", "must be >= 0");
  if (!(m.end_wd.v >= m.start_wd.v)) return fail("end_wd", "must be >= start_wd");
  return absl::OkStatus();
}

absl::Status MegatronScheduler::LoadStateDict(const json& sd, const std::string& path) {
  // Megatron's load_state_dict: with use_checkpoint_opt_param_scheduler (the default) the
  // checkpoint's values replace the class values; without it they must agree; with
  // override_opt_param_scheduler the class values stay. Older checkpoints' key names are read
  // too. Then step(num_steps) on the freshly built scheduler (num_steps 0), which writes the
  // groups with the loaded lr settings and the class's weight-decay settings; the checkpoint's
  // weight-decay settings are taken only after that step, as Megatron does.
  Fields f(sd, path);
  MegatronScheduler next = *this;
  auto pick = [&](const char* key, const Num& cls, Num* into) {
    Num v = ReadNum(f, key);
    if (override_values) return;
    if (!use_checkpoint && (v.v != cls.v)) {
      f.Fail(f.PathOf(key), absl::StrCat("is ", FormatNumber(v.v), " but the schedule's spec says ",
                                         FormatNumber(cls.v)));
    }
    *into = v;
  };
  auto pick_style = [&](const char* key, const std::string& cls, std::string* into) {
    std::optional<std::string> v = ReadStyle(f, key, true);
    if (!v || override_values) return;
    if (!use_checkpoint && *v != cls) {
      f.Fail(f.PathOf(key), absl::StrCat("is \"", *v, "\" but the schedule's spec says \"", cls,
                                         "\""));
    }
    *into = *v;
  };
  auto alias = [&](std::initializer_list<const char*> keys) {
    const char* found = *(keys.end() - 1);
    for (const char* k : keys) {
      if (f.Has(k)) {
        found = k;
        break;
      }
    }
    for (const char* k : keys) f.Ignore(k);
    return found;
  };
  pick(alias({"start_lr", "max_lr"}), max_lr, &next.max_lr);
  pick("min_lr", min_lr, &next.min_lr);
  pick(alias({"warmup_iter", "warmup_steps", "lr_warmup_steps"}), lr_warmup_steps,
       &next.lr_warmup_steps);
  pick(alias({"end_iter", "decay_steps", "lr_decay_steps"}), lr_decay_steps, &next.lr_decay_steps);
  pick_style(alias({"decay_style", "lr_decay_style"}), lr_decay_style, &next.lr_decay_style);
  const int64_t steps = f.Int(alias({"num_iters", "num_steps"}), std::nullopt, 0, kMaxInt);
  const bool has_wd = f.Has("start_wd");
  WdConfig wd = wd_config();
  if (has_wd) {
    pick("start_wd", start_wd, &wd.start_wd);
    pick("end_wd", end_wd, &wd.end_wd);
    pick("wd_incr_steps", wd_incr_steps, &wd.wd_incr_steps);
    pick_style("wd_incr_style", wd_incr_style, &wd.wd_incr_style);
  }
  LRS_RETURN_IF_ERROR(f.Finish());
  MegatronScheduler checked = next;
  checked.start_wd = wd.start_wd;
  checked.end_wd = wd.end_wd;
  LRS_RETURN_IF_ERROR(CheckValues(checked, path));
  next.num_steps = steps;
  next.pending_wd = wd;
  *this = std::move(next);
  return absl::OkStatus();
}

absl::Status MegatronScheduler::FinishLoad(Optimizer& opt) {
  if (!pending_wd) return absl::OkStatus();
  // load_state_dict's self.step(increment=num_steps) on a scheduler at num_steps 0.
  absl::Status s = StepTo(opt, num_steps, wd_config());
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("state_dict.", s.message()));
  start_wd = pending_wd->start_wd;
  end_wd = pending_wd->end_wd;
  wd_incr_steps = pending_wd->wd_incr_steps;
  wd_incr_style = pending_wd->wd_incr_style;
  pending_wd.reset();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildMegatron(Fields& f, Optimizer& opt,
                                                             int depth) {
  if (depth > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        f.path(), ": ", kType, " cannot be nested in a torch scheduler (it is not one)"));
  }
  auto m = std::make_unique<MegatronScheduler>();
  m->init_lr = f.Float("init_lr", std::nullopt);
  m->max_lr = Num{f.Float("max_lr", std::nullopt), false};  // float(max_lr)
  m->min_lr = ReadNum(f, "min_lr");
  m->lr_warmup_steps = ReadNum(f, "lr_warmup_steps");
  m->lr_decay_steps = ReadNum(f, "lr_decay_steps");
  m->lr_decay_style = ReadStyle(f, "lr_decay_style", true).value_or("");
  m->start_wd = ReadNum(f, "start_wd");
  m->end_wd = ReadNum(f, "end_wd");
  m->wd_incr_steps = ReadNum(f, "wd_incr_steps");
  m->wd_incr_style = ReadStyle(f, "wd_incr_style", true).value_or("");
  m->use_checkpoint = f.Bool("use_checkpoint_opt_param_scheduler", true);
  m->override_values = f.Bool("override_opt_param_scheduler", false);
  if (f.Has("wsd_decay_steps")) m->wsd_decay_steps = f.Float("wsd_decay_steps", std::nullopt);
  m->lr_wsd_decay_style = ReadStyle(f, "lr_wsd_decay_style", false);
  m->increment = f.Int("increment", 1, 1, kMaxInt);
  LRS_RETURN_IF_ERROR(f.Finish());
  LRS_RETURN_IF_ERROR(CheckValues(*m, f.path()));
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
  absl::Status s = m->StepTo(opt, 0, m->wd_config());  // the constructor's step(0)
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(f.path(), ".", s.message()));
  return std::unique_ptr<SchedulerNode>(std::move(m));
}

}  // namespace lrsched::scheduler_internal
