// Our bfloat16 prefill GEMM against oneDNN's matmul on the same shapes, in
// alternating rounds (issue #13: "oneDNN or your own kernels: decide by
// measurement"). Built only where Debian's libdnnl-dev is installed; a dev
// benchmark, not a product dependency. oneDNN runs on its OpenMP threads
// (as many as ours), W bfloat16 [N, K] row-major either read in place
// ("ba") or reordered once into the layout oneDNN picks ("any", the cost of
// a packed copy paid at load), x rounded to bfloat16 beforehand (its 2.6
// matmul takes no float32 x with bf16 W), y float32. Every buffer is filled:
// untouched buffers are the kernel's shared zero page, cached whatever their
// size, and made oneDNN read 3.5 TFLOP/s instead of ~2.0 at 512x2048x5632.
//
//   build/bench/onednn_matmul --rounds 5 --m 512 --k 2048 --n 5632
#include <CLI/CLI.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "bench/stats.h"
#include "core/aligned_buffer.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/cpu/amx/amx_gemm.h"
#include "kernels/ops.h"

namespace llm {
namespace {

template <class F>
double MedianSeconds(F call, int calls) {
  std::vector<double> seconds;
  for (int i = 0; i < calls; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return ComputeStats(seconds).median;
}

int Run(int argc, char** argv) {
  int rounds = 5, calls = 20;
  int64_t M = 512, K = 2048, N = 5632;
  CLI::App app{"Our bf16 GEMM against oneDNN's matmul, alternating rounds"};
  app.add_option("--rounds", rounds);
  app.add_option("--calls", calls, "timed calls per engine per round (median taken)");
  app.add_option("--m", M);
  app.add_option("--k", K);
  app.add_option("--n", N);
  CLI11_PARSE(app, argc, argv);
  const int threads = AvailableCpuThreads();
  omp_set_num_threads(threads);

  // Inputs: varied bf16 values (filled pages), x as float32 for ours and
  // rounded to bf16 for oneDNN.
  std::vector<float> x(static_cast<size_t>(M * K)), w_f(static_cast<size_t>(N * K));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  for (size_t i = 0; i < w_f.size(); ++i) w_f[i] = static_cast<float>((i * 40503u) % 997) * 1e-3f - 0.5f;
  std::vector<uint16_t> w_b(w_f.size()), x_b(x.size());
  ConvertFloats(w_f.data(), DType::kF32, w_b.data(), DType::kBF16, w_f.size());
  ConvertFloats(x.data(), DType::kF32, x_b.data(), DType::kBF16, x.size());
  std::vector<float> y_ours(static_cast<size_t>(M * N), 0.f), y_dnnl(y_ours.size(), 0.f);

  ThreadPool pool(threads);
  auto backend = MakeCpuBackend(&pool);
  const MatView view{w_b.data(), DType::kBF16, N, K};
  const ComputeUnit unit = backend->MatMulUnit(M, view);

  using dnnl::memory;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(eng);
  const memory::desc x_md({M, K}, memory::data_type::bf16, memory::format_tag::ab);
  const memory::desc w_md({K, N}, memory::data_type::bf16, memory::format_tag::ba);  // W [N, K] row-major
  const memory::desc w_any({K, N}, memory::data_type::bf16, memory::format_tag::any);
  const memory::desc y_md({M, N}, memory::data_type::f32, memory::format_tag::ab);
  memory x_mem(x_md, eng, x_b.data()), w_mem(w_md, eng, w_b.data()), y_mem(y_md, eng, y_dnnl.data());
  const dnnl::matmul::primitive_desc in_place_pd(dnnl::matmul::desc(x_md, w_md, y_md), eng);
  const dnnl::matmul::primitive_desc packed_pd(dnnl::matmul::desc(x_md, w_any, y_md), eng);
  memory w_packed = w_mem;
  if (packed_pd.weights_desc() != w_md) {
    w_packed = memory(packed_pd.weights_desc(), eng);
    dnnl::reorder(w_mem, w_packed).execute(stream, w_mem, w_packed);
    stream.wait();
  }
  const dnnl::matmul in_place(in_place_pd), packed(packed_pd);
  const auto run_dnnl = [&](const dnnl::matmul& mm, const memory& w) {
    // x was rounded once, outside the timing (ours rounds it inside MatMul: the comparison favours oneDNN).
    mm.execute(stream, {{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y_mem}});
    stream.wait();
  };

  std::printf("M=%lld K=%lld N=%lld, %d threads; ours: %s; oneDNN %d.%d.%d: %s (in place), %s (packed)\n",
              static_cast<long long>(M), static_cast<long long>(K), static_cast<long long>(N), threads,
              ComputeUnitName(unit), dnnl_version()->major, dnnl_version()->minor, dnnl_version()->patch,
              in_place_pd.impl_info_str(), packed_pd.impl_info_str());
  const double flop = 2.0 * M * K * N;
  std::vector<double> ours, dnnl_in_place, dnnl_packed, ratio;
  for (int r = 0; r < rounds; ++r) {
    const double t_ours = MedianSeconds([&] { backend->MatMul(x.data(), M, view, nullptr, y_ours.data()); }, calls);
    const double t_in_place = MedianSeconds([&] { run_dnnl(in_place, w_mem); }, calls);
    const double t_packed = MedianSeconds([&] { run_dnnl(packed, w_packed); }, calls);
    ours.push_back(flop / t_ours * 1e-9);
    dnnl_in_place.push_back(flop / t_in_place * 1e-9);
    dnnl_packed.push_back(flop / t_packed * 1e-9);
    ratio.push_back(std::min(t_in_place, t_packed) / t_ours);
    std::printf("round %d: ours %.0f, oneDNN in place %.0f, packed %.0f GFLOP/s\n", r, ours.back(),
                dnnl_in_place.back(), dnnl_packed.back());
  }
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < y_ours.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(y_ours[i] - y_dnnl[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(y_dnnl[i])));
  }
  std::printf("medians: ours %.0f, oneDNN in place %.0f, packed %.0f GFLOP/s; ours over oneDNN's faster layout, "
              "paired: %.2fx; max |y_ours - y_onednn| %.2g (|y| up to %.2g)\n",
              ComputeStats(ours).median, ComputeStats(dnnl_in_place).median, ComputeStats(dnnl_packed).median,
              ComputeStats(ratio).median, max_diff, max_abs);
  return 0;
}

}  // namespace
}  // namespace llm

int main(int argc, char** argv) { return llm::Run(argc, argv); }
