// Copyright lrsched authors.
//
// Internal: what timm's scheduler classes share (timm/scheduler/scheduler.py at 31a85de79aad),
// for schedulers_timm.cc (Cosine, Tanh, Step, MultiStep, Poly) and schedulers_timm_plateau.cc.
//
// timm's schedulers are stateless in t: the trainer passes the epoch (or update count) to each
// call. A Step here is one such call: step(t) (step_update(t) where t_in_epochs is false), t
// one more than the last call's, or the request's epoch. Values written to a group are
// multiplied by the group's lr_scale, as timm's update_groups does.
#ifndef LRSCHED_SCHEDULER_INTERNAL_TIMM_COMMON_H_
#define LRSCHED_SCHEDULER_INTERNAL_TIMM_COMMON_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "scheduler/internal/fields.h"
#include "scheduler/internal/node.h"
#include "scheduler/internal/torch_random.h"
#include "scheduler/optimizer.h"

namespace lrsched::scheduler_internal {

// timm's noise: `noise_range_t` (None, t >= a, or a <= t < b), a torch generator seeded
// noise_seed + t, normal (randn redrawn until |n| < noise_pct) or uniform (Plateau only).
struct TimmNoise {
  // The most randn draws one step may make before lrsched refuses it (timm loops forever); with
  // the smallest noise_pct lrsched accepts (0.01) a draw fits with probability 0.008.
  static constexpr int kMaxDraws = 4000;

  json range = nullptr;  // as the spec gave it (state_dict shows it)
  bool has_range = false, bounded = false;
  double from = 0, to = 0;
  bool uniform = false;
  double pct = 0.67, std_dev = 1.0;
  int64_t seed = 42;

  bool Applies(int64_t t) const {
    if (!has_range) return false;
    const double x = static_cast<double>(t);
    return bounded ? (from <= x && x < to) : x >= from;
  }
  // _calculate_noise(t). Draws for kSeedLanes consecutive t at once (see Batch) and answers
  // from them while t stays in their range: a noise value depends on t alone.
  absl::Status Draw(int64_t t, double* out) const;
  // Reads noise_range_t, noise_pct, noise_std, noise_seed (and noise_type where `with_type`).
  void Read(Fields& f, bool with_type, int64_t seed_default);
  void AddState(json& sd) const;
  // A noisy step's extra cost units (node.h): seeding the generator (~400 serial words, about
  // a microsecond) and the expected number of normal draws, 1 / P(|n| < noise_pct).
  int64_t StepCost() const;

 private:
  // The noise of t = first .. first + kSeedLanes - 1, drawn together: seeding a generator is
  // a serial chain of ~400 words (about a microsecond), and SeedLanes runs kSeedLanes of them
  // side by side for about the price of one, which made a noisy step 3x cheaper
  // (bench/README.md). Each value is the one a generator seeded seed + t alone draws.
  struct Batch {
    int64_t first = -1;  // none yet
    double value[kSeedLanes];
    bool refused[kSeedLanes];  // no draw of kMaxDraws fitted
  };
  mutable Batch batch_;
  void FillBatch(int64_t first) const;
  // One t's draw from `g`; false if none of kMaxDraws fitted or `g` ran out of outputs.
  bool DrawFrom(TorchCpuGenerator& g, double* out) const;
};

// The keys every timm scheduler's constructor reads first (Scheduler.__init__): initial_lr
// (setdefault, or required with initialize=False) and base_values.
absl::Status AttachTimm(Optimizer& opt, bool initialize, const std::string& path,
                        std::vector<double>* base_values);

// update_groups(values): each group's lr = value (times lr_scale); all or nothing: a
// non-finite value refuses, naming the group and t.
absl::Status WriteTimmGroups(Optimizer& opt, const double* values, const char* type, int64_t t);

// The t of a step: the request's epoch (an integer in [0, kMaxInt]) or last + 1.
absl::Status TimmNextT(const StepArgs& args, int64_t last, const char* type, int64_t* t);

// CPython's float floor division a // b (b != 0), for Step's `t // decay_t` with a float decay_t.
double PyFloorDivFloat(double a, double b);

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildTimmPlateau(Fields& f, Optimizer& opt);

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_TIMM_COMMON_H_
