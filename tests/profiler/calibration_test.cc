// Calibration probes: positive and repeatable. Runs alone (RUN_SERIAL): other
// tests running beside it would move the bandwidth it measures.
#include "bench/calibration.h"
#include "kernels/cpu/amx/amx_gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

#include "core/thread_pool.h"
#include "test_util.h"

namespace llm {
namespace {

// Two calibrations in a row agree within 20%. The machines are shared, and a
// neighbour's memory traffic can last for seconds (Zen 4 VM: 14-38 GB/s within
// a minute), so the pair gets five chances; a probe that measured the wrong thing would disagree every time.
TEST(Calibration, PositiveAndRepeatable) {
  ThreadPool pool(2);
  bool agreed = false;
  for (int attempt = 0; attempt < 5 && !agreed; ++attempt) {
    const Calibration a = MeasureCalibration(&pool, size_t{256} << 20);
    const Calibration b = MeasureCalibration(&pool, size_t{256} << 20);
    std::printf("  calibration: %.1f / %.1f GB/s, %.1f / %.1f GFLOP/s\n", a.read_gbps, b.read_gbps, a.fma_gflops,
                b.fma_gflops);
    ASSERT_GT(a.read_gbps, 0.5);
    ASSERT_GT(a.fma_gflops, 1.0);
    agreed = std::fabs(a.read_gbps / b.read_gbps - 1.0) <= 0.2 && std::fabs(a.fma_gflops / b.fma_gflops - 1.0) <= 0.2;
    // Where AMX is usable its probe is measured too, and must agree as well.
    EXPECT_EQ(a.amx_bf16_gflops > 0, b.amx_bf16_gflops > 0);
    if (a.amx_bf16_gflops > 0) {
      std::printf("  AMX-BF16: %.1f / %.1f GFLOP/s\n", a.amx_bf16_gflops, b.amx_bf16_gflops);
      agreed = agreed && std::fabs(a.amx_bf16_gflops / b.amx_bf16_gflops - 1.0) <= 0.2;
    }
    // Likewise the AVX512-BF16 dot products where the CPU has them.
    EXPECT_EQ(a.bf16_dot_gflops > 0, amx::Bf16DotsUsable());
    if (a.bf16_dot_gflops > 0) {
      std::printf("  AVX512-BF16: %.1f / %.1f GFLOP/s\n", a.bf16_dot_gflops, b.bf16_dot_gflops);
      agreed = agreed && std::fabs(a.bf16_dot_gflops / b.bf16_dot_gflops - 1.0) <= 0.2;
    }
  }
  EXPECT_TRUE(agreed) << "calibration not repeatable within 20% in five attempts";
}

// A probe taken while the machine was busy does not lower the cached roof:
// per metric the cache keeps the higher value, and later runs load it.
TEST(Calibration, CacheKeepsTheBestValueSeenPerMetric) {
  testing::TempDir dir;
  const char* old = std::getenv("XDG_CACHE_HOME");
  const std::string saved = old ? old : "";
  ::setenv("XDG_CACHE_HOME", dir.path().c_str(), 1);
  ThreadPool pool(2);
  Calibration c = MeasureCalibration(&pool, size_t{1} << 20);  // for a valid machine key
  c.read_gbps = 10;
  c.fma_gflops = 100;
  c.bf16_dot_gflops = 300;
  StoreCalibration(c);
  c.read_gbps = 20;
  c.fma_gflops = 50;
  c.bf16_dot_gflops = 200;
  const Calibration kept = StoreCalibration(c);
  const Calibration loaded = LoadOrMeasureCalibration(&pool);
  if (old) {
    ::setenv("XDG_CACHE_HOME", saved.c_str(), 1);
  } else {
    ::unsetenv("XDG_CACHE_HOME");
  }
  EXPECT_DOUBLE_EQ(kept.read_gbps, 20);
  EXPECT_DOUBLE_EQ(kept.fma_gflops, 100);
  EXPECT_DOUBLE_EQ(loaded.read_gbps, 20);
  EXPECT_DOUBLE_EQ(loaded.fma_gflops, 100);
  EXPECT_DOUBLE_EQ(loaded.bf16_dot_gflops, 300);
  EXPECT_EQ(loaded.source.rfind("cache:", 0), 0u) << loaded.source;
}

// A cache that is a FIFO, or whose figures have the wrong JSON type, is read
// as empty: no hang, no exception, and the new figures replace it.
TEST(Calibration, AFifoOrMistypedCacheIsIgnored) {
  testing::TempDir dir;
  const char* old = std::getenv("XDG_CACHE_HOME");
  const std::string saved = old ? old : "";
  ::setenv("XDG_CACHE_HOME", dir.path().c_str(), 1);
  const std::string path = CalibrationCachePath();
  ASSERT_EQ(std::system(("mkdir -p " + dir.path() + "/llama-speedbench && mkfifo " + path).c_str()), 0);
  ThreadPool pool(2);
  Calibration c = MeasureCalibration(&pool, size_t{1} << 20);
  c.read_gbps = 12;
  c.fma_gflops = 34;
  ::alarm(60);  // a blocking open of the FIFO ends the test instead of hanging ctest
  const Calibration kept = StoreCalibration(c);
  ::alarm(0);
  EXPECT_DOUBLE_EQ(kept.read_gbps, 12);
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fprintf(f, "{\"%s\": {\"read_gbps\": \"fast\", \"fma_gflops\": [1]}}", c.key.c_str());
    std::fclose(f);
  }
  const Calibration again = StoreCalibration(c);
  if (old) {
    ::setenv("XDG_CACHE_HOME", saved.c_str(), 1);
  } else {
    ::unsetenv("XDG_CACHE_HOME");
  }
  EXPECT_DOUBLE_EQ(again.read_gbps, 12);
  EXPECT_DOUBLE_EQ(again.fma_gflops, 34);
}

}  // namespace
}  // namespace llm
