// Prefill GEMM on Intel AMX tiles (bfloat16 weights, activations rounded to
// bfloat16, float32 accumulation). Compiled for every build; the functions
// carry their own target attributes and run only where AmxBf16Usable() says
// the CPU has the unit and Linux granted this process the tile state.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/ops.h"

namespace llm {
namespace amx {

// CPUID has AMX-TILE + AMX-BF16 + AVX-512 and arch_prctl(ARCH_REQ_XCOMP_PERM)
// granted the tile data state. Asked once per process; a refusal is printed
// once to stderr (the GEMMs then stay on FMA).
bool AmxBf16Usable();
// Why AMX is not used on this machine ("" when it is).
const char* AmxUnavailableReason();
// Lets tests and --no-amx turn the path off (and back on where usable).
void SetAmxEnabled(bool enabled);
bool AmxEnabled();

// AVX512-BF16 dot products (VDPBF16PS), for bfloat16 GEMMs on CPUs without
// tiles: CPUID has AVX-512 F/BW and AVX512-BF16, and the OS saves zmm state.
bool Bf16DotsUsable();
const char* Bf16DotsUnavailableReason();
// Their FLOP rate over FMA's, measured once per process on the calling
// thread (24 independent dot-product chains against simd::FmaPeak, best of 3
// each; 0 where not usable). They do twice FMA's FLOPs per instruction, but CPUs issue them
// at different rates: Zen 4 measured 2.0x here, a Xeon (Sapphire Rapids
// class) 0.5x.
double Bf16DotsOverFma();
// auto: used where usable and Bf16DotsOverFma() >= kDotsMinSpeedup (the GEMM
// around them then wins too); on: wherever usable (tests, A/B); off: never.
enum class DotsMode { kAuto, kOn, kOff };
constexpr double kDotsMinSpeedup = 1.3;
void SetBf16DotsMode(DotsMode mode);
bool Bf16DotsEnabled();
// Machine probe: `iterations` rounds of 24 independent VDPBF16PS zmm chains;
// returns the FLOPs done.
double Bf16DotPeakProbe(int64_t iterations);

// Activations as the A operand: x[M, K] float32 rounded to bfloat16 (round to
// nearest even) into xb[PaddedRows(M)][RowStride(K)], zero beyond M and K.
// The row stride is padded by one cache line so that the 16 rows of an A tile
// do not all fall into the same L1 set when K is a multiple of 2048.
constexpr int64_t kTileRows = 16;
constexpr int64_t kTileDepth = 32;   // bf16 elements per tile row (64 bytes)
constexpr int64_t kBlock = 32;       // the kernel's 2x2 tiles cover 32 rows x 32 columns
constexpr int64_t PaddedRows(int64_t M) { return (M + kBlock - 1) / kBlock * kBlock; }
constexpr int64_t PaddedDepth(int64_t K) { return (K + kTileDepth - 1) / kTileDepth * kTileDepth; }
constexpr int64_t RowStride(int64_t K) { return PaddedDepth(K) + kTileDepth; }
// Rounds rows [m_begin, m_end) of the padded matrix (rows past M become zero).
// x rows are `ldx` floats apart (0: K).
void PackActivations(const float* x, int64_t M, int64_t K, int64_t m_begin, int64_t m_end, uint16_t* xb,
                     int64_t ldx = 0);
size_t PackedActivationElems(int64_t M, int64_t K);
// For GemmF16Split: rows [0, PaddedRows(M)) get x_hi = bf16(x), the next
// PaddedRows(M) rows x_lo = bf16(x - x_hi), so x_hi + x_lo carries x to
// ~2^-16 (m in [m_begin, m_end) of the first PaddedRows(M); twice
// PackedActivationElems(M, K) elements in all).
void PackSplitActivations(const float* x, int64_t M, int64_t K, int64_t m_begin, int64_t m_end, uint16_t* xb);

// A task's columns are done in passes of up to kPassPanels panels of 32 W
// rows and depth blocks of up to kPassDepth (see GemmBf16).
constexpr int64_t kPassPanels = 4;
constexpr int64_t kPassDepth = 2048;
// Scratch bytes (64-byte aligned) one worker needs for GemmBf16 (GemmF16Split: split_f16).
size_t GemmScratchBytes(int64_t M, int64_t K, bool split_f16 = false);

// y[m, n] for n in [n_begin, n_end) (n_begin a multiple of 32): x . W[n]^T (+ bias).
// W is bfloat16 [N, K] row-major, read in place: each 32-row panel is put in
// the tiles' pair-interleaved (VNNI) order once per pass and then serves all
// M rows. W rows are `ldw` elements apart (0: K = w.cols; attention passes a
// prefix of V^T's columns). Configures and releases the calling thread's tiles.
void GemmBf16(const uint16_t* xb, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end,
              const float* bias, float* y, void* scratch, int64_t ldw = 0);

// Llama's MLP up to down_proj in one GEMM: y[m, n] = silu(x . gate[n] +
// gate_bias[n]) * (x . up[n] + up_bias[n]) for n in [n_begin, n_end)
// (n_begin a multiple of 32; y rows gate.rows apart). Each pass packs 64
// rows of gate and the same 64 of up, so both products meet in the pass's
// float32 C block and only their product is written: no gate and up
// matrices in memory, no separate SiluMul pass over them. gate and up are
// bfloat16 of the same shape; `dots`: VDPBF16PS instead of tiles.
void GemmBf16GateUpSilu(const uint16_t* xb, int64_t M, const MatView& gate, const MatView& up, int64_t n_begin,
                        int64_t n_end, const float* gate_bias, const float* up_bias, float* y, void* scratch,
                        bool dots);

// For a few rows of x (short prompts, decode batches) a bf16 GEMM is mostly a
// read of W, and the panel packing's sixteen-row transposing reads take W
// from memory at 15-19 GB/s on two threads (Xeon with AMX). Here the tiles
// take W's rows in place as the A operand (16 rows x 64 bytes a tile load;
// 25-28 GB/s in a model of the loop, 21-22 in a pp32 profile) and x,
// packed once per call (PackFewRows: PackPanel's layout, x rows for W rows),
// as the B operand: C = W xᵀ, written to y transposed. Applies to bf16 W with
// K and N multiples of 32 (its rows adjacent); tasks take whole 32-row blocks.
// From 33 rows x comes in chunks of up to 64 (the first reads W from memory,
// the others from L2), while its tiles (M x K bf16) stay in L2 beside W's
// rows. Measured against the panel GEMM (Xeon with AMX, 2 MiB L2 a core, pp
// tok/s): TinyLlama pp48 / pp64 / pp96 +28% / +37% / +13%, pp128 equal,
// pp256 0.75x; Llama-2-7B pp64 +30%, and at pp96 its gate/up 531 -> 436 ms
// but down_proj (x tiles 2 MiB) 283 -> 380 ms.
constexpr int64_t kFewRowsMax = 96;
constexpr int64_t kFewRowsXBytes = 1280 << 10;
bool FewRowsApply(int64_t M, const MatView& w);
// x rows in groups of 32, each PackPanel's layout over the whole depth.
constexpr size_t FewRowsXElems(int64_t M, int64_t K) {
  return static_cast<size_t>(PaddedRows(M) * PaddedDepth(K)) / 2;  // uint32 pairs
}
// xb: M rows of bf16 x, RowStride(K) apart (PackActivations); x_tiles 64-byte aligned.
void PackFewRows(const uint16_t* xb, int64_t M, int64_t K, uint32_t* x_tiles);
void GemmBf16FewRows(const uint32_t* x_tiles, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end,
                     const float* bias, float* y);
void GemmBf16GateUpSiluFewRows(const uint32_t* x_tiles, int64_t M, const MatView& gate, const MatView& up,
                               int64_t n_begin, int64_t n_end, const float* gate_bias, const float* up_bias,
                               float* y);

// The same for float16 W (GemmF16Split's three products, x_hi W_hi + x_lo
// W_hi + x_hi W_lo): each 16 W rows split once into bf16 hi and lo rows in
// scratch (FewRowsF16ScratchBytes), x_tiles = PackFewRows of
// PackSplitActivations' 2 PaddedRows(M) rows. Applies while those tiles fit
// kFewRowsXBytes. TinyLlama float16 pp24 / pp32 / pp68 / pp96 +10-20% / +15%
// / +10-15% / +5-25%, Llama-2-7B pp32 / pp64 +9% / +19% over the panels.
// Below 16 rows float16 stays on the GEMV: at 8 rows these tiles read 25-28
// tok/s against the GEMV's 59-64 (TinyLlama pp8, before the split's reads
// took four streams).
bool FewRowsApplyF16(int64_t M, const MatView& w);
constexpr size_t FewRowsF16ScratchBytes(int64_t K) { return static_cast<size_t>(64 * PaddedDepth(K)); }
void GemmF16FewRows(const uint32_t* x_tiles, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end,
                    const float* bias, float* y, void* scratch);

// W packed once for every call that reads it (prefill attention's K and V of
// one KV head, shared by all the blocks of query rows): all panels of 32
// rows (N padded to 32) over the whole depth (K padded to 32), each panel
// PaddedDepth(K) / 32 steps of GemmBf16's per-pass panel layout.
constexpr size_t PrepackedElems(int64_t N, int64_t K) {
  return static_cast<size_t>((N + kBlock - 1) / kBlock * kBlock * PaddedDepth(K)) / 2;  // uint32 pairs
}
// From float32 rows: W[n][k] = rows[n * ld + k] for n < N, k < K, rounded to
// bf16 (nearest even); zero beyond. Key rows of the cache are W for Q·Kᵀ.
void PrepackRows(const float* rows, int64_t ld, int64_t N, int64_t K, uint32_t* packed);
// From float32 columns: W[n][k] = cols[k * ld + n] (W = Vᵀ for P·V, read from
// the cache's position-major V rows without a transpose in memory).
void PrepackColumns(const float* cols, int64_t ld, int64_t N, int64_t K, uint32_t* packed);
// The plain loops both are checked against (and run where the CPU has no
// AVX512-BF16). The vector ones round as these do (nearest even) but, as
// VCVTNEPS2BF16 does, flush float32 subnormals to zero.
void PrepackRowsReference(const float* rows, int64_t ld, int64_t N, int64_t K, uint32_t* packed);
void PrepackColumnsReference(const float* cols, int64_t ld, int64_t N, int64_t K, uint32_t* packed);
// GemmBf16 / GemmBf16Dots on W prepacked over depth K: y[m, n] for n in
// [n_begin, n_end) (n_begin a multiple of 32), y's rows ldy apart; only depth
// [0, k_used) is read (xb packed for k_used), so one packing serves every
// block's causal prefix. `dots`: VDPBF16PS instead of tiles.
void GemmBf16Prepacked(const uint16_t* xb, int64_t M, const uint32_t* packed, int64_t K, int64_t k_used,
                       int64_t n_begin, int64_t n_end, float* y, int64_t ldy, void* scratch, bool dots);

// GemmBf16 on AVX512-BF16 dot products (VDPBF16PS) instead of tiles, same
// operands, same results up to float32 summation order; needs only
// Bf16DotsUsable().
void GemmBf16Dots(const uint16_t* xb, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end,
                  const float* bias, float* y, void* scratch, int64_t ldw = 0);

// GemmBf16 for float16 W without rounding W or x to 8 bits: each W element
// is split exactly into bf16 hi + lo as its panel is packed (float16 has 11
// significant bits: hi keeps 8, lo the rest), x comes from
// PackSplitActivations, and y = x_hi W_hi + x_lo W_hi + x_hi W_lo: three tile
// products per FLOP of the matmul, float32 accumulation: each product within
// 2^-15 (x_lo's rounding, 2^-16, and x_lo W_lo, ~2^-16, left out), where
// rounding x to bf16 alone costs 2^-8.
void GemmF16Split(const uint16_t* xb_split, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end,
                  const float* bias, float* y, void* scratch);

// Decode (one row of x) on AVX512-BF16 dot products, as llama.cpp decodes
// bf16 weights: x rounded to bfloat16 once per matmul (RoundToBf16: K
// elements, round to nearest even), then y[n] = xb . W[n] (+ bias[n]) for n in
// [n_begin, n_end), float32 accumulation, W bfloat16 [N, K] read in place.
// One instruction does 32 multiply-adds and x takes half the L1 of float32 x,
// so more of each core's time goes to keeping loads in flight (see cpu_backend.cc).
void RoundToBf16(const float* x, int64_t K, uint16_t* xb);
void GemvBf16Dots(const uint16_t* xb, const MatView& w, int64_t n_begin, int64_t n_end, const float* bias, float* y);

// One row of prefill attention's softmax, fused with the rounding that
// feeds P·V: p[j] = exp(scale * (s[j] - max(s[0, seen)))) for j < seen,
// rounded to bfloat16 (round to nearest even) into out[j], zero in
// [seen, padded); returns the float32 sum of the p (before rounding). exp is
// a degree-6 polynomial of 2^f on [-1/2, 1/2] and a VSCALEFPS: relative
// error below 1e-6, far inside the bf16 rounding that follows. Needs AVX-512
// (AmxBf16Usable() or Bf16DotsUsable()); scale > 0.
float SoftmaxRowToBf16(const float* s, int64_t seen, float scale, int64_t padded, uint16_t* out);

// Machine probe: `iterations` rounds of 4 independent tile products held in
// registers (16 x 16 x 32 each); returns the FLOPs done.
double PeakProbe(int64_t iterations);

}  // namespace amx
}  // namespace llm
