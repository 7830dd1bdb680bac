// Copyright lrsched authors.
#include "scheduler/internal/node.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/schedulers_megatron.h"
#include "scheduler/json_text.h"

namespace lrsched::scheduler_internal {

json StateNum(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

json StateNums(const std::vector<double>& v) {
  json a = json::array();
  for (double d : v) a.push_back(StateNum(d));
  return a;
}

void AppendStateNum(double v, std::string* out) {
  if (std::isnan(v))
    out->append("\"nan\"");
  else if (std::isinf(v))
    out->append(v > 0 ? "\"inf\"" : "\"-inf\"");
  else
    json_text::AppendDouble(v, out);
}

void AppendStateNums(const std::vector<double>& v, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendStateNum(v[i], out);
  }
  out->push_back(']');
}

void SchedulerNode::AppendStateDict(std::string* out) const { out->append(StateDict().dump()); }

int64_t SchedulerNode::StepCost(size_t groups) const {
  return kNodeCost + kGroupCost * static_cast<int64_t>(groups);
}

int64_t SchedulerNode::CopyCost(size_t groups) const {
  return kNodeCost + kGroupCost * static_cast<int64_t>(groups);
}

bool ReadStateNum(const json& v, double* out) {
  if (v.is_number() && !v.is_boolean()) {
    *out = v.get<double>();
    return true;
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "inf" || s == "Infinity")
      *out = INFINITY;
    else if (s == "-inf" || s == "-Infinity")
      *out = -INFINITY;
    else if (s == "nan" || s == "NaN")
      *out = NAN;
    else
      return false;
    return true;
  }
  return false;
}

absl::Status SchedulerNode::LoadNodeState(const json& s, const std::string& path) {
  if (s.is_null()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": ", type(), " keeps no state beyond its state_dict"));
}

absl::Status SchedulerNode::InitialStep(Optimizer&) {
  return absl::InvalidArgumentError(
      absl::StrCat(type(), " cannot be the first scheduler of a SequentialLR"));
}

absl::Status LRScheduler::Attach(Optimizer& opt, int64_t last_epoch, const std::string& path) {
  for (size_t i = 0; i < opt.groups.size(); ++i) {
    ParamGroup& g = opt.groups[i];
    if (last_epoch == -1) {
      if (!g.initial_lr) g.initial_lr = g.lr;  // torch: group.setdefault('initial_lr', lr)
    } else if (!g.initial_lr) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer.param_groups[", i, "].initial_lr: required when resuming (", path,
                       ".last_epoch = ", last_epoch, "), as torch requires it"));
    }
  }
  base_lrs_.clear();
  for (const ParamGroup& g : opt.groups) base_lrs_.push_back(*g.initial_lr);
  last_lr_.assign(opt.groups.size(), 0.0);
  scratch_.assign(opt.groups.size(), 0.0);
  momentum_out_.assign(cycles_momentum_ ? opt.groups.size() : 0, 0.0);
  last_epoch_ = last_epoch;
  return absl::OkStatus();
}

absl::Status LRScheduler::ClosedFormLr(const Optimizer&, double*) {
  return absl::InternalError("no closed form");
}

absl::Status LRScheduler::InitialStep(Optimizer& opt) {
  step_count_ = 0;
  return Step(opt, StepArgs{});
}

absl::Status LRScheduler::Step(Optimizer& opt, const StepArgs& args) {
  if (args.metric) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric: ", type(), ".step() takes no metric (only ReduceLROnPlateau does)"));
  }
  const int64_t saved_epoch = last_epoch_, saved_count = step_count_;
  step_count_ += 1;
  double* values = scratch_.data();
  absl::Status s;
  if (!args.epoch) {
    if (last_epoch_ >= kMaxInt) {
      s = absl::InvalidArgumentError(absl::StrCat("last_epoch: cannot step past ", kMaxInt));
    } else {
      last_epoch_ += 1;
      s = GetLr(opt, values);
    }
  } else {
    double e = *args.epoch;
    if (!(e >= 0 && e <= static_cast<double>(kMaxInt)) || e != std::floor(e)) {
      s = absl::InvalidArgumentError(absl::StrCat("epoch: ", type(),
                                                  ".step(epoch) takes an integer in [0, ", kMaxInt,
                                                  "], got ", FormatNumber(e)));
    } else {
      last_epoch_ = static_cast<int64_t>(e);
      s = HasClosedForm() ? ClosedFormLr(opt, values) : GetLr(opt, values);
    }
  }
  if (s.ok()) s = Commit(opt);
  if (!s.ok()) {
    last_epoch_ = saved_epoch;
    step_count_ = saved_count;
  }
  return s;
}

absl::Status LRScheduler::Commit(Optimizer& opt) {
  const size_t n = opt.groups.size();
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(scratch_[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          type(), ": the lr of param group ", i, " would become ", FormatNumber(scratch_[i]),
          " at epoch ", last_epoch_, "; refusing a non-finite learning rate"));
    }
    if (cycles_momentum_ && !std::isfinite(momentum_out_[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(type(), ": the momentum of param group ", i, " would become ",
                       FormatNumber(momentum_out_[i]), " at epoch ", last_epoch_));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    ParamGroup& g = opt.groups[i];
    g.lr = scratch_[i];
    last_lr_[i] = scratch_[i];
    if (cycles_momentum_) {
      if (use_beta1_)
        (*g.betas)[0] = momentum_out_[i];
      else
        g.momentum = momentum_out_[i];
    }
  }
  return absl::OkStatus();
}

json LRScheduler::StateDict() const {
  json sd = Config();
  AddExtraState(sd);
  sd["base_lrs"] = StateNums(base_lrs_);
  sd["last_epoch"] = last_epoch_;
  sd["verbose"] = false;
  sd["_step_count"] = step_count_;
  sd["_get_lr_called_within_step"] = false;
  sd["_last_lr"] = StateNums(last_lr_);
  return sd;
}

void LRScheduler::AppendStateDict(std::string* out) const {
  // The same keys as StateDict(); only the subclass's part goes through a (small) tree.
  json head = Config();
  AddExtraState(head);
  if (head.empty()) {
    out->push_back('{');
  } else {
    std::string text = head.dump();
    out->append(text, 0, text.size() - 1);  // without the closing brace
    out->push_back(',');
  }
  json_text::AppendKey("base_lrs", out);
  AppendStateNums(base_lrs_, out);
  out->push_back(',');
  json_text::AppendKey("last_epoch", out);
  json_text::AppendInt(last_epoch_, out);
  out->append(",\"verbose\":false,");
  json_text::AppendKey("_step_count", out);
  json_text::AppendInt(step_count_, out);
  out->append(",\"_get_lr_called_within_step\":false,");
  json_text::AppendKey("_last_lr", out);
  AppendStateNums(last_lr_, out);
  out->push_back('}');
}

absl::Status LRScheduler::LoadStateDict(const json& sd, const std::string& path) {
  Fields f(sd, path);
  json config = Config();
  for (auto it = config.begin(); it != config.end(); ++it) f.Expect(it.key().c_str(), it.value());
  LoadExtraState(f);
  size_t n = base_lrs_.size();
  if (f.Has("base_lrs")) base_lrs_ = f.FloatPerGroup("base_lrs", std::nullopt, n);
  last_epoch_ = f.Int("last_epoch", std::nullopt, -1, kMaxInt);
  step_count_ = f.Int("_step_count", step_count_, 0, kMaxInt);
  if (f.Has("_last_lr"))
    last_lr_ = f.FloatPerGroup("_last_lr", std::nullopt, n, -kAnyFinite, kAnyFinite);
  f.Bool("verbose", false);
  f.Bool("_get_lr_called_within_step", false);
  return f.Finish();
}

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildNode(const json& spec, const std::string& path,
                                                         Optimizer& opt, int depth) {
  if (depth > kMaxNesting) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": schedulers nest at most ", kMaxNesting, " deep"));
  }
  Fields f(spec, path);
  // Another project's classes are named with its prefix ("timm."); an unknown one lists
  // that project's names.
  bool timm = false;
  if (spec.is_object()) {
    auto named = spec.find("type");
    timm = named != spec.end() && named->is_string() &&
           named->get_ref<const std::string&>().rfind("timm.", 0) == 0;
  }
  std::string type =
      timm
          ? f.Enum("type", std::nullopt,
                   {"timm.CosineLRScheduler", "timm.TanhLRScheduler", "timm.StepLRScheduler",
                    "timm.MultiStepLRScheduler", "timm.PlateauLRScheduler", "timm.PolyLRScheduler"})
          : f.Enum("type", std::nullopt,
                   {"LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR",
                    "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
                    "ChainedScheduler", "SequentialLR", "ReduceLROnPlateau", "CyclicLR",
                    "OneCycleLR", "CosineAnnealingWarmRestarts", "transformers.get_scheduler",
                    "megatron.OptimizerParamScheduler"});
  if (!f.status().ok()) return f.status();
  f.Bool("verbose", false);
  absl::StatusOr<std::unique_ptr<SchedulerNode>> node;
  if (timm) {
    node = BuildTimm(type, f, opt);
  } else if (type == "ReduceLROnPlateau") {
    node = BuildPlateau(f, opt);
  } else if (type == "transformers.get_scheduler") {
    node = BuildTransformers(f, opt);
  } else if (type == "megatron.OptimizerParamScheduler") {
    node = BuildMegatron(f, opt, depth);
  } else if (type == "SequentialLR" || type == "ChainedScheduler") {
    node = BuildComposite(type, f, opt, depth);
  } else if (type == "CyclicLR" || type == "OneCycleLR" || type == "CosineAnnealingWarmRestarts") {
    node = BuildCyclic(type, f, opt);
  } else {
    node = BuildBasic(type, f, opt);
  }
  return node;
}

}  // namespace lrsched::scheduler_internal
