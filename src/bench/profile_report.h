// Turns a Profiler's events into the three --profile outputs:
//   profiler_trace.json  Chrome Trace Event Format (chrome://tracing, Perfetto)
//   profiler_stats.txt   per-operator tables (prefill and decode), categories,
//                        per-layer times, memory, and a Bottlenecks section
//   profiler_stats.json  the same tables for machines
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bench/calibration.h"
#include "bench/report.h"
#include "core/status.h"
#include "profiler/profiler.h"

namespace llm {

struct OpStats {
  std::string name;      // "attention.q_proj" (summed over layers) or a layer name
  std::string category;
  int64_t calls = 0;
  double total_ms = 0, self_ms = 0;
  double flops = 0, bytes = 0;
  double unit_flops[static_cast<int>(ComputeUnit::kCount)] = {};  // flops by the unit they ran on
  double gflops_per_s() const { return self_ms > 0 ? flops / (self_ms * 1e6) : 0; }
  double gbytes_per_s() const { return self_ms > 0 ? bytes / (self_ms * 1e6) : 0; }
};

struct PhaseStats {
  std::string phase;                 // "prefill" | "decode"
  double wall_ms = 0;                // sum of prefill / decode_step scopes
  int64_t steps = 0;                 // scopes of the phase
  double self_sum_ms = 0;            // sum of operator self times inside the phase
  std::vector<OpStats> ops;          // by operator, sorted by self time
  std::vector<OpStats> categories;
  std::vector<OpStats> layers;
};

// GPU time of one operator (summed over layers) or one kind of copy, from CUPTI.
struct GpuOpStats {
  std::string name;          // "feed_forward.gate_up_silu", "memcpy HtoD"
  int64_t calls = 0;         // kernels or copies
  double gpu_ms = 0;
  int64_t bytes = 0;         // copies and sets
  std::string kernels;       // distinct kernel names, comma-separated
};

struct GpuPhaseStats {
  std::string phase;         // "prefill" | "decode"
  double busy_ms = 0;        // sum of kernel and copy times
  std::vector<GpuOpStats> ops;     // kernels by operator, by GPU time
  std::vector<GpuOpStats> copies;  // memcpy / memset by kind
  int64_t graph_kernels = 0;       // replayed from CUDA graphs
};

struct ProfileSummary {
  std::vector<PhaseStats> phases;
  std::vector<GpuPhaseStats> gpu_phases;  // empty without GPU activity
  std::vector<std::string> notes;
  size_t events = 0;
  int64_t dropped = 0;
  size_t trace_bytes = 0;
};

// Aggregates the events (self time = duration minus direct children).
ProfileSummary SummarizeProfile(const Profiler& profiler);
std::string FormatProfileStats(const ProfileSummary& s, const Calibration& cal, const std::string& header);
std::string ProfileStatsJson(const ProfileSummary& s, const Calibration& cal);
std::string ChromeTraceJson(const Profiler& profiler, const std::string& process_name);

// Stages the three files (profiler_trace.json, profiler_stats.txt,
// profiler_stats.json) into `outputs`, which the caller commits together with
// the run's other outputs; fills summary.trace_bytes.
Status WriteProfileOutputs(const Profiler& profiler, const Calibration& cal, const std::string& header,
                           OutputFiles* outputs, ProfileSummary* summary);

}  // namespace llm
