// Copyright lrsched authors.
//
// Applying one amendment to a schedule (amendment.h has the kinds' semantics). Each Apply*
// works on a Schedule that the caller cloned for the purpose and keeps only on success, so
// an error may leave it half-changed.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/amend_state.h"
#include "scheduler/internal/param_groups.h"

namespace lrsched::scheduler_internal {
namespace {

absl::Status Prefixed(const absl::Status& s, std::string_view kind) {
  return absl::Status(s.code(), absl::StrCat(std::string(kind), ": ", s.message()));
}

}  // namespace

AmendState& AmendEngine::State(Schedule& s) { return *s.amend_; }

Optimizer& AmendEngine::Driven(Schedule& s) {
  return s.amend_->scale.empty() ? s.opt_ : s.amend_->unscaled;
}

absl::Status AmendEngine::RefreshServed(Schedule& w) {
  AmendState& st = State(w);
  for (size_t i = 0; i < st.scale.size(); ++i) {
    ParamGroup& g = w.opt_.groups[i];
    g = st.unscaled.groups[i];
    g.lr *= st.scale[i];
    if (!std::isfinite(g.lr)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "scale: the served lr of param group ", i, " would become ", FormatNumber(g.lr),
          " (", FormatNumber(st.unscaled.groups[i].lr), " x ", FormatNumber(st.scale[i]),
          "); refusing a non-finite learning rate"));
    }
  }
  return absl::OkStatus();
}

// The optimizer a continue_with builds on: the served groups' lr, momentum (or betas), and the
// group keys that are configuration rather than a scheduler's state (weight_decay, timm's
// lr_scale, Megatron's wd overrides); `given` (continue_with's "param_groups") overrides them
// key by key. initial_lr and OneCycleLR's keys are left out: a fresh torch optimizer has none.
absl::StatusOr<json> CarriedOptimizer(const Schedule& w, const json* given) {
  const std::vector<ParamGroup>& served = w.param_groups();
  json groups = json::array();
  for (const ParamGroup& g : served) {
    json j{{"lr", g.lr}};
    if (g.momentum) j["momentum"] = *g.momentum;
    if (g.betas) j["betas"] = {(*g.betas)[0], (*g.betas)[1]};
    if (g.weight_decay) j["weight_decay"] = *g.weight_decay;
    if (g.lr_scale) j["lr_scale"] = *g.lr_scale;
    if (g.wd_mult) j["wd_mult"] = *g.wd_mult;
    if (g.start_wd) j["start_wd"] = *g.start_wd;
    if (g.end_wd) j["end_wd"] = *g.end_wd;
    groups.push_back(std::move(j));
  }
  if (given != nullptr && !given->is_null()) {
    if (!given->is_array() || given->size() != served.size()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "continue_with.param_groups: expected a list of ", served.size(),
          " param groups (the number of param groups cannot change mid-run)"));
    }
    for (size_t i = 0; i < served.size(); ++i) {
      const json& gi = (*given)[i];
      if (!gi.is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat("continue_with.param_groups[", i, "]: expected an object"));
      }
      for (auto it = gi.begin(); it != gi.end(); ++it) groups[i][it.key()] = it.value();
    }
  }
  return json{{"type", w.optimizer().type}, {"param_groups", std::move(groups)}};
}

absl::Status AmendEngine::ApplyContinueWith(Schedule& w, const json& args) {
  const bool wrapped = args.contains("scheduler");
  const json& sched = wrapped ? args["scheduler"] : args;
  const json* given = wrapped && args.contains("param_groups") ? &args["param_groups"] : nullptr;
  absl::StatusOr<json> opt = CarriedOptimizer(w, given);
  if (!opt.ok()) return opt.status();
  json piece{{"optimizer", *std::move(opt)}, {"scheduler", sched}};
  auto built = Schedule::Create(piece);
  if (!built.ok()) return Prefixed(built.status(), "continue_with");
  AmendState& st = State(w);
  const int64_t start = w.last_epoch();
  w.root_ = std::move((*built)->root_);
  w.opt_ = std::move((*built)->opt_);
  // A scale in force was in the served lrs the new piece starts from: folded, then reset.
  st.scale.clear();
  st.unscaled = Optimizer();
  st.piece_start = start;
  st.piece_spec = std::move(piece);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Schedule>> AmendEngine::Replay(const Schedule& w,
                                                              const json& merged, int64_t epoch) {
  const AmendState& st = *w.amend_;
  auto built = Schedule::Create(json{{"optimizer", st.piece_spec["optimizer"]}, {"scheduler", merged}});
  if (!built.ok()) return Prefixed(built.status(), "reparameterize");
  Schedule& n = **built;
  const int64_t target = epoch - st.piece_start;
  if (n.root_->last_epoch() > target) {
    return absl::FailedPreconditionError(absl::StrCat(
        "reparameterize: the new arguments start the scheduler at its epoch ",
        n.root_->last_epoch(), ", after at_epoch (", target, " in the piece in force)"));
  }
  // Plain steps from the piece's start, as the job would have made them (Megatron's by
  // increments of 1: its values are a function of num_steps alone).
  StepArgs plain;
  if (n.root_->takes_increment()) plain.increment = 1;
  while (n.root_->last_epoch() < target) {
    const int64_t before = n.root_->last_epoch();
    absl::Status s = n.root_->Step(n.opt_, plain);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "reparameterize: the new arguments refuse the step to epoch ", before + 1 + st.piece_start,
          ": ", s.message()));
    }
    if (n.root_->last_epoch() <= before) {
      return absl::InternalError("reparameterize: the replay does not advance");
    }
  }
  return built;
}

absl::Status AmendEngine::ApplyReparameterize(Schedule& w, size_t index, const json& args) {
  AmendState& st = State(w);
  auto merged = MergeKwargs(st.piece_spec["scheduler"], args, "");
  if (!merged.ok()) return merged.status();
  const int64_t epoch = w.last_epoch();
  if (w.root_->deterministic()) {
    std::unique_ptr<Schedule> replay;
    for (Prepared& p : st.prepared) {
      if (p.index == index && p.epoch == epoch && p.piece_start == st.piece_start &&
          p.merged == *merged && p.replay != nullptr) {
        replay = std::move(p.replay);
      }
    }
    if (replay == nullptr) {
      auto r = Replay(w, *merged, epoch);
      if (!r.ok()) return r.status();
      replay = *std::move(r);
    }
    w.root_ = std::move(replay->root_);
    Driven(w) = std::move(replay->opt_);
  } else {
    // Metric-driven: the state carries over; only what the changed arguments change (the keys
    // of a fresh state_dict that differ between the old and the new arguments) is replaced.
    const json& opt = st.piece_spec["optimizer"];
    auto fresh_new = Schedule::Create(json{{"optimizer", opt}, {"scheduler", *merged}});
    if (!fresh_new.ok()) return Prefixed(fresh_new.status(), "reparameterize");
    auto fresh_old = Schedule::Create(st.piece_spec);
    if (!fresh_old.ok()) return Prefixed(fresh_old.status(), "reparameterize");
    auto carry = [](json cur, const json& now, const json& was) {
      if (!cur.is_object() || !now.is_object()) return cur;
      for (auto it = now.begin(); it != now.end(); ++it) {
        auto o = was.find(it.key());
        if (o == was.end() || *o != it.value()) cur[it.key()] = it.value();
      }
      return cur;
    };
    SchedulerNode& n = *(*fresh_new)->root_;
    json sd = carry(w.root_->StateDict(), n.StateDict(), (*fresh_old)->root_->StateDict());
    absl::Status s = n.LoadStateDict(sd, "state_dict");
    if (s.ok()) {
      json ns = w.root_->NodeState();
      if (!ns.is_null()) {
        s = n.LoadNodeState(carry(ns, n.NodeState(), (*fresh_old)->root_->NodeState()),
                            "node_state");
      }
    }
    if (!s.ok()) return Prefixed(s, "reparameterize");
    w.root_ = std::move((*fresh_new)->root_);
  }
  st.piece_spec["scheduler"] = *std::move(merged);
  return absl::OkStatus();
}

absl::Status AmendEngine::ApplyScale(Schedule& w, const json& args) {
  AmendState& st = State(w);
  const size_t n = w.opt_.groups.size();
  const double factor = args["factor"].get<double>();
  if (st.scale.empty()) {
    st.unscaled = w.opt_;
    st.scale.assign(n, 1.0);
  }
  auto g = args.find("groups");
  if (g == args.end() || g->is_null() || g->empty()) {
    st.scale.assign(n, factor);
  } else {
    for (const json& i : *g) st.scale[i.get<size_t>()] = factor;
  }
  bool any = false;
  for (double f : st.scale) any = any || f != 1.0;
  if (!any) {
    w.opt_ = std::move(st.unscaled);
    st.unscaled = Optimizer();
    st.scale.clear();
    return absl::OkStatus();
  }
  return RefreshServed(w);
}

absl::Status AmendEngine::ApplyOne(Schedule& w, size_t index) {
  AmendState& st = State(w);
  std::vector<double> before;
  for (const ParamGroup& g : w.opt_.groups) before.push_back(g.lr);
  const Amendment a = st.amendments[index];  // a copy: the appliers may not touch the list
  absl::Status s;
  switch (a.kind) {
    case Amendment::Kind::kContinueWith:
      s = ApplyContinueWith(w, a.args);
      break;
    case Amendment::Kind::kReparameterize:
      s = ApplyReparameterize(w, index, a.args);
      if (s.ok() && !st.scale.empty()) s = RefreshServed(w);
      break;
    case Amendment::Kind::kScale:
      s = ApplyScale(w, a.args);
      break;
  }
  if (!s.ok()) return s;
  for (size_t i = 0; i < w.opt_.groups.size(); ++i) {
    if (!std::isfinite(w.opt_.groups[i].lr)) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(AmendmentKindName(a.kind)), ": the lr of param group ", i,
                       " would become ", FormatNumber(w.opt_.groups[i].lr)));
    }
  }
  Amendment& done = st.amendments[index];
  done.applied = true;
  done.jump.clear();
  for (size_t i = 0; i < w.opt_.groups.size(); ++i) {
    done.jump.push_back(w.opt_.groups[i].lr - before[i]);
  }
  return absl::OkStatus();
}

}  // namespace lrsched::scheduler_internal
