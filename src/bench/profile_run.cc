#include "bench/profile_run.h"

#include <algorithm>
#include <cstdint>

#include <sstream>

#include "bench/stats.h"
#include "core/thread_pool.h"
#include "model/generate.h"

namespace llm {

Result<ProfileSchedule> ParseProfileSchedule(const std::string& text) {
  std::vector<int> v;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    try {
      size_t used = 0;
      const int x = std::stoi(part, &used);
      if (used != part.size() || x < 0) throw std::invalid_argument(part);
      v.push_back(x);
    } catch (const std::exception&) {
      return InvalidArgument("--profile-steps '" + text + "': expected WAIT,WARMUP,ACTIVE or ACTIVE, non-negative integers");
    }
  }
  ProfileSchedule s;
  if (v.size() == 1) {
    s.active = v[0];
  } else if (v.size() == 3) {
    s.wait = v[0];
    s.warmup = v[1];
    s.active = v[2];
  } else {
    return InvalidArgument("--profile-steps '" + text + "': expected WAIT,WARMUP,ACTIVE or ACTIVE");
  }
  return s;
}

namespace {

// Connects a profiler to the model, its backend and the pool for one scope.
class Attach {
 public:
  Attach(LlamaModel& m, ThreadPool& pool, Profiler* p) : m_(m), pool_(pool) {
    m.set_profiler(p);
    if (m.backend()) m.backend()->set_profiler(p);
    pool.set_observer(p);
  }
  ~Attach() {
    m_.set_profiler(nullptr);
    if (m_.backend()) m_.backend()->set_profiler(nullptr);
    pool_.set_observer(nullptr);
  }

 private:
  LlamaModel& m_;
  ThreadPool& pool_;
};

// Events per thread for `steps` recorded steps: ~25 scopes and ~14 parallel
// regions per layer per step, plus the prompt pass; each further sequence of a
// batch adds its attention's scopes and parallel regions (~8 per layer).
size_t EventCapacity(const LlamaConfig& c, int steps, int batch_size = 1) {
  const size_t per_layer = 32 + 8 * static_cast<size_t>(std::max(0, batch_size - 1));
  return static_cast<size_t>(steps + 2) * (static_cast<size_t>(c.num_hidden_layers) * per_layer + 32);
}

// Recorded decode steps: bounded by the tokens the cache can hold, whatever the flags say.
int RecordedSteps(int active, int max_new_tokens, int max_seq_len, size_t prompt_len) {
  return std::max(0, std::min({active, max_new_tokens, max_seq_len - static_cast<int>(prompt_len) + 1}));
}

}  // namespace

size_t ProfileBufferBytes(const LlamaConfig& c, int threads, int max_seq_len, const BenchTest& test,
                          const ProfileSchedule& schedule, bool overhead) {
  const int steps = overhead ? RecordedSteps(INT32_MAX, test.max_new_tokens, max_seq_len, test.prompt.size())
                             : RecordedSteps(schedule.active, test.max_new_tokens, max_seq_len, test.prompt.size());
  const size_t events = EventCapacity(c, steps, test.batch_size);
  return events * sizeof(ProfileEvent) * static_cast<size_t>(std::max(1, threads)) +
         (events / 16 + 16) * sizeof(Profiler::Counter);
}

Result<ProfileRunResult> RunProfiled(LlamaModel& model, ThreadPool& pool, const BenchTest& test,
                                     const BenchOptions& options, const ProfileSchedule& schedule,
                                     OutputFiles* outputs, const std::string& header) {
  ProfileRunResult r;
  r.calibration = LoadOrMeasureCalibration(&pool);
  const int steps = RecordedSteps(schedule.active, test.max_new_tokens, model.max_seq_len(), test.prompt.size());
  Profiler profiler(pool.num_threads(), EventCapacity(model.config(), steps, test.batch_size));
  {
    Attach attach(model, pool, &profiler);
    GenerationOptions go = GenerationOptionsFor(test, options);
    go.profile_step = [&](int step) { return schedule.Records(step); };
    if (options.read_probe) r.calibration.read_before_run_gbps = options.read_probe();
    profiler.set_active(true);
    auto g = GenerateBatch(model, test.BatchPrompts(), go, test.shared_prompt);
    profiler.set_active(false);
    if (options.read_probe) r.calibration.read_after_run_gbps = options.read_probe();
    if (!g.ok()) return g.status();
    if (model.device()) LLM_RETURN_IF_ERROR(model.device()->FlushTrace());  // GPU activity into the profiler
  }
  LLM_RETURN_IF_ERROR(WriteProfileOutputs(profiler, r.calibration, header, outputs, &r.summary));
  r.stats_text = FormatProfileStats(r.summary, r.calibration, header);
  return r;
}

Result<ProfileRunResult> RunProfiled(LlamaModel& model, ThreadPool& pool, const BenchTest& test,
                                     const BenchOptions& options, const ProfileSchedule& schedule,
                                     const std::string& output_dir, const std::string& header) {
  OutputFiles outputs(output_dir);
  LLM_ASSIGN_OR_RETURN(ProfileRunResult r, RunProfiled(model, pool, test, options, schedule, &outputs, header));
  LLM_RETURN_IF_ERROR(outputs.Commit());
  return r;
}

Result<ProfileOverhead> MeasureProfileOverhead(LlamaModel& model, ThreadPool& pool, const BenchTest& test,
                                               const BenchOptions& options, int runs) {
  ProfileOverhead o;
  o.runs = runs;
  std::vector<double> off, on;
  const GenerationOptions go = GenerationOptionsFor(test, options);
  for (int i = 0; i < runs; ++i) {
    {
      LLM_ASSIGN_OR_RETURN(GenerationResult g, Generate(model, test.prompt, go));
      off.push_back(DecodeTokensPerSecond(g));
    }
    Profiler profiler(pool.num_threads(), EventCapacity(model.config(), RecordedSteps(INT32_MAX, test.max_new_tokens,
                                                                                      model.max_seq_len(),
                                                                                      test.prompt.size())));
    Attach attach(model, pool, &profiler);
    profiler.set_active(true);
    LLM_ASSIGN_OR_RETURN(GenerationResult g, Generate(model, test.prompt, go));
    profiler.set_active(false);
    on.push_back(DecodeTokensPerSecond(g));
  }
  const Stats s_off = ComputeStats(off), s_on = ComputeStats(on);
  o.decode_tps_off = s_off.median;
  o.decode_tps_on = s_on.median;
  o.stddev_off = s_off.stddev;
  o.stddev_on = s_on.stddev;
  o.overhead_pct = o.decode_tps_off > 0 ? 100 * (o.decode_tps_off - o.decode_tps_on) / o.decode_tps_off : 0;
  return o;
}

}  // namespace llm
