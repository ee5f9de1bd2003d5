// Calibration probes: positive and repeatable. Runs alone (RUN_SERIAL): other
// tests running beside it would move the bandwidth it measures.
#include "bench/calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "core/thread_pool.h"

namespace llm {
namespace {

// Two calibrations in a row agree within 20%. The machines are shared, and a
// neighbour's memory traffic can last for seconds, so the pair gets three
// chances; a probe that measured the wrong thing would disagree every time.
TEST(Calibration, PositiveAndRepeatable) {
  ThreadPool pool(2);
  bool agreed = false;
  for (int attempt = 0; attempt < 3 && !agreed; ++attempt) {
    const Calibration a = MeasureCalibration(&pool, size_t{256} << 20);
    const Calibration b = MeasureCalibration(&pool, size_t{256} << 20);
    std::printf("  calibration: %.1f / %.1f GB/s, %.1f / %.1f GFLOP/s\n", a.read_gbps, b.read_gbps, a.fma_gflops,
                b.fma_gflops);
    ASSERT_GT(a.read_gbps, 0.5);
    ASSERT_GT(a.fma_gflops, 1.0);
    agreed = std::fabs(a.read_gbps / b.read_gbps - 1.0) <= 0.2 && std::fabs(a.fma_gflops / b.fma_gflops - 1.0) <= 0.2;
  }
  EXPECT_TRUE(agreed) << "calibration not repeatable within 20% in three attempts";
}

}  // namespace
}  // namespace llm
