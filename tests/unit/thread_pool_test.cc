#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace llm {
namespace {

TEST(ThreadPool, EveryTaskRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (size_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      std::atomic<bool> bad_worker{false};
      pool.ParallelFor(n, [&](size_t t, int w) {
        hits[t]++;
        if (w < 0 || w >= threads) bad_worker = true;
      });
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "threads " << threads << " n " << n;
      EXPECT_FALSE(bad_worker);
    }
  }
}

TEST(ThreadPool, ManyShortRegionsInARow) {
  ThreadPool pool(2);
  std::atomic<long> sum{0};
  for (int i = 0; i < 20000; ++i) pool.ParallelFor(4, [&](size_t t, int) { sum += static_cast<long>(t); });
  EXPECT_EQ(sum.load(), 20000L * 6);
}

TEST(ThreadPool, RangesCoverWithoutOverlap) {
  ThreadPool pool(2);
  std::vector<std::atomic<int>> hits(1001);
  pool.ParallelRange(1001, 64, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) hits[i]++;
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
}

}  // namespace
}  // namespace llm
