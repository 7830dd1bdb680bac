// Copyright lrsched authors.
//
// timm's formula schedulers (timm/scheduler/{cosine,tanh,step,multistep,poly}_lr.py at
// 31a85de79aad): CosineLRScheduler, TanhLRScheduler, StepLRScheduler, MultiStepLRScheduler,
// PolyLRScheduler, as one node whose _get_lr switches on the class. Each formula is written in
// timm's order of operations (Python's: `a * b / c` is (a*b)/c, `t / T` is true division,
// `**` is float_pow), so the values are timm's bits. PlateauLRScheduler:
// schedulers_timm_plateau.cc.
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/pymath.h"
#include "scheduler/internal/pynum.h"
#include "scheduler/internal/timm_common.h"

namespace lrsched::scheduler_internal {
namespace {

enum class Kind { kCosine, kTanh, kStep, kMultiStep, kPoly };

class TimmScheduler : public ValueNode<TimmScheduler, SchedulerNode> {
 public:
  Kind kind = Kind::kCosine;
  const char* type_ = "";
  json config;  // the constructor's attributes as timm's state_dict shows them (fixed)
  TimmNoise noise;
  bool t_in_epochs = true;
  // Cosine, Tanh, Poly.
  int64_t t_initial = 1, cycle_limit = 1;
  double lr_min = 0, cycle_mul = 1, cycle_decay = 1, k_decay = 1, power = 0.5, lb = -7, ub = 3;
  // Step (decay_t may be a float there) and MultiStep.
  double decay_t = 1, decay_rate = 1;
  bool decay_t_is_int = true;  // `t // decay_t` is then an int division
  std::vector<double> decay_ts;
  int64_t warmup_t = 0;
  double warmup_lr_init = 0;
  bool warmup_prefix = false;
  // State: base_values and warmup_steps (load_state_dict may replace them), metric, and t.
  std::vector<double> base_values, warmup_steps, values_, last_lr_;
  std::optional<double> metric;
  int64_t t_ = 0;

  const char* type() const override { return type_; }
  int64_t last_epoch() const override { return t_; }
  const std::vector<double>& last_lr() const override { return last_lr_; }
  int64_t StepCost(size_t groups) const override {
    return SchedulerNode::StepCost(groups) + noise.StepCost();
  }

  // math.log(cycle_mul), computed at construction (the same bits as on every call); its
  // error, if any, is raised after log(x)'s, as Python evaluates them.
  double log_mul = 0;
  absl::Status log_mul_status;

  // Python's math.log(x, cycle_mul): log(x) / log(cycle_mul), each refusing what math.log
  // refuses.
  absl::Status LogBaseMul(double x, double* out) const {
    double num;
    LRS_RETURN_IF_ERROR(PyLog(x, &num));
    LRS_RETURN_IF_ERROR(log_mul_status);
    return PyDiv(num, log_mul, out);
  }

  // a ** b (CPython's float_pow) with its exact shortcuts first: x ** 1.0 is x, 1.0 ** y and
  // x ** 0.0 are 1.0 (what float_pow and C's pow return for them), so the common k_decay 1
  // and cycle_decay 1 cost no pow call; the general rules only where they can matter.
  static absl::Status Pow(double a, double b, double* out) {
    if (b == 1.0) {
      *out = a;
      return absl::OkStatus();
    }
    if (a == 1.0 || b == 0.0) {
      *out = 1.0;
      return absl::OkStatus();
    }
    // A positive finite base and a finite exponent: float_pow is C's pow, unless the result
    // overflows (OverflowError), which the general path reports.
    if (a > 0 && std::isfinite(a) && std::isfinite(b)) {
      const double r = std::pow(a, b);
      if (std::isfinite(r)) {
        *out = r;
        return absl::OkStatus();
      }
    }
    return PyPow(a, b, out);
  }

  // decay_rate ** q for Step and MultiStep, remembered for the last q: q changes once per
  // decay, and a pow per step made them 2.8x torch's StepLR (bench/README.md). The same q
  // gives the same bits, so the cache never changes a value; NaN matches no q.
  mutable double decay_q_ = std::numeric_limits<double>::quiet_NaN();
  mutable double decay_f_ = 1;
  absl::Status DecayPow(double q, double* out) const {
    if (q != decay_q_) {
      double f;
      LRS_RETURN_IF_ERROR(Pow(decay_rate, q, &f));
      decay_q_ = q;
      decay_f_ = f;
    }
    *out = decay_f_;
    return absl::OkStatus();
  }

  // timm's cycle for t when cycle_mul != 1: i = floor(log(1 - t / t_initial * (1 - cycle_mul),
  // cycle_mul)), then cycle_mul ** i and the cycle's start. A log and a pow per step made timm
  // Cosine with cycle_mul 2.2x torch's CosineAnnealingLR (bench/README.md), while i changes
  // once per cycle. So the formula runs where i may change, and the t range it gives one i is
  // remembered: found by evaluating the formula itself at the next cycle's estimated start and
  // the step before it (moving until they differ), so a cached i is the formula's own at both
  // ends of the range. In between the formula's argument moves by (cycle_mul - 1) / t_initial
  // per step, many ulps, so every step of the range floors to the same i (every operation on
  // the way is monotone; timm_test compares the cache with the formula over long runs).
  struct Cycle {
    int64_t i = 0;
    double p = 1;            // cycle_mul ** i
    double x = 0;            // (1 - p) / (1 - cycle_mul)
    int64_t lo = 1, hi = 0;  // t in [lo, hi) has this i (empty at first)
  };
  mutable Cycle cycle_;

  absl::Status CycleIndex(int64_t t, int64_t* i) const {
    double l;
    LRS_RETURN_IF_ERROR(LogBaseMul(
        1 - static_cast<double>(t) / static_cast<double>(t_initial) * (1 - cycle_mul), &l));
    return PyFloorToInt(l, i);
  }

  absl::Status CycleAt(int64_t t, const Cycle** out) const {
    if (t >= cycle_.lo && t < cycle_.hi) {
      *out = &cycle_;
      return absl::OkStatus();
    }
    Cycle c;
    LRS_RETURN_IF_ERROR(CycleIndex(t, &c.i));
    LRS_RETURN_IF_ERROR(Pow(cycle_mul, static_cast<double>(c.i), &c.p));
    LRS_RETURN_IF_ERROR(PyDiv(1 - c.p, 1 - cycle_mul, &c.x));
    c.lo = t;
    c.hi = t + 1;  // at least t itself; extended below when the next start is found
    // The next cycle starts near (1 - cycle_mul ** (i + 1)) / (1 - cycle_mul) * t_initial.
    const double start =
        std::ceil((1 - c.p * cycle_mul) / (1 - cycle_mul) * static_cast<double>(t_initial));
    if (std::isfinite(start) && start > static_cast<double>(t) && start < 9.0e15) {
      int64_t b = static_cast<int64_t>(start), j;
      bool ok = true;
      // Move b to the first t' > t whose formula differs from i, with t' - 1 still giving i.
      for (int tries = 0; ok && tries < 8; ++tries) {
        if (b - 1 > t) {
          ok = CycleIndex(b - 1, &j).ok();
          if (ok && j != c.i) {
            --b;
            continue;
          }
        }
        ok = ok && CycleIndex(b, &j).ok();
        if (ok && j == c.i) {
          ++b;
          continue;
        }
        if (ok) c.hi = b;
        break;
      }
    }
    cycle_ = c;
    *out = &cycle_;
    return absl::OkStatus();
  }

  // _get_lr(t) into out[0..groups).
  absl::Status GetLr(int64_t t, double* out) const {
    const size_t n = base_values.size();
    if (t < warmup_t) {
      for (size_t g = 0; g < n; ++g)
        out[g] = warmup_lr_init + static_cast<double>(t) * warmup_steps[g];
      return absl::OkStatus();
    }
    if (warmup_prefix) t = t - warmup_t;
    if (kind == Kind::kStep) {
      // `t // decay_t`: an int when decay_t is one, else float floor division.
      const double q = decay_t_is_int ? static_cast<double>(t / static_cast<int64_t>(decay_t))
                                      : PyFloorDivFloat(static_cast<double>(t), decay_t);
      double f;
      LRS_RETURN_IF_ERROR(DecayPow(q, &f));
      for (size_t g = 0; g < n; ++g) out[g] = base_values[g] * f;
      return absl::OkStatus();
    }
    if (kind == Kind::kMultiStep) {
      // bisect.bisect_right(decay_t, t + 1), as the algorithm runs (timm assumes it sorted).
      const double x = static_cast<double>(t + 1);
      size_t lo = 0, hi = decay_ts.size();
      while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x < decay_ts[mid])
          hi = mid;
        else
          lo = mid + 1;
      }
      double f;
      LRS_RETURN_IF_ERROR(DecayPow(static_cast<double>(lo), &f));
      for (size_t g = 0; g < n; ++g) out[g] = base_values[g] * f;
      return absl::OkStatus();
    }
    // The cycle: i, its length t_i and the position t_curr in it.
    int64_t i;
    double t_i, t_curr;
    if (cycle_mul != 1) {
      const Cycle* c;
      LRS_RETURN_IF_ERROR(CycleAt(t, &c));
      i = c->i;
      t_i = c->p * static_cast<double>(t_initial);
      t_curr = static_cast<double>(t) - c->x * static_cast<double>(t_initial);
    } else {
      i = t / t_initial;
      t_i = static_cast<double>(t_initial);
      t_curr = static_cast<double>(t - t_initial * i);
    }
    if (i >= cycle_limit) {
      for (size_t g = 0; g < n; ++g) out[g] = lr_min;
      return absl::OkStatus();
    }
    double gamma;
    LRS_RETURN_IF_ERROR(Pow(cycle_decay, static_cast<double>(i), &gamma));
    double shape;  // the factor of (lr_max - lr_min), the same for every group
    if (kind == Kind::kTanh) {
      double tr;
      LRS_RETURN_IF_ERROR(PyDiv(t_curr, t_i, &tr));
      shape = 1 - std::tanh(lb * (1. - tr) + ub * tr);
      for (size_t g = 0; g < n; ++g) {
        const double lr_max = base_values[g] * gamma;
        out[g] = lr_min + 0.5 * (lr_max - lr_min) * shape;
      }
      return absl::OkStatus();
    }
    double a, b, r;
    LRS_RETURN_IF_ERROR(Pow(t_curr, k_decay, &a));
    LRS_RETURN_IF_ERROR(Pow(t_i, k_decay, &b));
    if (kind == Kind::kCosine) {
      double c;
      LRS_RETURN_IF_ERROR(PyDiv(kPi * a, b, &r));
      LRS_RETURN_IF_ERROR(PyCos(r, &c));
      shape = 1 + c;
      for (size_t g = 0; g < n; ++g) {
        const double lr_max = base_values[g] * gamma;
        out[g] = lr_min + 0.5 * (lr_max - lr_min) * shape;
      }
      return absl::OkStatus();
    }
    LRS_RETURN_IF_ERROR(PyDiv(a, b, &r));
    LRS_RETURN_IF_ERROR(Pow(1 - r, power, &shape));
    for (size_t g = 0; g < n; ++g) {
      const double lr_max = base_values[g] * gamma;
      out[g] = lr_min + (lr_max - lr_min) * shape;
    }
    return absl::OkStatus();
  }

  absl::Status Step(Optimizer& opt, const StepArgs& args) override {
    int64_t t;
    LRS_RETURN_IF_ERROR(TimmNextT(args, t_, type_, &t));
    double* v = values_.data();
    absl::Status s = GetLr(t, v);
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat(type_, " at t = ", t, ": ", s.message()));
    }
    if (noise.Applies(t)) {  // _add_noise
      double nz;
      LRS_RETURN_IF_ERROR(noise.Draw(t, &nz));
      for (double& x : values_) x = x + x * nz;
    }
    LRS_RETURN_IF_ERROR(WriteTimmGroups(opt, v, type_, t));
    for (size_t g = 0; g < opt.groups.size(); ++g) last_lr_[g] = opt.groups[g].lr;
    t_ = t;
    metric = args.metric;
    return absl::OkStatus();
  }

  json StateDict() const override {
    json sd = config;
    sd["param_group_field"] = "lr";
    sd["_initial_param_group_field"] = "initial_lr";
    sd["base_values"] = StateNums(base_values);
    sd["metric"] = metric ? StateNum(*metric) : json(nullptr);
    sd["t_in_epochs"] = t_in_epochs;
    noise.AddState(sd);
    json ws = json::array();
    for (double w : warmup_steps) ws.push_back(warmup_t != 0 ? json(w) : json(1));
    sd["warmup_steps"] = ws;
    return sd;
  }

  absl::Status LoadStateDict(const json& sd, const std::string& path) override {
    // timm's load_state_dict updates the attributes; the configuration may not change here.
    Fields f(sd, path);
    json fixed = config;
    fixed["param_group_field"] = "lr";
    fixed["_initial_param_group_field"] = "initial_lr";
    fixed["t_in_epochs"] = t_in_epochs;
    noise.AddState(fixed);
    for (auto it = fixed.begin(); it != fixed.end(); ++it) f.Expect(it.key().c_str(), it.value());
    const size_t n = base_values.size();
    if (f.Has("base_values")) base_values = f.FloatPerGroup("base_values", std::nullopt, n);
    if (f.Has("warmup_steps")) {
      warmup_steps = f.FloatPerGroup("warmup_steps", std::nullopt, n, -kAnyFinite, kAnyFinite);
    }
    metric.reset();
    if (const json* m = f.Raw("metric", false); m != nullptr && !m->is_null()) {
      double x;
      if (!ReadStateNum(*m, &x)) f.Fail(f.PathOf("metric"), "expected a number or null");
      metric = x;
    }
    return f.Finish();
  }

  json NodeState() const override { return json{{"t", t_}}; }
  absl::Status LoadNodeState(const json& s, const std::string& path) override {
    Fields f(s, path);
    t_ = f.Int("t", std::nullopt, 0, kMaxInt);
    return f.Finish();
  }
};

// Reads a key with a default into the node and into `config` with the kind of number timm's
// attribute would have (the spec's own value when given, so 2 stays an int and 2.0 a float).
struct ConfigReader {
  Fields& f;
  json& config;
  double Float(const char* key, double def, double min = -1e300) {
    double v = f.Float(key, def, min);
    config[key] = f.Has(key) && f.status().ok() ? *f.Raw(key, true) : json(def);
    return v;
  }
  int64_t Int(const char* key, std::optional<int64_t> def, int64_t min = -kMaxInt) {
    int64_t v = f.Int(key, def, min);
    config[key] = v;
    return v;
  }
  bool Bool(const char* key, bool def) {
    bool v = f.Bool(key, def);
    config[key] = v;
    return v;
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildTimm(const std::string& type, Fields& f,
                                                         Optimizer& opt) {
  if (type == "timm.PlateauLRScheduler") return BuildTimmPlateau(f, opt);
  auto node = std::make_unique<TimmScheduler>();
  TimmScheduler& s = *node;
  const std::string cls = type.substr(5);
  s.kind = cls == "CosineLRScheduler"      ? Kind::kCosine
           : cls == "TanhLRScheduler"      ? Kind::kTanh
           : cls == "StepLRScheduler"      ? Kind::kStep
           : cls == "MultiStepLRScheduler" ? Kind::kMultiStep
                                           : Kind::kPoly;
  static const char* const kTypes[] = {"timm.CosineLRScheduler", "timm.TanhLRScheduler",
                                       "timm.StepLRScheduler", "timm.MultiStepLRScheduler",
                                       "timm.PolyLRScheduler"};
  s.type_ = kTypes[static_cast<int>(s.kind)];
  ConfigReader c{f, s.config};
  const bool cyclic = s.kind == Kind::kCosine || s.kind == Kind::kTanh || s.kind == Kind::kPoly;
  if (cyclic) {
    // timm: assert t_initial > 0 and lr_min >= 0 (Tanh also lb < ub, cycle_limit, warmup_t and
    // warmup_lr_init >= 0).
    s.t_initial = c.Int("t_initial", std::nullopt, 1);
    if (s.kind == Kind::kTanh) {
      s.lb = c.Float("lb", -7.);
      s.ub = c.Float("ub", 3.);
      if (f.status().ok() && !(s.lb < s.ub)) f.Fail(f.PathOf("lb"), "must be below ub");
    }
    if (s.kind == Kind::kPoly) s.power = c.Float("power", 0.5);
    s.lr_min = c.Float("lr_min", 0., 0);
    s.cycle_mul = c.Float("cycle_mul", 1.);
    s.cycle_decay = c.Float("cycle_decay", 1.);
    s.cycle_limit = c.Int("cycle_limit", 1, s.kind == Kind::kTanh ? 0 : -kMaxInt);
    if (s.kind != Kind::kTanh) s.k_decay = c.Float("k_decay", 1.);
  } else if (s.kind == Kind::kStep) {
    s.decay_t = f.Float("decay_t", std::nullopt);
    if (f.status().ok()) {
      s.config["decay_t"] = *f.Raw("decay_t", true);
      // An int beyond kMaxInt is still a quotient of 0 for any t; it is read as a float.
      s.decay_t_is_int = s.config["decay_t"].is_number_integer() && s.decay_t <= kMaxInt;
    }
    if (f.status().ok() && !(s.decay_t > 0)) {
      f.Fail(f.PathOf("decay_t"), "must be positive (timm divides by it)");
    }
    s.decay_rate = c.Float("decay_rate", 1.);
  } else {
    std::vector<int64_t> ts = f.IntList("decay_t");
    if (f.status().ok()) s.config["decay_t"] = *f.Raw("decay_t", true);
    for (int64_t x : ts) s.decay_ts.push_back(static_cast<double>(x));
    s.decay_rate = c.Float("decay_rate", 1.);
  }
  s.warmup_t = c.Int("warmup_t", 0, 0);
  s.warmup_lr_init = c.Float("warmup_lr_init", 0., s.kind == Kind::kTanh ? 0 : -1e300);
  s.warmup_prefix = c.Bool("warmup_prefix", s.kind == Kind::kStep || s.kind == Kind::kMultiStep);
  if (s.cycle_mul != 1) {
    s.log_mul_status = PyLog(s.cycle_mul, &s.log_mul);
  }
  s.t_in_epochs = f.Bool("t_in_epochs", true);
  s.noise.Read(f, /*with_type=*/false, 42);
  const bool initialize = f.Bool("initialize", true);
  LRS_RETURN_IF_ERROR(f.Finish());

  // Scheduler.__init__: initial_lr, base_values, update_groups(base_values).
  LRS_RETURN_IF_ERROR(AttachTimm(opt, initialize, f.path(), &s.base_values));
  const size_t n = opt.groups.size();
  s.values_.assign(n, 0.0);
  s.last_lr_.assign(n, 0.0);
  LRS_RETURN_IF_ERROR(WriteTimmGroups(opt, s.base_values.data(), s.type_, 0));
  s.warmup_steps.assign(n, 1.0);
  if (s.warmup_t != 0) {
    // Tanh without a prefix aims the warmup at its curve's value at warmup_t.
    std::vector<double> target = s.base_values;
    if (s.kind == Kind::kTanh && !s.warmup_prefix) {
      absl::Status st = s.GetLr(s.warmup_t, target.data());  // _get_lr(warmup_t): the curve
      if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(f.path(), ": ", st.message()));
    }
    for (size_t g = 0; g < n; ++g) {
      s.warmup_steps[g] = (target[g] - s.warmup_lr_init) / static_cast<double>(s.warmup_t);
    }
    std::vector<double> init(n, s.warmup_lr_init);
    LRS_RETURN_IF_ERROR(WriteTimmGroups(opt, init.data(), s.type_, 0));
  }
  for (size_t g = 0; g < n; ++g) s.last_lr_[g] = opt.groups[g].lr;
  return std::unique_ptr<SchedulerNode>(std::move(node));
}

}  // namespace lrsched::scheduler_internal
