// Copyright lrsched authors.
//
// A small hand-written SVG line chart for learning-rate curves: one to three stacked panels
// (learning rate; momentum where any curve's momentum changes; weight decay where a schedule
// drives it) sharing the x axis, with "nice"
// round tick values, grid lines, axis labels, a legend and a title. No plotting library: the output
// is plain SVG 1.1 that browsers, rsvg-convert and LaTeX (via conversion) render the same.
//
// Invariants of the output: one <polyline class="curve"> per series and panel it has values
// for (class="past" for a session's record: PlotSeries::past), the legend as <text
// class="legend"> entries in series order (past series have none: they share their future's
// colour), axes as <line class="axis">; non-finite values are skipped (the curve breaks into
// separate polylines). Dashed series carry stroke-dasharray. Markers (PlotOptions::markers) are
// a vertical <line class="marker"> in every panel and a <text class="marker-label"> in the
// first.
#ifndef LRSCHED_CLIENT_SVG_PLOT_H_
#define LRSCHED_CLIENT_SVG_PLOT_H_

#include <string>
#include <vector>

namespace lrsched {

struct PlotSeries {
  std::string label;
  std::vector<double> x;
  std::vector<double> lr;            // same length as x
  std::vector<double> momentum;      // empty, or same length as x
  std::vector<double> weight_decay;  // empty, or same length as x (Megatron's schedules)
  // Drawing: dashed (a lookahead: values not served yet; "dotted" a proposed alternative);
  // `past`: a session's record (class "past", no legend entry); `color`: an index into the
  // palette (-1: the series' position).
  enum class Dash { kSolid, kDashed, kDotted };
  Dash dash = Dash::kSolid;
  bool past = false;
  int color = -1;
};

// A vertical line at x with a label (an amendment: its reason).
struct PlotMarker {
  double x = 0;
  std::string label;
};

struct PlotOptions {
  std::string title;
  std::string x_label = "step";
  int width = 800;
  int panel_height = 320;
  std::vector<PlotMarker> markers;
};

// The SVG document.
std::string RenderSvg(const std::vector<PlotSeries>& series, const PlotOptions& options);

// Round tick values covering [lo, hi]: about `target` ticks at 1, 2 or 5 x 10^k spacing.
std::vector<double> NiceTicks(double lo, double hi, int target);

}  // namespace lrsched

#endif  // LRSCHED_CLIENT_SVG_PLOT_H_
