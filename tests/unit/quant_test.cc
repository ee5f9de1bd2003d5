// The scalar ggml block formats against the `gguf` Python package: every
// supported type dequantizes bit-for-bit as gguf.quants.dequantize does on
// the blocks of tests/fixtures/quant/ (tools/make_quant_fixtures.py), and the
// Q8_0 / Q4_0 quantizers produce gguf.quants.quantize's bytes.
#include "core/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "core/dtype.h"
#include "test_util.h"

namespace llm {
namespace {

struct QuantFixture {
  uint32_t type = 0, kind = 0, n = 0, nbytes = 0;
  std::vector<float> input;     // kind 1
  std::vector<uint8_t> blocks;
  std::vector<float> expected;  // gguf.quants.dequantize(blocks)
};

QuantFixture LoadFixture(const std::string& name) {
  const std::string path = testing::FixturesDir() + "/quant/" + name;
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  QuantFixture f;
  if (bytes.size() < 24 || std::memcmp(bytes.data(), "LSQF", 4) != 0) {
    ADD_FAILURE() << path << ": missing or not a quant fixture; HINT: python3 tools/make_quant_fixtures.py";
    return f;
  }
  uint32_t h[6];
  std::memcpy(h, bytes.data(), 24);
  f.type = h[2];
  f.kind = h[3];
  f.n = h[4];
  f.nbytes = h[5];
  const size_t need = 24 + f.nbytes + 4ull * f.n * (f.kind == 1 ? 2 : 1);
  if (h[1] != 1 || bytes.size() != need) {
    ADD_FAILURE() << path << ": wrong version or size " << bytes.size() << " (expected " << need << ")";
    return f;
  }
  const uint8_t* p = bytes.data() + 24;
  if (f.kind == 1) {
    f.input.resize(f.n);
    std::memcpy(f.input.data(), p, 4ull * f.n);
    p += 4ull * f.n;
  }
  f.blocks.assign(p, p + f.nbytes);
  p += f.nbytes;
  f.expected.resize(f.n);
  std::memcpy(f.expected.data(), p, 4ull * f.n);
  return f;
}

// Same bits, or both NaN (the sign of a NaN made by inf * 0 is not ggml's contract).
void ExpectBitIdentical(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool same = FloatBits(got[i]) == FloatBits(want[i]) || (std::isnan(got[i]) && std::isnan(want[i]));
    if (!same && bad++ < 5) {
      ADD_FAILURE() << what << " element " << i << ": got " << got[i] << " (0x" << std::hex << FloatBits(got[i])
                    << ") want " << want[i] << " (0x" << FloatBits(want[i]) << std::dec << ")";
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " elements differ";
}

class Dequantize : public ::testing::TestWithParam<const char*> {};

TEST_P(Dequantize, BitIdenticalToGgufPackage) {
  const std::string name = GetParam();
  GgmlType type;
  ASSERT_TRUE(ParseGgmlType(name, &type));
  const QuantFixture f = LoadFixture(name + ".bin");
  ASSERT_EQ(f.type, static_cast<uint32_t>(type));
  ASSERT_EQ(f.kind, 0u);
  ASSERT_EQ(GgmlRowBytes(type, f.n), f.nbytes);
  std::vector<float> got(f.n, -12345.0f);
  DequantizeRow(type, f.blocks.data(), got.data(), f.n);
  ExpectBitIdentical(got, f.expected, name);
  // The fixture is not degenerate: it has zeros, non-zeros and both signs.
  size_t pos = 0, neg = 0;
  for (float v : f.expected) { pos += v > 0; neg += v < 0; }
  EXPECT_GT(pos, f.n / 8);
  EXPECT_GT(neg, f.n / 8);
  // float64 output is the float32 output widened.
  std::vector<double> wide(f.n);
  DequantizeRowF64(type, f.blocks.data(), wide.data(), f.n);
  for (size_t i = 0; i < f.n; ++i) {
    if (!std::isnan(got[i])) {
      ASSERT_EQ(wide[i], static_cast<double>(got[i])) << name << " element " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, Dequantize,
                         ::testing::Values("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K",
                                           "Q5_K", "Q6_K"),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

TEST(Dequantize, EveryAdvertisedTypeHasAFixture) {
  // kSupportedGgmlTypesList is what users are told; each must parse and be tested above.
  std::string list = kSupportedGgmlTypesList;
  size_t count = 0;
  for (size_t start = 0; start < list.size();) {
    size_t end = list.find(", ", start);
    if (end == std::string::npos) end = list.size();
    GgmlType t;
    EXPECT_TRUE(ParseGgmlType(list.substr(start, end - start), &t)) << list.substr(start, end - start);
    ++count;
    start = end + 2;
  }
  EXPECT_EQ(count, 11u);
}

class Quantize : public ::testing::TestWithParam<const char*> {};

TEST_P(Quantize, BytesIdenticalToGgufPackage) {
  const std::string name = GetParam();
  GgmlType type;
  ASSERT_TRUE(ParseGgmlType(name, &type));
  const QuantFixture f = LoadFixture("quantize_" + name + ".bin");
  ASSERT_EQ(f.kind, 1u);
  ASSERT_EQ(f.nbytes, GgmlRowBytes(type, f.n));
  std::vector<uint8_t> got(f.nbytes, 0xAA);
  const bool ok = type == GgmlType::kQ8_0 ? QuantizeRowQ8_0(f.input.data(), got.data(), f.n)
                                          : QuantizeRowQ4_0(f.input.data(), got.data(), f.n);
  ASSERT_TRUE(ok);
  const GgmlTypeInfo* info = GgmlTypeInfoOf(static_cast<uint32_t>(type));
  size_t bad_blocks = 0;
  for (size_t b = 0; b < f.n / 32; ++b) {
    if (std::memcmp(got.data() + b * info->type_size, f.blocks.data() + b * info->type_size, info->type_size) != 0) {
      ADD_FAILURE() << name << " block " << b << " differs from gguf.quants.quantize";
      ++bad_blocks;
    }
  }
  EXPECT_EQ(bad_blocks, 0u);
  std::vector<float> back(f.n);
  DequantizeRow(type, got.data(), back.data(), f.n);
  ExpectBitIdentical(back, f.expected, name + " round trip");
}

INSTANTIATE_TEST_SUITE_P(Q8_0AndQ4_0, Quantize, ::testing::Values("Q8_0", "Q4_0"),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

TEST(Quantize, RefusesPartialBlocks) {
  std::vector<float> x(33, 1.0f);
  std::vector<uint8_t> out(64, 0x5A);
  EXPECT_FALSE(QuantizeRowQ8_0(x.data(), out.data(), 33));
  EXPECT_FALSE(QuantizeRowQ4_0(x.data(), out.data(), 33));
  EXPECT_EQ(out[0], 0x5A);  // nothing written
}

TEST(Quantize, NonFiniteInputIsDefinedBehaviour) {
  // Not part of gguf-py's contract, but must not be UB (UBSan runs this).
  std::vector<float> x(32, 1.0f);
  x[3] = INFINITY;
  x[5] = NAN;
  x[7] = 1e-40f;
  std::vector<uint8_t> out(34);
  EXPECT_TRUE(QuantizeRowQ8_0(x.data(), out.data(), 32));
  EXPECT_TRUE(QuantizeRowQ4_0(x.data(), out.data(), 32));
  std::vector<float> tiny(32, 1e-44f);  // 1/d overflows to inf
  EXPECT_TRUE(QuantizeRowQ8_0(tiny.data(), out.data(), 32));
  EXPECT_TRUE(QuantizeRowQ4_0(tiny.data(), out.data(), 32));
}

TEST(GgmlTypes, NamesSizesAndUnsupported) {
  EXPECT_STREQ(GgmlTypeName(16), "IQ2_XXS");
  EXPECT_STREQ(GgmlTypeName(9), "Q8_1");
  EXPECT_STREQ(GgmlTypeName(999), "unknown");
  EXPECT_EQ(GgmlTypeInfoOf(9), nullptr);   // Q8_1: a valid ggml type we do not read
  EXPECT_EQ(GgmlTypeInfoOf(10), nullptr);  // Q2_K
  GgmlType t;
  EXPECT_FALSE(ParseGgmlType("Q2_K", &t));
  EXPECT_TRUE(ParseGgmlType("q4_k", &t));
  EXPECT_EQ(t, GgmlType::kQ4_K);
  EXPECT_EQ(GgmlRowBytes(GgmlType::kQ4_K, 4096), 16u * 144u);
  EXPECT_EQ(GgmlRowBytes(GgmlType::kQ6_K, 256), 210u);
  EXPECT_EQ(GgmlRowBytes(GgmlType::kQ4_0, 100), 0u);  // not a whole number of blocks
  EXPECT_EQ(GgmlRowBytes(GgmlType::kBF16, 3), 6u);
}

// The f16 scale fields are where the dequantizer reads them: a block of any
// other bytes with finite scale fields dequantizes to finite values, and a
// NaN written at any one of the fields makes that block non-finite.
TEST(GgmlHalfFieldOffsets, FindTheFieldsThatMakeABlockNonFinite) {
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1,
                     GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    const GgmlTypeInfo* info = GgmlTypeInfoOf(static_cast<uint32_t>(t));
    int offsets[2];
    const int count = GgmlHalfFieldOffsets(t, offsets);
    ASSERT_GE(count, 1) << info->name;
    std::vector<uint8_t> block(info->type_size);
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<uint8_t>(i * 37 + 11);
    const uint16_t big = F32ToF16(60000.f);  // finite, near the top of f16
    for (int f = 0; f < count; ++f) std::memcpy(block.data() + offsets[f], &big, 2);
    std::vector<float> out(info->block_size);
    DequantizeRow(t, block.data(), out.data(), out.size());
    for (float v : out) ASSERT_TRUE(std::isfinite(v)) << info->name;
    for (int f = 0; f < count; ++f) {
      std::vector<uint8_t> bad = block;
      const uint16_t nan = 0x7e00;
      std::memcpy(bad.data() + offsets[f], &nan, 2);
      DequantizeRow(t, bad.data(), out.data(), out.size());
      bool any_nan = false;
      for (float v : out) any_nan |= std::isnan(v);
      EXPECT_TRUE(any_nan) << info->name << " field " << f << " at byte " << offsets[f];
    }
  }
  int offsets[2];
  EXPECT_EQ(GgmlHalfFieldOffsets(GgmlType::kF16, offsets), 0);
}

}  // namespace
}  // namespace llm
