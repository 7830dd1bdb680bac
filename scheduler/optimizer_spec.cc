// Copyright lrsched authors.
//
// Reads a spec's "optimizer": torch's class name, its defaults, and the param groups, and
// writes param groups back in the shape torch's optimizer.state_dict() uses.
#include <map>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/fields.h"
#include "scheduler/internal/param_groups.h"
#include "scheduler/json_text.h"
#include "scheduler/schedule.h"

namespace lrsched {
namespace {

using json = nlohmann::json;
using scheduler_internal::Fields;
using scheduler_internal::kAnyFinite;

struct OptimizerKind {
  std::optional<double> default_lr;  // nullopt: torch requires lr (SGD)
  bool momentum;
  bool betas;
};

const std::map<std::string, OptimizerKind>& Kinds() {
  static const auto* kinds = new std::map<std::string, OptimizerKind>{
      {"SGD", {std::nullopt, true, false}}, {"Adam", {1e-3, false, true}},
      {"AdamW", {1e-3, false, true}},       {"Adamax", {2e-3, false, true}},
      {"NAdam", {2e-3, false, true}},       {"RAdam", {1e-3, false, true}},
      {"RMSprop", {1e-2, true, false}},     {"Adagrad", {1e-2, false, false}},
      {"Adadelta", {1.0, false, false}},    {"ASGD", {1e-2, false, false}},
      {"Rprop", {1e-2, false, false}},
  };
  return *kinds;
}

// Optimizer hyper-parameters that schedulers never read; accepted so that a torch optimizer's
// state_dict()["param_groups"] or constructor kwargs can be passed as they are.
constexpr const char* kIgnoredKeys[] = {"params",
                                        "weight_decay",
                                        "dampening",
                                        "nesterov",
                                        "eps",
                                        "amsgrad",
                                        "maximize",
                                        "foreach",
                                        "capturable",
                                        "differentiable",
                                        "fused",
                                        "alpha",
                                        "centered",
                                        "lr_decay",
                                        "rho",
                                        "lambd",
                                        "t0",
                                        "etas",
                                        "step_sizes",
                                        "momentum_decay",
                                        "initial_accumulator_value",
                                        "decoupled_weight_decay"};

// Reads [beta1, beta2], each in [0, 1] (torch checks 0 <= beta < 1; 1.0 is let through here as
// it is harmless to a scheduler).
void ReadBetas(const json& b, Fields& errors, const std::string& path, std::array<double, 2>* out,
               double max = 1) {
  if (!b.is_array() || b.size() != 2) {
    errors.Fail(path, "expected [beta1, beta2]");
    return;
  }
  json pair{{"beta1", b[0]}, {"beta2", b[1]}};
  Fields f(pair, path);
  (*out)[0] = f.Float("beta1", std::nullopt, max == 1 ? 0 : -max, max);
  (*out)[1] = f.Float("beta2", std::nullopt, max == 1 ? 0 : -max, max);
  errors.Fail(f.status());
}

void ReadGroup(Fields& g, ParamGroup& group, const OptimizerKind& kind, const std::string& type,
               std::optional<double> lr_default, double momentum_default,
               std::array<double, 2> betas_default, bool restoring = false) {
  // A schedule may have driven a group anywhere finite (OneCycleLR's linear phase overshoots
  // below zero, a lambda may grow lr past 1e300, a scale_fn may push momentum past 1): a
  // restored group takes what the schedule produced; a new optimizer's is bounded as torch's.
  const double any = kAnyFinite;
  group.lr = g.Float("lr", lr_default, restoring ? -any : 0, restoring ? any : 1e300);
  for (const char* k : kIgnoredKeys) g.Ignore(k);
  if (g.Has("initial_lr")) group.initial_lr = g.Float("initial_lr", std::nullopt, 0);
  for (auto [key, field] :
       {std::pair{"max_lr", &ParamGroup::max_lr}, std::pair{"min_lr", &ParamGroup::min_lr},
        std::pair{"max_momentum", &ParamGroup::max_momentum},
        std::pair{"base_momentum", &ParamGroup::base_momentum},
        std::pair{"start_wd", &ParamGroup::start_wd}, std::pair{"end_wd", &ParamGroup::end_wd},
        std::pair{"wd_mult", &ParamGroup::wd_mult}, std::pair{"lr_scale", &ParamGroup::lr_scale}}) {
    if (g.Has(key)) group.*field = g.Float(key, std::nullopt);
  }
  // torch refuses a negative weight_decay; a restored group takes what a schedule wrote.
  if (g.Has("weight_decay")) {
    group.weight_decay = g.Float("weight_decay", std::nullopt, restoring ? -any : 0, any);
  }
  g.Ignore("lr_mult");  // Megatron's per-group key, which its scheduler does not read
  if (kind.momentum) {
    group.momentum =
        g.Float("momentum", momentum_default, restoring ? -any : 0, restoring ? any : 1);
  } else if (g.Has("momentum")) {
    g.Fail(g.PathOf("momentum"), absl::StrCat(type, " has no momentum"));
  }
  if (kind.betas) {
    group.betas = betas_default;
    if (const json* b = g.Raw("betas", false)) {
      ReadBetas(*b, g, g.PathOf("betas"), &*group.betas, restoring ? any : 1);
    }
  } else if (g.Has("betas")) {
    g.Fail(g.PathOf("betas"), absl::StrCat(type, " has no betas"));
  }
}

}  // namespace

absl::StatusOr<Optimizer> ParseOptimizer(const json& spec) {
  Fields f(spec, "optimizer");
  Optimizer opt;
  opt.type = f.Enum("type", "SGD",
                    {"SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad",
                     "Adadelta", "ASGD", "Rprop"});
  if (!f.status().ok()) return f.status();
  const OptimizerKind& kind = Kinds().at(opt.type);
  opt.defaults_momentum = kind.momentum;
  opt.defaults_betas = kind.betas;
  for (const char* k : kIgnoredKeys) f.Ignore(k);
  std::optional<double> lr_default = kind.default_lr;
  if (f.Has("lr")) lr_default = f.Float("lr", std::nullopt, 0);
  double momentum_default = kind.momentum ? f.Float("momentum", 0.0, 0, 1) : 0.0;
  std::array<double, 2> betas_default{0.9, 0.999};
  if (kind.betas && f.Has("betas")) {
    ReadBetas(*f.Raw("betas", true), f, f.PathOf("betas"), &betas_default);
  }
  const json* groups = f.Raw("param_groups", true);
  if (groups != nullptr) {
    if (!groups->is_array() || groups->empty() || groups->size() > Optimizer::kMaxParamGroups) {
      f.Fail(f.PathOf("param_groups"),
             absl::StrCat("expected a list of 1 to ", Optimizer::kMaxParamGroups, " param groups"));
    } else {
      for (size_t i = 0; i < groups->size() && f.status().ok(); ++i) {
        Fields g((*groups)[i], absl::StrCat("optimizer.param_groups[", i, "]"));
        ParamGroup group;
        ReadGroup(g, group, kind, opt.type, lr_default, momentum_default, betas_default);
        f.Fail(g.Finish());
        opt.groups.push_back(group);
      }
    }
  }
  absl::Status s = f.Finish();
  if (!s.ok()) return s;
  return opt;
}

namespace scheduler_internal {

absl::Status LoadParamGroups(const json& groups, Optimizer& opt) {
  if (!groups.is_array() || groups.size() != opt.groups.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("param_groups: expected a list of ", opt.groups.size(), " param groups"));
  }
  const OptimizerKind& kind = Kinds().at(opt.type);
  for (size_t i = 0; i < groups.size(); ++i) {
    Fields g(groups[i], absl::StrCat("param_groups[", i, "]"));
    ParamGroup group;
    ReadGroup(g, group, kind, opt.type, std::nullopt, 0.0,
              opt.groups[i].betas.value_or(std::array<double, 2>{0.9, 0.999}), true);
    if (kind.momentum && !g.Has("momentum")) group.momentum = opt.groups[i].momentum;
    absl::Status s = g.Finish();
    if (!s.ok()) return s;
    opt.groups[i] = group;
  }
  return absl::OkStatus();
}

json ParamGroupJson(const ParamGroup& g) {
  json j{{"lr", g.lr}};
  if (g.initial_lr) j["initial_lr"] = *g.initial_lr;
  if (g.momentum) j["momentum"] = *g.momentum;
  if (g.betas) j["betas"] = {(*g.betas)[0], (*g.betas)[1]};
  if (g.max_lr) j["max_lr"] = *g.max_lr;
  if (g.min_lr) j["min_lr"] = *g.min_lr;
  if (g.max_momentum) j["max_momentum"] = *g.max_momentum;
  if (g.base_momentum) j["base_momentum"] = *g.base_momentum;
  if (g.weight_decay) j["weight_decay"] = *g.weight_decay;
  if (g.start_wd) j["start_wd"] = *g.start_wd;
  if (g.end_wd) j["end_wd"] = *g.end_wd;
  if (g.wd_mult) j["wd_mult"] = *g.wd_mult;
  if (g.lr_scale) j["lr_scale"] = *g.lr_scale;
  return j;
}

void AppendParamGroupText(const ParamGroup& g, std::string* out) {
  auto field = [out](const char* key, double v) {
    out->push_back(',');
    json_text::AppendKey(key, out);
    json_text::AppendDouble(v, out);
  };
  out->push_back('{');
  json_text::AppendKey("lr", out);
  json_text::AppendDouble(g.lr, out);
  if (g.initial_lr) field("initial_lr", *g.initial_lr);
  if (g.momentum) field("momentum", *g.momentum);
  if (g.betas) {
    out->append(",\"betas\":[");
    json_text::AppendDouble((*g.betas)[0], out);
    out->push_back(',');
    json_text::AppendDouble((*g.betas)[1], out);
    out->push_back(']');
  }
  if (g.max_lr) field("max_lr", *g.max_lr);
  if (g.min_lr) field("min_lr", *g.min_lr);
  if (g.max_momentum) field("max_momentum", *g.max_momentum);
  if (g.base_momentum) field("base_momentum", *g.base_momentum);
  if (g.weight_decay) field("weight_decay", *g.weight_decay);
  if (g.start_wd) field("start_wd", *g.start_wd);
  if (g.end_wd) field("end_wd", *g.end_wd);
  if (g.wd_mult) field("wd_mult", *g.wd_mult);
  if (g.lr_scale) field("lr_scale", *g.lr_scale);
  out->push_back('}');
}

}  // namespace scheduler_internal
}  // namespace lrsched
