// Cost of a profiler scope: compiled in but no profiler, profiler present but
// inactive (the normal state of a benchmark run), and recording.
#include <benchmark/benchmark.h>

#include "profiler/profiler.h"

namespace llm {
namespace {

// The loop alone, to subtract.
void BM_Baseline_EmptyLoop(benchmark::State& state) {
  for (auto _ : state) benchmark::ClobberMemory();
}

void BM_ProfileScope_NoProfiler(benchmark::State& state) {
  Profiler* p = nullptr;
  benchmark::DoNotOptimize(p);
  for (auto _ : state) {
    LLM_PROFILE(p, Op::kQProj, 3, MatMulCost(1, 2048, 2048, 2));
    benchmark::ClobberMemory();
  }
}

void BM_ProfileScope_Inactive(benchmark::State& state) {
  Profiler profiler(1, 16);
  Profiler* p = &profiler;
  benchmark::DoNotOptimize(p);
  for (auto _ : state) {
    LLM_PROFILE(p, Op::kQProj, 3, MatMulCost(1, 2048, 2048, 2));
    benchmark::ClobberMemory();
  }
}

void BM_ProfileScope_Recording(benchmark::State& state) {
  constexpr size_t kCapacity = 1 << 20;
  Profiler profiler(1, kCapacity);
  profiler.set_active(true);
  size_t n = 0;
  for (auto _ : state) {
    {
      LLM_PROFILE(&profiler, Op::kQProj, 3, MatMulCost(1, 2048, 2048, 2));
      benchmark::ClobberMemory();
    }
    if (++n == kCapacity) {  // keep appending, never dropping
      state.PauseTiming();
      profiler.Clear();
      profiler.set_active(true);
      n = 0;
      state.ResumeTiming();
    }
  }
}

BENCHMARK(BM_Baseline_EmptyLoop);
BENCHMARK(BM_ProfileScope_NoProfiler);
BENCHMARK(BM_ProfileScope_Inactive);
BENCHMARK(BM_ProfileScope_Recording);

}  // namespace
}  // namespace llm
