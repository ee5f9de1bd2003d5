// This machine's limits, measured: read bandwidth (GB/s) and the peak of each
// arithmetic unit the kernels use (GFLOP/s) with the benchmark's thread count. The profiler's verdicts are
// ratios to these. Results are cached per CPU, SIMD target and thread count in
// $XDG_CACHE_HOME/llama-speedbench/calibration.json (else ~/.cache/...).
#pragma once

#include <algorithm>
#include <string>

#include "core/aligned_buffer.h"
#include "core/status.h"
#include "profiler/profiler.h"

namespace llm {

class ThreadPool;

struct Calibration {
  double read_gbps = 0;       // best of 15 passes over a 1 GiB buffer, four ways to read (read_ways)
  std::string read_ways;      // each way's best, as measured now (not cached)
  double fma_gflops = 0;      // best of 5
  double amx_bf16_gflops = 0; // best of 5 of AMX tile products; 0 where AMX is not usable
  double bf16_dot_gflops = 0;  // best of 5 of AVX512-BF16 dot products (VDPBF16PS); 0 without them
  double int8_vnni_gops = 0;  // best of 5 of AVX-512 VNNI int8 dot products (2 ops per multiply-add); 0 without VNNI
  int threads = 0;
  std::string key;            // what the cache entry is valid for
  std::string source;         // "measured" or "cache:<path>"
  // --roof-probe with --profile: the read bandwidth right before and right
  // after the profiled run (0: not measured; never cached). Memory-bound
  // verdicts give their share of the higher too.
  double read_before_run_gbps = 0, read_after_run_gbps = 0;
  double ReadBesideRunGbps() const { return std::max(read_before_run_gbps, read_after_run_gbps); }
};

// The measured peak of the unit (0 when unknown).
double PeakGflops(const Calibration& c, ComputeUnit unit);

// The read bandwidth in GB/s: the best of `passes` over a buffer of
// `buffer_bytes` (allocated and touched for the call), the three ways of
// `read_ways` in turn. MeasureCalibration uses it on 1 GiB; a run uses it on a
// smaller buffer beside its repetitions (a shared machine's bandwidth moves
// from one minute to the next). `ways`, when given, gets each way's best.
double MeasureReadGbps(ThreadPool* pool, size_t buffer_bytes, int passes, std::string* ways = nullptr);

// The same probe on a buffer allocated (and touched) once, for repeated
// readings beside a run without page faults in each.
class ReadProbeBuffer {
 public:
  bool Allocate(ThreadPool* pool, size_t bytes);
  double Measure(int passes, std::string* ways = nullptr) const;
  size_t bytes() const { return n_ * sizeof(float); }

 private:
  ThreadPool* pool_ = nullptr;
  AlignedBuffer buf_{MemCategory::kOther};
  size_t n_ = 0;
};

Calibration MeasureCalibration(ThreadPool* pool, size_t buffer_bytes = size_t{1} << 30);
// Cached result when present for this machine key, else measure and store.
Calibration LoadOrMeasureCalibration(ThreadPool* pool);
// Merges c into the cache, keeping per metric the higher of the cached and
// the new value; returns what the cache holds now.
Calibration StoreCalibration(const Calibration& c);
std::string CalibrationCachePath();

}  // namespace llm
