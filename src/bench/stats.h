// Summary statistics over repetitions and latency samples.
#pragma once

#include <vector>

namespace llm {

struct Stats {
  double mean = 0, median = 0, stddev = 0, min = 0, max = 0;
  double p50 = 0, p90 = 0, p99 = 0;
  int count = 0;
  // Relative spread (stddev / mean), the figure the >5% warning is about.
  double rel_spread() const { return mean != 0 ? stddev / mean : 0; }
};

// Percentiles by linear interpolation between closest ranks (numpy's default).
Stats ComputeStats(std::vector<double> values);

}  // namespace llm
