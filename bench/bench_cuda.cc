// Micro-benchmarks of the CUDA engine's kernels at Llama-2-7B shapes, timed
// with CUDA events (manual time): the decode GEMVs in GB/s of weights against
// a device-to-device copy measured in the same run, and the cuBLAS GEMMs of a
// 512-token prefill (the yardstick of issue #8's prefill target). Without a
// GPU every benchmark reports the reason and skips.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <vector>

#include "cuda/cuda_engine.h"
#include "cuda/cuda_kernels.h"

namespace llm {
namespace {

using cuda::WType;

bool NoGpu(benchmark::State& state) {
  auto n = CudaDeviceCount();
  if (!n.ok()) state.SkipWithError(n.status().message().c_str());
  return !n.ok();
}

// Times `body` with CUDA events per iteration.
template <typename F>
void TimeOnStream(benchmark::State& state, cudaStream_t s, F&& body) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  body();  // warm-up
  for (auto _ : state) {
    cudaEventRecord(a, s);
    body();
    cudaEventRecord(b, s);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    state.SetIterationTime(ms * 1e-3);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
}

void BM_CopyDeviceToDevice(benchmark::State& state) {
  if (NoGpu(state)) return;
  const size_t bytes = size_t{1} << 30;
  void *src = nullptr, *dst = nullptr;
  cudaMalloc(&src, bytes);
  cudaMalloc(&dst, bytes);
  cudaMemset(src, 1, bytes);
  TimeOnStream(state, nullptr, [&] { cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice); });
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<int64_t>(bytes));  // read + write
  cudaFree(src);
  cudaFree(dst);
}

// Decode GEMV: rows x cols weights of type `t`; gate_up = fused gate/up with silu.
void BM_Gemv(benchmark::State& state) {
  if (NoGpu(state)) return;
  const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
  const WType t = static_cast<WType>(state.range(2));
  const bool gate_up = state.range(3) != 0;
  const size_t wbytes = static_cast<size_t>(rows) * cols * cuda::WTypeSize(t);
  void* w = nullptr;
  float *x = nullptr, *y = nullptr;
  cudaMalloc(&w, wbytes);
  cudaMalloc(&x, cols * sizeof(float));
  cudaMalloc(&y, rows * sizeof(float));
  cudaMemset(w, 0, wbytes);
  cudaMemset(x, 0, cols * sizeof(float));
  TimeOnStream(state, nullptr, [&] {
    if (gate_up) {
      cuda::GemvGateUpSilu(w, t, x, nullptr, rows / 2, cols, y, nullptr);
    } else {
      cuda::Gemv(w, t, x, nullptr, rows, cols, y, nullptr);
    }
  });
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(wbytes));
  cudaFree(w);
  cudaFree(x);
  cudaFree(y);
}

// The GEMMs of one 512-token prefill of Llama-2-7B in float16 (fused q/k/v and
// gate/up as the engine runs them), through cuBLAS alone.
void BM_CublasPrefillGemms7B(benchmark::State& state) {
  if (NoGpu(state)) return;
  const int M = static_cast<int>(state.range(0)), H = 4096, F = 11008, layers = 32;
  const int shapes[4][2] = {{3 * H, H}, {H, H}, {2 * F, H}, {H, F}};  // N, K
  size_t max_w = 0;
  for (auto& s : shapes) max_w = std::max(max_w, static_cast<size_t>(s[0]) * s[1]);
  void *w = nullptr, *x = nullptr;
  float* y = nullptr;
  cudaMalloc(&w, max_w * 2);
  cudaMalloc(&x, static_cast<size_t>(M) * F * 2);
  cudaMalloc(&y, static_cast<size_t>(M) * 2 * F * sizeof(float));
  cudaMemset(w, 0, max_w * 2);
  cudaMemset(x, 0, static_cast<size_t>(M) * F * 2);
  cublasHandle_t h;
  cublasCreate(&h);
  const float alpha = 1, beta = 0;
  double flops = 0;
  for (auto& s : shapes) flops += 2.0 * M * s[0] * s[1] * layers;
  TimeOnStream(state, nullptr, [&] {
    for (int l = 0; l < layers; ++l) {
      for (auto& s : shapes) {
        cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, s[0], M, s[1], &alpha, w, CUDA_R_16F, s[1], x, CUDA_R_16F, s[1],
                     &beta, y, CUDA_R_32F, s[0], CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      }
    }
  });
  state.counters["TFLOP/s"] =
      benchmark::Counter(flops * state.iterations() / 1e12, benchmark::Counter::kIsRate);
  cublasDestroy(h);
  cudaFree(w);
  cudaFree(x);
  cudaFree(y);
}

BENCHMARK(BM_CopyDeviceToDevice)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Gemv)
    ->ArgNames({"rows", "cols", "wtype", "gate_up"})
    ->Args({3 * 4096, 4096, 1, 0})   // qkv, f16
    ->Args({4096, 4096, 1, 0})       // o_proj
    ->Args({2 * 11008, 4096, 1, 1})  // gate_up + silu
    ->Args({4096, 11008, 1, 0})      // down_proj
    ->Args({2 * 11008, 4096, 2, 1})  // bf16
    ->Args({2 * 11008, 4096, 0, 1})  // f32
    ->Args({32000, 4096, 1, 0})      // lm_head
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CublasPrefillGemms7B)->Arg(512)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace llm

BENCHMARK_MAIN();
