// `speed_benchmark compare BASE.json NEW.json`: pairs the runs of two
// benchmark_results.json by test name, compares the medians of the
// per-repetition prefill and decode tokens/sec with a bootstrap 95% interval
// of the ratio (fixed seed), and, when both runs have a profiler_stats.json
// beside them, the operators' ms per step.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace llm {

struct CompareRow {
  std::string test;
  std::string metric;  // "prefill tok/s" | "decode tok/s"
  int n_base = 0, n_new = 0;
  double base_median = 0, new_median = 0;
  double ratio = 0;          // new / base (> 1: new is faster)
  double ci_low = 0, ci_high = 0;  // 95% bootstrap percentile interval of the ratio; NaN with < 2 samples a side
  std::string verdict;       // "faster" | "slower" | "no significant change" | "too few repetitions"
};

struct CompareOpRow {
  std::string phase, name, category;
  double base_ms = 0, new_ms = 0;  // self time per step
  double delta_ms = 0;             // new - base
  double share_pct = 0;            // of the phase's change in wall time per step
  std::string verdict;             // "slower" | "faster" | "~" (within 5% or 0.005 ms)
};

struct Comparison {
  std::string base_path, new_path;
  std::string model;                       // what both ran
  std::vector<std::string> differences;   // "dtype: float32 -> bfloat16", ...
  std::vector<CompareRow> rows;
  std::vector<std::string> unmatched;      // tests in only one file
  std::vector<CompareOpRow> ops;           // empty without two profiles
  double base_step_ms[2] = {0, 0}, new_step_ms[2] = {0, 0};  // prefill, decode wall ms per step
  bool profiled = false;
  std::string method;                      // how the interval was computed
};

// The interval of median(b)/median(a) from `resamples` bootstrap draws of
// each side (std::mt19937_64 seeded with `seed`); {NaN, NaN} with < 2 samples.
std::pair<double, double> BootstrapRatioCi(const std::vector<double>& a, const std::vector<double>& b,
                                           int resamples = 10000, uint64_t seed = 17);

// base/new: parsed benchmark_results.json; *_prof: profiler_stats.json or null.
Result<Comparison> CompareResults(const nlohmann::json& base, const nlohmann::json& next,
                                  const nlohmann::json* base_prof, const nlohmann::json* new_prof);
// Reads both files (and profiler_stats.json beside each, when both exist).
Result<Comparison> CompareFiles(const std::string& base_path, const std::string& new_path);
// Reads and parses a JSON file; a missing or corrupt file is an error naming it.
Result<nlohmann::json> ReadJsonFile(const std::string& path);

// table | md | csv | json
std::string FormatComparison(const Comparison& c, const std::string& format);
// Rows significantly slower by more than pct percent (1 - ratio > pct/100); empty when none.
std::vector<std::string> SlowerThan(const Comparison& c, double pct);

}  // namespace llm
