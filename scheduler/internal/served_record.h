// Copyright lrsched authors.
//
// Internal: the record of what a Schedule served (Schedule::History; README "The record").
//
// It has two parts, in time order:
//  - The derived part, epochs first_epoch() .. derived_to(): nothing per epoch is kept, a replay
//    reproduces them. The replay starts from the base (Schedule::Create(spec()), or the state
//    the schedule was restored or imported with, kept as JSON text), steps with plain steps and
//    makes the first derived_amendments() amendments as the live schedule made them. The part
//    grows with the schedule while every step serves what a plain step() would (IsPlainStep),
//    and ends where the first step carrying input was made (a metric to ReduceLROnPlateau, an
//    explicit epoch, an increment other than the spec's): a replay cannot know that input.
//  - From that step on, runs of change points: a run is the epochs first, first + stride, ...,
//    last at which the schedule stood one after the other giving the same values
//    (ReduceLROnPlateau stepped with metrics: one run per reduction; a step(epoch) jump ends a
//    run unless it keeps the run's stride). The record is rewritten with the state on every
//    step, so its size is bounded: at most kMaxRecordedChanges runs and kMaxRecordedValues
//    numbers. Past either bound the oldest run, and the derived part, are dropped and
//    first_epoch() moves past them.
// The epochs "reached" are those the schedule stood at after a step (and at creation or import):
// step(epoch) jumps and Megatron increments skip the epochs between. An epoch reached more than
// once (step(epoch) back, fractional epochs, an amendment applied at once) has the values it was
// given last.
//
// Invariants: runs are kept oldest first; consecutive runs of equal values never share a
// stride-continuation (Record extends the newest run instead); a Record that extends the newest
// run or reuses a dropped run's storage does not allocate.
#ifndef LRSCHED_SCHEDULER_INTERNAL_SERVED_RECORD_H_
#define LRSCHED_SCHEDULER_INTERNAL_SERVED_RECORD_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "scheduler/amendment.h"
#include "scheduler/optimizer.h"

namespace lrsched {
struct StepRequest;
namespace scheduler_internal {

class SchedulerNode;

// Why these bounds: the record travels with the schedule's state, which a server rewrites on
// every step, so it must stay at a few KB. A run of one group with lr and momentum is ~80 bytes
// of JSON, so 64 runs are ~5 KB, and they hold every reduction of a usual ReduceLROnPlateau run
// (from lr 0.1, torch's eps of 1e-8 stops factor 0.1 after 7 reductions, factor 0.5 after 24).
// The value bound keeps schedules with many param groups at ~40 KB of numbers at worst (the
// newest run is always kept, whatever its size).
inline constexpr size_t kMaxRecordedChanges = 64;
inline constexpr size_t kMaxRecordedValues = 2048;

// Epochs first, first + stride, ..., last, each given the same values.
struct ServedRun {
  int64_t first = 0;
  int64_t last = 0;
  int64_t stride = 1;
  bool has_momentum = false;
  bool has_weight_decay = false;
  // lr per group, then momentum per group (has_momentum), then weight_decay (has_weight_decay).
  std::vector<double> values;

  bool Covers(int64_t e) const { return e >= first && e <= last && (e - first) % stride == 0; }
  // The smallest epoch >= e it covers, if any.
  std::optional<int64_t> NextFrom(int64_t e) const;
  ServedEpoch At(int64_t e, size_t groups) const;
};

// Whether `r` serves what a plain step() would: no metric (or one a deterministic schedule
// ignores), no epoch (or timm's t one past the schedule's `last_epoch`), no increment other
// than the spec's. `root`: the scheduler in force.
bool IsPlainStep(const StepRequest& r, const SchedulerNode& root, int64_t last_epoch);

// The values a schedule serves now, as a ServedEpoch.
ServedEpoch CurrentServed(int64_t epoch, const std::vector<ParamGroup>& groups, bool momentum,
                          bool weight_decay);

class ServedRecord {
 public:
  // Starts afresh at `epoch` (where the schedule stands); `base`: the state text a replay
  // starts from (null: Schedule::Create(spec())).
  void Start(int64_t epoch, std::shared_ptr<const std::string> base);

  // Whether every step since Start was plain (then nothing is recorded per step).
  bool deriving() const { return deriving_; }
  // Ends the derived part at `epoch` (where the schedule stood before the first step carrying
  // input), with the `amendments` amendments made by then.
  void EndDerived(int64_t epoch, size_t amendments);
  // The schedule now stands at `epoch` giving these values (after a step, or an amendment
  // applied at once). Only once !deriving().
  void Record(int64_t epoch, const std::vector<ParamGroup>& groups, bool momentum,
              bool weight_decay);

  int64_t first_epoch() const { return first_epoch_; }
  bool has_derived() const { return has_derived_; }
  // The last epoch of the derived part (`live_epoch` while deriving).
  int64_t derived_to(int64_t live_epoch) const { return deriving_ ? live_epoch : derived_to_; }
  // How many amendments the replay makes (`live` while deriving).
  size_t derived_amendments(size_t live) const { return deriving_ ? live : derived_amendments_; }
  const std::shared_ptr<const std::string>& base() const { return base_; }

  size_t runs() const { return count_; }
  const ServedRun& run(size_t i) const {
    return slots_[(start_ + i) % slots_.size()];
  }  // oldest first

  // The record as a JSON object's text (ExportState's "record").
  void AppendJson(std::string* out) const;
  // Reads AppendJson's object for a schedule of `groups` groups that carries `amendments`
  // amendments; `path` prefixes errors.
  absl::Status Load(const nlohmann::json& j, size_t groups, bool momentum, size_t amendments,
                    const std::string& path);

 private:
  void DropOldest();
  ServedRun& NewRun(size_t width);

  int64_t first_epoch_ = 0;
  bool deriving_ = true;
  bool has_derived_ = true;
  int64_t derived_to_ = 0;
  size_t derived_amendments_ = 0;
  std::shared_ptr<const std::string> base_;  // shared by clones; never changed in place
  // A ring of runs: count_ of them from start_, oldest first.
  std::vector<ServedRun> slots_;
  size_t start_ = 0;
  size_t count_ = 0;
  size_t values_ = 0;  // numbers held by the count_ runs
};

}  // namespace scheduler_internal
}  // namespace lrsched

#endif  // LRSCHED_SCHEDULER_INTERNAL_SERVED_RECORD_H_
