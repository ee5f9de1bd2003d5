#include "bench/compare.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>

namespace llm {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double Median(std::vector<double> v) {
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The per-repetition samples of `key` in a run (repetitions[].key), else the median alone.
std::vector<double> Samples(const nlohmann::json& run, const char* key) {
  std::vector<double> v;
  if (run.contains("repetitions") && run["repetitions"].is_array()) {
    for (const auto& rep : run["repetitions"]) {
      if (rep.contains(key) && rep[key].is_number()) v.push_back(rep[key].get<double>());
    }
  }
  if (v.empty() && run.contains(key) && run[key].is_number()) v.push_back(run[key].get<double>());
  return v;
}

std::string Str(const nlohmann::json& j, const char* a, const char* b = nullptr) {
  const nlohmann::json* p = &j;
  for (const char* k : {a, b}) {
    if (k == nullptr) break;
    if (!p->is_object() || !p->contains(k)) return "";
    p = &(*p)[k];
  }
  return p->is_string() ? p->get<std::string>() : p->dump();
}

}  // namespace

std::pair<double, double> BootstrapRatioCi(const std::vector<double>& a, const std::vector<double>& b, int resamples,
                                           uint64_t seed) {
  if (a.size() < 2 || b.size() < 2) return {kNaN, kNaN};
  std::mt19937_64 rng(seed);
  std::vector<double> ratios, ra(a.size()), rb(b.size());
  ratios.reserve(resamples);
  std::uniform_int_distribution<size_t> da(0, a.size() - 1), db(0, b.size() - 1);
  for (int i = 0; i < resamples; ++i) {
    for (double& x : ra) x = a[da(rng)];
    for (double& x : rb) x = b[db(rng)];
    const double ma = Median(ra);
    if (ma > 0) ratios.push_back(Median(rb) / ma);
  }
  if (ratios.empty()) return {kNaN, kNaN};
  std::sort(ratios.begin(), ratios.end());
  auto q = [&](double p) { return ratios[std::min(ratios.size() - 1, static_cast<size_t>(p * ratios.size()))]; };
  return {q(0.025), q(0.975)};
}

Result<nlohmann::json> ReadJsonFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return NotFound(path + ": no such file");
  if (!S_ISREG(st.st_mode)) return InvalidArgument(path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(path + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return DataLoss(path + ": not valid JSON (truncated or corrupt?)");
  return j;
}

Result<Comparison> CompareResults(const nlohmann::json& base, const nlohmann::json& next,
                                  const nlohmann::json* base_prof, const nlohmann::json* new_prof) {
  for (const auto* j : {&base, &next}) {
    if (!j->is_object() || !j->contains("runs") || !(*j)["runs"].is_array() || !j->contains("model")) {
      return DataLoss("not a benchmark_results.json (no model or runs)");
    }
  }
  Comparison c;
  // The same model: its architecture (config) must agree; the storage dtype may differ.
  const nlohmann::json cb = base["model"].value("config", nlohmann::json::object());
  const nlohmann::json cn = next["model"].value("config", nlohmann::json::object());
  for (const char* k : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                        "num_key_value_heads", "vocab_size", "head_dim"}) {
    if (cb.value(k, nlohmann::json()) != cn.value(k, nlohmann::json())) {
      return InvalidArgument(fmt::format("the two results are of different models ({}: {} vs {}); compare runs of one "
                                         "model",
                                         k, cb.value(k, nlohmann::json()).dump(), cn.value(k, nlohmann::json()).dump()));
    }
  }
  c.model = Str(base, "model", "source");
  auto diff = [&](const std::string& label, const std::string& a, const std::string& b) {
    if (a != b) c.differences.push_back(label + ": " + a + " -> " + b);
  };
  diff("model", Str(base, "model", "source"), Str(next, "model", "source"));
  diff("dtype", Str(base, "model", "dtype"), Str(next, "model", "dtype"));
  for (const char* k : {"device", "kernels", "threads", "max_seq_len", "repetitions", "warmup"}) {
    diff(k, Str(base, "settings", k), Str(next, "settings", k));
  }
  for (const char* k : {"git_commit", "cpu", "simd", "build_type", "compiler"}) {
    diff(k, Str(base, "system", k), Str(next, "system", k));
  }
  c.method = "bootstrap (10000 resamples of each side's repetitions, seed 17): 95% percentile interval of "
             "median(new)/median(base)";
  std::map<std::string, const nlohmann::json*> new_runs;
  for (const auto& r : next["runs"]) new_runs[r.value("name", "")] = &r;
  std::map<std::string, bool> seen;
  for (const auto& rb : base["runs"]) {
    const std::string name = rb.value("name", "");
    auto it = new_runs.find(name);
    if (it == new_runs.end()) {
      c.unmatched.push_back(name + " (base only)");
      continue;
    }
    seen[name] = true;
    const nlohmann::json& rn = *it->second;
    std::string test = name;
    // Paired by name; say so when the two disagree on the prompt length (batch).
    if (rb.value("prompt_tokens", -1) != rn.value("prompt_tokens", -1)) {
      test += fmt::format(" [prompt {} -> {}]", rb.value("prompt_tokens", -1), rn.value("prompt_tokens", -1));
    }
    for (const auto& [key, label] : {std::pair<const char*, const char*>{"prefill_tokens_per_sec", "prefill tok/s"},
                                     {"decode_tokens_per_sec", "decode tok/s"}}) {
      CompareRow row;
      row.test = test;
      row.metric = label;
      const std::vector<double> a = Samples(rb, key), b = Samples(rn, key);
      row.n_base = static_cast<int>(a.size());
      row.n_new = static_cast<int>(b.size());
      row.base_median = Median(a);
      row.new_median = Median(b);
      if (!(row.base_median > 0) || !(row.new_median > 0)) continue;  // e.g. no decode in a pp test
      // A one-token prompt (tgN) has no prefill worth comparing: its "rate" is one token's latency.
      if (key[0] == 'p' && rb.value("prompt_tokens", 0) <= 1) continue;
      row.ratio = row.new_median / row.base_median;
      std::tie(row.ci_low, row.ci_high) = BootstrapRatioCi(a, b);
      if (std::isnan(row.ci_low)) {
        row.verdict = "too few repetitions";
      } else if (row.ci_low > 1) {
        row.verdict = "faster";
      } else if (row.ci_high < 1) {
        row.verdict = "slower";
      } else {
        row.verdict = "no significant change";
      }
      c.rows.push_back(row);
    }
  }
  for (const auto& [name, r] : new_runs) {
    if (!seen.count(name)) c.unmatched.push_back(name + " (new only)");
  }
  if (c.rows.empty()) return InvalidArgument("the two results have no test in common (compare runs of the same tests)");

  if (base_prof != nullptr && new_prof != nullptr) {
    c.profiled = true;
    const char* phases[2] = {"prefill", "decode"};
    for (int p = 0; p < 2; ++p) {
      const nlohmann::json pb = base_prof->value("phases", nlohmann::json::object()).value(phases[p], nlohmann::json());
      const nlohmann::json pn = new_prof->value("phases", nlohmann::json::object()).value(phases[p], nlohmann::json());
      if (!pb.is_object() || !pn.is_object()) continue;
      const double sb = std::max(1.0, pb.value("steps", 1.0)), sn = std::max(1.0, pn.value("steps", 1.0));
      c.base_step_ms[p] = pb.value("wall_ms", 0.0) / sb;
      c.new_step_ms[p] = pn.value("wall_ms", 0.0) / sn;
      const double total = c.new_step_ms[p] - c.base_step_ms[p];
      std::map<std::string, std::pair<double, double>> ms;  // name -> (base, new)
      std::map<std::string, std::string> cat;
      for (const auto& [prof, steps, which] : {std::tuple{&pb, sb, 0}, std::tuple{&pn, sn, 1}}) {
        for (const auto& op : prof->value("operators", nlohmann::json::array())) {
          const std::string n = op.value("name", "");
          (which ? ms[n].second : ms[n].first) = op.value("self_ms", 0.0) / steps;
          cat[n] = op.value("category", "");
        }
      }
      for (const auto& [n, v] : ms) {
        CompareOpRow o;
        o.phase = phases[p];
        o.name = n;
        o.category = cat[n];
        o.base_ms = v.first;
        o.new_ms = v.second;
        o.delta_ms = v.second - v.first;
        o.share_pct = std::abs(total) > 1e-12 ? 100 * o.delta_ms / total : 0;
        const bool moved = std::abs(o.delta_ms) > 0.005 && std::abs(o.delta_ms) > 0.05 * std::max(v.first, 1e-12);
        o.verdict = !moved ? "~" : o.delta_ms > 0 ? "slower" : "faster";
        c.ops.push_back(o);
      }
    }
    std::stable_sort(c.ops.begin(), c.ops.end(), [](const CompareOpRow& a, const CompareOpRow& b) {
      if (a.phase != b.phase) return a.phase > b.phase;  // prefill before decode
      return std::abs(a.delta_ms) > std::abs(b.delta_ms);
    });
  }
  return c;
}

Result<Comparison> CompareFiles(const std::string& base_path, const std::string& new_path) {
  LLM_ASSIGN_OR_RETURN(nlohmann::json base, ReadJsonFile(base_path));
  LLM_ASSIGN_OR_RETURN(nlohmann::json next, ReadJsonFile(new_path));
  const std::string pb = DirOf(base_path) + "/profiler_stats.json", pn = DirOf(new_path) + "/profiler_stats.json";
  nlohmann::json prof_b, prof_n;
  const bool profiled = Exists(pb) && Exists(pn);
  if (profiled) {
    LLM_ASSIGN_OR_RETURN(prof_b, ReadJsonFile(pb));
    LLM_ASSIGN_OR_RETURN(prof_n, ReadJsonFile(pn));
  }
  auto c = CompareResults(base, next, profiled ? &prof_b : nullptr, profiled ? &prof_n : nullptr);
  if (!c.ok()) return Status(c.status().code(), base_path + " vs " + new_path + ": " + c.status().message());
  c->base_path = base_path;
  c->new_path = new_path;
  return c;
}

std::vector<std::string> SlowerThan(const Comparison& c, double pct) {
  std::vector<std::string> out;
  for (const CompareRow& r : c.rows) {
    if (r.verdict == "slower" && (1 - r.ratio) * 100 > pct) {
      out.push_back(fmt::format("{} {}: {:.1f}% slower (ratio {:.3f}, 95% CI {:.3f}-{:.3f})", r.test, r.metric,
                                (1 - r.ratio) * 100, r.ratio, r.ci_low, r.ci_high));
    }
  }
  return out;
}

namespace {

std::string Num(double v, int prec) { return std::isnan(v) ? std::string("n/a") : fmt::format("{:.{}f}", v, prec); }

std::string Ci(const CompareRow& r) {
  return std::isnan(r.ci_low) ? "n/a" : fmt::format("{:.3f}-{:.3f}", r.ci_low, r.ci_high);
}

nlohmann::json ToJson(const Comparison& c) {
  auto num = [](double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); };
  nlohmann::json j;
  j["base"] = c.base_path;
  j["new"] = c.new_path;
  j["model"] = c.model;
  j["differences"] = c.differences;
  j["method"] = c.method;
  j["unmatched"] = c.unmatched;
  j["rows"] = nlohmann::json::array();
  for (const CompareRow& r : c.rows) {
    j["rows"].push_back({{"test", r.test}, {"metric", r.metric}, {"n_base", r.n_base}, {"n_new", r.n_new},
                         {"base_median", r.base_median}, {"new_median", r.new_median}, {"ratio", r.ratio},
                         {"ci_low", num(r.ci_low)}, {"ci_high", num(r.ci_high)}, {"verdict", r.verdict}});
  }
  if (c.profiled) {
    j["profile"]["step_ms"] = {{"prefill", {{"base", c.base_step_ms[0]}, {"new", c.new_step_ms[0]}}},
                               {"decode", {{"base", c.base_step_ms[1]}, {"new", c.new_step_ms[1]}}}};
    j["profile"]["operators"] = nlohmann::json::array();
    for (const CompareOpRow& o : c.ops) {
      j["profile"]["operators"].push_back({{"phase", o.phase}, {"name", o.name}, {"category", o.category},
                                           {"base_ms_per_step", o.base_ms}, {"new_ms_per_step", o.new_ms},
                                           {"delta_ms", o.delta_ms}, {"share_of_change_pct", o.share_pct},
                                           {"verdict", o.verdict}});
    }
  }
  return j;
}

}  // namespace

std::string FormatComparison(const Comparison& c, const std::string& format) {
  if (format == "json") return ToJson(c).dump(2) + "\n";
  std::vector<std::vector<std::string>> rows;
  const std::vector<std::string> head = {"test", "metric", "base", "new", "ratio", "95% CI", "verdict"};
  for (const CompareRow& r : c.rows) {
    rows.push_back({r.test, r.metric, Num(r.base_median, 2), Num(r.new_median, 2), Num(r.ratio, 3), Ci(r), r.verdict});
  }
  std::vector<std::vector<std::string>> ops;
  const std::vector<std::string> ophead = {"phase", "operator", "base ms/step", "new ms/step", "delta ms", "share of change",
                                           "verdict"};
  std::map<std::string, int> shown;
  for (const CompareOpRow& o : c.ops) {
    if (format != "csv" && shown[o.phase]++ >= 12) continue;  // the 12 largest changes per phase
    ops.push_back({o.phase, o.name, Num(o.base_ms, 3), Num(o.new_ms, 3), fmt::format("{:+.3f}", o.delta_ms),
                   fmt::format("{:+.1f}%", o.share_pct), o.verdict});
  }
  std::string out;
  if (format == "csv") {
    auto line = [](const std::vector<std::string>& cells) {
      std::string s;
      for (size_t i = 0; i < cells.size(); ++i) {
        const bool q = cells[i].find_first_of(",\"") != std::string::npos;
        std::string v = cells[i];
        if (q) {
          std::string e = "\"";
          for (char ch : v) e += ch == '"' ? std::string("\"\"") : std::string(1, ch);
          v = e + "\"";
        }
        s += (i ? "," : "") + v;
      }
      return s + "\n";
    };
    out += line(head);
    for (const auto& r : rows) out += line(r);
    if (!ops.empty()) {
      out += "\n" + line(ophead);
      for (const auto& r : ops) out += line(r);
    }
    return out;
  }
  const bool md = format == "md";
  auto table = [&](const std::vector<std::string>& h, const std::vector<std::vector<std::string>>& body) {
    std::string s;
    if (md) {
      auto line = [](const std::vector<std::string>& cells) {
        std::string l = "|";
        for (const auto& x : cells) l += " " + x + " |";
        return l + "\n";
      };
      s += line(h);
      s += "|";
      for (size_t i = 0; i < h.size(); ++i) s += i < 2 ? "---|" : "---:|";
      s += "\n";
      for (const auto& r : body) s += line(r);
      return s;
    }
    std::vector<size_t> w(h.size());
    for (size_t i = 0; i < h.size(); ++i) w[i] = h[i].size();
    for (const auto& r : body) for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
    auto line = [&](const std::vector<std::string>& cells) {
      std::string l;
      for (size_t i = 0; i < cells.size(); ++i) {
        l += i < 2 ? fmt::format("{:<{}}", cells[i], w[i]) : fmt::format("{:>{}}", cells[i], w[i]);
        l += i + 1 < cells.size() ? "  " : "";
      }
      return l + "\n";
    };
    s += line(h);
    size_t total = 0;
    for (size_t x : w) total += x + 2;
    s += std::string(total - 2, '-') + "\n";
    for (const auto& r : body) s += line(r);
    return s;
  };
  out += (md ? "**" : "") + fmt::format("base: {}   new: {}", c.base_path, c.new_path) + (md ? "**\n\n" : "\n");
  out += "model: " + c.model + "\n";
  out += "differs: " + (c.differences.empty() ? std::string("nothing recorded") : [&] {
    std::string s;
    for (const auto& d : c.differences) s += (s.empty() ? "" : "; ") + d;
    return s;
  }()) + "\n";
  out += "interval: " + c.method + "\n" + (md ? "\n" : "");
  out += table(head, rows);
  if (!c.unmatched.empty()) {
    std::string s;
    for (const auto& u : c.unmatched) s += (s.empty() ? "" : ", ") + u;
    out += (md ? "\n" : "") + std::string("not paired: ") + s + "\n";
  }
  if (c.profiled) {
    std::string steps;
    const char* names[2] = {"prefill", "decode"};
    for (int p = 0; p < 2; ++p) {
      if (c.base_step_ms[p] > 0 || c.new_step_ms[p] > 0) {
        steps += fmt::format("{}{} {:.3f} -> {:.3f} ms", steps.empty() ? "" : ", ", names[p], c.base_step_ms[p],
                             c.new_step_ms[p]);
      }
    }
    out += fmt::format("\n{}profile (one recorded run each, no interval; \"~\" = within 5% or 5 us; share = of the "
                       "phase's change per step): {} per step{}\n",
                       md ? "**" : "", steps, md ? "**\n" : "");
    out += table(ophead, ops);
  }
  return out;
}

}  // namespace llm
