// --report html: one self-contained report.html (inline SVG charts drawn here,
// inline CSS, no JavaScript, nothing fetched) from a run's files, and one for
// a comparison of two runs.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "bench/compare.h"
#include "core/status.h"

namespace llm {

// results: benchmark_results.json; stats/trace: profiler_stats.json and
// profiler_trace.json, or null when the run was not profiled.
std::string RunReportHtml(const nlohmann::json& results, const nlohmann::json* stats, const nlohmann::json* trace);
// Reads DIR/benchmark_results.json (and the profiler files beside it when
// present) and writes DIR/report.html atomically; returns its path.
Result<std::string> WriteRunReport(const std::string& dir);
std::string CompareReportHtml(const Comparison& c);

}  // namespace llm
