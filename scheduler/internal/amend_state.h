// Copyright lrsched authors.
//
// Internal: what a Schedule keeps once it has been amended (scheduler/amendment.h has the
// semantics), and AmendEngine, the code that reads and writes a Schedule's private parts for
// Amend, the Step of an amended schedule, Clone and export/import.
//
// A schedule without amendments has no AmendState (Schedule::amend_ is null) and steps exactly
// as before. Once amended:
//   - the "piece in force" is the scheduler tree root_ drives: the creation spec (perhaps
//     reparameterized) or the spec of the last continue_with, with the optimizer it was built
//     on (piece_spec, as at the piece's start) and the schedule epoch at which the piece's own
//     last_epoch is 0 (piece_start); Schedule::last_epoch() is piece_start + root's;
//   - with a scale in force (scale non-empty, one factor per group), root_ drives `unscaled`
//     and Schedule::opt_ holds the served values (unscaled lr x factor, the rest as unscaled);
//     without one, root_ drives opt_ itself;
//   - pending amendments (not applied, at_epoch > last_epoch()) are applied by the Step that
//     reaches them; while any is pending or a scale is in force, each Step first copies
//     root_'s state into `backup` (a clone of the same shape: no allocation), so that a Step
//     whose application fails is undone;
//   - a pending reparameterize of a deterministic piece is replayed at Amend time (Prepared),
//     so that the Step that applies it only swaps the replayed tree in; a preparation is used
//     only if the piece, its spec and the epoch are still those it was made for.
#ifndef LRSCHED_SCHEDULER_INTERNAL_AMEND_STATE_H_
#define LRSCHED_SCHEDULER_INTERNAL_AMEND_STATE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "scheduler/amendment.h"
#include "scheduler/internal/node.h"
#include "scheduler/schedule.h"

namespace lrsched::scheduler_internal {

// A pending reparameterize replayed ahead of time.
struct Prepared {
  size_t index = 0;          // into AmendState::amendments
  int64_t epoch = 0;         // the schedule epoch it was replayed to
  int64_t piece_start = 0;   // the piece it was made for
  json merged;               // the merged scheduler spec (compared with the one computed then)
  std::unique_ptr<Schedule> replay;
};

struct AmendState {
  std::vector<Amendment> amendments;
  int64_t piece_start = 0;
  json piece_spec;  // {"optimizer": ..., "scheduler": ...} of the piece in force, at its start
  std::vector<double> scale;  // empty: no scale in force
  Optimizer unscaled;         // what root_ drives while a scale is in force
  int64_t pending = 0;        // amendments not applied
  int64_t next_pending = 0;   // the smallest at_epoch of those (when pending > 0)
  std::vector<Prepared> prepared;
  std::unique_ptr<SchedulerNode> backup;  // same shape as root_ while pending or scale
  std::vector<ParamGroup> backup_groups;

  std::unique_ptr<AmendState> Clone() const;
};

class AmendEngine {
 public:
  // Schedule::Step once amend_ is set (the request already checked as for a plain step).
  static absl::Status Step(Schedule& s, const StepArgs& args);
  static absl::StatusOr<AmendResult> Amend(Schedule& s, const Amendment& a);
  static int64_t Cost(const Schedule& s, const Amendment& a);
  // ExportState's members ("amendments", "amended"); AppendStateMembers' text of them.
  static void Export(const Schedule& s, json& out);
  static void AppendExport(const Schedule& s, std::string* out);
  // ImportState of a state that carries amendments (`amendments` and/or `amended` non-null).
  static absl::StatusOr<std::unique_ptr<Schedule>> Import(const json& spec, const json& groups,
                                                          const json& state_dict,
                                                          const json* node_state,
                                                          const json* amendments,
                                                          const json* amended);

 private:
  // The amendment at `index` (of w's list), applied to `w` at its last_epoch(). On error `w`
  // is left half-changed: callers apply to a clone and keep it only on success.
  static absl::Status ApplyOne(Schedule& w, size_t index);
  static absl::Status ApplyContinueWith(Schedule& w, const json& args);
  static absl::Status ApplyReparameterize(Schedule& w, size_t index, const json& args);
  static absl::Status ApplyScale(Schedule& w, const json& args);
  // Applies every pending amendment w has reached, in order of (at_epoch, order made).
  static absl::Status ApplyReached(Schedule& w);
  // Replays pending reparameterizes of a deterministic piece (see the file comment), keeping
  // the preparations still valid; the error is that of the amendment at `must`, if any.
  static absl::Status Prepare(Schedule& w, size_t must);
  // Whether the pending amendment at `index` applies to the piece that will be in force then.
  static absl::Status ValidatePending(const Schedule& w, size_t index);
  // A fresh schedule of `merged` (the piece's optimizer) stepped to schedule epoch `epoch`.
  static absl::StatusOr<std::unique_ptr<Schedule>> Replay(const Schedule& w, const json& merged,
                                                          int64_t epoch);
  // Served groups from unscaled x scale; false (and nothing useful in opt_) if one is not
  // finite.
  static absl::Status RefreshServed(Schedule& w);
  // Takes w's engine state (root, groups, amendments) into s; re-arms the backup; step_cost.
  static void Adopt(Schedule& s, Schedule& w);
  static void Rearm(Schedule& s);
  static AmendState& State(Schedule& s);
  static Optimizer& Driven(Schedule& s);
};

// Checks an amendment's args against its kind's shape (without a schedule): INVALID_ARGUMENT
// naming the field ("scale.factor: must be finite and > 0").
absl::Status CheckAmendmentArgs(const Amendment& a, size_t groups);

// The optimizer spec a continue_with builds on at w's current epoch: the served groups' lr and
// momentum/betas (and configuration keys), overridden by `given` ("param_groups"), if not null.
absl::StatusOr<json> CarriedOptimizer(const Schedule& w, const json* given);

// reparameterize's merge of keyword arguments into a scheduler spec: objects key by key,
// "schedulers" element by element, null removes a key. FAILED_PRECONDITION naming "type",
// "optimizer", "param_groups" or the number of schedulers, which cannot change mid-run.
absl::StatusOr<json> MergeKwargs(const json& spec, const json& kwargs, const std::string& path);

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_AMEND_STATE_H_
