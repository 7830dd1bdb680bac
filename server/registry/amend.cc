// Copyright lrsched authors.
//
// Registry::Amend: one amendment of a running session's schedule, serialized with its steps
// exactly as a step is (write_mu held from the read through the durable commit to the install;
// computed on a copy, so a refusal or a failed commit changes nothing), and the dry run, which
// computes the next epochs with and without the amendment on copies and commits nothing.
#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/ops/log.h"
#include "server/registry/amendment_meta.h"
#include "server/registry/registry.h"

namespace lrsched {
namespace {

// A dry run's windows carry 2 x window x groups values; bounded like a lookahead's window.
constexpr int64_t kMaxDryRunValues = 1'000'000;

// Steps `s` (a copy) with plain steps until its last_epoch reaches `at_epoch`, then records
// that epoch's values and those of `window` - 1 more steps.
absl::StatusOr<std::vector<EpochGroups>> Walk(Schedule& s, int64_t at_epoch, int32_t window,
                                              const std::function<bool()>& cancelled) {
  std::vector<EpochGroups> out;
  out.reserve(static_cast<size_t>(window));
  const int64_t check_every = std::max<int64_t>(1, kCancelCheckCost / s.step_cost());
  int64_t steps = 0;
  auto step = [&]() -> absl::Status {
    if (++steps % check_every == 0 && cancelled && cancelled()) {
      return absl::CancelledError("dry_run: the call was cancelled");
    }
    const int64_t before = s.last_epoch();
    absl::Status st = s.Step({});
    if (!st.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("dry_run: the step after last_epoch ",
                                                        before, " is refused: ", st.message()));
    }
    return absl::OkStatus();
  };
  while (s.last_epoch() < at_epoch) {
    if (absl::Status st = step(); !st.ok()) return st;
  }
  out.push_back({s.last_epoch(), GroupValues(s)});
  for (int32_t i = 1; i < window; ++i) {
    if (absl::Status st = step(); !st.ok()) return st;
    out.push_back({s.last_epoch(), GroupValues(s)});
  }
  return out;
}

// a * b, saturated at int64's maximum (both >= 0).
int64_t SaturatingMul(int64_t a, int64_t b) {
  if (a == 0 || b == 0) return 0;
  if (a > std::numeric_limits<int64_t>::max() / b) return std::numeric_limits<int64_t>::max();
  return a * b;
}

}  // namespace

absl::StatusOr<AmendOutcome> Registry::Amend(const std::string& name, const AmendRequest& request,
                                             const LookaheadLimits& limits,
                                             const std::function<bool()>& cancelled) {
  // As Step: with a shared store, re-read first, and on a lost compare (another replica
  // committed this session meanwhile) re-read and decide again, if_revision included.
  constexpr int kAttempts = 16;
  const bool shared = store_->shared();
  absl::StatusOr<AmendOutcome> out = absl::AbortedError("not attempted");
  for (int i = 0; i < (shared ? kAttempts : 1); ++i) {
    if (absl::Status synced = Sync(name); !synced.ok()) return synced;
    bool lost_compare = false;
    out = AmendOnce(name, request, limits, cancelled, &lost_compare);
    if (!lost_compare) break;
  }
  return out;
}

absl::StatusOr<AmendOutcome> Registry::AmendOnce(const std::string& name,
                                                 const AmendRequest& request,
                                                 const LookaheadLimits& limits,
                                                 const std::function<bool()>& cancelled,
                                                 bool* lost_compare) {
  std::shared_ptr<Entry> e = Find(name);
  if (e == nullptr) return Missing(name);
  AmendOutcome out;
  std::unique_ptr<Schedule> current;  // dry run: copies to walk once the lock is released
  std::unique_ptr<Schedule> next;
  {
    // write_mu alone: the fields can be read (they change only with it held); readers of the
    // session are not held up, its steps wait for the amendment.
    HandoffLock::Hold w(&e->write_mu);
    if (!e->live) return NotFound(name);
    const SessionMeta& meta = e->meta;
    if (request.if_revision && *request.if_revision != meta.revision) {
      return absl::AbortedError(absl::StrCat("if_revision: session \"", name, "\" is at revision ",
                                             meta.revision, ", not ", *request.if_revision));
    }
    const Schedule& schedule = *e->schedule;
    const int64_t last = schedule.last_epoch();
    Amendment& a = out.amendment;
    a.kind = request.kind;
    a.args = request.args;
    a.at_epoch = request.at_epoch.value_or(last);
    const absl::Time now = absl::Now();
    a.meta = AmendmentMeta({meta.revision + 1, now, request.reason, request.caller, request.role});
    if (a.kind == Amendment::Kind::kScale && a.args.contains("groups")) {
      const size_t groups = schedule.param_groups().size();
      const nlohmann::json& listed = a.args["groups"];
      for (size_t i = 0; i < listed.size(); ++i) {
        if (!listed[i].is_number_integer() || listed[i].get<int64_t>() < 0 ||
            listed[i].get<int64_t>() >= static_cast<int64_t>(groups)) {
          return absl::InvalidArgumentError(absl::StrCat("scale.groups[", i, "]: group ",
                                                         listed[i].dump(), " of a session with ",
                                                         groups, " param groups"));
        }
      }
    }
    // Bounded before any work. An at_epoch in the past is the engine's refusal, below.
    if (a.at_epoch >= last) {
      const int64_t per_step = std::max<int64_t>(1, schedule.step_cost());
      const int64_t amend_cost = std::max<int64_t>(0, schedule.AmendCost(a));
      int64_t walk_cost = 0;
      if (request.dry_run) {
        // Two copies (as it is, as amended), each stepped to at_epoch and through the window.
        const int64_t steps = (a.at_epoch - last) + request.window - 1;
        walk_cost = SaturatingMul(SaturatingMul(2, steps), per_step);
      }
      if (amend_cost > limits.max_cost || walk_cost > limits.max_cost - amend_cost) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "at_epoch: amending session \"", name, "\" at epoch ", a.at_epoch,
            request.dry_run ? absl::StrCat(" with a dry run of ", request.window, " epochs") : "",
            " (last_epoch ", last, ") costs ", amend_cost, " + ", walk_cost,
            " cost units, more than this server's limit of ", limits.max_cost,
            " per call (--max_call_cost)"));
      }
    }
    if (request.dry_run) {
      const int64_t groups = static_cast<int64_t>(schedule.param_groups().size());
      const int64_t values = 2 * static_cast<int64_t>(request.window) * groups;
      if (values > kMaxDryRunValues || values > limits.max_reply_bytes / kLookaheadValueBytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat("dry_run_window: 2 x ", request.window, " epochs x ", groups,
                         " param groups is more than a reply may hold (", kMaxDryRunValues,
                         " values, --max_reply_bytes ", limits.max_reply_bytes, ")"));
      }
      if (!schedule.deterministic() && (a.at_epoch > last || request.window > 1)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "dry_run: ", schedule.scheduler_type(),
            " depends on the metric passed to each step, so epochs after the current one "
            "cannot be computed ahead (use at_epoch = last_epoch and dry_run_window = 1)"));
      }
    }
    next = schedule.Clone();
    absl::StatusOr<AmendResult> done = next->Amend(a);
    // The engine's refusal, as it words it (it names the argument or at_epoch).
    if (!done.ok()) return done.status();
    a.applied = done->applied;
    a.jump = done->jump;
    if (request.dry_run) {
      current = schedule.Clone();
      out.session = SnapshotLocked(*e);
    } else {
      SessionMeta changed = meta;
      changed.revision += 1;
      changed.schedule_revision = changed.revision;
      changed.update_time = now;
      absl::StatusOr<std::string> record = EncodeRecord(changed, *next);
      if (!record.ok()) return record.status();
      Mutation m{Mutation::Kind::kPut, name, *std::move(record), e->store_revision};
      absl::StatusOr<int64_t> rev = store_->Commit(m);
      if (!rev.ok()) {
        // Nothing to roll back: the amended state lives only in `next`, which is dropped.
        *lost_compare = store_->shared() && IsLostCompare(rev.status());
        LogCommitFailure("amend", name, rev.status());
        return StoreFailure(rev.status());
      }
      out.session = InstallCommitted(*e, *rev, std::move(changed), std::move(next));
      logging::Info("session_amended")
          .Kv("name", name)
          .Kv("kind", AmendmentKindName(a.kind))
          .Kv("at_epoch", a.at_epoch)
          .Kv("revision", out.session.meta.revision)
          .Kv("caller", request.caller);
      return out;
    }
  }
  // Dry run: walk both copies outside the session's locks (its steps go on meanwhile).
  const int64_t at = out.amendment.at_epoch;
  auto as_is = Walk(*current, at, request.window, cancelled);
  if (!as_is.ok()) return as_is.status();
  auto amended = Walk(*next, at, request.window, cancelled);
  if (!amended.ok()) return amended.status();
  out.current = *std::move(as_is);
  out.amended = *std::move(amended);
  return out;
}

}  // namespace lrsched
