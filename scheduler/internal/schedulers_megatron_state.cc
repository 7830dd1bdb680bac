// Copyright lrsched authors.
//
// megatron.OptimizerParamScheduler's state: Megatron's state_dict() (its keys, its numbers as
// given: ints stay ints) and load_state_dict() (the checkpoint's values win by default, older
// key names are read, and it steps to the loaded num_steps), plus the constructor's asserts,
// which also guard values a checkpoint brings in.
#include "absl/strings/str_cat.h"
#include "scheduler/internal/schedulers_megatron.h"

namespace lrsched::scheduler_internal {

json MegatronScheduler::StateDict() const {
  return json{{"max_lr", max_lr.Json()},
              {"lr_warmup_steps", lr_warmup_steps.Json()},
              {"num_steps", num_steps},
              {"lr_decay_style", lr_decay_style},
              {"lr_decay_steps", lr_decay_steps.Json()},
              {"min_lr", min_lr.Json()},
              {"start_wd", wd.start_wd.Json()},
              {"end_wd", wd.end_wd.Json()},
              {"wd_incr_style", wd.wd_incr_style},
              {"wd_incr_steps", wd.wd_incr_steps.Json()}};
}

void MegatronScheduler::AppendStateDict(std::string* out) const {
  auto num = [out](const char* key, const MegatronNum& v) {
    json_text::AppendKey(key, out);
    v.Append(out);
    out->push_back(',');
  };
  out->push_back('{');
  num("max_lr", max_lr);
  num("lr_warmup_steps", lr_warmup_steps);
  json_text::AppendKey("num_steps", out);
  json_text::AppendInt(num_steps, out);
  out->push_back(',');
  json_text::AppendKey("lr_decay_style", out);
  json_text::AppendString(lr_decay_style, out);
  out->push_back(',');
  num("lr_decay_steps", lr_decay_steps);
  num("min_lr", min_lr);
  num("start_wd", wd.start_wd);
  num("end_wd", wd.end_wd);
  json_text::AppendKey("wd_incr_style", out);
  json_text::AppendString(wd.wd_incr_style, out);
  out->push_back(',');
  json_text::AppendKey("wd_incr_steps", out);
  wd.wd_incr_steps.Append(out);
  out->push_back('}');
}

absl::Status CheckMegatronValues(const MegatronScheduler& m, const std::string& path) {
  auto fail = [&path](const char* key, const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".", key, ": ", what, " (Megatron: AssertionError)"));
  };
  if (!(m.min_lr.v >= 0.0)) return fail("min_lr", "must be >= 0");
  if (!(m.max_lr.v >= m.min_lr.v)) return fail("max_lr", "must be >= min_lr");
  if (!(m.init_lr <= m.max_lr.v)) return fail("init_lr", "must be <= max_lr");
  if (!(m.lr_decay_steps.v > 0)) return fail("lr_decay_steps", "must be > 0");
  if (!(m.lr_warmup_steps.v < m.lr_decay_steps.v)) {
    return fail("lr_warmup_steps", "must be < lr_decay_steps");
  }
  if (m.lr_decay_style == "WSD" && !m.wsd_decay_steps) {
    return fail("wsd_decay_steps", "required with lr_decay_style \"WSD\"");
  }
  if (!(m.wd.start_wd.v >= 0.0)) return fail("start_wd", "must be >= 0");
  if (!(m.wd.end_wd.v >= m.wd.start_wd.v)) return fail("end_wd", "must be >= start_wd");
  return absl::OkStatus();
}

absl::Status MegatronScheduler::LoadStateDict(const json& sd, const std::string& path) {
  // Megatron's load_state_dict: with use_checkpoint_opt_param_scheduler (the default) the
  // checkpoint's values replace the class values; without it they must agree; with
  // override_opt_param_scheduler the class values stay. Older checkpoints' key names are read
  // too. Then step(num_steps) on the freshly built scheduler (num_steps 0), which writes the
  // groups with the loaded lr settings and the class's weight-decay settings; the checkpoint's
  // weight-decay settings are taken only after that step, as Megatron does.
  Fields f(sd, path);
  MegatronScheduler next = *this;
  auto pick = [&](const char* key, const MegatronNum& cls, MegatronNum* into) {
    MegatronNum v = ReadMegatronNum(f, key);
    if (override_values) return;
    if (!use_checkpoint && (v.v != cls.v)) {
      f.Fail(f.PathOf(key), absl::StrCat("is ", FormatNumber(v.v), " but the schedule's spec says ",
                                         FormatNumber(cls.v)));
    }
    *into = v;
  };
  auto pick_style = [&](const char* key, const std::string& cls, std::string* into) {
    std::optional<std::string> v = ReadMegatronStyle(f, key, true);
    if (!v || override_values) return;
    if (!use_checkpoint && *v != cls) {
      f.Fail(f.PathOf(key),
             absl::StrCat("is \"", *v, "\" but the schedule's spec says \"", cls, "\""));
    }
    *into = *v;
  };
  auto alias = [&](std::initializer_list<const char*> keys) {
    const char* found = *(keys.end() - 1);
    for (const char* k : keys) {
      if (f.Has(k)) {
        found = k;
        break;
      }
    }
    for (const char* k : keys) f.Ignore(k);
    return found;
  };
  pick(alias({"start_lr", "max_lr"}), max_lr, &next.max_lr);
  pick("min_lr", min_lr, &next.min_lr);
  pick(alias({"warmup_iter", "warmup_steps", "lr_warmup_steps"}), lr_warmup_steps,
       &next.lr_warmup_steps);
  pick(alias({"end_iter", "decay_steps", "lr_decay_steps"}), lr_decay_steps, &next.lr_decay_steps);
  pick_style(alias({"decay_style", "lr_decay_style"}), lr_decay_style, &next.lr_decay_style);
  const int64_t steps = f.Int(alias({"num_iters", "num_steps"}), std::nullopt, 0, kMaxInt);
  const bool has_wd = f.Has("start_wd");
  WdConfig loaded = wd;
  if (has_wd) {
    pick("start_wd", wd.start_wd, &loaded.start_wd);
    pick("end_wd", wd.end_wd, &loaded.end_wd);
    pick("wd_incr_steps", wd.wd_incr_steps, &loaded.wd_incr_steps);
    pick_style("wd_incr_style", wd.wd_incr_style, &loaded.wd_incr_style);
    loaded.style = ClassifyWdStyle(loaded.wd_incr_style);
  }
  LRS_RETURN_IF_ERROR(f.Finish());
  next.lr_style = ClassifyLrStyle(next.lr_decay_style);
  MegatronScheduler checked = next;
  checked.wd = loaded;
  LRS_RETURN_IF_ERROR(CheckMegatronValues(checked, path));
  next.num_steps = steps;
  next.pending_wd = loaded;
  *this = std::move(next);
  return absl::OkStatus();
}

absl::Status MegatronScheduler::FinishLoad(Optimizer& opt) {
  if (!pending_wd) return absl::OkStatus();
  // load_state_dict's self.step(increment=num_steps) on a scheduler at num_steps 0.
  absl::Status s = StepTo(opt, num_steps, wd);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("state_dict.", s.message()));
  wd = *pending_wd;
  pending_wd.reset();
  return absl::OkStatus();
}

}  // namespace lrsched::scheduler_internal
