// Copyright lrsched authors.
//
// Amendment: a change to a running Schedule's definition, taking effect at a chosen epoch, and
// the record of what a schedule served (issue #18, README "Changing a running schedule").
//
//   lrsched::Amendment a;
//   a.kind = lrsched::Amendment::Kind::kContinueWith;     // cool down now over 2000 steps
//   a.args = {{"type", "LinearLR"}, {"start_factor", 1.0}, {"end_factor", 0.0},
//             {"total_iters", 2000}};
//   a.at_epoch = schedule->last_epoch();
//   absl::StatusOr<lrsched::AmendResult> r = schedule->Amend(a);
//
// Kinds (the exact semantics, each checked against real torch in the tests):
//   kContinueWith    args: a scheduler spec, or {"scheduler": {...}, "param_groups": [...]}.
//                    At at_epoch a fresh torch scheduler of that spec is constructed on an
//                    optimizer of the same type whose groups hold the lr (and momentum/betas)
//                    the schedule gives at at_epoch (or the given param_groups' values), initial
//                    step included; from then on it drives the groups. Its own last_epoch
//                    starts at 0 there; the schedule's last_epoch() goes on counting
//                    (at_epoch + the piece's last_epoch). A scale in force is folded into the
//                    new base lrs (and then reset to 1), so the curve is continuous.
//   kReparameterize  args: keyword arguments of the scheduler in force (the piece started by
//                    the last continue_with, else the created one), merged into its spec
//                    (objects key by key, "schedulers" element by element). From at_epoch on
//                    the values are those the merged spec gives at the same epochs counted from
//                    the piece's start (a fresh trace, not torch's last_epoch resume);
//                    metric-driven state (ReduceLROnPlateau's best, counters, cooldown) carries
//                    over. Changing "type" or the optimizer is FAILED_PRECONDITION naming it; a
//                    keyword the type does not take is INVALID_ARGUMENT naming it.
//   kScale           args: {"factor": F, "groups": [i, ...]} (groups absent or empty: all).
//                    From at_epoch on every lr served for those groups is the schedule's lr x F
//                    (replacing an earlier scale of the same groups). The schedule's own state
//                    is not touched: chainable schedulers go on from their unscaled values.
//
// at_epoch equal to last_epoch() applies at once (the values served now change); a later one is
// kept pending and applied by the first Step whose resulting last_epoch() reaches it. An
// at_epoch before last_epoch() is FAILED_PRECONDITION ("the past is never rewritten").
//
// Invariants: a failed Amend changes nothing; amendments are kept in the order they were made
// and exported/imported with the schedule (ExportState's "amendments"); `meta` is opaque to the
// engine (the server keeps reason, revision, time and caller there) and round-trips unchanged.
#ifndef LRSCHED_SCHEDULER_AMENDMENT_H_
#define LRSCHED_SCHEDULER_AMENDMENT_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace lrsched {

struct Amendment {
  enum class Kind { kContinueWith, kReparameterize, kScale };
  Kind kind = Kind::kScale;
  int64_t at_epoch = 0;
  nlohmann::json args;   // see the kinds above
  nlohmann::json meta;   // opaque: kept and exported as given
  bool applied = false;  // set by the schedule once at_epoch is reached
  // Per param group, filled when applied: lr at at_epoch with the amendment minus without it.
  std::vector<double> jump;
};

// "continue_with", "reparameterize", "scale"; and back (INVALID_ARGUMENT naming "kind").
std::string_view AmendmentKindName(Amendment::Kind kind);
absl::StatusOr<Amendment::Kind> ParseAmendmentKind(std::string_view name);

// What Schedule::Amend did.
struct AmendResult {
  bool applied = false;      // at once (at_epoch == last_epoch()) or pending
  std::vector<double> jump;  // when applied: as Amendment::jump
};

// One epoch's served values in a schedule's record (Schedule::History).
struct ServedEpoch {
  int64_t epoch = 0;
  std::vector<double> lr;
  std::vector<double> momentum;      // empty without momentum/betas
  std::vector<double> weight_decay;  // empty unless the schedule drives it
};

}  // namespace lrsched

#endif  // LRSCHED_SCHEDULER_AMENDMENT_H_
