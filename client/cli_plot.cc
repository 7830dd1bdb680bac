// Copyright lrsched authors.
//
// `lrsched plot FILE... [--session=NAME,... --server=ADDR] --out=OUT.svg [--steps=N]
// [--title=T]`: one SVG (svg_plot.h) with a curve per param group of each input.
// - FILE: a simulate input (a spec, or a golden line; its "name" labels the curve), traced
//   locally for its "steps" (or --steps); x is the number of step() calls made.
// - --session=NAME: a live session: its past solid (the record, GetHistory; thinned to about
//   2000 points), its future dashed (the lookahead window from its current epoch, --steps
//   epochs, default 100, at most 10000), each amendment a vertical marker labelled with its
//   reason; x is the session's last_epoch. With --dry-run and an amendment's flags (as for
//   `lrsched amend`, one session): both futures, as it is (dashed) and as it would be
//   (dotted, another colour), nothing changed. A ReduceLROnPlateau session has no lookahead:
//   its record only (with a warning).
#include <fstream>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "client/svg_plot.h"
#include "client/trace_json.h"
#include "scheduler/schedule.h"
#include "scheduler/trace.h"

namespace lrsched::cli {
namespace {

constexpr int64_t kDefaultSessionSteps = 100;
constexpr int kMaxPastPoints = 2000;

std::string Stem(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.rfind('.');
  return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

// Splits a trace into one series per param group; row r is at x0 + r, or at xs[r] where given
// (a Megatron session's window advances its epoch by the increment per step).
void AddTrace(const std::string& label, const Trace& t, double x0, std::vector<PlotSeries>* out,
              const std::vector<double>& xs = {}) {
  for (size_t g = 0; g < t.groups; ++g) {
    PlotSeries s;
    s.label = t.groups > 1 ? absl::StrCat(label, " (group ", g, ")") : label;
    for (size_t r = 0; r < t.rows(); ++r) {
      s.x.push_back(r < xs.size() ? xs[r] : x0 + static_cast<double>(r));
      s.lr.push_back(t.lr[r * t.groups + g]);
      if (t.has_momentum) s.momentum.push_back(t.momentum[r * t.groups + g]);
      if (t.has_weight_decay) s.weight_decay.push_back(t.weight_decay[r * t.groups + g]);
    }
    out->push_back(std::move(s));
  }
}

// A local spec file: exit code 0, or kExitUsage with the message printed.
int AddFile(const std::string& path, std::vector<PlotSeries>* out) {
  auto in = ReadJsonFile(path);
  if (!in.ok()) return Fail(in.status(), kExitUsage);
  auto input = ReadSimulateInput(*in, absl::GetFlag(FLAGS_steps));
  if (!input.ok()) return Fail(input.status(), kExitUsage);
  auto schedule = Schedule::Create(input->spec);
  if (!schedule.ok()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(path, ": ", schedule.status().message())),
                kExitUsage);
  }
  absl::Status s = CheckSimulateSize(*input);
  if (!s.ok()) return Fail(s, kExitUsage);
  Trace trace;
  s = Simulate(**schedule, input->steps, input->metrics, input->epochs, &trace);
  if (!s.ok()) return Fail(s, kExitUsage);
  if (!trace.error.ok()) {
    std::cerr << "lrsched: warning: " << path << ": the trace stops at step " << trace.error_at_step
              << ": " << trace.error.message() << "\n";
  }
  std::string label = Stem(path);
  if (in->is_object() && in->contains("name") && (*in)["name"].is_string()) {
    label = (*in)["name"].get<std::string>();
  }
  AddTrace(label, trace, 0, out);
  return kExitOk;
}

// One series per param group of `epochs` (x: each entry's epoch), appended to `out`.
void AddEpochs(const std::string& label,
               const google::protobuf::RepeatedPtrField<v1::EpochValues>& epochs,
               const PlotSeries& style, int color, std::vector<PlotSeries>* out) {
  if (epochs.empty()) return;
  const int groups = epochs[0].groups_size();
  // The record of a long session is thinned to about kMaxPastPoints points (SVG stays small).
  const int stride = style.past ? std::max(1, epochs.size() / kMaxPastPoints) : 1;
  for (int g = 0; g < groups; ++g) {
    PlotSeries s = style;
    s.label = groups > 1 ? absl::StrCat(label, " (group ", g, ")") : label;
    s.color = color + g;
    const bool momentum = epochs[0].groups(g).has_momentum();
    const bool wd = epochs[0].groups(g).has_weight_decay();
    for (int i = 0; i < epochs.size(); ++i) {
      if (i % stride != 0 && i + 1 != epochs.size()) continue;
      const v1::GroupValues& v = epochs[i].groups(g);
      s.x.push_back(static_cast<double>(epochs[i].epoch()));
      s.lr.push_back(v.lr());
      if (momentum) s.momentum.push_back(v.momentum());
      if (wd) s.weight_decay.push_back(v.weight_decay());
    }
    out->push_back(std::move(s));
  }
}

std::string MarkerLabel(const v1::Amendment& a) {
  std::string what = a.reason().empty() ? a.kind() : a.reason();
  return a.applied() ? what : absl::StrCat(what, " (pending)");
}

// A live session: its record (solid, GetHistory), its lookahead (dashed, GetLR window of
// --steps epochs) and each amendment as a marker; with --dry-run and amend flags, the
// lookahead as it is (dashed) and as it would be with that amendment (dotted, its own colour).
// A server error's exit code, or 0.
int AddSession(Client& client, const std::string& name, std::vector<PlotSeries>* out,
               std::vector<PlotMarker>* markers) {
  int64_t steps = absl::GetFlag(FLAGS_steps);
  if (steps < 0) steps = kDefaultSessionSteps;
  steps = std::max<int64_t>(1, std::min<int64_t>(steps, 10000));
  auto session = client.GetSession(name);
  if (!session.ok()) return Fail(session.status());
  int color = 0;
  for (const PlotSeries& p : *out) color = std::max(color, p.color + 1);
  color = std::max(color, static_cast<int>(out->size()));
  const int groups = session->groups_size();
  const std::string label = absl::StrCat("session ", name);

  auto history = client.History(name);
  if (history.ok()) {
    PlotSeries past;
    past.past = true;
    AddEpochs(label, history->epochs(), past, color, out);
    for (const v1::Amendment& a : history->amendments()) {
      markers->push_back({static_cast<double>(a.at_epoch()), MarkerLabel(a)});
    }
  } else if (history.status().code() == absl::StatusCode::kUnimplemented) {
    std::cerr << "lrsched: warning: the server keeps no record (GetHistory unimplemented): "
                 "plotting the lookahead of "
              << name << " only\n";
  } else {
    return Fail(history.status());
  }
  PlotSeries future;
  future.dash = PlotSeries::Dash::kDashed;
  if (absl::GetFlag(FLAGS_dry_run)) {
    auto req = AmendRequestFromFlags(name);
    if (!req.ok()) return Fail(req.status(), kExitUsage);
    req->set_dry_run(true);
    req->set_dry_run_window(static_cast<int32_t>(steps));
    auto r = client.Amend(*req);
    if (!r.ok()) return Fail(r.status());
    AddEpochs(absl::StrCat(label, " (now)"), r->current(), future, color, out);
    PlotSeries amended;
    amended.dash = PlotSeries::Dash::kDotted;
    AddEpochs(absl::StrCat(label, " (amended)"), r->amended(), amended, color + groups, out);
    std::string what = req->reason().empty() ? r->amendment().kind() : req->reason();
    markers->push_back(
        {static_cast<double>(r->amendment().at_epoch()), absl::StrCat(what, " (dry run)")});
    return kExitOk;
  }
  if (!session->deterministic()) {
    std::cerr << "lrsched: warning: session " << name
              << " is not deterministic (no lookahead): plotting its record only\n";
    if (!history.ok()) {
      google::protobuf::RepeatedPtrField<v1::EpochValues> now;
      v1::EpochValues* e = now.Add();
      e->set_epoch(session->last_epoch());
      *e->mutable_groups() = session->groups();
      AddEpochs(label, now, PlotSeries{}, color, out);
    }
    return kExitOk;
  }
  auto r = client.GetLR(name, 0, static_cast<int32_t>(steps));
  if (!r.ok()) return Fail(r.status());
  AddEpochs(label, r->window(), future, color, out);
  return kExitOk;
}

}  // namespace

int RunPlot(const std::vector<std::string>& args) {
  const std::string out_path = absl::GetFlag(FLAGS_out);
  const std::vector<std::string> sessions = absl::GetFlag(FLAGS_session);
  if (out_path.empty() || (args.size() < 2 && sessions.empty())) {
    return Fail(
        absl::InvalidArgumentError("usage: lrsched plot FILE... [--session=NAME,... --server=ADDR] "
                                   "--out=OUT.svg [--steps=N] [--title=T]"),
        kExitUsage);
  }
  std::vector<PlotSeries> series;
  for (size_t i = 1; i < args.size(); ++i) {
    int code = AddFile(args[i], &series);
    if (code != kExitOk) return code;
  }
  const bool dry_run = absl::GetFlag(FLAGS_dry_run);
  if (dry_run && (sessions.size() != 1 || !AmendFlagsGiven())) {
    return Fail(absl::InvalidArgumentError(
                    "--dry-run: plot one --session with the amendment's flags (--continue-with, "
                    "--set or --scale, as for `lrsched amend`)"),
                kExitUsage);
  }
  if (!dry_run && AmendFlagsGiven()) {
    return Fail(absl::InvalidArgumentError("plot: --continue-with, --set and --scale need "
                                           "--dry-run (plot never changes a session)"),
                kExitUsage);
  }
  PlotOptions o;
  if (!sessions.empty()) {
    auto client = ConnectFromFlags();
    if (!client.ok()) return Fail(client.status(), kExitUsage);
    for (const std::string& name : sessions) {
      int code = AddSession(**client, name, &series, &o.markers);
      if (code != kExitOk) return code;
    }
  }
  o.title = absl::GetFlag(FLAGS_title);
  if (o.title.empty()) {
    std::vector<std::string> labels;
    for (const PlotSeries& s : series) labels.push_back(s.label);
    o.title = labels.size() == 1 ? labels[0] : "learning-rate schedules";
  }
  o.x_label = args.size() < 2 ? "epoch (last_epoch)" : "step";
  std::string svg = RenderSvg(series, o);
  std::ofstream f(out_path, std::ios::binary);
  if (!f || !(f << svg) || !(f.flush())) {
    return Fail(absl::InvalidArgumentError("cannot write " + out_path), kExitUsage);
  }
  std::cout << "wrote " << out_path << " (" << series.size() << " curves, " << o.markers.size()
            << " markers)\n";
  return kExitOk;
}

}  // namespace lrsched::cli
