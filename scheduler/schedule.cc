// Copyright lrsched authors.
#include "scheduler/schedule.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/amend_state.h"
#include "scheduler/internal/fields.h"
#include "scheduler/internal/node.h"
#include "scheduler/internal/param_groups.h"
#include "scheduler/internal/served_record.h"
#include "scheduler/json_text.h"

namespace lrsched {
namespace {

using json = nlohmann::json;
using scheduler_internal::AppendParamGroupText;
using scheduler_internal::Fields;
using scheduler_internal::LoadParamGroups;
using scheduler_internal::ParamGroupJson;

constexpr const char* kStateFormat = "lrsched.schedule";
constexpr int kStateVersion = 1;
}  // namespace

absl::StatusOr<json> ParseJson(std::string_view text, std::string_view what) {
  if (text.size() > kMaxJsonBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(what), ": ", text.size(), " bytes, more than the limit of ", kMaxJsonBytes));
  }
  // Bound the nesting before the parser sees it: depth is what makes JSON expensive to hold.
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        return absl::InvalidArgumentError(absl::StrCat(std::string(what), ": nested deeper than ",
                                                       kMaxJsonDepth, " levels (at byte ", i, ")"));
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  // nlohmann reports where and why only through its exception; it does not leave this function.
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    std::string why = e.what();
    if (auto p = why.find("] "); p != std::string::npos) why = why.substr(p + 2);
    return absl::InvalidArgumentError(absl::StrCat(std::string(what), ": not valid JSON: ", why));
  }
}

Schedule::Schedule() : record_(std::make_unique<scheduler_internal::ServedRecord>()) {}
Schedule::~Schedule() = default;

absl::StatusOr<std::unique_ptr<Schedule>> Schedule::Create(const json& spec) {
  Fields f(spec, "spec");
  const json* opt_spec = f.Raw("optimizer", true);
  const json* sched_spec = f.Raw("scheduler", true);
  absl::Status s = f.Finish();
  if (!s.ok()) return s;
  absl::StatusOr<Optimizer> opt = ParseOptimizer(*opt_spec);
  if (!opt.ok()) return opt.status();
  std::unique_ptr<Schedule> out(new Schedule());
  out->spec_text_ = std::make_shared<const std::string>(spec.dump());
  out->opt_ = *std::move(opt);
  auto root = scheduler_internal::BuildNode(*sched_spec, "scheduler", out->opt_, 0);
  if (!root.ok()) return root.status();
  out->root_ = *std::move(root);
  out->type_ = out->root_->type();
  s = out->Finish();
  if (!s.ok()) return s;
  out->record_->Start(out->last_epoch(), nullptr);  // a replay of spec() reproduces it
  return out;
}

absl::Status Schedule::Finish() {
  step_cost_ = std::max<int64_t>(1, root_->StepCost(opt_.groups.size()));
  for (size_t i = 0; i < opt_.groups.size(); ++i) {
    if (!std::isfinite(opt_.groups[i].lr)) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer.param_groups[", i, "].lr: not finite after construction"));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<Schedule> Schedule::Clone() const {
  std::unique_ptr<Schedule> out(new Schedule());
  out->spec_text_ = spec_text_;
  out->type_ = type_;
  out->step_cost_ = step_cost_;
  out->opt_ = opt_;
  out->root_ = root_->Clone();
  if (amend_) out->amend_ = amend_->Clone();
  *out->record_ = *record_;
  return out;
}

absl::Status Schedule::Step(const StepRequest& request) {
  if (request.epoch && !root_->takes_epoch()) {
    return absl::InvalidArgumentError(
        absl::StrCat("epoch: ", root_->type(), ".step() takes no epoch"));
  }
  if (request.increment) {
    if (!root_->takes_increment()) {
      return absl::InvalidArgumentError(
          absl::StrCat("increment: ", root_->type(), ".step() takes no increment"));
    }
    if (*request.increment < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("increment: must be positive, got ", *request.increment));
    }
  }
  const scheduler_internal::StepArgs args{request.epoch, request.metric, request.increment};
  // A plain step while the record is derived: nothing to record (served_record.h).
  if (!request.metric && !request.epoch && !request.increment && record_->deriving()) {
    // Every node's Step is all-or-nothing, so there is nothing to undo here; an amended
    // schedule's Step (pending amendments, a scale) is all-or-nothing too.
    return amend_ ? scheduler_internal::AmendEngine::Step(*this, args) : root_->Step(opt_, args);
  }
  return StepAndRecord(request);
}

absl::Status Schedule::StepAndRecord(const StepRequest& request) {
  const scheduler_internal::StepArgs args{request.epoch, request.metric, request.increment};
  const bool plain = scheduler_internal::IsPlainStep(request, *root_, last_epoch());
  const bool deriving = record_->deriving();
  const int64_t before = plain || !deriving ? 0 : last_epoch();
  absl::Status s =
      amend_ ? scheduler_internal::AmendEngine::Step(*this, args) : root_->Step(opt_, args);
  if (!s.ok() || (plain && deriving)) return s;
  if (deriving) record_->EndDerived(before, amendments().size());
  record_->Record(last_epoch(), opt_.groups, has_momentum(), drives_weight_decay());
  return s;
}

bool Schedule::has_momentum() const { return opt_.defaults_momentum || opt_.defaults_betas; }
bool Schedule::deterministic() const {
  // A pending continue_with to a metric-driven scheduler ends the lookahead's validity too.
  return root_->deterministic() && (amend_ == nullptr || !amend_->pending_metric_driven);
}
bool Schedule::drives_weight_decay() const { return root_->drives_weight_decay(); }
int64_t Schedule::last_epoch() const {
  return amend_ ? amend_->piece_start + root_->last_epoch() : root_->last_epoch();
}
json Schedule::StateDict() const { return root_->StateDict(); }

json Schedule::ParamGroupsJson() const {
  json a = json::array();
  for (const ParamGroup& g : opt_.groups) a.push_back(ParamGroupJson(g));
  return a;
}

absl::StatusOr<std::unique_ptr<Schedule>> Schedule::Restore(const json& spec,
                                                            const json& param_groups,
                                                            const json& state_dict) {
  auto out = RestoreUnrecorded(spec, param_groups, state_dict);
  if (out.ok()) (*out)->StartRecordHere();
  return out;
}

absl::StatusOr<std::unique_ptr<Schedule>> Schedule::RestoreUnrecorded(const json& spec,
                                                                      const json& param_groups,
                                                                      const json& state_dict) {
  auto out = Create(spec);
  if (!out.ok()) return out.status();
  Schedule& s = **out;
  // Construction rewrote the groups (CyclicLR resets lr, OneCycleLR sets momentum ...);
  // torch's optimizer.load_state_dict() puts the checkpoint's back.
  const json& groups = param_groups.is_null() ? spec["optimizer"]["param_groups"] : param_groups;
  absl::Status st = LoadParamGroups(groups, s.opt_);
  if (!st.ok()) return st;
  st = s.root_->LoadStateDict(state_dict, "state_dict");
  if (!st.ok()) return st;
  st = s.root_->FinishLoad(s.opt_);
  if (!st.ok()) return st;
  st = s.Finish();
  if (!st.ok()) return st;
  return out;
}

void Schedule::StartRecordHere() {
  // The state without its record is what a replay starts from; Create(spec()) would not
  // reproduce a restored or imported schedule.
  json base = ExportState(false);
  base.erase("record");
  record_->Start(last_epoch(), std::make_shared<const std::string>(base.dump()));
}

json Schedule::spec() const {
  // Our own dump of a tree that parsed: it parses back.
  return json::parse(*spec_text_, nullptr, /*allow_exceptions=*/false);
}

json Schedule::ExportState(bool include_spec) const {
  json out{{"format", kStateFormat},
           {"version", kStateVersion},
           {"param_groups", ParamGroupsJson()},
           {"state_dict", StateDict()}};
  if (include_spec) out["spec"] = spec();
  if (json ns = root_->NodeState(); !ns.is_null()) out["node_state"] = std::move(ns);
  if (amend_) scheduler_internal::AmendEngine::Export(*this, out);
  std::string record;
  record_->AppendJson(&record);
  out["record"] = json::parse(record);
  return out;
}

void Schedule::AppendStateMembers(std::string* out) const {
  out->append("\"format\":");
  json_text::AppendString(kStateFormat, out);
  out->append(",\"version\":");
  json_text::AppendInt(kStateVersion, out);
  out->append(",\"param_groups\":[");
  for (size_t i = 0; i < opt_.groups.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendParamGroupText(opt_.groups[i], out);
  }
  out->append("],\"state_dict\":");
  root_->AppendStateDict(out);
  if (json ns = root_->NodeState(); !ns.is_null()) {
    out->append(",\"node_state\":");
    out->append(ns.dump());  // a few keys, and only for timm's types
  }
  if (amend_) scheduler_internal::AmendEngine::AppendExport(*this, out);
  out->append(",\"record\":");
  record_->AppendJson(out);
}

absl::StatusOr<std::unique_ptr<Schedule>> Schedule::ImportState(const json& state) {
  Fields f(state, "state");
  std::string format = f.Enum("format", std::nullopt, {kStateFormat});
  f.Int("version", std::nullopt, kStateVersion, kStateVersion);
  const json* spec = f.Raw("spec", true);
  const json* groups = f.Raw("param_groups", true);
  const json* sd = f.Raw("state_dict", true);
  const json* node_state = f.Raw("node_state", false);
  const json* amendments = f.Raw("amendments", false);
  const json* amended = f.Raw("amended", false);
  const json* record = f.Raw("record", false);  // absent in exports before issue #18
  absl::Status s = f.Finish();
  if (!s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Schedule>> out;
  if (amendments != nullptr || amended != nullptr) {
    out = scheduler_internal::AmendEngine::Import(*spec, *groups, *sd, node_state, amendments,
                                                  amended);
  } else {
    out = RestoreUnrecorded(*spec, *groups, *sd);
    if (out.ok() && node_state != nullptr) {
      s = (*out)->root_->LoadNodeState(*node_state, "state.node_state");
      if (!s.ok()) return s;
    }
  }
  if (out.ok()) {
    Schedule& sch = **out;
    if (record != nullptr) {
      s = sch.record_->Load(*record, sch.opt_.groups.size(), sch.has_momentum(),
                            sch.amendments().size(), "state.record");
      if (!s.ok()) return s;
    } else {
      sch.StartRecordHere();  // a schedule imported without a record: it starts here
    }
  }
  return out;
}

}  // namespace lrsched
