#include "cli/compare_cli.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "bench/compare.h"
#include "bench/html_report.h"
#include "bench/report.h"

namespace llm {

namespace {
constexpr int kBadInput = 2;

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}
}  // namespace

int RunCompareCommand(int argc, char** argv) {
  CLI::App app{"Compare two benchmark_results.json: per test the medians of the per-repetition prefill and decode "
               "tokens/sec, their ratio with a 95% bootstrap interval, and a verdict; with profiler_stats.json beside "
               "both, the operators' ms per step.\nExit status: 0, 1 when --fail-above trips, 2 on bad input.",
               "speed_benchmark compare"};
  std::string base, next, format = "table", report, output;
  double fail_above = -1;
  app.add_option("BASE", base, "benchmark_results.json of the baseline")->required();
  app.add_option("NEW", next, "benchmark_results.json to compare with it")->required();
  app.add_option("--format", format, "table | md | csv | json");
  app.add_option("--fail-above", fail_above,
                 "exit 1 when any row is significantly slower (interval below 1) by more than PCT percent");
  app.add_option("--report", report, "html: also write a self-contained HTML comparison");
  app.add_option("--output", output, "where --report html goes (default: compare_report.html beside NEW)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s (see speed_benchmark compare --help)\n", e.what());
    return kBadInput;
  }
  if (format != "table" && format != "md" && format != "csv" && format != "json") {
    std::fprintf(stderr, "error: --format must be table, md, csv or json\n");
    return kBadInput;
  }
  if (!report.empty() && report != "html") {
    std::fprintf(stderr, "error: --report must be html\n");
    return kBadInput;
  }
  auto c = CompareFiles(base, next);
  if (!c.ok()) {
    std::fprintf(stderr, "error: %s\n", c.status().message().c_str());
    return kBadInput;
  }
  std::printf("%s", FormatComparison(c.value(), format).c_str());
  if (report == "html") {
    const std::string path = output.empty() ? DirOf(next) + "/compare_report.html" : output;
    if (Status s = WriteFileAtomic(path, CompareReportHtml(c.value())); !s.ok()) {
      std::fprintf(stderr, "error: %s\n", s.message().c_str());
      return kBadInput;
    }
    std::fprintf(stderr, "report written to %s\n", path.c_str());
  }
  if (fail_above >= 0) {
    const auto slow = SlowerThan(c.value(), fail_above);
    for (const auto& s : slow) std::fprintf(stderr, "slower: %s\n", s.c_str());
    if (!slow.empty()) {
      std::fprintf(stderr, "fail: %zu row(s) significantly slower by more than %g%%\n", slow.size(), fail_above);
      return 1;
    }
  }
  return 0;
}

int RunReportCommand(int argc, char** argv) {
  CLI::App app{"Write DIR/report.html from DIR/benchmark_results.json (and the profiler files beside it)",
               "speed_benchmark report"};
  std::string dir;
  app.add_option("DIR", dir, "a run's --output-dir")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s (see speed_benchmark report --help)\n", e.what());
    return kBadInput;
  }
  auto p = WriteRunReport(dir);
  if (!p.ok()) {
    std::fprintf(stderr, "error: %s\n", p.status().message().c_str());
    return kBadInput;
  }
  std::fprintf(stderr, "report written to %s\n", p.value().c_str());
  return 0;
}

}  // namespace llm
