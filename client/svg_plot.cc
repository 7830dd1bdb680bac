// Copyright lrsched authors.
#include "client/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace lrsched {
namespace {

// Matplotlib's "tab10" palette: distinct, and readable in print.
constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
const char* Color(const PlotSeries& s, size_t i) {
  return kColors[(s.color >= 0 ? static_cast<size_t>(s.color) : i) % 10];
}

const char* DashAttr(const PlotSeries& s) {
  switch (s.dash) {
    case PlotSeries::Dash::kDashed:
      return " stroke-dasharray=\"7,4\"";
    case PlotSeries::Dash::kDotted:
      return " stroke-dasharray=\"2,3\"";
    default:
      return "";
  }
}

constexpr int kLeft = 80, kRight = 24, kTop = 48, kPanelGap = 36, kBottom = 52;

std::string Escape(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

double Step(const std::vector<double>& ticks) {
  return ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0;
}

// A tick label with as many decimals as the spacing needs (0.25, 1e-05 for tiny ones).
std::string TickText(double v, double step) {
  if (std::fabs(v) < step * 1e-9) v = 0;
  if (step < 1e-4 && v != 0) return absl::StrFormat("%.3g", v);
  int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  return absl::StrFormat("%.*f", decimals, v);
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void Add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

// One panel: frame, grid, ticks, curves. `top` is its upper edge.
using Values = std::vector<double> PlotSeries::*;  // which values a panel shows

void Panel(const std::vector<PlotSeries>& series, Values values, const std::string& y_label,
           const std::vector<double>& xt, int top, const PlotOptions& o, bool x_labels,
           bool marker_labels, std::string* svg) {
  Range y;
  for (const PlotSeries& s : series) {
    for (double v : s.*values) y.Add(v);
  }
  if (y.empty()) y = Range{0, 1};
  if (y.hi - y.lo < 1e-12 * std::max(1.0, std::fabs(y.hi))) {
    double pad = y.hi == 0 ? 1 : std::fabs(y.hi) * 0.1;
    y.lo -= pad;
    y.hi += pad;
  }
  std::vector<double> yt = NiceTicks(y.lo, y.hi, 6);
  const double x0 = xt.front(), x1 = xt.back(), y0 = yt.front(), y1 = yt.back();
  const double left = kLeft, right = o.width - kRight, bottom = top + o.panel_height;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (right - left); };
  auto py = [&](double v) { return bottom - (v - y0) / (y1 - y0) * (bottom - top); };

  for (double t : yt) {
    absl::StrAppendFormat(svg,
                          "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#e0e0e0\" stroke-width=\"1\"/>\n",
                          left, py(t), right, py(t));
    absl::StrAppendFormat(svg,
                          "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                          "font-size=\"12\">%s</text>\n",
                          left - 6, py(t) + 4, TickText(t, Step(yt)));
  }
  for (double t : xt) {
    absl::StrAppendFormat(svg,
                          "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#e0e0e0\" stroke-width=\"1\"/>\n",
                          px(t), static_cast<double>(top), px(t), bottom);
    if (x_labels) {
      absl::StrAppendFormat(svg,
                            "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                            "font-size=\"12\">%s</text>\n",
                            px(t), bottom + 16, TickText(t, Step(xt)));
    }
  }
  // Axes: left and bottom edges.
  absl::StrAppendFormat(svg,
                        "<line class=\"axis\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" "
                        "stroke=\"black\"/>\n<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" "
                        "x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
                        left, top, left, bottom, left, bottom, right, bottom);
  absl::StrAppendFormat(svg,
                        "<text class=\"axis-label\" transform=\"translate(%d,%.1f) rotate(-90)\" "
                        "text-anchor=\"middle\" font-size=\"13\">%s</text>\n",
                        18, (top + bottom) / 2.0, Escape(y_label));
  for (size_t i = 0; i < series.size(); ++i) {
    const PlotSeries& s = series[i];
    const std::vector<double>& v = s.*values;
    std::string points;
    auto flush = [&]() {
      if (points.empty()) return;
      absl::StrAppendFormat(svg,
                            "<polyline class=\"%s\" data-series=\"%d\" fill=\"none\" "
                            "stroke=\"%s\" stroke-width=\"1.8\"%s stroke-linejoin=\"round\" "
                            "points=\"%s\"/>\n",
                            s.past ? "past" : "curve", i, Color(s, i), DashAttr(s), points);
      points.clear();
    };
    for (size_t k = 0; k < v.size() && k < s.x.size(); ++k) {
      if (!std::isfinite(v[k])) {
        flush();
        continue;
      }
      absl::StrAppendFormat(&points, "%s%.2f,%.2f", points.empty() ? "" : " ", px(s.x[k]),
                            py(v[k]));
    }
    flush();
  }
  // Markers (amendments) over the curves; labels staggered so that close ones stay readable.
  for (size_t m = 0; m < o.markers.size(); ++m) {
    const PlotMarker& mk = o.markers[m];
    if (!(mk.x >= x0 && mk.x <= x1)) continue;
    absl::StrAppendFormat(svg,
                          "<line class=\"marker\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" "
                          "y2=\"%.1f\" stroke=\"#555555\" stroke-width=\"1.2\" "
                          "stroke-dasharray=\"3,3\"/>\n",
                          px(mk.x), top, px(mk.x), bottom);
    if (marker_labels) {
      const bool right_half = px(mk.x) > (left + right) / 2;
      absl::StrAppendFormat(svg,
                            "<text class=\"marker-label\" x=\"%.1f\" y=\"%d\" "
                            "text-anchor=\"%s\" font-size=\"11\" fill=\"#333333\">%s</text>\n",
                            px(mk.x) + (right_half ? -4 : 4),
                            top + 14 + 14 * static_cast<int>(m % 4), right_half ? "end" : "start",
                            Escape(mk.label));
    }
  }
}

}  // namespace

std::vector<double> NiceTicks(double lo, double hi, int target) {
  if (!(hi > lo)) hi = lo + 1;
  double raw = (hi - lo) / std::max(1, target - 1);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  double first = std::floor(lo / step + 1e-9) * step;
  double last = std::ceil(hi / step - 1e-9) * step;
  std::vector<double> ticks;
  for (int i = 0; first + i * step <= last + step * 1e-9 && i < 100; ++i) {
    ticks.push_back(first + i * step);
  }
  if (ticks.size() < 2) ticks.push_back(first + step);
  return ticks;
}

std::string RenderSvg(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  bool has_momentum = false, has_weight_decay = false;
  Range x;
  for (const PlotSeries& s : series) {
    // A momentum panel only where momentum moves (OneCycleLR, CyclicLR): Adam's constant
    // beta1 would be a flat line that takes half the figure.
    for (double m : s.momentum) has_momentum = has_momentum || m != s.momentum.front();
    // Weight decay wherever a schedule drives it (Megatron's), even when it stays constant.
    has_weight_decay = has_weight_decay || !s.weight_decay.empty();
    for (double v : s.x) x.Add(v);
  }
  if (x.empty()) x = Range{0, 1};
  std::vector<double> xt = NiceTicks(x.lo, x.hi, 9);
  const int panels = 1 + (has_momentum ? 1 : 0) + (has_weight_decay ? 1 : 0);
  std::vector<size_t> legend;  // past series share their future's entry
  for (size_t i = 0; i < series.size(); ++i) {
    if (!series[i].past) legend.push_back(i);
  }
  const int legend_rows = static_cast<int>((legend.size() + 2) / 3);
  const int legend_h = 20 * legend_rows + 8;
  const int height = kTop + panels * o.panel_height + (panels - 1) * kPanelGap + kBottom + legend_h;
  std::string svg = absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      o.width, height, o.width, height);
  absl::StrAppendFormat(&svg,
                        "<text class=\"title\" x=\"%d\" y=\"28\" text-anchor=\"middle\" "
                        "font-size=\"16\" font-weight=\"bold\">%s</text>\n",
                        o.width / 2, Escape(o.title));
  int top = kTop;
  Panel(series, &PlotSeries::lr, "learning rate", xt, top, o, /*x_labels=*/true,
        /*marker_labels=*/true, &svg);
  if (has_momentum) {
    top += o.panel_height + kPanelGap;
    Panel(series, &PlotSeries::momentum, "momentum / beta1", xt, top, o, /*x_labels=*/true,
          /*marker_labels=*/false, &svg);
  }
  if (has_weight_decay) {
    top += o.panel_height + kPanelGap;
    Panel(series, &PlotSeries::weight_decay, "weight decay", xt, top, o, /*x_labels=*/true,
          /*marker_labels=*/false, &svg);
  }
  const int axis_bottom = top + o.panel_height;
  absl::StrAppendFormat(&svg,
                        "<text class=\"axis-label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                        "font-size=\"13\">%s</text>\n",
                        (kLeft + o.width - kRight) / 2, axis_bottom + 36, Escape(o.x_label));
  // Legend below the plot, three entries per row.
  const int col_w = (o.width - kLeft - kRight) / 3;
  for (size_t k = 0; k < legend.size(); ++k) {
    const size_t i = legend[k];
    int lx = kLeft + static_cast<int>(k % 3) * col_w;
    int ly = axis_bottom + kBottom + 12 + static_cast<int>(k / 3) * 20;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                          "stroke-width=\"3\"%s/>\n<text class=\"legend\" x=\"%d\" y=\"%d\" "
                          "font-size=\"12\">%s</text>\n",
                          lx, ly - 4, lx + 24, ly - 4, Color(series[i], i), DashAttr(series[i]),
                          lx + 30, ly, Escape(series[i].label));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace lrsched
