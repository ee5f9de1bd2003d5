// ggml tensor types (the `type` of a GGUF tensor) and the scalar reference for
// the block-quantized ones: layout, dequantization exactly as ggml defines it
// (ggml-quants.c dequantize_row_*, float32 arithmetic in the same order, so
// the result is bit-identical to the `gguf` Python package's numpy
// dequantize), and llama.cpp's reference quantizers for Q8_0 and Q4_0.
//
// Goals: the oracle the fast kernels are tested against; readable over fast.
// Non-goals: the importance-matrix quantizers, the K-quant quantizers (files
// come quantized by llama-quantize), the IQ and ternary types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace llm {

// Values are ggml's `enum ggml_type` (stored as uint32 in GGUF tensor infos).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kBF16 = 30,
};

struct GgmlTypeInfo {
  const char* name;     // ggml's spelling: "Q4_K"
  uint32_t block_size;  // elements per block (1 for float types)
  uint32_t type_size;   // bytes per block
};

// The types this engine reads, in the order they are listed in messages.
constexpr const char* kSupportedGgmlTypesList = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K";

// Elements per K-quant super-block.
constexpr uint32_t kQK_K = 256;

// Info of a supported type; nullptr for any other value (including valid ggml
// types this engine does not read).
const GgmlTypeInfo* GgmlTypeInfoOf(uint32_t type);
// ggml's name of any ggml type value ("IQ2_XXS", "Q8_1"), or "unknown".
const char* GgmlTypeName(uint32_t type);
// Parses "q4_0"/"Q4_0"... into a supported type.
bool ParseGgmlType(const std::string& name, GgmlType* out);

// Bytes of a row of n elements of a supported type; 0 when n is not a
// multiple of the block size.
size_t GgmlRowBytes(GgmlType type, size_t n);

// Byte offsets, within one block, of a block-quantized type's f16 scale
// fields (d, and dmin where the type has one), written to `offsets`; returns
// how many (0 for float types). Every other field is an integer, so a block
// dequantizes to finite values exactly when these fields are finite.
int GgmlHalfFieldOffsets(GgmlType type, int offsets[2]);

// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j (0-7) of a
// Q4_K/Q5_K super-block, from its 12 scale bytes q.
void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m);

// Dequantizes n elements (a multiple of the type's block size) from `src`
// (packed blocks as stored in a GGUF file, unaligned is fine) into `dst`.
// Float32 arithmetic in ggml's order: bit-identical to ggml and gguf-py.
void DequantizeRow(GgmlType type, const void* src, float* dst, size_t n);
// The same values widened to float64 (exact: every float32 is a float64).
void DequantizeRowF64(GgmlType type, const void* src, double* dst, size_t n);

// llama.cpp's reference quantizers (quantize_row_q8_0_ref / q4_0_ref), n a
// multiple of 32. Bit-identical to gguf-py's numpy quantize for finite input.
// Returns false (writing nothing) when n is not a multiple of 32.
bool QuantizeRowQ8_0(const float* src, void* dst, size_t n);
bool QuantizeRowQ4_0(const float* src, void* dst, size_t n);

}  // namespace llm
