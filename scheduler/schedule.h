// Copyright lrsched authors.
//
// Schedule: a torch optimizer's param groups plus the LR scheduler driving them, built from a
// torch-style JSON spec and stepped exactly as torch 1.13 steps it, to the bit.
//
//   auto s = lrsched::Schedule::Create(spec);   // {"optimizer": {...}, "scheduler": {...}}
//   s.value()->Step({});                         // scheduler.step()
//   s.value()->Step({.metric = 0.3});            // ReduceLROnPlateau: scheduler.step(0.3)
//   double lr = s.value()->param_groups()[0].lr;
//
// The spec uses torch's names: the optimizer's "type" (SGD, Adam, ...) and "param_groups"
// (lr, initial_lr, momentum or betas); the scheduler's "type" (torch's class name) and its
// keyword arguments, with "schedulers" for SequentialLR and ChainedScheduler and lambdas as
// Python expression strings (the language: internal/expr.h). Construction runs torch's constructor,
// initial step included; a configuration torch refuses is refused (INVALID_ARGUMENT naming the
// field).
//
// Invariants: a Step that fails leaves the schedule exactly as it was (torch would have
// advanced last_epoch; a service must not); a successful plain Step never allocates (a step
// carrying input may, when it starts a change run of the record, until its bound is reached);
// every lr in param_groups() is finite. A Schedule is not thread-safe; callers serialize access.
#ifndef LRSCHED_SCHEDULER_SCHEDULE_H_
#define LRSCHED_SCHEDULER_SCHEDULE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "scheduler/amendment.h"
#include "scheduler/optimizer.h"

namespace lrsched {

// The root of a schedule's tree of torch scheduler objects (scheduler/internal/node.h), declared
// here only so that Schedule can own one; callers never see it.
namespace scheduler_internal {
class SchedulerNode;
struct AmendState;  // internal/amend_state.h: what an amended schedule keeps
class AmendEngine;
class ServedRecord;
}  // namespace scheduler_internal

// Limits on JSON read from outside (specs, states): size and nesting depth.
inline constexpr size_t kMaxJsonBytes = 1 << 20;
inline constexpr int kMaxJsonDepth = 16;

// Parses JSON text within the limits above; errors name `what` ("spec", "state", ...).
absl::StatusOr<nlohmann::json> ParseJson(std::string_view text, std::string_view what);

// One step() call: none, step(epoch), step(metric) or step(metric, epoch).
struct StepRequest {
  std::optional<double> metric;
  std::optional<double> epoch;
  // megatron.OptimizerParamScheduler.step(increment): positive; absent: the spec's "increment"
  // (default 1). Refused for the types that take none.
  std::optional<int64_t> increment;
};

class Schedule {
 public:
  // Builds from {"optimizer": ..., "scheduler": ...}.
  static absl::StatusOr<std::unique_ptr<Schedule>> Create(const nlohmann::json& spec);

  // Restores a schedule: builds it from `spec`, then, as a torch user does after a restart,
  // loads the optimizer's param groups (torch's optimizer.state_dict()["param_groups"]
  // entries; null: the spec's own param_groups are the checkpoint's) and the scheduler's
  // state_dict().
  static absl::StatusOr<std::unique_ptr<Schedule>> Restore(const nlohmann::json& spec,
                                                           const nlohmann::json& param_groups,
                                                           const nlohmann::json& state_dict);

  // lrsched's own complete, versioned state: {"format": "lrsched.schedule", "version": 1,
  // "spec", "param_groups", "state_dict"} plus "node_state" where the scheduler's own
  // state_dict does not hold all its state (timm's types: t, Plateau's counters). Import
  // continues bit-exactly. Without the spec (`include_spec` false) for callers that splice in
  // spec_text() themselves. An amended schedule adds "amendments" (every amendment: kind,
  // at_epoch, args, meta, applied, jump) and "amended" (the piece in force: its start and
  // spec; the scale in force and the unscaled groups); absent, there are none.
  nlohmann::json ExportState(bool include_spec = true) const;
  // ExportState(false)'s members as JSON text, without the braces, appended to `out`
  // (`"format":...,"version":1,"param_groups":[...],"state_dict":{...}`): what a server writes
  // on every step, at a fraction of the tree's cost. Parses to the same values, bit for bit.
  void AppendStateMembers(std::string* out) const;
  static absl::StatusOr<std::unique_ptr<Schedule>> ImportState(const nlohmann::json& state);

  ~Schedule();
  std::unique_ptr<Schedule> Clone() const;

  // scheduler.step(...). On error nothing changes.
  absl::Status Step(const StepRequest& request);

  const std::vector<ParamGroup>& param_groups() const { return opt_.groups; }
  const Optimizer& optimizer() const { return opt_; }
  // Whether groups carry a momentum (SGD, RMSprop) or betas (Adam family).
  bool has_momentum() const;
  // False if the schedule needs step-time input (ReduceLROnPlateau), so no lookahead; also
  // while a continue_with to such a scheduler is pending.
  bool deterministic() const;
  // Whether the schedule writes the groups' weight_decay (Megatron's): then it is reported.
  bool drives_weight_decay() const;
  // torch's `last_epoch` of the scheduler (the first child's for ChainedScheduler); Megatron's
  // num_steps (which a Step advances by its increment).
  int64_t last_epoch() const;
  const std::string& scheduler_type() const { return type_; }
  // What one Step costs, in cost units: an estimate from the spec's shape (scheduler nodes x
  // param groups x the size of each lambda), fixed at construction, so that a server can bound
  // a call's work (steps x step_cost()) before doing any of it. A unit is about a nanosecond
  // (the constants in internal/node.h); a CosineAnnealingLR with 4 groups costs 192, a
  // ChainedScheduler of 60 MultiplicativeLR with 1000-character lambdas ~250000. >= 1.
  int64_t step_cost() const { return step_cost_; }
  // The spec it was built from, as canonical JSON text (keys sorted; numbers as nlohmann dumps
  // them, which parse back to the same values). Kept as text only, shared by every Clone: a
  // parsed tree costs several times the memory, and servers holding many sessions read the
  // spec far less often than they copy and store schedules.
  const std::string& spec_text() const { return *spec_text_; }
  // The spec parsed from spec_text() (a fresh tree on each call).
  nlohmann::json spec() const;

  // torch's scheduler.state_dict() (non-finite floats as "inf"/"-inf"/"nan" strings).
  // Amended schedules: the state_dict of the piece in force (the scheduler of the last
  // continue_with, or the created one, with reparameterized arguments), whose own last_epoch
  // counts from the piece's start; ExportState is the complete state.
  nlohmann::json StateDict() const;
  // torch's optimizer.state_dict()["param_groups"], limited to the keys schedulers use: the
  // served values (a scale in force included), as a trainer's optimizer holds them.
  nlohmann::json ParamGroupsJson() const;

  // Changes the definition from amendment.at_epoch on (scheduler/amendment.h has the kinds'
  // semantics). On error nothing changes. Costs up to AmendCost(amendment) step_cost() units.
  // A pending amendment is checked now against the piece that will be in force then (the
  // served lrs stand in for those of at_epoch), and a pending reparameterize of a
  // deterministic schedule is replayed now, so that the Step reaching it only swaps the
  // replayed state in (one behind a pending continue_with is replayed by that Step, as the
  // new piece's lrs are known only then). An amended schedule's Step copies its tree's state
  // first (to undo a failed application), and a scale adds a multiply per group.
  absl::StatusOr<AmendResult> Amend(const Amendment& amendment);
  // What Amend(amendment) may cost, in step_cost() units (a reparameterize replays the piece
  // in force from its start to at_epoch), so that a server can bound it before doing it.
  int64_t AmendCost(const Amendment& amendment) const;
  // Every amendment made, applied and pending, in the order made.
  const std::vector<Amendment>& amendments() const;

  // The record of what the schedule served: the values of epochs from..to (inclusive, clipped
  // to first_recorded_epoch() .. last_epoch()), at most `limit` of them, in order. Derived by
  // replaying the spec and the amendments where every step was a plain step(); kept as change
  // points where steps carried input (metrics, explicit epochs, increments), bounded
  // (kMaxRecordedChanges). `cancelled` is polled during long replays (CANCELLED).
  // Only epochs the schedule stood at are reported (step(epoch) jumps and Megatron increments
  // skip the others); one it stood at more than once has the values it was given last, and
  // after a step(epoch) back the clip is the highest epoch reached. Costs O(to) steps where
  // derived; a negative limit is INVALID_ARGUMENT; a failed replay INTERNAL
  // (internal/served_record.h).
  absl::StatusOr<std::vector<ServedEpoch>> History(int64_t from, int64_t to, int64_t limit,
                                                   const std::function<bool()>& cancelled) const;
  // The first epoch History can answer: the epoch the schedule was created, restored or
  // imported at (an import of an export carries the record, and its first epoch), later once
  // the change runs' bound dropped older ones.
  int64_t first_recorded_epoch() const;

 private:
  Schedule();
  absl::Status Finish();
  // Restore without starting the record: ImportState loads the exported record (or starts one
  // after the node state is in), and the amendment engine's piece in force keeps none, so
  // neither pays for a base state that would be thrown away.
  static absl::StatusOr<std::unique_ptr<Schedule>> RestoreUnrecorded(
      const nlohmann::json& spec, const nlohmann::json& param_groups,
      const nlohmann::json& state_dict);
  // Starts the record afresh where the schedule stands, replayable from its current state
  // (Restore, and ImportState of a state without a record).
  void StartRecordHere();
  // Step's path where the record may note the step (input, or change runs already kept).
  absl::Status StepAndRecord(const StepRequest& request);

  std::shared_ptr<const std::string> spec_text_;  // never null once built
  std::string type_;
  int64_t step_cost_ = 1;
  Optimizer opt_;
  std::unique_ptr<scheduler_internal::SchedulerNode> root_;
  // Null until the first Amend (and then never again): a schedule never amended keeps no
  // more state and costs no more per step than before amendments existed.
  std::unique_ptr<scheduler_internal::AmendState> amend_;
  friend class scheduler_internal::AmendEngine;
  // What History answers from (internal/served_record.h); never null.
  std::unique_ptr<scheduler_internal::ServedRecord> record_;
};

// Reads the optimizer part of a spec (exposed for tests and the server's validation).
absl::StatusOr<Optimizer> ParseOptimizer(const nlohmann::json& spec);

}  // namespace lrsched

#endif  // LRSCHED_SCHEDULER_SCHEDULE_H_
