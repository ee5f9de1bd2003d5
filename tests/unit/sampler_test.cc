#include "model/sampler.h"

#include <gtest/gtest.h>

#include <map>

namespace llm {
namespace {

TEST(Sampler, GreedyTakesFirstMaximumLikeTorchArgmax) {
  const float logits[5] = {0.1f, 3.0f, -1.0f, 3.0f, 2.9f};
  Sampler s(SamplingOptions{});
  EXPECT_EQ(s.Sample(logits, 5), 1);
}

TEST(Sampler, TopKOneIsGreedy) {
  const float logits[4] = {0.5f, 0.2f, 0.9f, 0.1f};
  Sampler s(SamplingOptions{1.0f, 1, 1.0f, 3});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.Sample(logits, 4), 2);
}

TEST(Sampler, TinyTopPIsGreedy) {
  const float logits[4] = {0.5f, 0.2f, 0.9f, 0.1f};
  Sampler s(SamplingOptions{1.0f, 0, 0.01f, 3});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.Sample(logits, 4), 2);
}

TEST(Sampler, SeededAndFollowsTheDistribution) {
  const float logits[3] = {0.0f, std::log(2.0f), std::log(7.0f)};  // probabilities 0.1, 0.2, 0.7
  Sampler a(SamplingOptions{1.0f, 0, 1.0f, 42}), b(SamplingOptions{1.0f, 0, 1.0f, 42});
  std::map<int, int> counts;
  for (int i = 0; i < 20000; ++i) {
    const int x = a.Sample(logits, 3);
    ASSERT_EQ(x, b.Sample(logits, 3));
    counts[x]++;
  }
  EXPECT_NEAR(counts[0] / 20000.0, 0.1, 0.015);
  EXPECT_NEAR(counts[1] / 20000.0, 0.2, 0.015);
  EXPECT_NEAR(counts[2] / 20000.0, 0.7, 0.015);
}

}  // namespace
}  // namespace llm
