// Micro-benchmarks of the CPU kernels at real Llama shapes.
// MatMul: decode (M=1) and prefill (M=512) for TinyLlama (2048 -> 5632) and
// Llama-2-7B (4096 -> 11008); GB/s of weights and GFLOP/s. The last argument
// picks the path: 0 the machine's best (AMX tiles for bf16 prefill where
// usable; f16 there as exact bf16 hi + lo parts; without tiles, AVX512-BF16
// dot products for bf16 where they beat FMA), 1 the best SIMD target's FMA with AMX and the dot products
// off, 2 AVX2 FMA (what an AVX2-only CPU runs), so one run compares the units on the same machine.
// MatMul_Quant: block-quantized weights (Q8_0, Q4_0, Q4_K, Q6_K) at decode
// (M=1) and a decode batch of 16, TinyLlama and Llama-2-7B shapes, GB/s of
// quantized bytes, with int8 or float32 activations; enough matrices that each call reads from memory, not a
// cache (twice the L3 in all), as in a real decode (the last argument 0) or one matrix read again
// and again (1: the kernel's own speed, from the cache).
// Attention: decode (1 token) at cache depths 512 and 2048 and a 512-token
// prefill, TinyLlama (32 heads, 4 KV heads, head_dim 64) and Llama-2-7B (32,
// 32, 128); GB/s of K/V read and GFLOP/s. Each iteration uses the next of
// several layers' caches, so that, as in a real decode, K/V come from memory.
// Gemv_DecodeX: decode of float16 / bfloat16 W from memory, x float32 against
// x rounded to float16 (--decode-x), at the TinyLlama and Llama-2-7B shapes.
// RmsNorm, RoPE, SiluMul: one decode token and a 512-token prefill.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cmath>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "hwy/targets.h"
#include "kernels/cpu/amx/amx_gemm.h"
#include "kernels/cpu/simd/cpu_kernels.h"
#include "kernels/ops.h"
#include "quant_matrices.h"

namespace llm {
namespace {

// Bytes a "from memory" benchmark cycles through: twice the last-level cache
// this process sees (at least 192 MiB), so that each call's data comes from
// DRAM. Some of the Xeons here report a 480 MiB L3: the fixed 192 MiB of
// earlier runs was served by the L3 there (Q8_0 decode "from memory" read
// 50 GB/s against a DRAM probe of 39).
size_t FromMemoryBytes() {
  size_t l3 = 0;
  if (FILE* f = std::fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r")) {
    unsigned long kib = 0;
    char unit = 0;
    if (std::fscanf(f, "%lu%c", &kib, &unit) >= 1) l3 = (unit == 'M' ? kib << 20 : kib << 10);
    std::fclose(f);
  }
  return std::max<size_t>(192u << 20, 2 * l3);
}

void BM_MatMul_Cpu(benchmark::State& state) {
  const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  const DType dtype = static_cast<DType>(state.range(3));
  const int64_t path = state.range(4);
  if (path == 2 && !(hwy::SupportedTargets() & HWY_AVX2)) {
    state.SkipWithError("AVX2 not supported here");
    return;
  }
  amx::SetAmxEnabled(path == 0);
  amx::SetBf16DotsMode(path == 0 ? amx::DotsMode::kAuto : amx::DotsMode::kOff);
  if (path == 2) hwy::SetSupportedTargetsForTest(HWY_AVX2);
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
  const ComputeUnit unit = backend->MatMulUnit(M, view);
  state.SetLabel(std::string(CpuSimdTargetName()) + (unit == ComputeUnit::kFma ? " FMA" : std::string(" + ") + ComputeUnitName(unit)));
  hwy::SetSupportedTargetsForTest(0);
  amx::SetAmxEnabled(true);
  amx::SetBf16DotsMode(amx::DotsMode::kAuto);
  state.SetBytesProcessed(state.iterations() * N * K * static_cast<int64_t>(DTypeSize(dtype)));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * state.iterations(), benchmark::Counter::kIsRate,
                                                 benchmark::Counter::kIs1000);
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (int dt : {0, 1, 2}) {  // kF32, kF16, kBF16
    for (auto kn : {std::pair<int, int>{2048, 5632}, {4096, 11008}}) {
      for (int path : {0, 1, 2}) {
        if (path == 0 && dt == 0) continue;  // bf16 and f16 (split) have a matrix-unit path
        b->Args({1, kn.first, kn.second, dt, path});
        b->Args({512, kn.first, kn.second, dt, path});
      }
    }
  }
}

// Decode of a batch: M = batch size rows against TinyLlama's gate/up shape.
void BatchShapes(benchmark::internal::Benchmark* b) {
  for (int dt : {0, 1, 2}) {
    for (int m : {1, 2, 4, 8, 12, 16, 24, 32, 64}) {
      for (int path : {0, 1, 2}) {
        if (path == 0 && dt == 0) continue;
        b->Args({m, 2048, 5632, dt, path});
      }
    }
  }
}

BENCHMARK(BM_MatMul_Cpu)->Apply(Shapes)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MatMul_Cpu)->Name("BM_MatMul_Batch")->Apply(BatchShapes)->UseRealTime()->Unit(benchmark::kMillisecond);

// Args: K, DType. One row of decode's activations quantized to int8 per
// 32-block in the layout of the int8 kernels (packed W where the type has it):
// each worker does it before its first task of a decode GEMV, so its time is
// part of each projection's (TinyLlama: K = 2048 for six of them, 5632 for down_proj).
void BM_QuantizeX(benchmark::State& state) {
  const int64_t K = state.range(0);
  const DType dtype = static_cast<DType>(state.range(1));
  const MatView w{nullptr, dtype, 64, K};
  const size_t bytes = simd::QuantActivationBytes(1, w);
  if (bytes == 0) {
    state.SkipWithError("no int8 activations for this type on this CPU");
    return;
  }
  AlignedBuffer buffer;
  buffer.Allocate(bytes);
  std::vector<float> x(static_cast<size_t>(K));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  for (auto _ : state) {
    simd::PrepareQuantActivations(x.data(), 1, w, buffer.data(), /*packed_w=*/true);
    benchmark::DoNotOptimize(buffer.data());
  }
  state.SetLabel(CpuSimdTargetName());
  state.SetBytesProcessed(state.iterations() * K * static_cast<int64_t>(sizeof(float)));
}
BENCHMARK(BM_QuantizeX)
    ->ArgsProduct({{2048, 5632}, {static_cast<int>(DType::kQ8_0), static_cast<int>(DType::kQ4_0), static_cast<int>(DType::kQ4_K)}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Args: M, K, N, DType, path (1: best SIMD target, 2: AVX2; 3, 4: the same
// with float32 activations, --int8-dot off), cached (0: from memory, 1: one matrix).
void BM_MatMul_Quant(benchmark::State& state) {
  const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  const DType dtype = static_cast<DType>(state.range(3));
  const int64_t path = state.range(4);
  const bool cached = state.range(5) != 0;
  const bool avx2 = path == 2 || path == 4, int8 = path <= 2;
  if (avx2 && !(hwy::SupportedTargets() & HWY_AVX2)) {
    state.SkipWithError("AVX2 not supported here");
    return;
  }
  if (avx2) hwy::SetSupportedTargetsForTest(HWY_AVX2);
  SetCpuInt8DotEnabled(int8);
  ThreadPool pool(AvailableCpuThreads());
  auto backend = MakeCpuBackend(&pool);
  const size_t matrix_bytes = DTypeRowBytes(dtype, K) * static_cast<size_t>(N);
  const int copies = cached ? 1 : static_cast<int>(std::max<size_t>(2, FromMemoryBytes() / matrix_bytes + 1));
  AlignedBuffer w;
  w.Allocate(matrix_bytes * copies);
  auto* bytes = static_cast<uint8_t*>(w.data());
  FillQuantBytes(bytes, matrix_bytes * copies, dtype);
  std::vector<float> x(static_cast<size_t>(M * K)), y(static_cast<size_t>(M * N));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  // As a model does at load: the backend may keep its own layout (Q4_0 and Q8_0 on VNNI: 16-row groups).
  backend->ReserveWeights(copies * backend->PrepareWeightsBytes(MatView{bytes, dtype, N, K}));
  for (int c = 0; c < copies; ++c) backend->PrepareWeights(MatView{bytes + matrix_bytes * c, dtype, N, K});
  int copy = 0;
  for (auto _ : state) {
    backend->MatMul(x.data(), M, MatView{bytes + matrix_bytes * copy, dtype, N, K}, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
    copy = (copy + 1) % copies;
  }
  for (int c = 0; c < copies; ++c) backend->ReleaseWeights(MatView{bytes + matrix_bytes * c, dtype, N, K});
  state.SetLabel(std::string(CpuSimdTargetName()) + (int8 ? " int8 x" : " float x") +
                 (cached ? ", cached" : ", from memory"));
  hwy::SetSupportedTargetsForTest(0);
  SetCpuInt8DotEnabled(true);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(matrix_bytes));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * state.iterations(), benchmark::Counter::kIsRate,
                                                 benchmark::Counter::kIs1000);
}

void QuantShapes(benchmark::internal::Benchmark* b) {
  for (DType dt : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    // 2048 x 1536 cached: a matrix that stays in L2 (0.9-1.2 MB per core) (the kernel's compute ceiling;
    // 2048 x 5632's 6.5 MB cached is the L3's bandwidth).
    for (auto kn : {std::pair<int, int>{2048, 5632}, {4096, 11008}, {11008, 4096}, {2048, 1536}, {2048, 2048}, {5632, 2048}, {2048, 256}, {4096, 4096}, {2048, 32000}, {2048, 64}}) {
      for (int m : {1, 16, 512}) {
        for (int path : {1, 2, 3, 4}) {
          for (int cached : {0, 1}) {
            if (m == 512 && (kn.first != 2048 || kn.second != 5632 || path != 1 || !cached)) continue;  // prefill
            if ((kn.first == 4096 || kn.first == 11008) && (m != 1 || cached)) continue;  // 7B: decode from memory only
            if (kn.second == 1536 && (m != 1 || !cached)) continue;
            if (kn.second == 64 && m != 1) continue;
            b->Args({m, kn.first, kn.second, static_cast<int>(dt), path, cached});
          }
        }
      }
    }
  }
}

BENCHMARK(BM_MatMul_Quant)->Apply(QuantShapes)->UseRealTime()->Unit(benchmark::kMillisecond);

// Decode (M = 1) of float16 / bfloat16 W from memory with x kept float32 or
// rounded to float16 (--decode-x). Args: K, N, DType, mode (0 float32, 1
// float16, 2 auto: this CPU's choice per K).
void BM_Gemv_DecodeX(benchmark::State& state) {
  const int64_t K = state.range(0), N = state.range(1);
  const DType dtype = static_cast<DType>(state.range(2));
  const DecodeX mode = state.range(3) == 0 ? DecodeX::kFloat32 : state.range(3) == 1 ? DecodeX::kFloat16 : DecodeX::kAuto;
  ThreadPool pool(AvailableCpuThreads());
  auto backend = MakeCpuBackend(&pool);
  const size_t matrix_bytes = static_cast<size_t>(N * K) * DTypeSize(dtype);
  const int copies = static_cast<int>(std::max<size_t>(2, FromMemoryBytes() / matrix_bytes + 1));
  AlignedBuffer w;
  w.Allocate(matrix_bytes * copies);
  std::vector<float> src(static_cast<size_t>(N * K));
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  auto* bytes = static_cast<uint8_t*>(w.data());
  for (int c = 0; c < copies; ++c) ConvertFloats(src.data(), DType::kF32, bytes + matrix_bytes * c, dtype, src.size());
  std::vector<float> x(static_cast<size_t>(K)), y(static_cast<size_t>(N));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  SetCpuDecodeX(mode);
  int copy = 0;
  for (auto _ : state) {
    backend->MatMul(x.data(), 1, MatView{bytes + matrix_bytes * copy, dtype, N, K}, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
    copy = (copy + 1) % copies;
  }
  SetCpuDecodeX(DecodeX::kAuto);
  const bool half = mode == DecodeX::kFloat16 || (mode == DecodeX::kAuto && CpuDecodeHalfX());
  state.SetLabel(std::string(CpuSimdTargetName()) + (half ? " float16 x" : " float32 x") + ", from memory");
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(matrix_bytes));
}

void DecodeXShapes(benchmark::internal::Benchmark* b) {
  for (int dt : {1, 2}) {  // kF16, kBF16
    for (auto kn : {std::pair<int, int>{2048, 5632}, {5632, 2048}, {4096, 4096}, {4096, 11008}, {11008, 4096}}) {
      for (int mode : {0, 1, 2}) b->Args({kn.first, kn.second, dt, mode});
    }
  }
}

BENCHMARK(BM_Gemv_DecodeX)->Apply(DecodeXShapes)->UseRealTime()->Unit(benchmark::kMillisecond);

std::vector<float> Filled(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (static_cast<float>((i * 2654435761u) % 2001) * 1e-3f - 1.0f) * scale;
  return v;
}

// Args: heads, kv_heads, head_dim, start position (cache depth), query tokens,
// path (0: the machine's best, AMX tiles for a bf16 model's prefill where
// usable; 1: best SIMD target, float32 inputs; 2: AVX2).
void BM_Attention_Cpu(benchmark::State& state) {
  const int H = static_cast<int>(state.range(0)), KVH = static_cast<int>(state.range(1));
  const int hd = static_cast<int>(state.range(2)), depth = static_cast<int>(state.range(3));
  const int T = static_cast<int>(state.range(4));
  const int64_t path = state.range(5);
  if (path == 2 && !(hwy::SupportedTargets() & HWY_AVX2)) {
    state.SkipWithError("AVX2 not supported here");
    return;
  }
  if (path == 2) hwy::SetSupportedTargetsForTest(HWY_AVX2);
  const int capacity = depth + T;
  const size_t layer_floats = static_cast<size_t>(KVH) * capacity * hd;
  // Enough layers that the caches together exceed the last-level cache.
  const int layers = static_cast<int>(std::max<size_t>(2, FromMemoryBytes() / (2 * 4 * layer_floats) + 1));
  ThreadPool pool(AvailableCpuThreads());
  auto backend = MakeCpuBackend(&pool);
  std::vector<float> k = Filled(layer_floats * layers, 1.0f), v = Filled(layer_floats * layers, 0.5f);
  std::vector<float> q = Filled(static_cast<size_t>(T) * H * hd, 0.3f), out(q.size());
  int layer = 0;
  SdpaWork work;
  for (auto _ : state) {
    AttentionArgs a;
    a.q = q.data();
    a.cache = KvCacheView{k.data() + layer * layer_floats, v.data() + layer * layer_floats, KVH, capacity, hd};
    a.num_tokens = T;
    a.start_pos = depth;
    a.num_heads = H;
    a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    a.out = out.data();
    a.bf16_inputs = path == 0;
    backend->Attention(a);
    benchmark::DoNotOptimize(out.data());
    work = SdpaCost(a);
    layer = (layer + 1) % layers;
  }
  {
    AttentionArgs probe;
    probe.num_tokens = T;
    probe.bf16_inputs = path == 0;
    state.SetLabel(std::string(CpuSimdTargetName()) +
                   (backend->AttentionUnit(probe) == ComputeUnit::kAmxBf16 ? " + AMX-BF16" : " FMA"));
  }
  hwy::SetSupportedTargetsForTest(0);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(2 * 4 * layer_floats));
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(work.total.flops) * state.iterations(),
                                                 benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void AttentionShapes(benchmark::internal::Benchmark* b) {
  for (auto heads : {std::array<int, 3>{32, 4, 64}, {32, 32, 128}}) {
    for (int path : {1, 2}) {
      for (int depth : {512, 2048}) b->Args({heads[0], heads[1], heads[2], depth, 1, path});
    }
    for (int path : {0, 1, 2}) b->Args({heads[0], heads[1], heads[2], 0, 512, path});
  }
}

BENCHMARK(BM_Attention_Cpu)->Apply(AttentionShapes)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Args: rows, width (hidden size for RmsNorm/RoPE, intermediate size for SiluMul).
void BM_RmsNorm_Cpu(benchmark::State& state) {
  const int64_t M = state.range(0), n = state.range(1);
  ThreadPool pool(AvailableCpuThreads());
  auto backend = MakeCpuBackend(&pool);
  std::vector<float> x = Filled(static_cast<size_t>(M * n), 1.0f), w = Filled(static_cast<size_t>(n), 1.0f);
  std::vector<float> out(x.size());
  for (auto _ : state) {
    backend->RmsNorm(x.data(), MatView{w.data(), DType::kF32, 1, n}, 1e-5f, M, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * M * n * 8);
}

void BM_Rope_Cpu(benchmark::State& state) {
  const int64_t M = state.range(0), n = state.range(1);
  const int hd = 128, heads = static_cast<int>(n / hd);
  ThreadPool pool(AvailableCpuThreads());
  auto backend = MakeCpuBackend(&pool);
  std::vector<float> x = Filled(static_cast<size_t>(M * n), 1.0f);
  std::vector<float> cos_t = Filled(static_cast<size_t>(M * hd / 2), 1.0f), sin_t = Filled(cos_t.size(), 1.0f);
  for (auto _ : state) {
    backend->Rope(x.data(), M, heads, hd, 0, cos_t.data(), sin_t.data());
    benchmark::DoNotOptimize(x.data());
  }
  state.SetBytesProcessed(state.iterations() * M * n * 8);
}

void BM_SiluMul_Cpu(benchmark::State& state) {
  const int64_t M = state.range(0), n = state.range(1);
  ThreadPool pool(AvailableCpuThreads());
  auto backend = MakeCpuBackend(&pool);
  std::vector<float> g = Filled(static_cast<size_t>(M * n), 1.0f), u = Filled(g.size(), 1.0f), out(g.size());
  for (auto _ : state) {
    backend->SiluMul(g.data(), u.data(), g.size(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * M * n * 12);
}

BENCHMARK(BM_RmsNorm_Cpu)->Args({1, 4096})->Args({512, 4096})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Rope_Cpu)->Args({1, 4096})->Args({512, 4096})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SiluMul_Cpu)->Args({1, 11008})->Args({512, 11008})->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace llm

BENCHMARK_MAIN();
