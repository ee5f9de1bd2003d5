// Micro-benchmarks of the CPU matmul at real Llama shapes: decode (M=1) and
// prefill (M=512) for TinyLlama (2048 -> 5632) and Llama-2-7B (4096 -> 11008).
// Reports GB/s of weights for decode and GFLOP/s for prefill.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kernels/ops.h"

namespace llm {
namespace {

void BM_MatMul_Cpu(benchmark::State& state) {
  const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  const DType dtype = static_cast<DType>(state.range(3));
  ThreadPool pool(AvailableCpuThreads());
  auto backend = MakeCpuBackend(&pool);
  AlignedBuffer w;
  w.Allocate(static_cast<size_t>(N * K) * DTypeSize(dtype));
  std::vector<float> src(static_cast<size_t>(N * K));
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  ConvertFloats(src.data(), DType::kF32, w.data(), dtype, src.size());
  std::vector<float> x(static_cast<size_t>(M * K), 0.01f), y(static_cast<size_t>(M * N));
  const MatView view{w.data(), dtype, N, K};
  for (auto _ : state) {
    backend->MatMul(x.data(), M, view, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * N * K * static_cast<int64_t>(DTypeSize(dtype)));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * state.iterations(), benchmark::Counter::kIsRate,
                                                 benchmark::Counter::kIs1000);
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (int dt : {0, 1, 2}) {  // kF32, kF16, kBF16
    for (auto kn : {std::pair<int, int>{2048, 5632}, {4096, 11008}}) {
      b->Args({1, kn.first, kn.second, dt});
      b->Args({512, kn.first, kn.second, dt});
    }
  }
}

BENCHMARK(BM_MatMul_Cpu)->Apply(Shapes)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace llm

BENCHMARK_MAIN();
