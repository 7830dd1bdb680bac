// Copyright lrsched authors.
//
// An amended schedule's state in and out of ExportState/ImportState ("amendments" and
// "amended", schedule.h), and AmendState's deep copy for Clone.
#include <limits>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/amend_state.h"
#include "scheduler/internal/param_groups.h"

namespace lrsched::scheduler_internal {
namespace {

absl::Status Prefixed(const absl::Status& s, std::string_view what) {
  return absl::Status(s.code(), absl::StrCat(std::string(what), ": ", s.message()));
}

json AmendmentJson(const Amendment& a) {
  json j{{"kind", AmendmentKindName(a.kind)},
         {"at_epoch", a.at_epoch},
         {"args", a.args},
         {"applied", a.applied}};
  if (!a.meta.is_null()) j["meta"] = a.meta;
  if (a.applied) j["jump"] = StateNums(a.jump);
  return j;
}

json AmendedJson(const AmendState& st) {
  json j{{"piece_start", st.piece_start}, {"piece_spec", st.piece_spec}};
  if (!st.scale.empty()) {
    j["scale"] = st.scale;
    json groups = json::array();
    for (const ParamGroup& g : st.unscaled.groups) groups.push_back(ParamGroupJson(g));
    j["unscaled_param_groups"] = std::move(groups);
  }
  return j;
}

absl::StatusOr<Amendment> ReadAmendment(const json& j, const std::string& path) {
  Fields f(j, path);
  Amendment a;
  std::string kind = f.Enum("kind", std::nullopt, {"continue_with", "reparameterize", "scale"});
  a.at_epoch = f.Int("at_epoch", std::nullopt, 0, kMaxInt);
  if (const json* args = f.Raw("args", true)) a.args = *args;
  if (const json* meta = f.Raw("meta", false)) a.meta = *meta;
  a.applied = f.Bool("applied", std::nullopt);
  if (const json* jump = f.Raw("jump", false)) {
    if (!jump->is_array()) {
      f.Fail(f.PathOf("jump"), "expected a list of numbers");
    } else {
      for (const json& v : *jump) {
        double d = 0;
        if (!ReadStateNum(v, &d)) f.Fail(f.PathOf("jump"), "expected a list of numbers");
        a.jump.push_back(d);
      }
    }
  }
  absl::Status s = f.Finish();
  if (!s.ok()) return s;
  a.kind = *ParseAmendmentKind(kind);
  return a;
}

}  // namespace

std::unique_ptr<AmendState> AmendState::Clone() const {
  auto out = std::make_unique<AmendState>();
  out->amendments = amendments;
  out->piece_start = piece_start;
  out->piece_spec = piece_spec;
  out->scale = scale;
  out->unscaled = unscaled;
  out->pending = pending;
  out->next_pending = next_pending;
  out->pending_metric_driven = pending_metric_driven;
  for (const Prepared& p : prepared) {
    Prepared q;
    q.index = p.index;
    q.epoch = p.epoch;
    q.piece_start = p.piece_start;
    q.merged = p.merged;
    if (p.replay) q.replay = p.replay->Clone();
    out->prepared.push_back(std::move(q));
  }
  if (backup) out->backup = backup->Clone();
  out->backup_groups = backup_groups;
  return out;
}

void AmendEngine::Export(const Schedule& s, json& out) {
  json list = json::array();
  for (const Amendment& a : s.amend_->amendments) list.push_back(AmendmentJson(a));
  out["amendments"] = std::move(list);
  out["amended"] = AmendedJson(*s.amend_);
}

void AmendEngine::AppendExport(const Schedule& s, std::string* out) {
  // Amended sessions only; small next to a step's work, and parsed back as Export's members.
  out->append(",\"amendments\":[");
  bool first = true;
  for (const Amendment& a : s.amend_->amendments) {
    if (!first) out->push_back(',');
    first = false;
    out->append(AmendmentJson(a).dump());
  }
  out->append("],\"amended\":");
  out->append(AmendedJson(*s.amend_).dump());
}

absl::StatusOr<std::unique_ptr<Schedule>> AmendEngine::Import(const json& spec, const json& groups,
                                                              const json& state_dict,
                                                              const json* node_state,
                                                              const json* amendments,
                                                              const json* amended) {
  auto out = Schedule::Create(spec);  // validates the creation spec; its tree is replaced
  if (!out.ok()) return out.status();
  Schedule& s = **out;
  auto st = std::make_unique<AmendState>();
  if (amendments != nullptr) {
    if (!amendments->is_array()) {
      return absl::InvalidArgumentError("state.amendments: expected a list");
    }
    for (size_t i = 0; i < amendments->size(); ++i) {
      auto a = ReadAmendment((*amendments)[i], absl::StrCat("state.amendments[", i, "]"));
      if (!a.ok()) return a.status();
      st->amendments.push_back(*std::move(a));
    }
  }
  st->piece_spec = spec;
  const json* unscaled = nullptr;
  if (amended != nullptr) {
    Fields f(*amended, "state.amended");
    st->piece_start = f.Int("piece_start", std::nullopt, 0, kMaxInt);
    if (const json* p = f.Raw("piece_spec", true)) st->piece_spec = *p;
    if (const json* sc = f.Raw("scale", false)) {
      st->scale = f.FloatPerGroup("scale", std::nullopt, s.opt_.groups.size(), 1e-300, 1e300);
      if (!sc->is_array()) f.Fail(f.PathOf("scale"), "expected one factor per param group");
      unscaled = f.Raw("unscaled_param_groups", true);
    }
    absl::Status fs = f.Finish();
    if (!fs.ok()) return fs;
  }
  // The piece in force, restored as the creation spec is for a schedule never amended.
  auto piece =
      Schedule::RestoreUnrecorded(st->piece_spec, unscaled ? *unscaled : groups, state_dict);
  if (!piece.ok()) return Prefixed(piece.status(), "state.amended.piece_spec");
  if (node_state != nullptr) {
    absl::Status ns = (*piece)->root_->LoadNodeState(*node_state, "state.node_state");
    if (!ns.ok()) return ns;
  }
  if ((*piece)->opt_.groups.size() != s.opt_.groups.size()) {
    return absl::InvalidArgumentError(
        "state.amended.piece_spec: its optimizer has another number of param groups");
  }
  s.root_ = std::move((*piece)->root_);
  if (st->scale.empty()) {
    s.opt_ = std::move((*piece)->opt_);
  } else {
    st->unscaled = (*piece)->opt_;
    s.opt_ = std::move((*piece)->opt_);
  }
  s.amend_ = std::move(st);
  if (!s.amend_->scale.empty()) {
    absl::Status r = RefreshServed(s);
    if (!r.ok()) return r;
  }
  Rearm(s);
  // Preparations are not exported: they are replayed here (an import costs what the Amend did).
  Prepare(s, std::numeric_limits<size_t>::max()).IgnoreError();
  return out;
}

}  // namespace lrsched::scheduler_internal
