// Copyright lrsched authors.
//
// The closed-form-or-chainable schedulers of torch 1.13: LambdaLR, MultiplicativeLR, StepLR,
// MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR, CosineAnnealingLR.
// Each formula keeps torch's order of operations and Python's int/float conversions, since a
// reordering changes the last bit.
#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/expr.h"
#include "scheduler/internal/node.h"
#include "scheduler/internal/pymath.h"
#include "scheduler/internal/pynum.h"

namespace lrsched::scheduler_internal {
namespace {

// Reads `lr_lambda` (a string or one string per group) and compiles it.
std::vector<Expr> ReadLambdas(Fields& f, size_t groups) {
  std::vector<Expr> out;
  const json* v = f.Raw("lr_lambda", true);
  if (v == nullptr) return out;
  auto compile = [&](const json& e, const std::string& path) {
    if (!e.is_string()) {
      f.Fail(path, "expected a Python expression as a string");
      return;
    }
    auto x = Expr::Compile(e.get_ref<const std::string&>(), {"epoch", "step"});
    if (!x.ok()) {
      f.Fail(path, std::string(x.status().message()));
      return;
    }
    out.push_back(*std::move(x));
  };
  if (v->is_array()) {
    if (v->size() != groups) {
      f.Fail(
          f.PathOf("lr_lambda"),
          absl::StrCat("expected ", groups, " lr_lambdas (one per param group), got ", v->size()));
      return {};
    }
    for (size_t i = 0; i < v->size(); ++i) {
      compile((*v)[i], absl::StrCat(f.PathOf("lr_lambda"), "[", i, "]"));
    }
  } else {
    compile(*v, f.PathOf("lr_lambda"));
    while (!out.empty() && out.size() < groups) out.push_back(out[0]);
  }
  return out;
}

json NullLambdas(size_t n) { return json(std::vector<json>(n, nullptr)); }

// A node evaluating one lambda per group on each step.
int64_t LambdasCost(const SchedulerNode& node, const std::vector<Expr>& lambdas, size_t groups) {
  int64_t cost = node.SchedulerNode::StepCost(groups);
  for (const Expr& e : lambdas) cost += kInstrCost * e.cost();
  return cost;
}

absl::Status EvalLambda(const Expr& e, int64_t epoch, size_t group, double* out) {
  auto r = e.Eval(epoch);
  if (!r.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("lr_lambda of param group ", group, " (",
                                                   e.source(), ") at epoch ", epoch, ": ",
                                                   r.status().message()));
  }
  *out = *r;
  return absl::OkStatus();
}

class LambdaLR : public ValueNode<LambdaLR> {
 public:
  std::vector<Expr> lambdas;
  const char* type() const override { return "LambdaLR"; }
  int64_t StepCost(size_t groups) const override { return LambdasCost(*this, lambdas, groups); }
  absl::Status GetLr(const Optimizer&, double* out) override {
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      double f;
      LRS_RETURN_IF_ERROR(EvalLambda(lambdas[i], last_epoch_, i, &f));
      out[i] = base_lrs_[i] * f;
    }
    return absl::OkStatus();
  }
  void AddExtraState(json& sd) const override { sd["lr_lambdas"] = NullLambdas(lambdas.size()); }
  void LoadExtraState(Fields& f) override { f.Ignore("lr_lambdas"); }
};

class MultiplicativeLR : public ValueNode<MultiplicativeLR> {
 public:
  std::vector<Expr> lambdas;
  const char* type() const override { return "MultiplicativeLR"; }
  int64_t StepCost(size_t groups) const override { return LambdasCost(*this, lambdas, groups); }
  absl::Status GetLr(const Optimizer& opt, double* out) override {
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      if (last_epoch_ > 0) {
        double f;
        LRS_RETURN_IF_ERROR(EvalLambda(lambdas[i], last_epoch_, i, &f));
        out[i] = opt.groups[i].lr * f;
      } else {
        out[i] = opt.groups[i].lr;
      }
    }
    return absl::OkStatus();
  }
  void AddExtraState(json& sd) const override { sd["lr_lambdas"] = NullLambdas(lambdas.size()); }
  void LoadExtraState(Fields& f) override { f.Ignore("lr_lambdas"); }
};

class StepLR : public ValueNode<StepLR> {
 public:
  int64_t step_size = 1;
  double gamma = 0.1;
  const char* type() const override { return "StepLR"; }
  absl::Status GetLr(const Optimizer& opt, double* out) override {
    bool decay = last_epoch_ != 0 && last_epoch_ % step_size == 0;
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      out[i] = decay ? opt.groups[i].lr * gamma : opt.groups[i].lr;
    }
    return absl::OkStatus();
  }
  bool HasClosedForm() const override { return true; }
  absl::Status ClosedFormLr(const Optimizer&, double* out) override {
    double p;
    LRS_RETURN_IF_ERROR(PyPow(gamma, static_cast<double>(last_epoch_ / step_size), &p));
    for (size_t i = 0; i < base_lrs_.size(); ++i) out[i] = base_lrs_[i] * p;
    return absl::OkStatus();
  }
  json Config() const override { return json{{"step_size", step_size}, {"gamma", gamma}}; }
};

class MultiStepLR : public ValueNode<MultiStepLR> {
 public:
  std::vector<int64_t> sorted;        // sorted(Counter.elements())
  std::map<int64_t, int64_t> counts;  // the Counter
  double gamma = 0.1;
  const char* type() const override { return "MultiStepLR"; }
  // Copying the state copies the milestones too.
  int64_t CopyCost(size_t groups) const override {
    return SchedulerNode::CopyCost(groups) + static_cast<int64_t>(sorted.size()) +
           kMapNodeCost * static_cast<int64_t>(counts.size());
  }
  absl::Status GetLr(const Optimizer& opt, double* out) override {
    auto it = counts.find(last_epoch_);
    double p = 1;
    if (it != counts.end()) {
      LRS_RETURN_IF_ERROR(PyPow(gamma, static_cast<double>(it->second), &p));
    }
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      out[i] = it == counts.end() ? opt.groups[i].lr : opt.groups[i].lr * p;
    }
    return absl::OkStatus();
  }
  bool HasClosedForm() const override { return true; }
  absl::Status ClosedFormLr(const Optimizer&, double* out) override {
    auto k = std::upper_bound(sorted.begin(), sorted.end(), last_epoch_) - sorted.begin();
    double p;
    LRS_RETURN_IF_ERROR(PyPow(gamma, static_cast<double>(k), &p));
    for (size_t i = 0; i < base_lrs_.size(); ++i) out[i] = base_lrs_[i] * p;
    return absl::OkStatus();
  }
  json Config() const override {
    json m = json::object();
    for (auto& [k, n] : counts) m[std::to_string(k)] = n;
    return json{{"milestones", m}, {"gamma", gamma}};
  }
};

class ConstantLR : public ValueNode<ConstantLR> {
 public:
  double factor = 1.0 / 3;
  int64_t total_iters = 5;
  const char* type() const override { return "ConstantLR"; }
  absl::Status GetLr(const Optimizer& opt, double* out) override {
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      double lr = opt.groups[i].lr;
      if (last_epoch_ == 0) {
        out[i] = lr * factor;
      } else if (last_epoch_ != total_iters) {
        out[i] = lr;
      } else {
        double inv;
        LRS_RETURN_IF_ERROR(PyDiv(1.0, factor, &inv));
        out[i] = lr * inv;
      }
    }
    return absl::OkStatus();
  }
  bool HasClosedForm() const override { return true; }
  absl::Status ClosedFormLr(const Optimizer&, double* out) override {
    double reached = last_epoch_ >= total_iters ? 1.0 : 0.0;
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      out[i] = base_lrs_[i] * (factor + reached * (1 - factor));
    }
    return absl::OkStatus();
  }
  json Config() const override { return json{{"factor", factor}, {"total_iters", total_iters}}; }
};

class LinearLR : public ValueNode<LinearLR> {
 public:
  double start_factor = 1.0 / 3, end_factor = 1.0;
  int64_t total_iters = 5;
  const char* type() const override { return "LinearLR"; }
  absl::Status GetLr(const Optimizer& opt, double* out) override {
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      double lr = opt.groups[i].lr;
      if (last_epoch_ == 0) {
        out[i] = lr * start_factor;
      } else if (last_epoch_ > total_iters) {
        out[i] = lr;
      } else {
        double d = end_factor - start_factor;
        double den = static_cast<double>(total_iters) * start_factor +
                     static_cast<double>(last_epoch_ - 1) * d;
        double q;
        LRS_RETURN_IF_ERROR(PyDiv(d, den, &q));
        out[i] = lr * (1. + q);
      }
    }
    return absl::OkStatus();
  }
  bool HasClosedForm() const override { return true; }
  absl::Status ClosedFormLr(const Optimizer&, double* out) override {
    double num =
        (end_factor - start_factor) * static_cast<double>(std::min(total_iters, last_epoch_));
    double q;
    LRS_RETURN_IF_ERROR(PyDiv(num, static_cast<double>(total_iters), &q));
    for (size_t i = 0; i < base_lrs_.size(); ++i) out[i] = base_lrs_[i] * (start_factor + q);
    return absl::OkStatus();
  }
  json Config() const override {
    return json{
        {"start_factor", start_factor}, {"end_factor", end_factor}, {"total_iters", total_iters}};
  }
};

class ExponentialLR : public ValueNode<ExponentialLR> {
 public:
  double gamma = 0.1;
  const char* type() const override { return "ExponentialLR"; }
  absl::Status GetLr(const Optimizer& opt, double* out) override {
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      out[i] = last_epoch_ == 0 ? opt.groups[i].lr : opt.groups[i].lr * gamma;
    }
    return absl::OkStatus();
  }
  bool HasClosedForm() const override { return true; }
  absl::Status ClosedFormLr(const Optimizer&, double* out) override {
    double p;
    LRS_RETURN_IF_ERROR(PyPow(gamma, static_cast<double>(last_epoch_), &p));
    for (size_t i = 0; i < base_lrs_.size(); ++i) out[i] = base_lrs_[i] * p;
    return absl::OkStatus();
  }
  json Config() const override { return json{{"gamma", gamma}}; }
};

class PolynomialLR : public ValueNode<PolynomialLR> {
 public:
  int64_t total_iters = 5;
  double power = 1.0;
  const char* type() const override { return "PolynomialLR"; }
  absl::Status GetLr(const Optimizer& opt, double* out) override {
    double decay = 1.0;
    bool keep = last_epoch_ == 0 || last_epoch_ > total_iters;
    if (!keep) {
      double t = static_cast<double>(total_iters);
      double num = 1.0 - static_cast<double>(last_epoch_) / t;
      double den = 1.0 - static_cast<double>(last_epoch_ - 1) / t;
      double q;
      LRS_RETURN_IF_ERROR(PyDiv(num, den, &q));
      LRS_RETURN_IF_ERROR(PyPow(q, power, &decay));
    }
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      out[i] = keep ? opt.groups[i].lr : opt.groups[i].lr * decay;
    }
    return absl::OkStatus();
  }
  bool HasClosedForm() const override { return true; }
  absl::Status ClosedFormLr(const Optimizer&, double* out) override {
    double q, p;
    LRS_RETURN_IF_ERROR(PyDiv(static_cast<double>(std::min(total_iters, last_epoch_)),
                              static_cast<double>(total_iters), &q));
    LRS_RETURN_IF_ERROR(PyPow(1.0 - q, power, &p));
    for (size_t i = 0; i < base_lrs_.size(); ++i) out[i] = base_lrs_[i] * p;
    return absl::OkStatus();
  }
  json Config() const override { return json{{"total_iters", total_iters}, {"power", power}}; }
};

class CosineAnnealingLR : public ValueNode<CosineAnnealingLR> {
 public:
  int64_t T_max = 1;
  double eta_min = 0;
  const char* type() const override { return "CosineAnnealingLR"; }

  // cos(pi * e / T_max), remembered for the last two epochs: the chainable form needs it at
  // e and e - 1 on every step, and a plain step's e - 1 is the previous step's e. Same
  // expression, so the same bits as computing it again.
  double CosAt(int64_t e) {
    for (auto& c : cos_cache_) {
      if (c.first == e) return c.second;
    }
    double v = std::cos(kPi * static_cast<double>(e) / static_cast<double>(T_max));
    cos_cache_[cos_next_] = {e, v};
    cos_next_ ^= 1;
    return v;
  }

  // torch's (last_epoch - 1 - T_max) % (2 * T_max) == 0. The remainder is carried from the
  // previous epoch when stepping by one, because a 64-bit division per step costs as much as
  // the rest of the step.
  bool AtRestartEdge() {
    if (last_epoch_ == phase_epoch_ + 1) {
      phase_ = phase_ + 1 == 2 * T_max ? 0 : phase_ + 1;
    } else {
      phase_ = (last_epoch_ - 1 - T_max) % (2 * T_max);
      if (phase_ < 0) phase_ += 2 * T_max;
    }
    phase_epoch_ = last_epoch_;
    return phase_ == 0;
  }

  absl::Status GetLr(const Optimizer& opt, double* out) override {
    const double t = static_cast<double>(T_max);
    const double e = static_cast<double>(last_epoch_);
    const bool edge = last_epoch_ > 0 && AtRestartEdge();
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      double lr = opt.groups[i].lr, base = base_lrs_[i];
      if (last_epoch_ == 0) {
        out[i] = lr;
      } else if (step_count_ == 1 && last_epoch_ > 0) {
        out[i] = eta_min + (base - eta_min) * (1 + std::cos(e * kPi / t)) / 2;
      } else if (edge) {
        out[i] = lr + (base - eta_min) * (1 - std::cos(kPi / t)) / 2;
      } else {
        double num = 1 + CosAt(last_epoch_);
        double den = 1 + CosAt(last_epoch_ - 1);
        double q;
        LRS_RETURN_IF_ERROR(PyDiv(num, den, &q));
        out[i] = q * (lr - eta_min) + eta_min;
      }
    }
    return absl::OkStatus();
  }

 private:
  std::pair<int64_t, double> cos_cache_[2] = {{INT64_MIN, 0.0}, {INT64_MIN, 0.0}};
  int cos_next_ = 0;
  int64_t phase_epoch_ = INT64_MIN, phase_ = 0;

 public:
  bool HasClosedForm() const override { return true; }
  absl::Status ClosedFormLr(const Optimizer&, double* out) override {
    double c = std::cos(kPi * static_cast<double>(last_epoch_) / static_cast<double>(T_max));
    for (size_t i = 0; i < base_lrs_.size(); ++i) {
      out[i] = eta_min + (base_lrs_[i] - eta_min) * (1 + c) / 2;
    }
    return absl::OkStatus();
  }
  json Config() const override { return json{{"T_max", T_max}, {"eta_min", eta_min}}; }
};

template <class T>
absl::StatusOr<std::unique_ptr<SchedulerNode>> Start(std::unique_ptr<T> node, Fields& f,
                                                     Optimizer& opt, int64_t last_epoch) {
  LRS_RETURN_IF_ERROR(f.Finish());
  return StartNode(std::move(node), opt, last_epoch, f.path());
}

}  // namespace

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildBasic(const std::string& type, Fields& f,
                                                          Optimizer& opt) {
  const size_t n = opt.groups.size();
  int64_t last_epoch = f.Int("last_epoch", -1, -1, kMaxInt);
  if (type == "LambdaLR" || type == "MultiplicativeLR") {
    std::vector<Expr> lambdas = ReadLambdas(f, n);
    if (type == "LambdaLR") {
      auto node = std::make_unique<LambdaLR>();
      node->lambdas = std::move(lambdas);
      return Start(std::move(node), f, opt, last_epoch);
    }
    auto node = std::make_unique<MultiplicativeLR>();
    node->lambdas = std::move(lambdas);
    return Start(std::move(node), f, opt, last_epoch);
  }
  if (type == "StepLR") {
    auto node = std::make_unique<StepLR>();
    node->step_size = f.Int("step_size", std::nullopt, 1);
    node->gamma = f.Float("gamma", 0.1, 0);
    return Start(std::move(node), f, opt, last_epoch);
  }
  if (type == "MultiStepLR") {
    auto node = std::make_unique<MultiStepLR>();
    std::vector<int64_t> ms = f.IntList("milestones", 0);
    for (int64_t m : ms) node->counts[m] += 1;
    node->sorted = ms;
    std::sort(node->sorted.begin(), node->sorted.end());
    node->gamma = f.Float("gamma", 0.1, 0);
    return Start(std::move(node), f, opt, last_epoch);
  }
  if (type == "ConstantLR") {
    auto node = std::make_unique<ConstantLR>();
    // torch 1.13 takes factor 0 and then divides by it at total_iters; refuse it up front.
    node->factor = f.Float("factor", 1.0 / 3, 0, 1);
    if (f.status().ok() && node->factor == 0) {
      f.Fail(f.PathOf("factor"), "must be in (0, 1]; torch divides by it at total_iters");
    }
    node->total_iters = f.Int("total_iters", 5, 0);
    return Start(std::move(node), f, opt, last_epoch);
  }
  if (type == "LinearLR") {
    auto node = std::make_unique<LinearLR>();
    // As torch >= 2.0: a start_factor of 0 made 1.13 divide by zero on the first step.
    node->start_factor = f.Float("start_factor", 1.0 / 3, 0, 1);
    if (f.status().ok() && node->start_factor == 0) {
      f.Fail(f.PathOf("start_factor"), "must be in (0, 1], got 0");
    }
    node->end_factor = f.Float("end_factor", 1.0, 0, 1);
    node->total_iters = f.Int("total_iters", 5, 0);
    return Start(std::move(node), f, opt, last_epoch);
  }
  if (type == "ExponentialLR") {
    auto node = std::make_unique<ExponentialLR>();
    node->gamma = f.Float("gamma", std::nullopt, 0);
    return Start(std::move(node), f, opt, last_epoch);
  }
  if (type == "PolynomialLR") {
    auto node = std::make_unique<PolynomialLR>();
    node->total_iters = f.Int("total_iters", 5, 0);
    node->power = f.Float("power", 1.0, 0);
    return Start(std::move(node), f, opt, last_epoch);
  }
  if (type == "CosineAnnealingLR") {
    auto node = std::make_unique<CosineAnnealingLR>();
    node->T_max = f.Int("T_max", std::nullopt, 1);
    node->eta_min = f.Float("eta_min", 0);
    return Start(std::move(node), f, opt, last_epoch);
  }
  return absl::InvalidArgumentError(absl::StrCat(f.PathOf("type"), ": unknown type ", type));
}

}  // namespace lrsched::scheduler_internal
