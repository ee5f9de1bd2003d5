// Conversions between float storage types, checked against oracles nobody here
// wrote: the CPU's own F16C instructions for float16, and exact arithmetic in
// double for bfloat16 rounding.
#include <gtest/gtest.h>

#include <cstring>
#include <immintrin.h>

#include <cmath>
#include <random>

#include "core/dtype.h"

namespace llm {
namespace {

__attribute__((target("f16c"))) float HwF16ToF32(uint16_t h) { return _cvtsh_ss(h); }
__attribute__((target("f16c"))) uint16_t HwF32ToF16(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }

bool SameFloat(float a, float b) { return (std::isnan(a) && std::isnan(b)) || FloatBits(a) == FloatBits(b); }

TEST(DType, BF16ToF32IsExactForAllValues) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = BF16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(F32ToBF16(f), h) << "round trip of bf16 0x" << std::hex << h;
  }
}

// Reference bf16 rounding: pick the nearer of the two neighbouring bf16 values
// in double arithmetic; ties go to the even mantissa.
uint16_t ReferenceF32ToBF16(float f) {
  const uint32_t u = FloatBits(f);
  const uint16_t down = static_cast<uint16_t>(u >> 16);
  const uint16_t up = static_cast<uint16_t>(down + 1);
  const double d = f, lo = BF16ToF32(down), hi = BF16ToF32(up);
  const double dlo = std::fabs(d - lo), dhi = std::fabs(hi - d);
  if (dlo < dhi) return down;
  if (dhi < dlo) return up;
  return (down & 1) ? up : down;
}

TEST(DType, F32ToBF16RoundsToNearestEven) {
  std::mt19937 rng(7);
  for (int i = 0; i < 1000000; ++i) {
    const float f = BitsFloat(rng());
    if (std::isnan(f) || std::isinf(f) || std::fabs(f) > 3e38f) continue;
    ASSERT_EQ(F32ToBF16(f), ReferenceF32ToBF16(f)) << "f = " << f;
  }
  EXPECT_EQ(F32ToBF16(BitsFloat(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(F32ToBF16(BitsFloat(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(NAN))));
  EXPECT_EQ(F32ToBF16(INFINITY), 0x7f80);
}

class F16 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "no F16C on this CPU to compare against";
  }
};

TEST_F(F16, F16ToF32MatchesHardwareForAllValues) {
  for (uint32_t h = 0; h < 65536; ++h) {
    ASSERT_TRUE(SameFloat(F16ToF32(static_cast<uint16_t>(h)), HwF16ToF32(static_cast<uint16_t>(h)))) << "0x" << std::hex << h;
  }
}

TEST_F(F16, F32ToF16MatchesHardwareRounding) {
  std::mt19937 rng(11);
  for (int i = 0; i < 2000000; ++i) {
    // Mostly values near the f16 range, including subnormals and overflow.
    const float f = (i % 2) ? BitsFloat(rng()) : std::ldexp(static_cast<float>(rng()) / 4294967296.0f, (int)(rng() % 40) - 28);
    const uint16_t ours = F32ToF16(f), hw = HwF32ToF16(f);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(F16ToF32(ours)));
      continue;
    }
    ASSERT_EQ(ours, hw) << "f = " << f;
  }
  for (float f : {65504.0f, 65519.99f, 65520.0f, 1e-8f, 2.98e-8f, 2.99e-8f, 6.1e-5f, -0.0f}) {
    EXPECT_EQ(F32ToF16(f), HwF32ToF16(f)) << f;
  }
}

TEST(DType, ConvertFloatsBetweenAllTypes) {
  const float src[5] = {1.0f, -2.5f, 0.1f, 65504.0f, 1e-3f};
  uint16_t half[5];
  float back[5];
  ConvertFloats(src, DType::kF32, half, DType::kF16, 5);
  ConvertFloats(half, DType::kF16, back, DType::kF32, 5);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(back[i], src[i], std::fabs(src[i]) * 1e-3);
  uint16_t bf[5];
  ConvertFloats(half, DType::kF16, bf, DType::kBF16, 5);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(BF16ToF32(bf[i]), src[i], std::fabs(src[i]) * 8e-3);
}

// safetensors does not align tensors: the conversion reads and writes at any
// byte offset (UBSan: no misaligned typed load), with the aligned result.
TEST(DType, ConvertFloatsAtOddAddresses) {
  const float src[4] = {1.0f, -2.5f, 0.1f, 3e4f};
  for (DType from : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (DType to : {DType::kF32, DType::kF16, DType::kBF16}) {
      alignas(16) uint8_t aligned_src[32], odd_src[40], aligned_dst[32], odd_dst[40];
      ConvertFloats(src, DType::kF32, aligned_src, from, 4);
      std::memcpy(odd_src + 1, aligned_src, 4 * DTypeSize(from));
      ConvertFloats(aligned_src, from, aligned_dst, to, 4);
      ConvertFloats(odd_src + 1, from, odd_dst + 3, to, 4);
      EXPECT_EQ(std::memcmp(aligned_dst, odd_dst + 3, 4 * DTypeSize(to)), 0) << DTypeName(from) << " -> " << DTypeName(to);
    }
  }
}

TEST(DType, ParseNames) {
  DType d;
  EXPECT_TRUE(ParseDType("bfloat16", &d));
  EXPECT_EQ(d, DType::kBF16);
  EXPECT_TRUE(ParseDType("float16", &d));
  EXPECT_EQ(d, DType::kF16);
  EXPECT_FALSE(ParseDType("float8", &d));
}

}  // namespace
}  // namespace llm
