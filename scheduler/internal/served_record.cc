// Copyright lrsched authors.
#include "scheduler/internal/served_record.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/fields.h"
#include "scheduler/internal/node.h"
#include "scheduler/internal/schedulers_megatron.h"
#include "scheduler/json_text.h"
#include "scheduler/schedule.h"

namespace lrsched::scheduler_internal {

std::optional<int64_t> ServedRun::NextFrom(int64_t e) const {
  if (e > last) return std::nullopt;
  if (e <= first) return first;
  int64_t k = (e - first + stride - 1) / stride;
  int64_t n = first + k * stride;
  if (n > last) return std::nullopt;
  return n;
}

ServedEpoch ServedRun::At(int64_t e, size_t groups) const {
  ServedEpoch out;
  out.epoch = e;
  out.lr.assign(values.begin(), values.begin() + groups);
  size_t at = groups;
  if (has_momentum) {
    out.momentum.assign(values.begin() + at, values.begin() + at + groups);
    at += groups;
  }
  if (has_weight_decay) out.weight_decay.assign(values.begin() + at, values.begin() + at + groups);
  return out;
}

bool IsPlainStep(const StepRequest& r, const SchedulerNode& root, int64_t last_epoch) {
  // A metric given to a deterministic schedule (timm's trainers pass one to every step) does
  // not change what it serves.
  if (r.metric && !root.deterministic()) return false;
  if (r.epoch) {
    // timm's step(t) with t one past the last is what a plain step computes (timm's trainers
    // pass t on every call); torch's step(epoch) takes the closed form, other bits.
    if (std::strncmp(root.type(), "timm.", 5) != 0 || !root.deterministic() ||
        *r.epoch != static_cast<double>(last_epoch) + 1) {
      return false;
    }
  }
  if (!r.increment) return true;
  // Megatron's step(increment): the spec's own increment is what a plain step uses.
  const auto* m = dynamic_cast<const MegatronScheduler*>(&root);
  return m != nullptr && *r.increment == m->increment;
}

ServedEpoch CurrentServed(int64_t epoch, const std::vector<ParamGroup>& groups, bool momentum,
                          bool weight_decay) {
  ServedEpoch out;
  out.epoch = epoch;
  for (const ParamGroup& g : groups) {
    out.lr.push_back(g.lr);
    if (momentum) out.momentum.push_back(g.reported_momentum().value_or(0.0));
    if (weight_decay) out.weight_decay.push_back(g.weight_decay.value_or(0.0));
  }
  return out;
}

void ServedRecord::Start(int64_t epoch, std::shared_ptr<const std::string> base) {
  *this = ServedRecord();
  first_epoch_ = epoch;
  base_ = std::move(base);
}

void ServedRecord::EndDerived(int64_t epoch, size_t amendments) {
  deriving_ = false;
  derived_to_ = epoch;
  derived_amendments_ = amendments;
}

namespace {

// Bit for bit: a run holds exactly the values served (0.0 and -0.0 differ).
bool SameBits(const double* a, const double* b, size_t n) {
  return std::memcmp(a, b, n * sizeof(double)) == 0;
}

void WriteValues(const std::vector<ParamGroup>& groups, bool momentum, bool weight_decay,
                 double* out) {
  const size_t n = groups.size();
  for (size_t i = 0; i < n; ++i) {
    out[i] = groups[i].lr;
    if (momentum) out[n + i] = groups[i].reported_momentum().value_or(0.0);
    if (weight_decay) out[(momentum ? 2 : 1) * n + i] = groups[i].weight_decay.value_or(0.0);
  }
}

}  // namespace

void ServedRecord::Record(int64_t epoch, const std::vector<ParamGroup>& groups, bool momentum,
                          bool weight_decay) {
  const size_t width = groups.size() * (1 + (momentum ? 1 : 0) + (weight_decay ? 1 : 0));
  if (count_ > 0) {
    // No modulo: a division costs as much as the rest of this fast path.
    size_t newest = start_ + count_ - 1;
    if (newest >= slots_.size()) newest -= slots_.size();
    ServedRun& last = slots_[newest];
    if (last.has_momentum == momentum && last.has_weight_decay == weight_decay) {
      // Compare in place, group by group, without a scratch copy: this runs on every step.
      bool same = true;
      const size_t n = groups.size();
      for (size_t i = 0; i < n && same; ++i) {
        double v[3];
        size_t k = 0;
        v[k++] = groups[i].lr;
        if (momentum) v[k++] = groups[i].reported_momentum().value_or(0.0);
        if (weight_decay) v[k++] = groups[i].weight_decay.value_or(0.0);
        same = SameBits(&v[0], &last.values[i], 1) &&
               (!momentum || SameBits(&v[1], &last.values[n + i], 1)) &&
               (!weight_decay || SameBits(&v[k - 1], &last.values[(k - 1) * n + i], 1));
      }
      if (same) {
        if (epoch == last.last) return;  // the same epoch given the same values again
        if (epoch > last.last && (last.first == last.last || epoch - last.last == last.stride)) {
          if (last.first == last.last) last.stride = epoch - last.last;
          last.last = epoch;
          return;
        }
      }
    }
    if (epoch == last.last) {
      // The epoch the newest run ends at is given other values: the later ones stand.
      if (last.first == last.last) {
        last.has_momentum = momentum;
        last.has_weight_decay = weight_decay;
        values_ = values_ - last.values.size() + width;
        last.values.resize(width);
        WriteValues(groups, momentum, weight_decay, last.values.data());
        return;
      }
      last.last -= last.stride;
    }
  }
  ServedRun& run = NewRun(width);
  run.first = run.last = epoch;
  run.stride = 1;
  run.has_momentum = momentum;
  run.has_weight_decay = weight_decay;
  WriteValues(groups, momentum, weight_decay, run.values.data());
}

void ServedRecord::DropOldest() {
  ServedRun& old = slots_[start_];
  // Everything older than the dropped run goes with it: the derived part, and the epochs the
  // run held (an epoch reached again later is in a newer run, but the record no longer answers
  // for the epochs before first_epoch()).
  if (has_derived_) first_epoch_ = std::max(first_epoch_, derived_to_ + 1);
  has_derived_ = false;
  base_.reset();
  first_epoch_ = std::max(first_epoch_, old.last + 1);
  values_ -= old.values.size();
  start_ = (start_ + 1) % slots_.size();
  --count_;
}

ServedRun& ServedRecord::NewRun(size_t width) {
  while (count_ > 0 && (count_ >= kMaxRecordedChanges || values_ + width > kMaxRecordedValues)) {
    DropOldest();
  }
  if (count_ == slots_.size()) {
    // Grow the ring (only until kMaxRecordedChanges slots exist): oldest first at index 0.
    std::rotate(slots_.begin(), slots_.begin() + static_cast<ptrdiff_t>(start_), slots_.end());
    start_ = 0;
    slots_.emplace_back();
  }
  ServedRun& run = slots_[(start_ + count_) % slots_.size()];
  ++count_;
  run.values.resize(width);  // a reused slot keeps its capacity
  values_ += width;
  return run;
}

void ServedRecord::AppendJson(std::string* out) const {
  out->append("{\"first_epoch\":");
  json_text::AppendInt(first_epoch_, out);
  if (has_derived_) {
    out->append(",\"replay\":{\"base\":");
    // As a string: nested as an object it would count against the state's depth limit.
    if (base_) {
      json_text::AppendString(*base_, out);
    } else {
      out->append("null");
    }
    if (!deriving_) {
      out->append(",\"to\":");
      json_text::AppendInt(derived_to_, out);
      out->append(",\"amendments\":");
      json_text::AppendUint(derived_amendments_, out);
    }
    out->push_back('}');
  }
  if (!deriving_) out->append(",\"changes\":[");
  for (size_t r = 0; r < count_; ++r) {
    const ServedRun& run = this->run(r);
    if (r > 0) out->push_back(',');
    out->append("{\"epochs\":[");
    json_text::AppendInt(run.first, out);
    out->push_back(',');
    json_text::AppendInt(run.last, out);
    out->push_back(',');
    json_text::AppendInt(run.stride, out);
    out->append("],\"values\":[");
    for (size_t i = 0; i < run.values.size(); ++i) {
      if (i > 0) out->push_back(',');
      json_text::AppendDouble(run.values[i], out);
    }
    out->push_back(']');
    if (run.has_momentum) out->append(",\"momentum\":true");
    if (run.has_weight_decay) out->append(",\"weight_decay\":true");
    out->push_back('}');
  }
  if (!deriving_) out->push_back(']');
  out->push_back('}');
}

absl::Status ServedRecord::Load(const json& j, size_t groups, bool momentum, size_t amendments,
                                const std::string& path) {
  ServedRecord r;
  Fields f(j, path);
  r.first_epoch_ = f.Int("first_epoch", std::nullopt);
  const json* replay = f.Raw("replay", false);
  const json* changes = f.Raw("changes", false);
  LRS_RETURN_IF_ERROR(f.Finish());
  r.has_derived_ = replay != nullptr;
  r.deriving_ = changes == nullptr;
  if (r.deriving_ && !r.has_derived_) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": holds neither \"replay\" nor \"changes\""));
  }
  if (replay != nullptr) {
    Fields rf(*replay, path + ".replay");
    const json* base = rf.Raw("base", false);  // null or absent: the spec
    if (!r.deriving_) {
      r.derived_to_ = rf.Int("to", std::nullopt);
      r.derived_amendments_ = static_cast<size_t>(rf.Int("amendments", std::nullopt, 0));
    }
    LRS_RETURN_IF_ERROR(rf.Finish());
    if (base != nullptr && !base->is_null()) {
      // Parsed (and checked) when a replay needs it.
      if (!base->is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ".replay.base: must be a state as JSON text, or null"));
      }
      r.base_ = std::make_shared<const std::string>(base->get<std::string>());
    }
    if (!r.deriving_ && r.derived_amendments_ > amendments) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".replay.amendments: ", r.derived_amendments_, ", but the state has ",
                       amendments, " amendments"));
    }
    if (!r.deriving_ && r.derived_to_ < r.first_epoch_) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".replay.to: before first_epoch ", r.first_epoch_));
    }
  }
  if (changes != nullptr) {
    if (!changes->is_array() || changes->size() > kMaxRecordedChanges) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".changes: must be an array of at most ",
                                                     kMaxRecordedChanges, " runs"));
    }
    for (size_t i = 0; i < changes->size(); ++i) {
      const std::string rp = absl::StrCat(path, ".changes[", i, "]");
      Fields cf((*changes)[i], rp);
      std::vector<int64_t> e = cf.IntList("epochs");
      std::vector<double> v;
      const json* vals = cf.Raw("values", true);
      bool has_m = cf.Bool("momentum", false);
      bool has_wd = cf.Bool("weight_decay", false);
      LRS_RETURN_IF_ERROR(cf.Finish());
      if (e.size() != 3 || e[1] < e[0] || e[2] < 1 || (e[1] - e[0]) % e[2] != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            rp, ".epochs: must be [first, last, stride] with last = first + k * stride"));
      }
      if (has_m != momentum) {
        return absl::InvalidArgumentError(absl::StrCat(rp, ".momentum: the optimizer ",
                                                       momentum ? "has" : "has no", " momentum"));
      }
      const size_t width = groups * (1 + (has_m ? 1 : 0) + (has_wd ? 1 : 0));
      if (!vals->is_array() || vals->size() != width) {
        return absl::InvalidArgumentError(
            absl::StrCat(rp, ".values: must hold ", width, " numbers"));
      }
      for (size_t k = 0; k < width; ++k) {
        const json& x = (*vals)[k];
        if (!x.is_number() || !std::isfinite(x.get<double>())) {
          return absl::InvalidArgumentError(
              absl::StrCat(rp, ".values[", k, "]: must be a finite number"));
        }
        v.push_back(x.get<double>());
      }
      if (r.values_ + width > kMaxRecordedValues && r.count_ > 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(rp, ": more than ", kMaxRecordedValues, " recorded values"));
      }
      ServedRun& run = r.NewRun(width);
      run.first = e[0];
      run.last = e[1];
      run.stride = e[2];
      run.has_momentum = has_m;
      run.has_weight_decay = has_wd;
      run.values = std::move(v);
    }
  }
  *this = std::move(r);
  return absl::OkStatus();
}

}  // namespace lrsched::scheduler_internal
