// Small inline-SVG charts for the HTML report: no JavaScript, no external
// files. Every chart is one <svg id=ID class="chart"> whose marks carry
// classes (bar, err, pt, series) so that a test can count them in the DOM.
#pragma once

#include <string>
#include <vector>

namespace llm {

struct ChartSeries {
  std::string name;
  std::vector<double> x, y;
  std::vector<double> err;             // bar charts: +- error (same length as y) or empty
  std::vector<double> lo, hi;          // ratio bars: interval ends
  std::vector<std::string> labels;     // points: tooltip (<title>) per point
  bool line = true, points = false, dashed = false;
  std::string color;                   // empty: the palette's next colour
};

struct ChartSpec {
  std::string id, title, x_label, y_label;
  bool x_log = false, y_log = false;
  int width = 640, height = 300;
};

std::string XmlEscape(const std::string& s);
const std::string& PaletteColor(size_t i);

// Lines and/or points over numeric x (log axes allowed).
std::string LineChartSvg(const ChartSpec& spec, const std::vector<ChartSeries>& series);
// Vertical bars per category, one bar per series in each group (or stacked), with error bars.
std::string BarChartSvg(const ChartSpec& spec, const std::vector<std::string>& categories,
                        const std::vector<ChartSeries>& series, bool stacked);
// Horizontal bars of ratios around 1 with their intervals (series[0].y, .lo, .hi), one per label.
// Colour: green above 1 and red below when the interval excludes 1; with time_ratio (no
// intervals; > 1 is slower) red above 1.05 and green below 0.95.
std::string RatioBarsSvg(const ChartSpec& spec, const std::vector<std::string>& labels, const ChartSeries& s,
                         bool time_ratio = false);

}  // namespace llm
