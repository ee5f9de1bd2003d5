// Per-row SIMD kernels of the CPU backend, compiled once per ISA target by
// Highway (cpu_kernels.cc) and dispatched at run time to the best one the CPU
// supports. Each function works on a slice so the backend can parallelise.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/ops.h"

namespace llm {
namespace simd {

// y[m, n] for n in [n_begin, n_end): dot products of x rows with W rows
// (memory-bound path, used for decode where M is tiny).
// Block-quantized W (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K read in SIMD, the others
// row by row through the scalar dequantization): rows n_begin .. n_end-1 of y.
// `x_prepared`: PrepareQuantActivations' buffer, or nullptr where
// QuantActivationBytes is 0 (the float32 x is read then).
void GemvQuantRows(const float* x, const void* x_prepared, int64_t M, const MatView& w, int64_t n_begin,
                   int64_t n_end, const float* bias, float* y);
// Where the target has integer dot products for W's type (Q8_0, Q4_0, Q4_K,
// Q6_K; AVX-512 VNNI + VBMI, or AVX2's VPMADDUBSW on the AVX2 and AVX3
// targets, which also read Q4_1, Q5_0 and Q5_1; on VNNI those and Q5_K where
// W is packed), x of a quantized GEMV is quantized per 32 to
// int8 once per matmul, as llama.cpp's Q8 activations are: the bytes that
// takes, 0 where the float32 x is read instead; and the preparation itself.
size_t QuantActivationBytes(int64_t M, const MatView& w);
// Off: quantized decode reads float32 x on every target (--int8-dot off: the
// A/B of the activation rounding, and the exact path the loader tests use).
void SetInt8DotEnabled(bool on);
bool Int8DotEnabled();
// `packed_w`: for GemvPackedRows (x in natural order). Rows m_begin ..
// m_end - 1 of the M (m_end < 0: all), so that workers can share a long x.
void PrepareQuantActivations(const float* x, int64_t M, const MatView& w, void* buffer, bool packed_w = false,
                             int64_t m_begin = 0, int64_t m_end = -1);

// Decode on W repacked once at load: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K
// and Q6_K rows in groups of kPackedRows, so that one VPDPBUSD takes 4
// elements of 16 rows with no byte gathers and each row's sum lands in its own
// lane. Per block (32 elements; K-quants: super-block of 256) of a group:
//   Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: the 16 rows' f16 d (32 bytes), Q4_1 and
//     Q5_1 then their f16 m (32), Q5_0 and Q5_1 then their fifth bits (64:
//     byte k of row r at 4 r, bit 2 c = element 4 c + k's, bit 2 c + 1 =
//     element 16 + 4 c + k's), then the quant bytes as 4-byte words transposed
//     (word c of row r at PackedWordsAt + 64 c + 4 r; 4 words, Q8_0 8).
//   Q4_K: 16 d, 16 dmin (f16), the 6-bit scales and mins unpacked to bytes
//     [sub-block][row] (128 + 128), then per pair of sub-blocks the 32 nibble
//     bytes of each row as 8 transposed words (low nibbles: the even sub-block).
//   Q5_K: Q4_K's, with the fifth bits between the scales and the nibbles:
//     64 bytes per 4 elements of every pair, each row's 4 qh bytes at 4 r.
//   Q6_K: 16 d (f16), scales [sub-block of 16][row] (256), then per sub-block
//     of 16 elements three 64-byte vectors: low 4 bits of elements 0-3 | 4-7
//     (low | high nibble), of 8-11 | 12-15, and the top 2 bits of all 16
//     (bits 0-1, 2-3, 4-5, 6-7 = elements j, 4 + j, 8 + j, 12 + j), each row's
//     4 bytes at 4 r.
// The same bytes as row-major except Q4_K and Q5_K (+64 per 2304 / 2816: unpacked scales).
// Q4_1, Q5_0, Q5_1 and Q5_K have no row-major int8 kernel: int8 x only where W is packed.
// PackedQuantBytes: the packed size, 0 where W is not packed on this target
// (no AVX-512 VNNI, int8 dot products off, another type, rows not a multiple
// of 16). PackQuantRows packs row groups [g_begin, g_end) (any target: plain
// byte moves). GemvPackedRows: rows n_begin .. n_end - 1 (multiples of 16) of
// y, from PrepareQuantActivations(..., packed_w = true).
constexpr int64_t kPackedRows = 16;
constexpr int PackedWords(DType d) {
  return d == DType::kQ8_0 ? 8 : d == DType::kQ4_0 || d == DType::kQ4_1 || d == DType::kQ5_0 || d == DType::kQ5_1 ? 4 : 0;
}
constexpr bool PackedHasMin(DType d) { return d == DType::kQ4_1 || d == DType::kQ5_1; }
constexpr bool PackedHasFifthBits(DType d) { return d == DType::kQ5_0 || d == DType::kQ5_1; }
// Offsets in a packed 32-element block: the fifth bits, then the words.
constexpr int64_t PackedFifthBitsAt(DType d) { return 2 * kPackedRows * (PackedHasMin(d) ? 2 : 1); }
constexpr int64_t PackedWordsAt(DType d) { return PackedFifthBitsAt(d) + (PackedHasFifthBits(d) ? 64 : 0); }
// Offsets in a packed Q4_K / Q5_K block: d and dmin (64 bytes) and the
// unpacked scales and mins (256), then Q5_K's fifth bits (16 x 32), then the
// nibbles (16 x 128). PackQuantRows writes them, GemvPackedRows reads them.
constexpr int64_t kPackedK45FifthBits = 64 + 256;
constexpr int64_t PackedK45Nibbles(DType d) {
  return d == DType::kQ5_K ? kPackedK45FifthBits + 16 * 32 : kPackedK45FifthBits;
}
constexpr int64_t PackedBlockBytes(DType d) {
  return d == DType::kQ4_K || d == DType::kQ5_K ? PackedK45Nibbles(d) + 16 * 128
         : d == DType::kQ6_K ? 32 + 256 + 16 * 192
         : PackedWords(d) > 0 ? PackedWordsAt(d) + 64 * PackedWords(d)
                              : 0;
}
size_t PackedQuantBytes(const MatView& w);
void SetRepackEnabled(bool on);  // off: PackedQuantBytes is 0 (--repack off)
bool RepackEnabled();
void PackQuantRows(const MatView& w, int64_t g_begin, int64_t g_end, void* packed);
// Rows m_begin .. m_end - 1 of x and y (m_end < 0: all M).
void GemvPackedRows(const void* x_prepared, int64_t M, const MatView& w, const void* packed, int64_t n_begin,
                    int64_t n_end, const float* bias, float* y, int64_t m_begin = 0, int64_t m_end = -1);
void GemvRows(const float* x, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end,
              const float* bias, float* y);
// One row of x, rounded to float16 (RoundToF16), against float16 or bfloat16
// W: x takes half the L1 of float32 x.
void GemvRowsHalfX(const uint16_t* x_f16, const MatView& w, int64_t n_begin, int64_t n_end, const float* bias,
                   float* y);
// x rounded to nearest-even float16; false (out unspecified) where some |x|
// exceeds float16's largest finite value 65504 (or is NaN).
bool RoundToF16(const float* x, int64_t n, uint16_t* out);
// Whether one-row decode reads faster with float16 x here, at every K
// measured (the CPUs of the one-row GEMV rule: AMD with AVX-512).
bool HalfXPays();
// GemvRowsHalfX reads one W row after the other up to this K (x in half the
// L1), four rows at a time past it.
constexpr int64_t kHalfXOneRowMaxK = 8192;
// Same result through a packed, register-tiled GEMM (compute-bound path for
// prefill). x comes packed by PackGemmRows; `pack` is scratch of
// GemmPackFloats() floats owned by the caller. ldw: float W's rows are ldw
// elements apart (0: w.cols; a prefix of each row is the depth read).
void GemmRows(const float* x_packed, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end,
              const float* bias, float* y, float* pack, int64_t ldw = 0);
// Packed GEMM input: per block of kGemmDepth columns (the last may be
// shorter), per group of kGemmRowGroup rows, [columns of the block][group]
// (rows past M are zero). Packed once per matmul, read by every task.
constexpr int64_t kGemmRowGroup = 6;
constexpr int64_t kGemmDepth = 256;
// M rounded up to whole row groups: the rows a packed block holds.
constexpr int64_t GemmPaddedRows(int64_t M) { return (M + kGemmRowGroup - 1) / kGemmRowGroup * kGemmRowGroup; }
size_t GemmPackedRowsFloats(int64_t M, int64_t K);
// Packs the depth block starting at column k0 (a multiple of kGemmDepth) of
// x[M, K] (row stride K).
void PackGemmRows(const float* x, int64_t M, int64_t K, int64_t k0, float* x_packed);
size_t GemmPackFloats();
// Rows of W per GEMM task: a multiple of the register tile width.
int64_t GemmRowBlock();
// Matmuls with fewer rows than this run as GemvRows (a batch of decode rows).
int64_t GemvMaxRows();

// Decode attention for the G query rows of one KV head over n cached
// positions (keys and values [n, hd], rows contiguous):
// scores[g * stride + p] = scale * q[g] . keys[p];
void AttentionScores(const float* q, int64_t G, const float* keys, int64_t n, int64_t hd, float scale,
                     float* scores, int64_t stride);
// out[g] = sum_p probs[g * stride + p] * values[p].
void AttentionWeightedSum(const float* probs, int64_t G, int64_t stride, const float* values, int64_t n,
                          int64_t hd, float* out);
void Scale(float alpha, float* y, int64_t n);                 // y *= alpha
// x[i] = exp(x[i] - max); returns the sum.
float ExpShiftSum(float* x, int64_t n, float max);
float MaxOf(const float* x, int64_t n);
void RmsNormRow(const float* x, const MatView& weight, float eps, float* out);
void SiluMul(const float* gate, const float* up, int64_t n, float* out);
void Add(float* x, const float* y, int64_t n);
// Widens n weights to float32.
void WidenRow(const void* src, DType dtype, int64_t n, float* out);

const char* TargetName();

// Machine probes (calibration): streaming read (`streams` 1 or 4 linear
// streams, software prefetches 1 KiB ahead or none; the four streams' starts
// `stagger_bytes` apart beyond the quarters of the range), and FMA throughput
// with twelve independent chains (FLOPs = FloatLanes() * 24 * iterations).
float ReadSum(const float* x, int64_t n, int streams, bool prefetch, int64_t stagger_bytes = 0);
float FmaPeak(int64_t iterations, float seed);
// Int8 ops (2 per multiply-add) of `iterations` rounds of twelve independent
// VPDPBUSD chains; 0 where the target or CPU has no AVX-512 VNNI.
double Int8DotPeak(int64_t iterations, int seed);
// Whether the dispatched target's int8 dot products run on AVX-512 VNNI.
bool Int8DotsOnVnni();
int64_t FloatLanes();

}  // namespace simd
}  // namespace llm
