// Copyright lrsched authors.
#include "scheduler/internal/timm_common.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/torch_random.h"

namespace lrsched::scheduler_internal {

bool TimmNoise::DrawFrom(TorchCpuGenerator& g, double* out) const {
  if (uniform) {
    *out = 2 * (g.Rand() - 0.5) * pct;
    return !g.exhausted();
  }
  for (int i = 0; i < kMaxDraws && !g.exhausted(); ++i) {
    const double n = g.Randn();
    if (std::fabs(n) < pct && !g.exhausted()) {
      *out = n;
      return true;
    }
  }
  return false;
}

void TimmNoise::FillBatch(int64_t first) const {
  // A fresh generator per step, as timm's _calculate_noise builds one: seed + t, whose low 32
  // bits seed MT19937 (unsigned arithmetic: the same bits, no overflow).
  const uint64_t seed0 = static_cast<uint64_t>(seed) + static_cast<uint64_t>(first);
  SeededLanes lanes;
  SeedLanes(static_cast<uint32_t>(seed0), &lanes);
  for (int j = 0; j < kSeedLanes; ++j) {
    TorchCpuGenerator g(lanes, j);
    bool ok = DrawFrom(g, &batch_.value[j]);
    if (g.exhausted()) {  // more draws than the lanes hold (rare): seed this one alone
      TorchCpuGenerator full(seed0 + static_cast<uint64_t>(j));
      ok = DrawFrom(full, &batch_.value[j]);
    }
    batch_.refused[j] = !ok;
  }
  batch_.first = first;
}

absl::Status TimmNoise::Draw(int64_t t, double* out) const {
  if (batch_.first < 0 || t < batch_.first || t - batch_.first >= kSeedLanes) FillBatch(t);
  const int64_t j = t - batch_.first;
  if (batch_.refused[j]) {
    return absl::InvalidArgumentError(absl::StrCat("noise_pct: no normal draw of ", kMaxDraws,
                                                   " fell within noise_pct at t = ", t));
  }
  *out = batch_.value[j];
  return absl::OkStatus();
}

void TimmNoise::Read(Fields& f, bool with_type, int64_t seed_default) {
  if (const json* r = f.Raw("noise_range_t", false); r != nullptr && !r->is_null()) {
    range = *r;
    has_range = true;
    auto number = [&f](const json& v, double* out) {
      if (!v.is_number() || v.is_boolean() || !std::isfinite(v.get<double>())) {
        f.Fail(f.PathOf("noise_range_t"), "expected a number or a list [start, end) of two");
        return;
      }
      *out = v.get<double>();
    };
    if (r->is_array() && r->size() == 2) {
      bounded = true;
      number((*r)[0], &from);
      number((*r)[1], &to);
    } else {
      number(*r, &from);
    }
  }
  if (with_type) uniform = f.Enum("noise_type", "normal", {"normal", "uniform"}) == "uniform";
  pct = f.Float("noise_pct", 0.67);
  std_dev = f.Float("noise_std", 1.0);
  if (const json* s = f.Raw("noise_seed", false); s != nullptr && !s->is_null()) {
    seed = f.Int("noise_seed", std::nullopt);
  } else {
    seed = seed_default;
  }
  if (f.status().ok() && has_range && !uniform && !(pct >= 0.01)) {
    // timm redraws until |n| < noise_pct: forever at 0, for very long below this.
    f.Fail(f.PathOf("noise_pct"),
           "must be at least 0.01 for normal noise (timm redraws randn "
           "until |n| < noise_pct)");
  }
}

int64_t TimmNoise::StepCost() const {
  if (!has_range) return 0;
  const double fits = uniform ? 1.0 : std::erf(pct / std::sqrt(2.0));  // pct >= 0.01
  return 1000 + static_cast<int64_t>(50.0 / fits);
}

void TimmNoise::AddState(json& sd) const {
  sd["noise_range_t"] = range;
  sd["noise_pct"] = pct;
  sd["noise_type"] = uniform ? "uniform" : "normal";
  sd["noise_std"] = std_dev;
  sd["noise_seed"] = seed;
}

absl::Status AttachTimm(Optimizer& opt, bool initialize, const std::string& path,
                        std::vector<double>* base_values) {
  base_values->clear();
  for (size_t i = 0; i < opt.groups.size(); ++i) {
    ParamGroup& g = opt.groups[i];
    if (initialize) {
      if (!g.initial_lr) g.initial_lr = g.lr;  // group.setdefault('initial_lr', group['lr'])
    } else if (!g.initial_lr) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer.param_groups[", i,
                                                     "].initial_lr: required with ", path,
                                                     ".initialize = false (timm raises KeyError)"));
    }
    base_values->push_back(*g.initial_lr);
  }
  return absl::OkStatus();
}

absl::Status WriteTimmGroups(Optimizer& opt, const double* values, const char* type, int64_t t) {
  const size_t n = opt.groups.size();
  for (size_t i = 0; i < n; ++i) {
    const ParamGroup& g = opt.groups[i];
    const double v = g.lr_scale ? values[i] * *g.lr_scale : values[i];
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat(type, ": the lr of param group ", i, " would become ", FormatNumber(v),
                       " at t = ", t, "; refusing a non-finite learning rate"));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    ParamGroup& g = opt.groups[i];
    g.lr = g.lr_scale ? values[i] * *g.lr_scale : values[i];
  }
  return absl::OkStatus();
}

absl::Status TimmNextT(const StepArgs& args, int64_t last, const char* type, int64_t* t) {
  if (args.epoch) {
    const double e = *args.epoch;
    if (!(e >= 0 && e <= static_cast<double>(kMaxInt)) || e != std::floor(e)) {
      return absl::InvalidArgumentError(absl::StrCat("epoch: ", type, " takes an integer t in [0, ",
                                                     kMaxInt, "], got ", FormatNumber(e)));
    }
    *t = static_cast<int64_t>(e);
    return absl::OkStatus();
  }
  if (last >= kMaxInt) {
    return absl::InvalidArgumentError(absl::StrCat("epoch: cannot step past t = ", kMaxInt));
  }
  *t = last + 1;
  return absl::OkStatus();
}

double PyFloorDivFloat(double vx, double wx) {
  // CPython's _float_div_mod, floordiv part.
  double mod = std::fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod != 0.0) {
    if ((wx < 0) != (mod < 0)) div -= 1.0;
  }
  double floordiv;
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, vx / wx);
  }
  return floordiv;
}

}  // namespace lrsched::scheduler_internal
