// Copyright lrsched authors.
//
// Schedule::History: the record of what a schedule served (internal/served_record.h has what is
// kept and what is derived). The derived part is answered by a replay, the change runs from the
// record; where both hold an epoch (a step(epoch) back), the runs are later and win.
#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/served_record.h"
#include "scheduler/schedule.h"

namespace lrsched {
namespace {

using nlohmann::json;
using scheduler_internal::ServedRecord;
using scheduler_internal::ServedRun;

constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
// Cost units (Schedule::step_cost()) of replay between two polls of `cancelled`: ~1 ms.
constexpr int64_t kPollCost = int64_t{1} << 20;

// The derived part, replayed: a schedule built from the record's base, stepped with plain steps,
// making the live schedule's amendments in the order they were made. The live schedule made
// amendment i at some epoch <= at_epoch of it and of every later one (t_i, the suffix minimum);
// the replay makes it at the last epoch it stands at before passing t_i, so that it applies at
// the same step as it did live (a pending amendment applies at the first step reaching it).
class Replay {
 public:
  Replay(const std::vector<Amendment>& amendments, size_t count, int64_t end,
         const std::function<bool()>& cancelled)
      : amendments_(amendments), end_(end), cancelled_(cancelled) {
    due_.resize(count);
    int64_t t = kNone;
    for (size_t i = count; i-- > 0;) due_[i] = t = std::min(t, amendments[i].at_epoch);
  }

  absl::Status Start(const Schedule& live, const std::shared_ptr<const std::string>& base) {
    if (base == nullptr) {
      auto s = Schedule::Create(live.spec());
      if (!s.ok()) return Internal("rebuilding the spec", s.status());
      s_ = *std::move(s);
    } else {
      auto state = ParseJson(*base, "record.replay.base");
      if (!state.ok()) return Internal("reading the base", state.status());
      (*state)["spec"] = live.spec();
      auto s = Schedule::ImportState(*state);
      if (!s.ok()) return Internal("importing the base", s.status());
      s_ = *std::move(s);
    }
    // The base holds the amendments made before it; the replay makes the rest.
    next_ = s_->amendments().size();
    if (next_ < due_.size()) {
      // The step's stride decides when an amendment is due (Megatron steps by its increment).
      std::unique_ptr<Schedule> probe = s_->Clone();
      const int64_t at = probe->last_epoch();
      if (probe->Step({}).ok() && probe->last_epoch() > at) stride_ = probe->last_epoch() - at;
    }
    return MakeDue();
  }

  const Schedule& schedule() const { return *s_; }
  int64_t epoch() const { return s_->last_epoch(); }

  // Steps until the replay stands at an epoch >= e, or at the end of the derived part.
  absl::Status AdvanceTo(int64_t e) {
    while (s_->last_epoch() < e && s_->last_epoch() < end_) {
      const int64_t at = s_->last_epoch();
      absl::Status st = s_->Step({});
      if (!st.ok()) return Internal(absl::StrCat("stepping from epoch ", at), st);
      if (s_->last_epoch() > at) stride_ = s_->last_epoch() - at;
      spent_ += s_->step_cost();
      if (spent_ >= kPollCost) {
        spent_ = 0;
        if (cancelled_ && cancelled_()) return absl::CancelledError("history: cancelled");
      }
      st = MakeDue();
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }

 private:
  absl::Status MakeDue() {
    const int64_t at = s_->last_epoch();
    while (next_ < due_.size() && due_[next_] < at + stride_) {
      auto r = s_->Amend(amendments_[next_]);
      if (!r.ok()) return Internal(absl::StrCat("amendment ", next_, " at epoch ", at), r.status());
      ++next_;
    }
    return absl::OkStatus();
  }

  static absl::Status Internal(const std::string& what, const absl::Status& why) {
    // The live schedule did all of this: a replay that fails is lrsched's bug, not the caller's.
    return absl::InternalError(absl::StrCat("history: replay failed ", what, ": ", why.message()));
  }

  const std::vector<Amendment>& amendments_;
  std::vector<int64_t> due_;  // t_i above
  size_t next_ = 0;
  int64_t end_;
  int64_t stride_ = 1;
  int64_t spent_ = 0;
  const std::function<bool()>& cancelled_;
  std::unique_ptr<Schedule> s_;
};

}  // namespace

int64_t Schedule::first_recorded_epoch() const { return record_->first_epoch(); }

absl::StatusOr<std::vector<ServedEpoch>> Schedule::History(
    int64_t from, int64_t to, int64_t limit, const std::function<bool()>& cancelled) const {
  if (limit < 0) return absl::InvalidArgumentError("limit: must not be negative");
  const ServedRecord& rec = *record_;
  std::vector<ServedEpoch> out;
  from = std::max(from, rec.first_epoch());
  const int64_t derived_end = rec.has_derived() ? rec.derived_to(last_epoch()) : kNone;
  int64_t known_end = rec.has_derived() ? derived_end : std::numeric_limits<int64_t>::min();
  for (size_t r = 0; r < rec.runs(); ++r) known_end = std::max(known_end, rec.run(r).last);
  to = std::min(to, known_end);
  if (from > to || limit == 0) return out;

  std::optional<Replay> replay;
  if (rec.has_derived() && from <= derived_end) {
    // An imported record may claim more amendments than the state carries: replay those it has.
    const size_t made = std::min(rec.derived_amendments(amendments().size()), amendments().size());
    replay.emplace(amendments(), made, derived_end, cancelled);
    absl::Status st = replay->Start(*this, rec.base());
    if (!st.ok()) return st;
  }
  const size_t groups = opt_.groups.size();
  for (int64_t e = from; e <= to && out.size() < static_cast<size_t>(limit);) {
    int64_t next = kNone;
    for (size_t r = 0; r < rec.runs(); ++r) {
      if (auto n = rec.run(r).NextFrom(e)) next = std::min(next, *n);
    }
    if (replay) {
      absl::Status st = replay->AdvanceTo(e);
      if (!st.ok()) return st;
      if (replay->epoch() >= e && replay->epoch() <= derived_end) {
        next = std::min(next, replay->epoch());
      }
    }
    if (next == kNone || next > to) break;
    const ServedRun* run = nullptr;
    for (size_t r = rec.runs(); r-- > 0;) {  // the newest run holding it was given last
      if (rec.run(r).Covers(next)) {
        run = &rec.run(r);
        break;
      }
    }
    if (run != nullptr) {
      out.push_back(run->At(next, groups));
    } else {
      const Schedule& s = replay->schedule();
      out.push_back(scheduler_internal::CurrentServed(next, s.param_groups(), s.has_momentum(),
                                                      s.drives_weight_decay()));
    }
    e = next + 1;
  }
  return out;
}

}  // namespace lrsched
