// Pairs of readings one moment apart: the read probe (--calibrate's, on 256
// MiB), then the one-row (decode) GEMV of each weight type from memory, then the
// probe again, round after round. On a shared machine whose bandwidth moves
// from minute to minute (AMD EPYC Zen 4 VM: 29-63 GB/s), a kernel's fraction
// of the roof means something only against the roof of its own moment; the
// pairs show how that fraction changes with the bandwidth available. A dev
// benchmark (not Google Benchmark: the pairing is the point).
//
//   build/bench/roof_pairs --rounds 100 --k 2048 --n 5632 --types q8_0,q4_0,q4_k
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench/calibration.h"
#include "bench/stats.h"
#include "core/aligned_buffer.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/cpu/amx/amx_gemm.h"
#include "kernels/ops.h"
#include "quant_matrices.h"

namespace llm {
namespace {

// A type's matrices: enough copies of K x N to stream from memory (256 MiB),
// in the backend's decode layout as a model prepares them.
struct Matrices {
  DType dtype;
  size_t matrix_bytes = 0;
  int copies = 0;
  AlignedBuffer bytes;
};

int Run(int argc, char** argv) {
  int rounds = 60, pause_ms = 300, threads = 0;
  int64_t K = 2048, N = 5632, M = 1;
  std::vector<std::string> names = {"q8_0", "q4_0", "q4_k"};
  CLI::App app{"read probe and decode GEMVs from memory, alternated (pairs one moment apart)"};
  app.add_option("--rounds", rounds, "probe, every type, probe: this many times");
  app.add_option("--k", K, "columns (the reduction)");
  app.add_option("--n", N, "rows");
  app.add_option("--batch", M, "rows of x (decode of a batch of sequences)");
  app.add_option("--types", names, "comma-separated weight types (q8_0, q4_0, q4_k, q6_k, ..., bfloat16, float16, float32)")
      ->delimiter(',');
  app.add_option("--pause-ms", pause_ms, "sleep between rounds, so that rounds sample different minutes");
  app.add_option("--threads", threads, "0: all available");
  bool no_amx = false;
  app.add_flag("--no-amx", no_amx, "batches of bf16 / f16 W on the vector units instead of AMX tiles");
  CLI11_PARSE(app, argc, argv);
  if (no_amx) amx::SetAmxEnabled(false);
  ThreadPool pool(threads > 0 ? threads : AvailableCpuThreads());
  ReadProbeBuffer probe;
  if (!probe.Allocate(&pool, size_t{256} << 20)) {
    std::fprintf(stderr, "error: cannot allocate the probe's 256 MiB\n");
    return 2;
  }
  auto backend = MakeCpuBackend(&pool);
  std::vector<Matrices> mats;
  for (const std::string& name : names) {
    DType dt;
    if (!ParseWeightDType(name, &dt) || dt == DType::kI32) {
      std::fprintf(stderr, "error: --types: '%s' is not a weight type\n", name.c_str());
      return 2;
    }
    if (K % DTypeBlockSize(dt) != 0) {
      std::fprintf(stderr, "error: --k %lld is not a multiple of %s's block\n", static_cast<long long>(K), name.c_str());
      return 2;
    }
    Matrices m;
    m.dtype = dt;
    m.matrix_bytes = DTypeRowBytes(dt, K) * static_cast<size_t>(N);
    m.copies = static_cast<int>((size_t{256} << 20) / m.matrix_bytes + 1);
    m.bytes.Allocate(m.matrix_bytes * m.copies);
    if (IsQuantized(dt)) {
      FillQuantBytes(static_cast<uint8_t*>(m.bytes.data()), m.matrix_bytes * m.copies, dt);
    } else {  // float weights: small finite values, converted one row at a time
      std::vector<float> row(static_cast<size_t>(K));
      for (int64_t i = 0; i < K; ++i) row[i] = static_cast<float>((i * 2654435761u) % 997) * 1e-5f - 0.005f;
      for (size_t r = 0; r < static_cast<size_t>(N) * m.copies; ++r) {
        ConvertFloats(row.data(), DType::kF32, static_cast<uint8_t*>(m.bytes.data()) + r * DTypeRowBytes(dt, K), dt,
                      static_cast<size_t>(K));
      }
    }
    mats.push_back(std::move(m));
  }
  size_t reserve = 0;
  for (const Matrices& m : mats) {
    reserve += m.copies * backend->PrepareWeightsBytes(MatView{m.bytes.data(), m.dtype, N, K});
  }
  backend->ReserveWeights(reserve);
  for (const Matrices& m : mats) {
    for (int c = 0; c < m.copies; ++c) {
      backend->PrepareWeights(MatView{static_cast<const uint8_t*>(m.bytes.data()) + m.matrix_bytes * c, m.dtype, N, K});
    }
  }
  std::vector<float> x(static_cast<size_t>(M * K)), y(static_cast<size_t>(M * N));
  for (int64_t i = 0; i < M * K; ++i) x[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;

  std::printf("%zu threads, %lld x %lld, %lld row(s) of x, 256 MiB per type per pass; "
              "GB/s: probe before, each type, probe after\n",
              static_cast<size_t>(pool.num_threads()), static_cast<long long>(K), static_cast<long long>(N),
              static_cast<long long>(M));
  std::vector<double> roofs;
  std::vector<std::vector<double>> fractions(mats.size());
  for (int r = 0; r < rounds; ++r) {
    const double before = probe.Measure(6);
    std::vector<double> got(mats.size());
    for (size_t i = 0; i < mats.size(); ++i) {
      const size_t t = (i + r) % mats.size();  // the order turns, so no type always follows the probe
      const Matrices& m = mats[t];
      double best = 0;
      for (int pass = 0; pass < 2; ++pass) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int c = 0; c < m.copies; ++c) {
          backend->MatMul(x.data(), M, MatView{static_cast<const uint8_t*>(m.bytes.data()) + m.matrix_bytes * c, m.dtype, N, K},
                          nullptr, y.data());
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, m.copies * m.matrix_bytes / s / 1e9);
      }
      got[t] = best;
    }
    const double after = probe.Measure(6);
    const double roof = std::max(before, after);
    roofs.push_back(roof);
    std::printf("%.1f", before);
    for (size_t t = 0; t < mats.size(); ++t) {
      std::printf(" %s %.1f", names[t].c_str(), got[t]);
      fractions[t].push_back(got[t] / roof);
    }
    std::printf(" %.1f\n", after);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  }
  // Rounds whose roof is within 20% of the best seen ("fast minutes") and the others.
  const double best = *std::max_element(roofs.begin(), roofs.end());
  for (int fast = 1; fast >= 0; --fast) {
    std::vector<double> these;
    std::vector<std::vector<double>> f(mats.size());
    for (size_t r = 0; r < roofs.size(); ++r) {
      if ((roofs[r] >= 0.8 * best) != static_cast<bool>(fast)) continue;
      these.push_back(roofs[r]);
      for (size_t t = 0; t < mats.size(); ++t) f[t].push_back(fractions[t][r]);
    }
    if (these.empty()) continue;
    std::printf("%s: %zu rounds, roof median %.1f GB/s;", fast ? "roof >= 80% of the best" : "slower rounds",
                these.size(), ComputeStats(these).median);
    for (size_t t = 0; t < mats.size(); ++t) std::printf(" %s %.0f%%", names[t].c_str(), 100 * ComputeStats(f[t]).median);
    std::printf(" of the roof beside (median)\n");
  }
  return 0;
}

}  // namespace
}  // namespace llm

int main(int argc, char** argv) { return llm::Run(argc, argv); }
