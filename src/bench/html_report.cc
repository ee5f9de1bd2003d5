#include "bench/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "bench/llama_bench_format.h"
#include "bench/report.h"
#include "bench/svg_chart.h"

namespace llm {

namespace {

const char* kStyle = R"(<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}
.meta{color:#555;font-size:13px}table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f2f2f2}td.l,th.l{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:14px}.chart{border:1px solid #e4e4e4;background:#fff}
.faster{color:#2e7d32;font-weight:bold}.slower{color:#c62828;font-weight:bold}.note{font-size:12px;color:#555}
ol li{margin:3px 0;font-size:13px}
</style>
)";

std::string E(const std::string& s) { return XmlEscape(s); }
std::string S(const nlohmann::json& j, const char* k) {
  if (!j.is_object() || !j.contains(k)) return "";
  return j[k].is_string() ? j[k].get<std::string>() : j[k].dump();
}
double D(const nlohmann::json& j, const char* k, double def = 0) {
  return j.is_object() && j.contains(k) && j[k].is_number() ? j[k].get<double>() : def;
}
const nlohmann::json& Obj(const nlohmann::json& j, const char* k) {
  static const nlohmann::json empty = nlohmann::json::object();
  return j.is_object() && j.contains(k) && j[k].is_object() ? j[k] : empty;
}
const nlohmann::json& Arr(const nlohmann::json& j, const char* k) {
  static const nlohmann::json empty = nlohmann::json::array();
  return j.is_object() && j.contains(k) && j[k].is_array() ? j[k] : empty;
}

std::string Head(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + E(title) +
         "</title>\n<meta name=\"viewport\" content=\"width=device-width\">\n" + kStyle + "</head><body>\n";
}

std::string Row(const std::vector<std::string>& cells, bool header = false, size_t left_cols = 1) {
  std::string o = "<tr>";
  for (size_t i = 0; i < cells.size(); ++i) {
    const char* tag = header ? "th" : "td";
    o += fmt::format("<{}{}>{}</{}>", tag, i < left_cols ? " class=\"l\"" : "", cells[i], tag);
  }
  return o + "</tr>\n";
}

// Self time per (layer, category) of one phase from the trace: events of the
// main thread (tid 0), self = duration minus direct children.
std::map<int, std::map<std::string, double>> LayerCategoryMs(const nlohmann::json& trace, bool decode, int* steps) {
  struct Ev {
    double ts, dur;
    int layer, step;
    std::string cat;
  };
  std::vector<Ev> ev;
  const nlohmann::json& events = trace.is_object() ? Arr(trace, "traceEvents") : trace;
  std::set<int> step_set;
  for (const auto& e : events) {
    if (!e.is_object() || S(e, "ph") != "X" || D(e, "tid", -1) != 0 || D(e, "pid", 1) != 1) continue;
    const nlohmann::json& a = Obj(e, "args");
    const int step = static_cast<int>(D(a, "step", -2));
    if ((step >= 0) != decode) continue;
    ev.push_back({D(e, "ts"), D(e, "dur"), static_cast<int>(D(a, "layer", -1)), step, S(e, "cat")});
    if (step >= 0) step_set.insert(step);
  }
  *steps = decode ? std::max<int>(1, static_cast<int>(step_set.size())) : 1;
  std::sort(ev.begin(), ev.end(), [](const Ev& a, const Ev& b) { return a.ts != b.ts ? a.ts < b.ts : a.dur > b.dur; });
  std::vector<double> self(ev.size());
  std::vector<size_t> stack;
  for (size_t i = 0; i < ev.size(); ++i) {
    self[i] = ev[i].dur;
    while (!stack.empty() && ev[stack.back()].ts + ev[stack.back()].dur <= ev[i].ts + 1e-9) stack.pop_back();
    if (!stack.empty()) self[stack.back()] -= ev[i].dur;
    stack.push_back(i);
  }
  std::map<int, std::map<std::string, double>> out;
  for (size_t i = 0; i < ev.size(); ++i) {
    if (ev[i].layer >= 0 && self[i] > 0) out[ev[i].layer][ev[i].cat] += self[i] / 1e3 / *steps;
  }
  return out;
}

std::string ProfileSection(const nlohmann::json& stats, const nlohmann::json* trace) {
  std::string o = "<h2 id=\"profile\">Profile (one recorded run of the first test)</h2>\n";
  const nlohmann::json& cal = Obj(stats, "calibration");
  const double bw = D(cal, "read_gbps"), fma = D(cal, "fma_gflops"), amx = D(cal, "amx_bf16_gflops"),
               dots = D(cal, "bf16_dot_gflops");
  o += fmt::format("<p class=\"meta\">Roofs: read bandwidth {:.1f} GB/s, FMA peak {:.0f} GFLOP/s{}{} ({})</p>\n", bw, fma,
                   amx > 0 ? fmt::format(", AMX-BF16 peak {:.0f} GFLOP/s", amx) : "",
                   dots > 0 ? fmt::format(", AVX512-BF16 peak {:.0f} GFLOP/s", dots) : "", E(S(cal, "source")));
  const nlohmann::json& phases = Obj(stats, "phases");
  std::vector<std::string> phase_names;
  for (const char* p : {"prefill", "decode"}) if (phases.contains(p)) phase_names.push_back(p);
  // Per category, stacked per phase, ms per step.
  std::vector<std::string> cats;
  for (const auto& p : phase_names) {
    for (const auto& c : Arr(phases[p], "categories")) {
      if (std::find(cats.begin(), cats.end(), S(c, "name")) == cats.end()) cats.push_back(S(c, "name"));
    }
  }
  o += "<div class=\"charts\">\n";
  for (const auto& p : phase_names) {
    const double steps = std::max(1.0, D(phases[p], "steps", 1));
    std::vector<ChartSeries> series;
    for (const auto& cat : cats) {
      ChartSeries s;
      s.name = cat;
      double v = 0;
      for (const auto& c : Arr(phases[p], "categories")) if (S(c, "name") == cat) v = D(c, "self_ms") / steps;
      s.y = {v};
      series.push_back(s);
    }
    ChartSpec spec{"chart-categories-" + p, p + ": ms per step by category", "", "ms per step"};
    spec.width = 300;
    o += BarChartSvg(spec, {p}, series, /*stacked=*/true);
  }
  // Per layer, stacked by category (from the trace), else per-layer totals.
  for (const auto& p : phase_names) {
    std::vector<std::string> layers;
    std::vector<ChartSeries> series;
    int steps = 1;
    std::map<int, std::map<std::string, double>> lc;
    if (trace != nullptr) lc = LayerCategoryMs(*trace, p == "decode", &steps);
    if (!lc.empty()) {
      std::vector<std::string> lcats;
      for (const auto& [l, m] : lc) for (const auto& [c, v] : m) if (std::find(lcats.begin(), lcats.end(), c) == lcats.end()) lcats.push_back(c);
      for (const auto& [l, m] : lc) layers.push_back(std::to_string(l));
      for (const auto& c : lcats) {
        ChartSeries s;
        s.name = c;
        const auto it = std::find(cats.begin(), cats.end(), c);
        s.color = PaletteColor(it == cats.end() ? cats.size() + series.size() : static_cast<size_t>(it - cats.begin()));
        for (const auto& [l, m] : lc) s.y.push_back(m.count(c) ? m.at(c) : 0);
        series.push_back(s);
      }
    } else {
      ChartSeries s;
      s.name = "self time";
      const double st = std::max(1.0, D(phases[p], "steps", 1));
      for (const auto& l : Arr(phases[p], "layers")) {
        layers.push_back(S(l, "name"));
        s.y.push_back(D(l, "self_ms") / st);
      }
      series.push_back(s);
    }
    ChartSpec spec{"chart-layers-" + p, p + ": ms per step per layer, stacked by category", "layer", "ms per step"};
    spec.width = 560;
    o += BarChartSvg(spec, layers, series, /*stacked=*/true);
  }
  o += "</div>\n<div class=\"charts\">\n";
  // Roofline: operators as points (arithmetic intensity, GFLOP/s) under the roofs.
  {
    std::vector<ChartSeries> series;
    double imin = 1e9, imax = 0, gmax = 0;
    for (const auto& p : phase_names) {
      ChartSeries s;
      s.name = p + " operators";
      s.line = false;
      s.points = true;
      for (const auto& op : Arr(phases[p], "operators")) {
        const double fl = D(op, "flops"), by = D(op, "bytes"), g = D(op, "gflops_per_s");
        if (fl <= 0 || by <= 0 || g <= 0) continue;
        s.x.push_back(fl / by);
        s.y.push_back(g);
        s.labels.push_back(fmt::format("{} {}: {:.2f} FLOP/B, {:.1f} GFLOP/s, {} ({}), {:.0f}% of {} roof", p, S(op, "name"),
                                       fl / by, g, S(op, "bound"), S(op, "compute_unit"),
                                       100 * D(op, "fraction_of_roof"), S(op, "roof")));
        imin = std::min(imin, fl / by), imax = std::max(imax, fl / by), gmax = std::max(gmax, g);
      }
      series.push_back(s);
    }
    if (imax > 0) {
      imin = std::max(1e-3, imin / 2), imax = imax * 2;
      auto roof = [&](const std::string& name, double peak, const std::string& color, bool dashed) {
        ChartSeries r;
        r.name = name;
        r.color = color;
        r.dashed = dashed;
        for (int i = 0; i <= 48; ++i) {
          const double x = imin * std::pow(imax / imin, i / 48.0);
          r.x.push_back(x);
          r.y.push_back(bw > 0 ? std::min(peak, bw * x) : peak);
        }
        series.push_back(r);
      };
      if (fma > 0) roof(fmt::format("FMA roof {:.0f}", fma), fma, "#333333", false);
      if (amx > 0) roof(fmt::format("AMX-BF16 roof {:.0f}", amx), amx, "#8e44ad", true);
      if (dots > 0) roof(fmt::format("AVX512-BF16 roof {:.0f}", dots), dots, "#16a085", true);
      ChartSpec spec{"chart-roofline", "Roofline: operators vs measured bandwidth and compute roofs",
                     "arithmetic intensity (FLOP/byte, log)", "GFLOP/s (log)", true, true};
      spec.width = 620;
      spec.height = 360;
      o += LineChartSvg(spec, series);
    }
  }
  // Memory timeline from the trace's counter track.
  if (trace != nullptr) {
    std::map<std::string, ChartSeries> by_cat;
    const nlohmann::json& events = trace->is_object() ? Arr(*trace, "traceEvents") : *trace;
    for (const auto& e : events) {
      if (!e.is_object() || S(e, "ph") != "C" || S(e, "name") != "memory (bytes)") continue;
      for (const auto& [k, v] : Obj(e, "args").items()) {
        if (!v.is_number()) continue;
        ChartSeries& s = by_cat[k];
        s.name = k;
        s.x.push_back(D(e, "ts") / 1e3);
        s.y.push_back(v.get<double>() / 1048576.0);
      }
    }
    if (!by_cat.empty()) {
      std::vector<ChartSeries> series;
      for (auto& [k, s] : by_cat) series.push_back(s);
      ChartSpec spec{"chart-memory", "Memory by category over the profiled run", "ms", "MiB"};
      spec.width = 560;
      o += LineChartSvg(spec, series);
    }
  }
  o += "</div>\n";
  // Bottlenecks: the five costliest operators over both phases.
  struct Op {
    std::string phase;
    const nlohmann::json* op;
  };
  std::vector<Op> all;
  for (const auto& p : phase_names) for (const auto& op : Arr(phases[p], "operators")) all.push_back({p, &op});
  std::sort(all.begin(), all.end(), [](const Op& a, const Op& b) { return D(*a.op, "self_ms") > D(*b.op, "self_ms"); });
  o += "<h2 id=\"bottlenecks\">Bottlenecks</h2>\n<ol id=\"bottleneck-list\">\n";
  for (size_t i = 0; i < std::min<size_t>(5, all.size()); ++i) {
    const nlohmann::json& op = *all[i].op;
    o += fmt::format("<li>[{}] <b>{}</b> ({:.3f} ms self, {} calls): {}-bound at {:.0f}% of the {} roof ({}; {:.1f} "
                     "GFLOP/s, {:.1f} GB/s)</li>\n",
                     all[i].phase, E(S(op, "name")), D(op, "self_ms"), S(op, "calls"), E(S(op, "bound")),
                     100 * D(op, "fraction_of_roof"), E(S(op, "roof")), E(S(op, "compute_unit")), D(op, "gflops_per_s"),
                     D(op, "gbytes_per_s"));
  }
  o += "</ol>\n";
  for (const auto& p : phase_names) {
    const double steps = std::max(1.0, D(phases[p], "steps", 1));
    o += fmt::format("<h3>{} operators ({:.0f} step{}, {:.2f} ms wall)</h3>\n<table id=\"ops-{}\">\n", p, steps,
                     steps > 1 ? "s" : "", D(phases[p], "wall_ms"), p);
    o += Row({"operator", "category", "calls", "self ms", "ms/step", "GFLOP/s", "GB/s", "bound", "% of roof", "unit"}, true, 2);
    for (const auto& op : Arr(phases[p], "operators")) {
      o += Row({E(S(op, "name")), E(S(op, "category")), S(op, "calls"), fmt::format("{:.3f}", D(op, "self_ms")),
                fmt::format("{:.3f}", D(op, "self_ms") / steps), fmt::format("{:.1f}", D(op, "gflops_per_s")),
                fmt::format("{:.2f}", D(op, "gbytes_per_s")), E(S(op, "bound")),
                fmt::format("{:.0f}%", 100 * D(op, "fraction_of_roof")), E(S(op, "compute_unit"))},
               false, 2);
    }
    o += "</table>\n";
  }
  return o;
}

}  // namespace

std::string RunReportHtml(const nlohmann::json& results, const nlohmann::json* stats, const nlohmann::json* trace) {
  const nlohmann::json& model = Obj(results, "model");
  const nlohmann::json& settings = Obj(results, "settings");
  const nlohmann::json& sys = Obj(results, "system");
  std::string o = Head("llama-speedbench report: " + S(model, "source"));
  o += "<h1>llama-speedbench report</h1>\n";
  o += fmt::format("<p class=\"meta\">{} &middot; {} &middot; {} params &middot; device {} ({} kernels, {} threads) "
                   "&middot; {} repetitions, {} warm-up<br>{} &middot; SIMD {} &middot; commit {} &middot; {}</p>\n",
                   E(S(model, "source")), E(S(model, "dtype")), E(S(model, "num_parameters")), E(S(settings, "device")),
                   E(S(settings, "kernels")), E(S(settings, "threads")), E(S(settings, "repetitions")),
                   E(S(settings, "warmup")), E(S(sys, "cpu")), E(S(sys, "simd")), E(S(sys, "git_commit")),
                   E(S(sys, "date")));
  const nlohmann::json& runs = Arr(results, "runs");
  o += "<h2 id=\"summary\">Summary</h2>\n<table id=\"summary-table\">\n";
  o += Row({"test", "prompt", "generated", "time s", "tok/s", "TTFT ms", "prefill tok/s", "decode tok/s", "ITL p50 ms",
            "ITL p99 ms"},
           true);
  std::vector<std::string> names;
  ChartSeries pre, dec;
  pre.name = "prefill tok/s (median, +- stddev)";
  dec.name = "decode tok/s (median, +- stddev)";
  dec.color = PaletteColor(1);
  for (const auto& r : runs) {
    const nlohmann::json& st = Obj(r, "stats");
    const nlohmann::json& itl = Obj(r, "itl_ms");
    o += Row({E(S(r, "name")), S(r, "prompt_tokens"), S(r, "generated_tokens"), fmt::format("{:.3f}", D(r, "time_s")),
              fmt::format("{:.2f}", D(r, "tokens_per_sec")), fmt::format("{:.1f}", 1e3 * D(r, "ttft_s")),
              fmt::format("{:.2f} &plusmn; {:.2f}", D(r, "prefill_tokens_per_sec"),
                          D(Obj(st, "prefill_tokens_per_sec"), "stddev")),
              fmt::format("{:.2f} &plusmn; {:.2f}", D(r, "decode_tokens_per_sec"),
                          D(Obj(st, "decode_tokens_per_sec"), "stddev")),
              fmt::format("{:.2f}", D(itl, "p50")), fmt::format("{:.2f}", D(itl, "p99"))});
    names.push_back(S(r, "name"));
    pre.y.push_back(D(r, "prefill_tokens_per_sec"));
    pre.err.push_back(D(Obj(st, "prefill_tokens_per_sec"), "stddev"));
    dec.y.push_back(D(r, "decode_tokens_per_sec"));
    dec.err.push_back(D(Obj(st, "decode_tokens_per_sec"), "stddev"));
  }
  o += "</table>\n<h2 id=\"throughput\">Prefill and decode</h2>\n<div class=\"charts\">\n";
  o += BarChartSvg({"chart-prefill", "Prefill tokens/sec per test", "", "tokens/sec"}, names, {pre}, false);
  o += BarChartSvg({"chart-decode", "Decode tokens/sec per test", "", "tokens/sec"}, names, {dec}, false);
  o += "</div>\n";
  // Inter-token latency over the tokens of each run (first repetition) and the histogram of all of them.
  std::vector<ChartSeries> itl_series;
  std::vector<double> all_itl;
  for (const auto& r : runs) {
    const nlohmann::json& reps = Arr(r, "repetitions");
    if (reps.empty()) continue;
    const nlohmann::json& lat = Arr(reps[0], "token_latencies_ms");
    if (lat.size() < 2) continue;
    ChartSeries s;
    s.name = S(r, "name");
    for (size_t i = 0; i < lat.size(); ++i) {
      s.x.push_back(static_cast<double>(i + 2));
      s.y.push_back(lat[i].get<double>());
    }
    for (const auto& rep : reps) for (const auto& v : Arr(rep, "token_latencies_ms")) all_itl.push_back(v.get<double>());
    if (itl_series.size() < 8) itl_series.push_back(s);
  }
  o += "<h2 id=\"latency\">Inter-token latency</h2>\n";
  if (itl_series.empty()) {
    o += "<p class=\"note\">No per-token latencies in these results (runs of one token, or results written before "
         "<code>token_latencies_ms</code> was recorded).</p>\n";
  } else {
    o += "<div class=\"charts\">\n";
    o += LineChartSvg({"chart-itl", "Inter-token latency over a run (first repetition)", "token", "ms"}, itl_series);
    std::sort(all_itl.begin(), all_itl.end());
    const double lo = all_itl.front(), hi = all_itl.back();
    const int bins = 24;
    const double w = hi > lo ? (hi - lo) / bins : 1;
    ChartSeries h;
    h.name = fmt::format("{} decode steps", all_itl.size());
    h.y.assign(bins, 0);
    std::vector<std::string> labels;
    for (int b = 0; b < bins; ++b) labels.push_back(b % 4 == 0 ? fmt::format("{:.2f}", lo + b * w) : "");
    for (double v : all_itl) h.y[std::min(bins - 1, static_cast<int>((v - lo) / w))] += 1;
    o += BarChartSvg({"chart-itl-hist", "Inter-token latency histogram (all repetitions, all tests)", "ms", "steps"},
                     labels, {h}, false);
    o += "</div>\n";
  }
  // Sweeps: ppN rows against the prompt length, tgN @ dD rows against the depth.
  ChartSeries pp;
  pp.name = "prefill tok/s";
  pp.points = true;
  std::map<int, ChartSeries> tg;
  for (const auto& r : runs) {
    const LlamaBenchShape sh = LlamaBenchShapeOf(S(r, "name"), static_cast<int>(D(r, "prompt_tokens")),
                                                 static_cast<int>(D(r, "generated_tokens")));
    const std::string n = S(r, "name");
    if (n.rfind("pp", 0) == 0 && sh.n_gen == 0) {
      pp.x.push_back(sh.n_prompt);
      pp.y.push_back(D(r, "prefill_tokens_per_sec"));
    } else if (n.rfind("tg", 0) == 0 && sh.n_prompt == 0) {
      ChartSeries& s = tg[sh.n_gen];
      s.name = "tg" + std::to_string(sh.n_gen) + " decode tok/s";
      s.points = true;
      s.x.push_back(sh.n_depth);
      s.y.push_back(D(r, "decode_tokens_per_sec"));
    }
  }
  std::string sweeps;
  if (pp.x.size() >= 2) {
    sweeps += LineChartSvg({"chart-sweep-prompt", "Prefill tokens/sec vs prompt length", "prompt tokens", "tokens/sec"},
                           {pp});
  }
  std::vector<ChartSeries> tgs;
  for (auto& [g, s] : tg) if (s.x.size() >= 2) tgs.push_back(s);
  if (!tgs.empty()) {
    sweeps += LineChartSvg({"chart-sweep-depth", "Decode tokens/sec vs KV-cache depth", "depth (tokens)", "tokens/sec"},
                           tgs);
  }
  if (!sweeps.empty()) o += "<h2 id=\"sweeps\">Sweeps</h2>\n<div class=\"charts\">\n" + sweeps + "</div>\n";
  if (stats != nullptr) o += ProfileSection(*stats, trace);
  o += "<p class=\"note\">Written by llama-speedbench (speed_benchmark --report html); charts are inline SVG, the page "
       "loads nothing.</p>\n</body></html>\n";
  return o;
}

Result<std::string> WriteRunReport(const std::string& dir) {
  LLM_ASSIGN_OR_RETURN(nlohmann::json results, ReadJsonFile(dir + "/benchmark_results.json"));
  nlohmann::json stats, trace;
  bool have_stats = false, have_trace = false;
  if (auto s = ReadJsonFile(dir + "/profiler_stats.json"); s.ok()) stats = std::move(s.value()), have_stats = true;
  if (have_stats) {
    if (auto t = ReadJsonFile(dir + "/profiler_trace.json"); t.ok()) trace = std::move(t.value()), have_trace = true;
  }
  const std::string path = dir + "/report.html";
  LLM_RETURN_IF_ERROR(
      WriteFileAtomic(path, RunReportHtml(results, have_stats ? &stats : nullptr, have_trace ? &trace : nullptr)));
  return path;
}

std::string CompareReportHtml(const Comparison& c) {
  std::string o = Head("llama-speedbench comparison");
  o += "<h1>llama-speedbench comparison</h1>\n";
  o += fmt::format("<p class=\"meta\">base: {}<br>new: {}<br>model: {}</p>\n", E(c.base_path), E(c.new_path), E(c.model));
  o += "<p class=\"meta\">differs: ";
  if (c.differences.empty()) o += "nothing recorded";
  for (size_t i = 0; i < c.differences.size(); ++i) o += (i ? "; " : "") + E(c.differences[i]);
  o += "<br>interval: " + E(c.method) + "</p>\n";
  o += "<h2 id=\"summary\">Ratios (new / base tokens/sec)</h2>\n<table id=\"compare-table\">\n";
  o += Row({"test", "metric", "base", "new", "ratio", "95% CI", "verdict"}, true, 2);
  std::vector<std::string> labels;
  ChartSeries s;
  for (const CompareRow& r : c.rows) {
    const std::string cls = r.verdict == "faster" ? "faster" : r.verdict == "slower" ? "slower" : "";
    o += Row({E(r.test), E(r.metric), fmt::format("{:.2f}", r.base_median), fmt::format("{:.2f}", r.new_median),
              fmt::format("{:.3f}", r.ratio),
              std::isnan(r.ci_low) ? "n/a" : fmt::format("{:.3f}&ndash;{:.3f}", r.ci_low, r.ci_high),
              cls.empty() ? E(r.verdict) : "<span class=\"" + cls + "\">" + E(r.verdict) + "</span>"},
             false, 2);
    labels.push_back(r.test + " " + r.metric);
    s.y.push_back(r.ratio);
    s.lo.push_back(r.ci_low);
    s.hi.push_back(r.ci_high);
  }
  o += "</table>\n";
  ChartSpec spec{"chart-ratios", "new / base tokens/sec with 95% bootstrap intervals (green faster, red slower)",
                 "ratio (1 = no change)", ""};
  spec.width = 760;
  o += RatioBarsSvg(spec, labels, s);
  if (c.profiled) {
    o += "<h2 id=\"profile\">Operators (ms per step, one profiled run each)</h2>\n<div class=\"charts\">\n";
    for (const char* phase : {"prefill", "decode"}) {
      std::vector<std::string> ol;
      ChartSeries os;
      for (const CompareOpRow& op : c.ops) {
        if (op.phase != phase || op.base_ms <= 0 || ol.size() >= 12) continue;
        ol.push_back(op.name + fmt::format(" ({:+.3f} ms)", op.delta_ms));
        os.y.push_back(op.new_ms / op.base_ms);
      }
      if (ol.empty()) continue;
      ChartSpec ps{std::string("chart-op-ratios-") + phase,
                   std::string(phase) + ": new / base ms per step, the 12 largest changes", "time ratio (> 1 slower)", ""};
      ps.width = 660;
      o += RatioBarsSvg(ps, ol, os, /*time_ratio=*/true);
    }
    o += "</div>\n<table id=\"compare-ops\">\n";
    o += Row({"phase", "operator", "base ms/step", "new ms/step", "delta ms", "share of change", "verdict"}, true, 2);
    for (const CompareOpRow& op : c.ops) {
      o += Row({op.phase, E(op.name), fmt::format("{:.3f}", op.base_ms), fmt::format("{:.3f}", op.new_ms),
                fmt::format("{:+.3f}", op.delta_ms), fmt::format("{:+.1f}%", op.share_pct), E(op.verdict)},
               false, 2);
    }
    o += "</table>\n";
  }
  o += "<p class=\"note\">Written by speed_benchmark compare --report html; inline SVG, loads nothing.</p>\n</body></html>\n";
  return o;
}

}  // namespace llm
