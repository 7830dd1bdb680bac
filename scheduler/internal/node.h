// Copyright lrsched authors.
//
// Internal: one torch scheduler object. A spec's "scheduler" becomes a tree of SchedulerNodes
// (SequentialLR and ChainedScheduler own their children), each a transcription of the torch 1.13
// class of the same name, driving the same Optimizer.
//
// LRScheduler is torch's `_LRScheduler`: the construction protocol (initial_lr, base_lrs, the
// initial step), `step()` / `step(epoch)` with the closed form where torch has one, and the
// shared state_dict keys. Subclasses supply GetLr (torch's chainable get_lr) and, where torch
// has it, ClosedFormLr.
//
// Invariants: Step is all-or-nothing: a refused step leaves the node and the optimizer as they
// were (torch would have advanced last_epoch; a service must not). Nodes compute into scratch
// vectors sized at construction and commit at the end, so a step never allocates.
// CopyStateFrom between nodes of the same shape does not allocate either (ChainedScheduler
// uses it to undo the children that stepped before one refused).
#ifndef LRSCHED_SCHEDULER_INTERNAL_NODE_H_
#define LRSCHED_SCHEDULER_INTERNAL_NODE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "scheduler/internal/fields.h"
#include "scheduler/optimizer.h"

namespace lrsched::scheduler_internal {

#define LRS_RETURN_IF_ERROR(expr) \
  do {                            \
    absl::Status _s = (expr);     \
    if (!_s.ok()) return _s;      \
  } while (0)

struct StepArgs {
  std::optional<double> epoch;   // step(epoch)
  std::optional<double> metric;  // ReduceLROnPlateau.step(metric)
  // Megatron's step(increment); validated positive by Schedule::Step, only for nodes that
  // takes_increment().
  std::optional<int64_t> increment;
};

// A JSON value for a torch state_dict number: non-finite floats as "inf", "-inf", "nan".
json StateNum(double v);
json StateNums(const std::vector<double>& v);
// The same values appended as JSON text.
void AppendStateNum(double v, std::string* out);
void AppendStateNums(const std::vector<double>& v, std::string* out);
// Reads such a value; false if it is neither a number nor one of those strings.
bool ReadStateNum(const json& v, double* out);

class SchedulerNode {
 public:
  virtual ~SchedulerNode() = default;
  virtual const char* type() const = 0;

  virtual absl::Status Step(Optimizer& opt, const StepArgs& args) = 0;
  // torch's `_initial_step()`: reset the step counter and step once. SequentialLR calls it on
  // its first child; only _LRScheduler-derived nodes have it.
  virtual absl::Status InitialStep(Optimizer& opt);

  // torch's state_dict() and load_state_dict(); `path` prefixes error messages.
  virtual json StateDict() const = 0;
  virtual absl::Status LoadStateDict(const json& sd, const std::string& path) = 0;
  // What load_state_dict does to the optimizer's groups, after Schedule::Restore has loaded them
  // (Megatron's steps to the loaded num_steps); torch's schedulers leave them alone.
  virtual absl::Status FinishLoad(Optimizer& /*opt*/) { return absl::OkStatus(); }
  // StateDict() as JSON text, appended to `out`; must parse to a tree equal to StateDict()
  // (tests/scheduler/state_test.cc checks every golden case). The default dumps StateDict(); nodes
  // stepped by servers write it directly, which costs a fraction of the tree.
  virtual void AppendStateDict(std::string* out) const;

  virtual std::unique_ptr<SchedulerNode> Clone() const = 0;
  virtual void CopyStateFrom(const SchedulerNode& other) = 0;

  // The work of one Step and of one CopyStateFrom, in cost units (Schedule::step_cost()),
  // with `groups` param groups. Fixed at construction; the defaults fit a node whose work is a
  // constant per group.
  virtual int64_t StepCost(size_t groups) const;
  virtual int64_t CopyCost(size_t groups) const;

  // False where the schedule depends on values only known at step time (ReduceLROnPlateau).
  virtual bool deterministic() const { return true; }
  // Whether step(epoch) is accepted (SequentialLR and ChainedScheduler take none).
  virtual bool takes_epoch() const { return true; }
  // Whether step(increment) is accepted (Megatron's only).
  virtual bool takes_increment() const { return false; }
  // Whether each Step writes the groups' weight_decay (Megatron's), which is then reported.
  virtual bool drives_weight_decay() const { return false; }
  // torch's `last_epoch` attribute; nullptr where the object has none (ChainedScheduler).
  virtual int64_t* mutable_last_epoch() { return nullptr; }
  virtual int64_t last_epoch() const = 0;
  virtual const std::vector<double>& last_lr() const = 0;

  // What the node keeps beyond its own state_dict(): null for torch's classes, whose
  // state_dict is complete. timm's schedulers hold no step counter (their trainers pass t) and
  // timm's Plateau keeps only `best` and `last_epoch`; lrsched's exported state carries the
  // rest as "node_state", so that an import continues exactly.
  virtual json NodeState() const { return nullptr; }
  virtual absl::Status LoadNodeState(const json& s, const std::string& path);
};

class LRScheduler : public SchedulerNode {
 public:
  absl::Status Step(Optimizer& opt, const StepArgs& args) override;
  absl::Status InitialStep(Optimizer& opt) override;
  // state_dict(): Config() + ExtraState() + the keys every _LRScheduler has. Loading one
  // requires the config keys to agree with this schedule's and reads the rest.
  json StateDict() const override;
  void AppendStateDict(std::string* out) const override;
  absl::Status LoadStateDict(const json& sd, const std::string& path) override;
  int64_t* mutable_last_epoch() override { return &last_epoch_; }
  int64_t last_epoch() const override { return last_epoch_; }
  const std::vector<double>& last_lr() const override { return last_lr_; }

  // The rest is for the scheduler implementations and their builders (this header is internal).
  // torch's _LRScheduler.__init__ up to (not including) the initial step: initial_lr
  // (setdefault, or required when resuming), base_lrs and last_epoch.
  absl::Status Attach(Optimizer& opt, int64_t last_epoch, const std::string& path);
  // The chainable get_lr(): one value per group into out[0..groups). Nodes that cycle
  // momentum (cycles_momentum_) also fill momentum_out_; nothing is written to `opt` here.
  virtual absl::Status GetLr(const Optimizer& opt, double* out) = 0;
  // _get_closed_form_lr(); only called where HasClosedForm().
  virtual bool HasClosedForm() const { return false; }
  virtual absl::Status ClosedFormLr(const Optimizer& opt, double* out);

  // The constructor's arguments as torch's state_dict shows them (fixed for a schedule).
  virtual json Config() const { return json::object(); }
  // State a subclass keeps beyond _LRScheduler's (T_cur, ...), and reading it back.
  virtual void AddExtraState(json& /*sd*/) const {}
  virtual void LoadExtraState(Fields& /*f*/) {}

  // Checks that every value is finite, then writes lr (and momentum) to the groups.
  absl::Status Commit(Optimizer& opt);

  std::vector<double> base_lrs_;
  std::vector<double> last_lr_;
  std::vector<double> scratch_;       // get_lr's values before they are written to the groups
  std::vector<double> momentum_out_;  // the same for momentum, where cycles_momentum_
  bool cycles_momentum_ = false;
  bool use_beta1_ = false;  // momentum goes to betas[0] (Adam family)
  int64_t last_epoch_ = -1;
  int64_t step_count_ = 0;
};

// Clone and CopyStateFrom for a node type that is a plain value (no owned children).
template <class T, class Base = LRScheduler>
class ValueNode : public Base {
 public:
  std::unique_ptr<SchedulerNode> Clone() const override {
    return std::make_unique<T>(static_cast<const T&>(*this));
  }
  void CopyStateFrom(const SchedulerNode& other) override {
    static_cast<T&>(*this) = static_cast<const T&>(other);
  }
};

// Finishes construction the way _LRScheduler.__init__ does: attach, then the initial step.
template <class T>
absl::StatusOr<std::unique_ptr<SchedulerNode>> StartNode(std::unique_ptr<T> node, Optimizer& opt,
                                                         int64_t last_epoch,
                                                         const std::string& path) {
  LRS_RETURN_IF_ERROR(node->Attach(opt, last_epoch, path));
  LRS_RETURN_IF_ERROR(node->InitialStep(opt));
  return std::unique_ptr<SchedulerNode>(std::move(node));
}

// Builds the node for `spec` (an object with "type") on `opt`, running torch's constructor,
// initial step included. `depth` counts enclosing composite schedulers.
absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildNode(const json& spec, const std::string& path,
                                                         Optimizer& opt, int depth);

// Per-family builders, called by BuildNode with the spec's fields.
absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildBasic(const std::string& type, Fields& f,
                                                          Optimizer& opt);
absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildCyclic(const std::string& type, Fields& f,
                                                           Optimizer& opt);
absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildPlateau(Fields& f, Optimizer& opt);
// transformers.get_scheduler (schedulers_transformers.cc).
absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildTransformers(Fields& f, Optimizer& opt);
// timm.<Class>: schedulers_timm.cc (Plateau: schedulers_timm_plateau.cc).
absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildTimm(const std::string& type, Fields& f,
                                                         Optimizer& opt);
absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildComposite(const std::string& type, Fields& f,
                                                              Optimizer& opt, int depth);

inline constexpr int kMaxNesting = 4;

// Cost units (see Schedule::step_cost(); about a nanosecond each) of a node's fixed work per
// step (virtual calls, status checks, the epoch bookkeeping), of its work per param group (a
// formula, perhaps a cos or a pow; the finiteness check; the write to the group), of one
// expression instruction, and of one node of a std::map copied. Calibrated against measured
// step times: a chain of 60 MultiplicativeLR with 1000-character lambdas costs ~250000 units
// and steps in 150-400 us; CosineAnnealingLR with 4 groups costs 192 and steps in ~100-170 ns.
inline constexpr int64_t kNodeCost = 64;
inline constexpr int64_t kGroupCost = 32;
inline constexpr int64_t kInstrCost = 8;
inline constexpr int64_t kMapNodeCost = 160;

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_NODE_H_
