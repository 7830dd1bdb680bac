// Copyright lrsched authors.
//
// The schedulers that are not a formula of their own: ReduceLROnPlateau (driven by a metric),
// and the composites SequentialLR and ChainedScheduler, which own and drive child schedulers on
// the same optimizer in torch's construction order.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/node.h"
#include "scheduler/internal/plateau_core.h"
#include "scheduler/internal/pymath.h"
#include "scheduler/json_text.h"

namespace lrsched::scheduler_internal {
namespace {

// `,"_schedulers":[...]}`: the children's state_dicts and the composite's closing brace.
void AppendChildren(const std::vector<std::unique_ptr<SchedulerNode>>& children, std::string* out) {
  out->append(",\"_schedulers\":[");
  for (size_t i = 0; i < children.size(); ++i) {
    if (i > 0) out->push_back(',');
    children[i]->AppendStateDict(out);
  }
  out->append("]}");
}

class ReduceLROnPlateau : public ValueNode<ReduceLROnPlateau, SchedulerNode>, public PlateauCore {
 public:
  double mode_worse = INFINITY;
  std::vector<double> min_lrs, last_lr_;
  int64_t last_epoch_ = 0;
  bool stepped = false;

  const char* type() const override { return "ReduceLROnPlateau"; }
  bool deterministic() const override { return false; }
  int64_t* mutable_last_epoch() override { return &last_epoch_; }
  int64_t last_epoch() const override { return last_epoch_; }
  const std::vector<double>& last_lr() const override { return last_lr_; }

  absl::Status Step(Optimizer& opt, const StepArgs& args) override {
    if (!args.metric) {
      return absl::InvalidArgumentError(
          "metric: ReduceLROnPlateau.step(metric) needs the metric it watches");
    }
    const double current = *args.metric;
    if (!std::isfinite(current)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric: expected a finite number, got ", FormatNumber(current)));
    }
    int64_t epoch = last_epoch_ + 1;
    if (args.epoch) {
      double e = *args.epoch;
      if (!(e >= 0 && e <= static_cast<double>(kMaxInt)) || e != std::floor(e)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "epoch: ReduceLROnPlateau.step(metric, epoch) takes an integer epoch in [0, ", kMaxInt,
            "], got ", FormatNumber(e)));
      }
      epoch = static_cast<int64_t>(e);
    } else if (last_epoch_ >= kMaxInt) {
      return absl::InvalidArgumentError(absl::StrCat("last_epoch: cannot step past ", kMaxInt));
    }
    last_epoch_ = epoch;
    if (Observe(current)) {
      for (size_t i = 0; i < opt.groups.size(); ++i) {
        opt.groups[i].lr = Reduced(opt.groups[i].lr, min_lrs[i]);
      }
    }
    for (size_t i = 0; i < opt.groups.size(); ++i) last_lr_[i] = opt.groups[i].lr;
    stepped = true;
    return absl::OkStatus();
  }

  json Config() const {
    return json{{"factor", factor},
                {"min_lrs", StateNums(min_lrs)},
                {"patience", patience},
                {"cooldown", cooldown},
                {"mode", min_mode ? "min" : "max"},
                {"threshold", threshold},
                {"threshold_mode", rel ? "rel" : "abs"},
                {"mode_worse", StateNum(mode_worse)},
                {"eps", eps}};
  }
  json StateDict() const override {
    json sd = Config();
    sd["verbose"] = false;
    sd["cooldown_counter"] = cooldown_counter;
    sd["best"] = StateNum(best);
    sd["num_bad_epochs"] = num_bad_epochs;
    sd["last_epoch"] = last_epoch_;
    if (stepped) sd["_last_lr"] = StateNums(last_lr_);
    return sd;
  }
  absl::Status LoadStateDict(const json& sd, const std::string& path) override {
    Fields f(sd, path);
    json cfg = Config();
    for (auto it = cfg.begin(); it != cfg.end(); ++it) f.Expect(it.key().c_str(), it.value());
    f.Bool("verbose", false);
    cooldown_counter = f.Int("cooldown_counter", 0, 0, kMaxInt);
    num_bad_epochs = f.Int("num_bad_epochs", 0, 0, kMaxInt);
    last_epoch_ = f.Int("last_epoch", std::nullopt, 0, kMaxInt);
    if (const json* b = f.Raw("best", false)) {
      if (!ReadStateNum(*b, &best)) f.Fail(f.PathOf("best"), "expected a number");
    }
    if (f.Has("_last_lr")) {
      last_lr_ =
          f.FloatPerGroup("_last_lr", std::nullopt, last_lr_.size(), -kAnyFinite, kAnyFinite);
      stepped = true;
    }
    return f.Finish();
  }
};

class SequentialLR : public SchedulerNode {
 public:
  std::vector<std::unique_ptr<SchedulerNode>> children;
  std::vector<int64_t> milestones;
  std::vector<double> last_lr_;
  int64_t last_epoch_ = 0;

  SequentialLR() = default;
  SequentialLR(const SequentialLR& o)
      : milestones(o.milestones), last_lr_(o.last_lr_), last_epoch_(o.last_epoch_) {
    for (const auto& c : o.children) children.push_back(c->Clone());
  }
  const char* type() const override { return "SequentialLR"; }
  // One child steps at a time; a copy copies them all.
  int64_t StepCost(size_t groups) const override {
    int64_t most = 0;
    for (const auto& c : children) most = std::max(most, c->StepCost(groups));
    return SchedulerNode::StepCost(groups) + most;
  }
  int64_t CopyCost(size_t groups) const override {
    int64_t cost = SchedulerNode::CopyCost(groups) + static_cast<int64_t>(milestones.size());
    for (const auto& c : children) cost += c->CopyCost(groups);
    return cost;
  }
  bool takes_epoch() const override { return false; }
  int64_t* mutable_last_epoch() override { return &last_epoch_; }
  int64_t last_epoch() const override { return last_epoch_; }
  const std::vector<double>& last_lr() const override { return last_lr_; }
  std::unique_ptr<SchedulerNode> Clone() const override {
    return std::make_unique<SequentialLR>(*this);
  }
  void CopyStateFrom(const SchedulerNode& other) override {
    const auto& o = static_cast<const SequentialLR&>(other);
    for (size_t i = 0; i < children.size(); ++i) children[i]->CopyStateFrom(*o.children[i]);
    last_lr_ = o.last_lr_;
    last_epoch_ = o.last_epoch_;
  }

  absl::Status Step(Optimizer& opt, const StepArgs& args) override {
    if (args.epoch || args.metric) {
      return absl::InvalidArgumentError("SequentialLR.step() takes neither an epoch nor a metric");
    }
    if (last_epoch_ >= kMaxInt) {
      return absl::InvalidArgumentError(absl::StrCat("last_epoch: cannot step past ", kMaxInt));
    }
    const int64_t epoch = last_epoch_ + 1;
    size_t idx = std::upper_bound(milestones.begin(), milestones.end(), epoch) - milestones.begin();
    SchedulerNode& s = *children[idx];
    StepArgs child_args;
    if (idx > 0 && milestones[idx - 1] == epoch) child_args.epoch = 0;
    LRS_RETURN_IF_ERROR(s.Step(opt, child_args));  // all-or-nothing, so nothing to undo
    last_epoch_ = epoch;
    last_lr_ = s.last_lr();
    return absl::OkStatus();
  }

  json StateDict() const override {
    json subs = json::array();
    for (const auto& c : children) subs.push_back(c->StateDict());
    return json{{"_milestones", milestones},
                {"last_epoch", last_epoch_},
                {"_last_lr", StateNums(last_lr_)},
                {"_schedulers", subs}};
  }
  void AppendStateDict(std::string* out) const override {
    out->append("{\"_milestones\":[");
    for (size_t i = 0; i < milestones.size(); ++i) {
      if (i > 0) out->push_back(',');
      json_text::AppendInt(milestones[i], out);
    }
    out->append("],\"last_epoch\":");
    json_text::AppendInt(last_epoch_, out);
    out->append(",\"_last_lr\":");
    AppendStateNums(last_lr_, out);
    AppendChildren(children, out);
  }
  absl::Status LoadStateDict(const json& sd, const std::string& path) override {
    Fields f(sd, path);
    f.Expect("_milestones", json(milestones));
    last_epoch_ = f.Int("last_epoch", std::nullopt, 0, kMaxInt);
    if (f.Has("_last_lr"))
      last_lr_ =
          f.FloatPerGroup("_last_lr", std::nullopt, last_lr_.size(), -kAnyFinite, kAnyFinite);
    LoadChildren(f, children);
    return f.Finish();
  }

  static void LoadChildren(Fields& f, std::vector<std::unique_ptr<SchedulerNode>>& children) {
    const json* subs = f.Raw("_schedulers", true);
    if (subs == nullptr || !f.status().ok()) return;
    if (!subs->is_array() || subs->size() != children.size()) {
      f.Fail(f.PathOf("_schedulers"),
             absl::StrCat("expected a list of ", children.size(), " state_dicts"));
      return;
    }
    for (size_t i = 0; i < children.size(); ++i) {
      f.Fail(children[i]->LoadStateDict((*subs)[i],
                                        absl::StrCat(f.PathOf("_schedulers"), "[", i, "]")));
    }
  }
};

class ChainedScheduler : public SchedulerNode {
 public:
  std::vector<std::unique_ptr<SchedulerNode>> children;
  std::vector<double> last_lr_;
  // Copies of the children and groups taken before each step, so that a child refusing its
  // step after earlier ones stepped can be undone (the only node that needs this).
  std::vector<std::unique_ptr<SchedulerNode>> backup_;
  std::vector<ParamGroup> backup_groups_;

  ChainedScheduler() = default;
  ChainedScheduler(const ChainedScheduler& o) : last_lr_(o.last_lr_) {
    for (const auto& c : o.children) children.push_back(c->Clone());
    PrepareBackup(o.backup_groups_);
  }
  void PrepareBackup(const std::vector<ParamGroup>& groups) {
    backup_.clear();
    for (const auto& c : children) backup_.push_back(c->Clone());
    backup_groups_ = groups;
  }
  const char* type() const override { return "ChainedScheduler"; }
  // Every child steps, after a backup copy of each (see Step).
  int64_t StepCost(size_t groups) const override {
    int64_t cost = SchedulerNode::StepCost(groups);
    for (const auto& c : children) cost += c->StepCost(groups) + c->CopyCost(groups);
    return cost;
  }
  int64_t CopyCost(size_t groups) const override {
    int64_t cost = SchedulerNode::CopyCost(groups);
    for (const auto& c : children) cost += c->CopyCost(groups);
    return cost;
  }
  bool takes_epoch() const override { return false; }
  // ChainedScheduler has no last_epoch in torch; its children step together, so the first
  // child's counts the steps.
  int64_t last_epoch() const override { return children[0]->last_epoch(); }
  const std::vector<double>& last_lr() const override { return last_lr_; }
  std::unique_ptr<SchedulerNode> Clone() const override {
    return std::make_unique<ChainedScheduler>(*this);
  }
  void CopyStateFrom(const SchedulerNode& other) override {
    const auto& o = static_cast<const ChainedScheduler&>(other);
    for (size_t i = 0; i < children.size(); ++i) children[i]->CopyStateFrom(*o.children[i]);
    last_lr_ = o.last_lr_;
  }
  absl::Status Step(Optimizer& opt, const StepArgs& args) override {
    if (args.epoch || args.metric) {
      return absl::InvalidArgumentError(
          "ChainedScheduler.step() takes neither an epoch nor a metric");
    }
    for (size_t i = 0; i < children.size(); ++i) backup_[i]->CopyStateFrom(*children[i]);
    backup_groups_ = opt.groups;
    for (size_t i = 0; i < children.size(); ++i) {
      absl::Status s = children[i]->Step(opt, StepArgs{});
      if (!s.ok()) {
        for (size_t j = 0; j < i; ++j) children[j]->CopyStateFrom(*backup_[j]);
        opt.groups = backup_groups_;
        return s;
      }
    }
    for (size_t i = 0; i < opt.groups.size(); ++i) last_lr_[i] = opt.groups[i].lr;
    return absl::OkStatus();
  }
  json StateDict() const override {
    json subs = json::array();
    for (const auto& c : children) subs.push_back(c->StateDict());
    return json{{"_last_lr", StateNums(last_lr_)}, {"_schedulers", subs}};
  }
  void AppendStateDict(std::string* out) const override {
    out->append("{\"_last_lr\":");
    AppendStateNums(last_lr_, out);
    AppendChildren(children, out);
  }
  absl::Status LoadStateDict(const json& sd, const std::string& path) override {
    Fields f(sd, path);
    if (f.Has("_last_lr"))
      last_lr_ =
          f.FloatPerGroup("_last_lr", std::nullopt, last_lr_.size(), -kAnyFinite, kAnyFinite);
    SequentialLR::LoadChildren(f, children);
    return f.Finish();
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildPlateau(Fields& f, Optimizer& opt) {
  auto node = std::make_unique<ReduceLROnPlateau>();
  const size_t n = opt.groups.size();
  node->min_mode = f.Enum("mode", "min", {"min", "max"}) == "min";
  node->factor = f.Float("factor", 0.1, 0, 1);
  if (f.status().ok() && node->factor >= 1.0) {
    f.Fail(f.PathOf("factor"), "should be < 1.0");
  }
  node->patience = f.Int("patience", 10, 0);
  node->threshold = f.Float("threshold", 1e-4);
  node->rel = f.Enum("threshold_mode", "rel", {"rel", "abs"}) == "rel";
  node->cooldown = f.Int("cooldown", 0, 0);
  node->min_lrs = f.FloatPerGroup("min_lr", 0, n, 0);
  node->eps = f.Float("eps", 1e-8, 0);
  LRS_RETURN_IF_ERROR(f.Finish());
  node->mode_worse = node->min_mode ? INFINITY : -INFINITY;
  node->best = node->mode_worse;
  node->last_lr_.assign(n, 0.0);
  return std::unique_ptr<SchedulerNode>(std::move(node));
}

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildComposite(const std::string& type, Fields& f,
                                                              Optimizer& opt, int depth) {
  const bool sequential = type == "SequentialLR";
  const json* subs = f.Raw("schedulers", true);
  std::vector<int64_t> milestones;
  int64_t last_epoch = -1;
  if (sequential) {
    milestones = f.IntList("milestones", 0);
    last_epoch = f.Int("last_epoch", -1, -1, kMaxInt);
    for (size_t i = 1; i < milestones.size(); ++i) {
      if (milestones[i] < milestones[i - 1]) {
        f.Fail(f.PathOf("milestones"), "must be in non-decreasing order");
      }
    }
  }
  LRS_RETURN_IF_ERROR(f.Finish());
  if (!subs->is_array() || subs->empty() || subs->size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.PathOf("schedulers"), ": expected a list of 1 to 64 scheduler specs"));
  }
  std::vector<std::unique_ptr<SchedulerNode>> children;
  for (size_t i = 0; i < subs->size(); ++i) {
    std::string path = absl::StrCat(f.PathOf("schedulers"), "[", i, "]");
    auto child = BuildNode((*subs)[i], path, opt, depth + 1);
    if (!child.ok()) return child.status();
    const std::string child_type = (*child)->type();
    if (child_type.rfind("timm.", 0) == 0) {
      // torch's composites call step() without the t timm's schedulers take (a TypeError).
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", child_type, " cannot be nested in ", type,
                       " (timm's schedulers are stepped with t, which torch's composites lack)"));
    }
    if (child_type == "ReduceLROnPlateau" ||
        (sequential && (child_type == "SequentialLR" || child_type == "ChainedScheduler"))) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": ", child_type, " cannot be nested in ", type, " (torch 1.13 fails on it)"));
    }
    children.push_back(*std::move(child));
  }
  if (!sequential) {
    auto node = std::make_unique<ChainedScheduler>();
    node->children = std::move(children);
    for (const ParamGroup& g : opt.groups) node->last_lr_.push_back(g.lr);
    node->PrepareBackup(opt.groups);
    return std::unique_ptr<SchedulerNode>(std::move(node));
  }
  if (milestones.size() != children.size() - 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        f.PathOf("milestones"), ": SequentialLR expects one milestone fewer than schedulers, got ",
        children.size(), " schedulers and ", milestones.size(), " milestones"));
  }
  auto node = std::make_unique<SequentialLR>();
  node->children = std::move(children);
  node->milestones = std::move(milestones);
  node->last_epoch_ = last_epoch + 1;
  for (ParamGroup& g : opt.groups) g.lr = *g.initial_lr;         // reset to the initial values
  for (auto& c : node->children) *c->mutable_last_epoch() -= 1;  // undo their initial steps
  LRS_RETURN_IF_ERROR(node->children[0]->InitialStep(opt));
  node->last_lr_ = node->children[0]->last_lr();
  return std::unique_ptr<SchedulerNode>(std::move(node));
}

}  // namespace lrsched::scheduler_internal
