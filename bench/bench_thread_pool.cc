// Fork/join cost of the thread pool: a decode step runs hundreds of parallel
// regions, so an empty region must cost a few microseconds at most.
#include <benchmark/benchmark.h>

#include <atomic>

#include "core/thread_pool.h"

namespace llm {
namespace {

void BM_ThreadPool_EmptyParallelFor(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)));
  std::atomic<int> sink{0};
  for (auto _ : state) pool.ParallelFor(static_cast<size_t>(state.range(0)), [&](size_t t, int) { sink += 1; });
  benchmark::DoNotOptimize(sink.load());
}

BENCHMARK(BM_ThreadPool_EmptyParallelFor)->Arg(1)->Arg(2)->UseRealTime();

}  // namespace
}  // namespace llm

BENCHMARK_MAIN();
