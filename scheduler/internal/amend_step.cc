// Copyright lrsched authors.
//
// Amend and the Step of an amended schedule: pending amendments, their validation and
// preparation, and all-or-nothing application (work on a clone, keep it on success).
#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/amend_state.h"

namespace lrsched::scheduler_internal {
namespace {

// Pending amendments' indices in the order they apply: (at_epoch, order made).
std::vector<size_t> PendingOrder(const AmendState& st) {
  std::vector<size_t> out;
  for (size_t i = 0; i < st.amendments.size(); ++i) {
    if (!st.amendments[i].applied) out.push_back(i);
  }
  std::stable_sort(out.begin(), out.end(), [&st](size_t a, size_t b) {
    return st.amendments[a].at_epoch < st.amendments[b].at_epoch;
  });
  return out;
}

absl::Status Prefixed(const absl::Status& s, std::string_view kind) {
  return absl::Status(s.code(), absl::StrCat(std::string(kind), ": ", s.message()));
}

const json* GivenGroups(const json& args) {
  if (!args.contains("scheduler")) return nullptr;
  auto g = args.find("param_groups");
  return g == args.end() ? nullptr : &*g;
}

const json& SchedulerOf(const json& args) {
  return args.contains("scheduler") ? args["scheduler"] : args;
}

}  // namespace

void AmendEngine::Rearm(Schedule& s) {
  AmendState& st = State(s);
  st.pending = 0;
  st.next_pending = std::numeric_limits<int64_t>::max();
  for (const Amendment& a : st.amendments) {
    if (a.applied) continue;
    ++st.pending;
    st.next_pending = std::min(st.next_pending, a.at_epoch);
  }
  const bool guard = st.pending > 0 || !st.scale.empty();
  if (guard) {
    st.backup = s.root_->Clone();
    st.backup_groups = Driven(s).groups;
  } else {
    st.backup.reset();
    st.backup_groups.clear();
  }
  s.Finish().IgnoreError();  // step_cost_; every lr was checked finite by the caller
  const size_t n = s.opt_.groups.size();
  if (guard) s.step_cost_ += s.root_->CopyCost(n) + kGroupCost * static_cast<int64_t>(n);
}

void AmendEngine::Adopt(Schedule& s, Schedule& w) {
  s.root_ = std::move(w.root_);
  s.opt_ = std::move(w.opt_);
  s.amend_ = std::move(w.amend_);
  Rearm(s);
}

// Whether the amendment at `index` (pending) would apply to the piece that will be in force
// at its at_epoch: the pending amendments before it folded into the piece's spec.
absl::Status AmendEngine::ValidatePending(const Schedule& w, size_t index) {
  const AmendState& st = *w.amend_;
  json sched = st.piece_spec["scheduler"];
  json opt = st.piece_spec["optimizer"];
  for (size_t j : PendingOrder(st)) {
    const Amendment& a = st.amendments[j];
    if (a.kind == Amendment::Kind::kContinueWith) {
      // The lrs at at_epoch are not known yet: the served ones stand in for them.
      auto o = CarriedOptimizer(w, GivenGroups(a.args));
      if (!o.ok()) return o.status();
      opt = *std::move(o);
      sched = SchedulerOf(a.args);
    } else if (a.kind == Amendment::Kind::kReparameterize) {
      auto merged = MergeKwargs(sched, a.args, "");
      if (!merged.ok()) return merged.status();
      sched = *std::move(merged);
    }
    if (j == index) {
      if (a.kind == Amendment::Kind::kScale) return absl::OkStatus();
      auto built = Schedule::Create(json{{"optimizer", opt}, {"scheduler", sched}});
      if (!built.ok()) return Prefixed(built.status(), AmendmentKindName(a.kind));
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::Status AmendEngine::Prepare(Schedule& w, size_t must) {
  AmendState& st = State(w);
  std::vector<Prepared> next;
  absl::Status result;
  if (w.root_->deterministic()) {
    json sched = st.piece_spec["scheduler"];
    for (size_t j : PendingOrder(st)) {
      const Amendment& a = st.amendments[j];
      if (a.kind == Amendment::Kind::kContinueWith) break;  // a piece not built yet
      if (a.kind != Amendment::Kind::kReparameterize) continue;
      auto merged = MergeKwargs(sched, a.args, "");
      if (!merged.ok()) {
        if (j == must) result = merged.status();
        break;
      }
      sched = *merged;
      Prepared p;
      p.index = j;
      p.epoch = a.at_epoch;
      p.piece_start = st.piece_start;
      p.merged = sched;
      for (Prepared& old : st.prepared) {
        if (old.index == j && old.epoch == p.epoch && old.piece_start == p.piece_start &&
            old.merged == p.merged && old.replay != nullptr) {
          p.replay = std::move(old.replay);
        }
      }
      if (p.replay == nullptr) {
        auto r = Replay(w, sched, a.at_epoch);
        if (!r.ok()) {
          if (j == must) result = r.status();
          continue;
        }
        p.replay = *std::move(r);
      }
      next.push_back(std::move(p));
    }
  }
  st.prepared = std::move(next);
  return result;
}

absl::Status AmendEngine::ApplyReached(Schedule& w) {
  AmendState& st = State(w);
  for (;;) {
    const int64_t now = w.last_epoch();
    std::vector<size_t> order = PendingOrder(st);
    if (order.empty() || st.amendments[order[0]].at_epoch > now) break;
    const size_t j = order[0];
    absl::Status s = ApplyOne(w, j);
    if (!s.ok()) {
      const Amendment& a = st.amendments[j];
      return absl::Status(s.code(), absl::StrCat("applying amendment ", j, " (",
                                                 std::string(AmendmentKindName(a.kind)), " at_epoch ",
                                                 a.at_epoch, "): ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status AmendEngine::Step(Schedule& s, const StepArgs& args) {
  AmendState& st = State(s);
  StepArgs a = args;
  if (a.epoch && st.piece_start != 0) {
    // step(epoch) counts schedule epochs; the piece in force counts from its start.
    const double e = *a.epoch - static_cast<double>(st.piece_start);
    if (!(e >= 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "epoch: ", FormatNumber(*a.epoch), " is before ", st.piece_start,
          ", where the scheduler in force (continue_with) started"));
    }
    a.epoch = e;
  }
  Optimizer& driven = Driven(s);
  const bool guard = st.backup != nullptr;
  if (guard) {
    st.backup->CopyStateFrom(*s.root_);
    st.backup_groups = driven.groups;  // same size: no allocation
  }
  absl::Status r = s.root_->Step(driven, a);
  if (!r.ok()) return r;  // nodes step all or nothing
  if (!st.scale.empty()) r = RefreshServed(s);
  if (r.ok() && st.pending > 0 && st.next_pending <= s.last_epoch()) {
    std::unique_ptr<Schedule> w = s.Clone();
    r = ApplyReached(*w);
    if (r.ok()) {
      Adopt(s, *w);
      return absl::OkStatus();
    }
  }
  if (!r.ok()) {
    s.root_->CopyStateFrom(*st.backup);
    driven.groups = st.backup_groups;
    if (!st.scale.empty()) RefreshServed(s).IgnoreError();  // the values it had: finite
  }
  return r;
}

absl::StatusOr<AmendResult> AmendEngine::Amend(Schedule& s, const Amendment& amendment) {
  absl::Status c = CheckAmendmentArgs(amendment, s.opt_.groups.size());
  if (!c.ok()) return c;
  const int64_t now = s.last_epoch();
  if (amendment.at_epoch < now) {
    return absl::FailedPreconditionError(
        absl::StrCat("at_epoch: ", amendment.at_epoch, " is before the schedule's epoch ", now,
                     "; the past is never rewritten"));
  }
  std::unique_ptr<Schedule> w = s.Clone();
  if (w->amend_ == nullptr) {
    w->amend_ = std::make_unique<AmendState>();
    w->amend_->piece_spec = s.spec();
  }
  AmendState& st = *w->amend_;
  Amendment copy = amendment;
  copy.applied = false;
  copy.jump.clear();
  st.amendments.push_back(std::move(copy));
  const size_t index = st.amendments.size() - 1;
  AmendResult result;
  if (amendment.at_epoch == now) {
    absl::Status a = ApplyOne(*w, index);
    if (!a.ok()) return a;
    result.applied = true;
    result.jump = st.amendments[index].jump;
    Prepare(*w, std::numeric_limits<size_t>::max()).IgnoreError();  // the piece may have changed
  } else {
    absl::Status v = ValidatePending(*w, index);
    if (!v.ok()) return v;
    v = Prepare(*w, index);
    if (!v.ok()) return v;
  }
  Adopt(s, *w);
  return result;
}

int64_t AmendEngine::Cost(const Schedule& s, const Amendment& a) {
  // Building a spec, cloning the schedule: a few steps' worth; then every replay.
  int64_t cost = 16;
  const int64_t start = s.amend_ ? s.amend_->piece_start : 0;
  if (a.kind == Amendment::Kind::kReparameterize && a.at_epoch > start) cost += a.at_epoch - start;
  if (s.amend_) {
    for (const Amendment& p : s.amend_->amendments) {
      if (!p.applied && p.kind == Amendment::Kind::kReparameterize && p.at_epoch > start) {
        cost += p.at_epoch - start;
      }
    }
  }
  return cost;
}

}  // namespace lrsched::scheduler_internal
