#include "bench/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace llm {

std::string XmlEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

const std::string& PaletteColor(size_t i) {
  static const std::vector<std::string> p = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                                             "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  return p[i % p.size()];
}

namespace {

constexpr int kLeft = 64, kRight = 16, kTop = 28, kBottom = 46;

std::string Fmt(double v) {
  const double a = std::abs(v);
  if (a == 0) return "0";
  if (a >= 1e6 || a < 1e-3) return fmt::format("{:.0e}", v);
  if (a >= 100) return fmt::format("{:.0f}", v);
  if (a >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.3g}", v);
}

struct Scale {
  double lo = 0, hi = 1;
  bool log = false;
  double a = 0, b = 1;  // pixel range
  double T(double v) const { return log ? std::log10(std::max(v, 1e-300)) : v; }
  double operator()(double v) const {
    const double l = T(lo), h = T(hi);
    return h > l ? a + (T(v) - l) / (h - l) * (b - a) : 0.5 * (a + b);
  }
  std::vector<double> Ticks() const {
    std::vector<double> t;
    if (log) {
      for (double e = std::floor(std::log10(lo)); e <= std::ceil(std::log10(hi)); ++e) {
        const double v = std::pow(10.0, e);
        if (v >= lo * 0.999 && v <= hi * 1.001) t.push_back(v);
      }
      if (t.size() < 2) t = {lo, hi};
      return t;
    }
    const double span = hi - lo;
    if (!(span > 0)) return {lo};
    const double raw = span / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 5.0, 10.0}) {
      if (raw <= m * mag) {
        step = m * mag;
        break;
      }
    }
    for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(v);
    return t;
  }
};

void Range(Scale* s, double lo, double hi, bool from_zero) {
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (s->log) {
    lo = std::max(lo, 1e-12);
    hi = std::max(hi, lo * 10);
    s->lo = std::pow(10.0, std::floor(std::log10(lo)));
    s->hi = std::pow(10.0, std::ceil(std::log10(hi)));
    return;
  }
  if (from_zero) lo = std::min(lo, 0.0);
  if (hi == lo) hi = lo + 1;
  const double pad = (hi - lo) * 0.05;
  s->lo = from_zero && lo >= 0 ? lo : lo - pad;
  s->hi = hi + pad;
}

std::string Open(const ChartSpec& spec) {
  std::string o = fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} "
      "{}\" role=\"img\" aria-label=\"{}\">\n",
      XmlEscape(spec.id), spec.width, spec.height, spec.width, spec.height, XmlEscape(spec.title));
  o += fmt::format("<text class=\"title\" x=\"{}\" y=\"16\" text-anchor=\"middle\" font-size=\"13\" "
                   "font-weight=\"bold\">{}</text>\n",
                   spec.width / 2, XmlEscape(spec.title));
  return o;
}

std::string Axes(const ChartSpec& spec, const Scale& x, const Scale& y, bool x_ticks) {
  const int x0 = kLeft, x1 = spec.width - kRight, y0 = spec.height - kBottom, y1 = kTop;
  std::string o = fmt::format("<g class=\"axes\" font-size=\"10\" fill=\"#333\">\n<line x1=\"{}\" y1=\"{}\" x2=\"{}\" "
                              "y2=\"{}\" stroke=\"#333\"/><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n",
                              x0, y0, x1, y0, x0, y0, x0, y1);
  for (double t : y.Ticks()) {
    const double py = y(t);
    o += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1f}\" "
                     "text-anchor=\"end\">{}</text>\n",
                     x0, py, x1, py, x0 - 4, py + 3, Fmt(t));
  }
  if (x_ticks) {
    for (double t : x.Ticks()) {
      const double px = x(t);
      o += fmt::format("<line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\" stroke=\"#333\"/><text x=\"{:.1f}\" "
                       "y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                       px, y0, px, y0 + 4, px, y0 + 15, Fmt(t));
    }
  }
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (x0 + x1) / 2, spec.height - 6,
                   XmlEscape(spec.x_label));
  o += fmt::format("<text x=\"12\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 12 {})\">{}</text>\n</g>\n",
                   (y0 + y1) / 2, (y0 + y1) / 2, XmlEscape(spec.y_label));
  return o;
}

// Rows the legend takes (it wraps at the chart's width); the plot starts below them.
int LegendRows(const ChartSpec& spec, const std::vector<ChartSeries>& series) {
  int x = kLeft + 8, rows = 1;
  for (const auto& s : series) {
    if (s.name.empty()) continue;
    const int w = 24 + static_cast<int>(s.name.size()) * 6;
    if (x + w > spec.width - kRight && x > kLeft + 8) x = kLeft + 8, ++rows;
    x += w;
  }
  return rows;
}

std::string Legend(const ChartSpec& spec, const std::vector<ChartSeries>& series) {
  std::string o = "<g class=\"legend\" font-size=\"10\">\n";
  int x = kLeft + 8, y = kTop - 2;
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i].name.empty()) continue;
    const int w = 24 + static_cast<int>(series[i].name.size()) * 6;
    if (x + w > spec.width - kRight && x > kLeft + 8) x = kLeft + 8, y += 12;  // next legend row
    const std::string& c = series[i].color.empty() ? PaletteColor(i) : series[i].color;
    o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
                     x, y, c, x + 13, y + 9, XmlEscape(series[i].name));
    x += w;
  }
  return o + "</g>\n";
}

}  // namespace

std::string LineChartSvg(const ChartSpec& spec, const std::vector<ChartSeries>& series) {
  double xl = std::numeric_limits<double>::infinity(), xh = -xl, yl = xl, yh = -xl;
  for (const auto& s : series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if ((spec.x_log && s.x[i] <= 0) || (spec.y_log && s.y[i] <= 0) || !std::isfinite(s.y[i])) continue;
      xl = std::min(xl, s.x[i]), xh = std::max(xh, s.x[i]), yl = std::min(yl, s.y[i]), yh = std::max(yh, s.y[i]);
    }
  }
  Scale x, y;
  x.log = spec.x_log, y.log = spec.y_log;
  Range(&x, xl, xh, false);
  Range(&y, yl, yh, !spec.y_log);
  x.a = kLeft, x.b = spec.width - kRight;
  y.a = spec.height - kBottom, y.b = kTop + 12 * LegendRows(spec, series);
  std::string o = Open(spec) + Axes(spec, x, y, true);
  for (size_t si = 0; si < series.size(); ++si) {
    const ChartSeries& s = series[si];
    const std::string& c = s.color.empty() ? PaletteColor(si) : s.color;
    std::string pts;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if ((spec.x_log && s.x[i] <= 0) || (spec.y_log && s.y[i] <= 0) || !std::isfinite(s.y[i])) continue;
      pts += fmt::format("{:.1f},{:.1f} ", x(s.x[i]), y(s.y[i]));
    }
    if (s.line && !pts.empty()) {
      o += fmt::format("<polyline class=\"series\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"{} points=\"{}\"><title>{}"
                       "</title></polyline>\n",
                       c, s.dashed ? " stroke-dasharray=\"5,3\"" : "", pts, XmlEscape(s.name));
    }
    if (s.points) {
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        if ((spec.x_log && s.x[i] <= 0) || (spec.y_log && s.y[i] <= 0) || !std::isfinite(s.y[i])) continue;
        const std::string tip = i < s.labels.size() ? s.labels[i] : fmt::format("{}: {} , {}", s.name, Fmt(s.x[i]), Fmt(s.y[i]));
        o += fmt::format("<circle class=\"pt\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\" fill-opacity=\"0.8\"><title>{}"
                         "</title></circle>\n",
                         x(s.x[i]), y(s.y[i]), c, XmlEscape(tip));
      }
    }
  }
  return o + Legend(spec, series) + "</svg>\n";
}

std::string BarChartSvg(const ChartSpec& spec, const std::vector<std::string>& categories,
                        const std::vector<ChartSeries>& series, bool stacked) {
  double yh = 0;
  for (size_t ci = 0; ci < categories.size(); ++ci) {
    double stack = 0;
    for (const auto& s : series) {
      const double v = ci < s.y.size() && std::isfinite(s.y[ci]) ? s.y[ci] : 0;
      const double e = ci < s.err.size() && std::isfinite(s.err[ci]) ? s.err[ci] : 0;
      stack += v;
      yh = std::max(yh, stacked ? stack : v + e);
    }
  }
  Scale x, y;
  Range(&y, 0, yh, true);
  x.a = kLeft, x.b = spec.width - kRight;
  y.a = spec.height - kBottom, y.b = kTop + 12 * LegendRows(spec, series);
  std::string o = Open(spec) + Axes(spec, x, y, false);
  const double group = (x.b - x.a) / std::max<size_t>(1, categories.size());
  const size_t nb = stacked ? 1 : std::max<size_t>(1, series.size());
  const double bw = group * 0.8 / nb;
  const bool rotate = categories.size() > 8;
  for (size_t ci = 0; ci < categories.size(); ++ci) {
    const double gx = x.a + group * ci + group * 0.1;
    double base = 0;
    for (size_t si = 0; si < series.size(); ++si) {
      const ChartSeries& s = series[si];
      if (ci >= s.y.size() || !std::isfinite(s.y[ci])) continue;
      const std::string& c = s.color.empty() ? PaletteColor(si) : s.color;
      const double v = s.y[ci];
      const double bx = stacked ? gx : gx + bw * si;
      const double top = y(base + v), bottom = y(base);
      o += fmt::format("<rect class=\"bar\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{} "
                       "{}: {}</title></rect>\n",
                       bx, top, std::max(1.0, bw - 1), std::max(0.0, bottom - top), c, XmlEscape(categories[ci]),
                       XmlEscape(s.name), Fmt(v));
      if (!stacked && ci < s.err.size() && s.err[ci] > 0) {
        const double cx = bx + bw / 2, e0 = y(std::max(0.0, v - s.err[ci])), e1 = y(v + s.err[ci]);
        o += fmt::format("<path class=\"err\" d=\"M{:.1f},{:.1f}V{:.1f}M{:.1f},{:.1f}H{:.1f}M{:.1f},{:.1f}H{:.1f}\" "
                         "stroke=\"#222\" fill=\"none\"/>\n",
                         cx, e0, e1, cx - 3, e0, cx + 3, cx - 3, e1, cx + 3);
      }
      if (stacked) base += v;
    }
    const double lx = gx + group * 0.4, ly = spec.height - kBottom + 12;
    o += rotate ? fmt::format("<text font-size=\"9\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" transform=\"rotate(-45 "
                              "{:.1f} {:.1f})\">{}</text>\n",
                              lx, ly, lx, ly, XmlEscape(categories[ci]))
                : fmt::format("<text font-size=\"10\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", lx,
                              ly, XmlEscape(categories[ci]));
  }
  return o + Legend(spec, series) + "</svg>\n";
}

std::string RatioBarsSvg(const ChartSpec& spec0, const std::vector<std::string>& labels, const ChartSeries& s,
                         bool time_ratio) {
  ChartSpec spec = spec0;
  spec.height = kTop + 8 + 22 * static_cast<int>(labels.size()) + 40;  // one 22-pixel row per label
  size_t longest = 0;
  for (const auto& l : labels) longest = std::max(longest, l.size());
  const int left = std::min(spec.width / 2, 16 + 6 * static_cast<int>(longest));  // room for the labels
  double lo = 1, hi = 1;
  for (size_t i = 0; i < labels.size(); ++i) {
    for (double v : {i < s.y.size() ? s.y[i] : 1.0, i < s.lo.size() ? s.lo[i] : 1.0, i < s.hi.size() ? s.hi[i] : 1.0}) {
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  }
  const double pad = std::max(0.02, (hi - lo) * 0.1);
  Scale x;
  x.lo = lo - pad, x.hi = hi + pad, x.a = left, x.b = spec.width - kRight;
  std::string o = Open(spec);
  const int y0 = kTop + 8, y1 = spec.height - kBottom + 8;
  o += "<g class=\"axes\" font-size=\"10\">\n";
  for (double t : x.Ticks()) {
    o += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#ddd\"/><text x=\"{0:.1f}\" "
                     "y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
                     x(t), y0, y1, y1 + 12, Fmt(t));
  }
  o += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#333\" stroke-width=\"1.5\"/>\n", x(1.0),
                   y0, y1);
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n</g>\n", (left + spec.width) / 2,
                   spec.height - 8, XmlEscape(spec.x_label));
  for (size_t i = 0; i < labels.size(); ++i) {
    const double r = i < s.y.size() ? s.y[i] : 1.0, cy = y0 + 22 * i + 11;
    const bool ci = i < s.lo.size() && std::isfinite(s.lo[i]) && std::isfinite(s.hi[i]);
    std::string color = ci && s.lo[i] > 1 ? "#59a14f" : ci && s.hi[i] < 1 ? "#e15759" : "#9aa4ad";
    if (time_ratio) color = r > 1.05 ? "#e15759" : r < 0.95 ? "#59a14f" : "#9aa4ad";
    const double a = x(std::min(1.0, r)), b = x(std::max(1.0, r));
    o += fmt::format("<text font-size=\"10\" x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 6, cy + 3,
                     XmlEscape(labels[i]));
    o += fmt::format("<rect class=\"bar\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"14\" fill=\"{}\"><title>{}: "
                     "{:.3f}</title></rect>\n",
                     a, cy - 7, std::max(1.0, b - a), color, XmlEscape(labels[i]), r);
    if (ci) {
      const double l = x(s.lo[i]), h = x(s.hi[i]);
      o += fmt::format("<path class=\"err\" d=\"M{:.1f},{:.1f}H{:.1f}M{:.1f},{:.1f}V{:.1f}M{:.1f},{:.1f}V{:.1f}\" "
                       "stroke=\"#222\" fill=\"none\"/>\n",
                       l, cy, h, l, cy - 4, cy + 4, h, cy - 4, cy + 4);
    }
  }
  return o + "</svg>\n";
}

}  // namespace llm
