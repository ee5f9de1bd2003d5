// --profile and --profile-overhead: one extra, recorded generation after the
// timed runs (so profiling never touches the reported timings), and a
// measurement of what recording costs.
#pragma once

#include <cstdint>

#include <string>

#include "bench/calibration.h"
#include "bench/profile_report.h"
#include "bench/runner.h"
#include "core/status.h"
#include "model/llama_model.h"

namespace llm {

class ThreadPool;

// Like torch.profiler.schedule: skip `wait` decode steps, run `warmup` more
// unrecorded, then record `active` steps. The prompt pass is always recorded.
struct ProfileSchedule {
  int wait = 0;
  int warmup = 0;
  int active = 1 << 30;
  // In 64 bits: WAIT + WARMUP + ACTIVE of three large flags would overflow int.
  bool Records(int step) const {
    const int64_t begin = static_cast<int64_t>(wait) + warmup;
    return step >= begin && step < begin + active;
  }
};
// Parses "WAIT,WARMUP,ACTIVE" (or a single ACTIVE).
Result<ProfileSchedule> ParseProfileSchedule(const std::string& text);
// Bytes of the event buffers a profiled run of `test` reserves up front (with
// `overhead`: those of --profile-overhead's recorded runs), for a memory check
// before the benchmark starts.
size_t ProfileBufferBytes(const LlamaConfig& config, int threads, int max_seq_len, const BenchTest& test,
                          const ProfileSchedule& schedule, bool overhead);

struct ProfileRunResult {
  ProfileSummary summary;
  Calibration calibration;
  std::string stats_text;
};

// Records one generation of `test` and stages the profiler files into
// `outputs` (committed by the caller with the results file).
Result<ProfileRunResult> RunProfiled(LlamaModel& model, ThreadPool& pool, const BenchTest& test,
                                     const BenchOptions& options, const ProfileSchedule& schedule,
                                     OutputFiles* outputs, const std::string& header);
// The same, writing the profiler files into output_dir at once.
Result<ProfileRunResult> RunProfiled(LlamaModel& model, ThreadPool& pool, const BenchTest& test,
                                     const BenchOptions& options, const ProfileSchedule& schedule,
                                     const std::string& output_dir, const std::string& header);

struct ProfileOverhead {
  double decode_tps_off = 0, decode_tps_on = 0;  // medians
  double stddev_off = 0, stddev_on = 0;
  double overhead_pct = 0;                       // (off - on) / off * 100
  int runs = 0;
};
// Alternates runs without and with recording (same test) and compares medians.
Result<ProfileOverhead> MeasureProfileOverhead(LlamaModel& model, ThreadPool& pool, const BenchTest& test,
                                               const BenchOptions& options, int runs);

}  // namespace llm
