// Storage types of tensors and exact conversions between them. Arithmetic is
// always float32; f16/bf16 exist only as storage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace llm {

// Float storage types, integers (safetensors index tensors) and ggml's
// block-quantized weight types (blocks of 32 or 256 elements, core/quant.h).
enum class DType { kF32, kF16, kBF16, kI32, kI64, kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ4_K, kQ5_K, kQ6_K };

// Bytes per element; 0 for the block-quantized types (use DTypeRowBytes).
size_t DTypeSize(DType t);
// "float32", "float16", "bfloat16", "int32", "int64", "q8_0", "q4_k", ...
const char* DTypeName(DType t);
// Parses the CLI/config spelling: float32|float16|bfloat16 (also fp32, f32, half...).
bool ParseDType(const std::string& name, DType* out);
// Also the quantized weight types, by ggml's name in either case (q8_0, Q4_K).
bool ParseWeightDType(const std::string& name, DType* out);
bool IsQuantized(DType t);
// Bytes of a row of n elements (n a multiple of the block size when quantized).
size_t DTypeRowBytes(DType t, int64_t n);
// Elements per block: 1 for float types, 32 or 256 when quantized.
int64_t DTypeBlockSize(DType t);
// ggml's type value of a quantized DType (core/quant.h GgmlType), and back
// (false for types without a DType).
uint32_t DTypeGgmlType(DType t);
bool DTypeFromGgmlType(uint32_t ggml_type, DType* out);

inline uint32_t FloatBits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float BitsFloat(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// bf16 is the top half of an IEEE float32, so widening is exact.
inline float BF16ToF32(uint16_t h) { return BitsFloat(static_cast<uint32_t>(h) << 16); }

// Round to nearest, ties to even (what torch's .to(bfloat16) does); NaN stays NaN.
inline uint16_t F32ToBF16(float f) {
  uint32_t u = FloatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// IEEE binary16 -> float32, exact (including subnormals, inf, NaN).
float F16ToF32(uint16_t h);
// float32 -> IEEE binary16 rounded to nearest even, overflow to inf.
uint16_t F32ToF16(float f);

// Converts n elements between float storage types (kF32/kF16/kBF16).
void ConvertFloats(const void* src, DType src_type, void* dst, DType dst_type, size_t n);

}  // namespace llm
