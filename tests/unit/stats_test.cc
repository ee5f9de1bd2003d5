#include "bench/stats.h"

#include <gtest/gtest.h>

namespace llm {
namespace {

TEST(Stats, MatchesNumpyPercentilesAndSampleStddev) {
  // numpy: np.percentile([1,2,3,4,10], [50,90,99]) = 3, 7.6, 9.76; np.std(ddof=1) = 3.5355
  const Stats s = ComputeStats({4, 1, 10, 3, 2});
  EXPECT_DOUBLE_EQ(s.median, 3);
  EXPECT_NEAR(s.p90, 7.6, 1e-12);
  EXPECT_NEAR(s.p99, 9.76, 1e-12);
  EXPECT_NEAR(s.stddev, 3.5355339059327378, 1e-12);
  EXPECT_DOUBLE_EQ(s.mean, 4);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 10);
}

TEST(Stats, EmptyAndSingle) {
  EXPECT_EQ(ComputeStats({}).count, 0);
  const Stats one = ComputeStats({2.5});
  EXPECT_DOUBLE_EQ(one.median, 2.5);
  EXPECT_DOUBLE_EQ(one.stddev, 0);
}

}  // namespace
}  // namespace llm
