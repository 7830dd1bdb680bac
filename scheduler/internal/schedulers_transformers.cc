// Copyright lrsched authors.
//
// `{"type": "transformers.get_scheduler", "name", "num_warmup_steps", "num_training_steps",
// "scheduler_specific_kwargs", "last_epoch"?}`: what transformers' get_scheduler (2da00a3cec88)
// builds. Every name but reduce_lr_on_plateau is a torch LambdaLR whose lambda is transformers'
// own (schedulers_transformers_lambdas.cc); reduce_lr_on_plateau is torch's ReduceLROnPlateau
// (the node of schedulers_other.cc) built from the kwargs alone.
//
// The arguments are routed exactly as get_scheduler routes them, silent drops included:
// `constant` gets nothing (W, T, the kwargs and last_epoch are ignored), `constant_with_warmup`
// only W, `inverse_sqrt` W and the kwargs, `reduce_lr_on_plateau` only the kwargs,
// `warmup_stable_decay` W, T (which may be missing) and the kwargs, the others W, T and the
// kwargs. `last_epoch` travels inside the kwargs; the spec may also give it beside them.
#include "scheduler/internal/schedulers_transformers.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "scheduler/internal/node.h"
#include "scheduler/internal/pymath.h"

namespace lrsched::scheduler_internal {
namespace {

struct HfName {
  const char* name;
  std::optional<HfKind> kind;  // nullopt: reduce_lr_on_plateau
};

// transformers' SchedulerType values that lrsched serves, in the enum's order.
constexpr HfName kHfNames[] = {
    {"linear", HfKind::kLinear},
    {"cosine", HfKind::kCosine},
    {"cosine_with_restarts", HfKind::kCosineWithRestarts},
    {"polynomial", HfKind::kPolynomial},
    {"constant", HfKind::kConstant},
    {"constant_with_warmup", HfKind::kConstantWithWarmup},
    {"inverse_sqrt", HfKind::kInverseSqrt},
    {"reduce_lr_on_plateau", std::nullopt},
    {"cosine_with_min_lr", HfKind::kCosineWithMinLr},
    {"cosine_warmup_with_min_lr", HfKind::kCosineWarmupWithMinLr},
    {"warmup_stable_decay", HfKind::kWarmupStableDecay},
};

std::string HfNameList() {
  std::vector<std::string> names;
  for (const HfName& n : kHfNames) names.push_back(n.name);
  return absl::StrJoin(names, ", ");
}

// torch's LambdaLR with one of transformers' lambdas (the same for every group).
class HfLambdaLR : public ValueNode<HfLambdaLR> {
 public:
  HfLambdaParams params;
  const char* name = "";  // the schedule name, for messages

  const char* type() const override { return "transformers.get_scheduler"; }
  absl::Status GetLr(const Optimizer&, double* out) override {
    double f;
    absl::Status s = HfLambda(params, last_epoch_, &f);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("transformers.get_scheduler(", name,
                                                     ") at step ", last_epoch_, ": ", s.message()));
    }
    // LambdaLR: `base_lr * lmbda(self.last_epoch)`, one product.
    for (size_t i = 0; i < base_lrs_.size(); ++i) out[i] = base_lrs_[i] * f;
    return absl::OkStatus();
  }
  // torch saves a lambda that is not a plain function as its `__dict__`: transformers binds
  // its lambdas with functools.partial (an empty __dict__), except `constant`'s.
  void AddExtraState(json& sd) const override {
    json one = params.kind == HfKind::kConstant ? json(nullptr) : json::object();
    sd["lr_lambdas"] = json(std::vector<json>(base_lrs_.size(), one));
  }
  void LoadExtraState(Fields& f) override { f.Ignore("lr_lambdas"); }
};

// optimizer.defaults["lr"], which transformers reads for polynomial and min_lr: the lr the
// optimizer was built with, i.e. the first group's. A group restored from a checkpoint carries
// it as initial_lr (its lr is then the checkpoint's current value), so that comes first.
double DefaultLr(const Optimizer& opt) {
  return opt.groups[0].initial_lr.value_or(opt.groups[0].lr);
}

const json& EmptyObject() {
  static const json* empty = new json(json::object());
  return *empty;
}

HfWsdShape WsdShapeOf(const std::string& s) {
  if (s == "cosine") return HfWsdShape::kCosine;
  if (s == "1-sqrt") return HfWsdShape::kOneMinusSqrt;
  return HfWsdShape::kLinear;
}

// min_lr or min_lr_rate (exactly one), as get_cosine_with_min_lr_schedule_with_warmup reads
// them: min_lr becomes a rate of optimizer.defaults["lr"].
void ReadMinLrRate(Fields& kw, double default_lr, HfLambdaParams& p) {
  const bool has_lr = kw.Has("min_lr"), has_rate = kw.Has("min_lr_rate");
  double min_lr = kw.Float("min_lr", 0.0);
  double rate = kw.Float("min_lr_rate", 0.0);
  if (!kw.status().ok()) return;
  if (has_lr && has_rate) {
    kw.Fail(kw.PathOf("min_lr"), "only one of min_lr or min_lr_rate may be set");
  } else if (has_lr) {
    absl::Status s = PyDiv(min_lr, default_lr, &p.min_lr_rate);
    if (!s.ok()) {
      kw.Fail(kw.PathOf("min_lr"), absl::StrCat("min_lr / the optimizer's lr: ", s.message()));
    }
  } else if (has_rate) {
    p.min_lr_rate = rate;
  } else {
    kw.Fail(kw.PathOf("min_lr"), "one of min_lr or min_lr_rate must be set");
  }
}

// Reads the kwargs the schedule function of `kind` takes (besides W, T and last_epoch).
void ReadKwargs(HfKind kind, Fields& kw, const Optimizer& opt, HfLambdaParams& p) {
  switch (kind) {
    case HfKind::kCosine:
      p.num_cycles = kw.Float("num_cycles", 0.5);
      break;
    case HfKind::kCosineWithRestarts:
      p.num_cycles = kw.Float("num_cycles", 1);
      break;
    case HfKind::kPolynomial:
      // get_polynomial_decay_schedule_with_warmup: lr_init = optimizer.defaults["lr"].
      p.lr_end = kw.Float("lr_end", 1e-7);
      p.power = kw.Float("power", 1.0);
      p.lr_init = DefaultLr(opt);
      if (kw.status().ok() && !(p.lr_init > p.lr_end)) {
        kw.Fail(kw.PathOf("lr_end"),
                absl::StrCat("lr_end (", FormatNumber(p.lr_end),
                             ") must be smaller than initial lr (", FormatNumber(p.lr_init),
                             ", optimizer.param_groups[0]'s initial_lr or lr)"));
      }
      break;
    case HfKind::kInverseSqrt: {
      // `timescale = num_warmup_steps or 10_000` when not given.
      double def = p.warmup != 0 ? static_cast<double>(p.warmup) : 10000.0;
      p.timescale = kw.Float("timescale", def);
      if (kw.status().ok() && !(p.timescale > 0)) {
        kw.Fail(kw.PathOf("timescale"),
                absl::StrCat("must be positive, got ", FormatNumber(p.timescale),
                             " (transformers divides by it at every step after warmup)"));
      }
      break;
    }
    case HfKind::kCosineWithMinLr:
      p.num_cycles = kw.Float("num_cycles", 0.5);
      ReadMinLrRate(kw, DefaultLr(opt), p);
      break;
    case HfKind::kCosineWarmupWithMinLr:
      p.num_cycles = kw.Float("num_cycles", 0.5);
      ReadMinLrRate(kw, DefaultLr(opt), p);
      if (kw.Has("warmup_lr_rate")) p.warmup_lr_rate = kw.Float("warmup_lr_rate", 0.0);
      break;
    case HfKind::kWarmupStableDecay: {
      p.decay = kw.Int("num_decay_steps", std::nullopt, 0);
      p.warmup_type = WsdShapeOf(kw.Enum("warmup_type", "linear", {"linear", "cosine", "1-sqrt"}));
      p.decay_type = WsdShapeOf(kw.Enum("decay_type", "cosine", {"linear", "cosine", "1-sqrt"}));
      p.min_lr_ratio = kw.Float("min_lr_ratio", 0);
      p.num_cycles = kw.Float("num_cycles", 0.5);
      if (kw.Has("num_stable_steps")) {
        p.stable = kw.Int("num_stable_steps", std::nullopt, 0);  // explicit wins over T
      } else {
        p.stable = p.training - p.warmup - p.decay;
      }
      break;
    }
    case HfKind::kLinear:
    case HfKind::kConstant:
    case HfKind::kConstantWithWarmup:
      break;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildTransformers(Fields& f, Optimizer& opt) {
  const json* name_v = f.Raw("name", true);
  LRS_RETURN_IF_ERROR(f.status());
  const HfName* hf = nullptr;
  if (name_v->is_string()) {
    for (const HfName& n : kHfNames) {
      if (name_v->get_ref<const std::string&>() == n.name) hf = &n;
    }
  }
  if (hf == nullptr) {
    const bool greedy = name_v->is_string() && name_v->get_ref<const std::string&>() == "greedy";
    return absl::InvalidArgumentError(
        absl::StrCat(f.PathOf("name"), ": ", name_v->dump(),
                     greedy ? " (transformers' GreedyLR) is not served by lrsched"
                            : " is not a valid transformers SchedulerType",
                     "; expected one of ", HfNameList()));
  }
  const std::string name = hf->name;
  const bool has_w = f.Has("num_warmup_steps"), has_t = f.Has("num_training_steps");
  const int64_t w = f.Int("num_warmup_steps", 0, 0, kMaxInt);
  const int64_t t = f.Int("num_training_steps", 0, 0, kMaxInt);
  const bool top_epoch = f.Has("last_epoch");
  int64_t last_epoch = f.Int("last_epoch", -1, -1, kMaxInt);
  const json* kw_v = f.Raw("scheduler_specific_kwargs", false);
  if (kw_v != nullptr && !kw_v->is_object()) {
    f.Fail(f.PathOf("scheduler_specific_kwargs"),
           absl::StrCat("expected an object of keyword arguments, got ", kw_v->dump()));
  }
  LRS_RETURN_IF_ERROR(f.Finish());
  Fields kw(kw_v != nullptr ? *kw_v : EmptyObject(), f.PathOf("scheduler_specific_kwargs"));

  if (!hf->kind) {  // reduce_lr_on_plateau: ReduceLROnPlateau(optimizer, **kwargs)
    if (top_epoch || kw.Has("last_epoch")) {
      return absl::InvalidArgumentError(absl::StrCat(
          top_epoch ? f.PathOf("last_epoch") : kw.PathOf("last_epoch"),
          ": reduce_lr_on_plateau passes its kwargs to torch's ReduceLROnPlateau, which takes "
          "no last_epoch (TypeError)"));
    }
    kw.Bool("verbose", false);
    return BuildPlateau(kw, opt);
  }
  auto node = std::make_unique<HfLambdaLR>();
  node->name = hf->name;
  HfLambdaParams& p = node->params;
  p.kind = *hf->kind;
  if (p.kind == HfKind::kConstant) {  // get_constant_schedule(optimizer): nothing else
    return StartNode(std::move(node), opt, -1, f.path());
  }
  if (!has_w) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.PathOf("num_warmup_steps"), ": ", name, " requires `num_warmup_steps`"));
  }
  p.warmup = w;
  if (p.kind == HfKind::kConstantWithWarmup) {  // only W: kwargs and last_epoch are dropped
    return StartNode(std::move(node), opt, -1, f.path());
  }
  if (kw.Has("last_epoch")) {
    if (top_epoch) {
      return absl::InvalidArgumentError(absl::StrCat(
          kw.PathOf("last_epoch"), ": given twice (also as ", f.PathOf("last_epoch"), ")"));
    }
    last_epoch = kw.Int("last_epoch", -1, -1, kMaxInt);
  } else {
    kw.Ignore("last_epoch");
  }
  if (p.kind == HfKind::kWarmupStableDecay) {
    if (!has_t && !kw.Has("num_stable_steps")) {
      // ValueError, after the call's TypeError for a missing num_decay_steps.
      kw.Int("num_decay_steps", std::nullopt, 0);
      LRS_RETURN_IF_ERROR(kw.status());
      return absl::InvalidArgumentError(
          absl::StrCat(f.PathOf("num_training_steps"),
                       ": either num_training_steps or scheduler_specific_kwargs."
                       "num_stable_steps must be specified (warmup_stable_decay)"));
    }
  } else if (p.kind != HfKind::kInverseSqrt && !has_t) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.PathOf("num_training_steps"), ": ", name, " requires `num_training_steps`"));
  }
  p.training = t;
  ReadKwargs(p.kind, kw, opt, p);
  LRS_RETURN_IF_ERROR(kw.Finish());  // an unknown keyword argument is transformers' TypeError
  return StartNode(std::move(node), opt, last_epoch, f.path());
}

}  // namespace lrsched::scheduler_internal
