// Copyright lrsched authors.
//
// `lrsched plot FILE... [--session=NAME,... --server=ADDR] --out=OUT.svg [--steps=N]
// [--title=T]`: one SVG (svg_plot.h) with a curve per param group of each input.
// - FILE: a simulate input (a spec, or a golden line; its "name" labels the curve), traced
//   locally for its "steps" (or --steps); x is the number of step() calls made.
// - --session=NAME: a live session. The server keeps no history, so what can be plotted is
//   its future: the lookahead window from its current epoch, --steps epochs (default 100;
//   at most 10000); x is the session's last_epoch. A ReduceLROnPlateau session has no
//   lookahead: its current value is plotted as a single point (with a warning).
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

// A live session's lookahead window; a server error's exit code, or 0.
int AddSession(Client& client, const std::string& name, std::vector<PlotSeries>* out) {
  int64_t steps = absl::GetFlag(FLAGS_steps);
  if (steps < 0) steps = kDefaultSessionSteps;
  steps = std::max<int64_t>(1, std::min<int64_t>(steps, 10000));
  auto session = client.GetSession(name);
  if (!session.ok()) return Fail(session.status());
  Trace t;
  t.groups = static_cast<size_t>(session->groups_size());
  t.has_momentum = t.groups > 0 && session->groups(0).has_momentum();
  t.has_weight_decay = t.groups > 0 && session->groups(0).has_weight_decay();
  int64_t x0 = session->last_epoch();
  std::vector<double> xs;  // the window's epochs
  auto add_row = [&](const google::protobuf::RepeatedPtrField<v1::GroupValues>& groups) {
    for (const v1::GroupValues& g : groups) {
      t.lr.push_back(g.lr());
      if (t.has_momentum) t.momentum.push_back(g.momentum());
      if (t.has_weight_decay) t.weight_decay.push_back(g.weight_decay());
    }
  };
  if (!session->deterministic()) {
    std::cerr << "lrsched: warning: session " << name
              << " is not deterministic (no lookahead): plotting its current value only\n";
    add_row(session->groups());
  } else {
    auto r = client.GetLR(name, 0, static_cast<int32_t>(steps));
    if (!r.ok()) return Fail(r.status());
    x0 = r->last_epoch();
    for (const v1::EpochValues& e : r->window()) {
      add_row(e.groups());
      xs.push_back(static_cast<double>(e.epoch()));
    }
  }
  AddTrace(absl::StrCat("session ", name), t, static_cast<double>(x0), out, xs);
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
  if (!sessions.empty()) {
    auto client = ConnectFromFlags();
    if (!client.ok()) return Fail(client.status(), kExitUsage);
    for (const std::string& name : sessions) {
      int code = AddSession(**client, name, &series);
      if (code != kExitOk) return code;
    }
  }
  PlotOptions o;
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
  std::cout << "wrote " << out_path << " (" << series.size() << " curves)\n";
  return kExitOk;
}

}  // namespace lrsched::cli
