// AMX-BF16 GEMM. The file is compiled with the baseline flags; only the
// functions marked with target attributes use AVX-512 / AMX instructions, and
// they are reached only after AmxBf16Usable() returned true, so the binary
// still runs on CPUs without them.
//
// Shapes: C tiles are [16 rows of x][16 columns of W] float32; an A tile is 16
// rows of bf16 activations x 32 depth (row-major, loaded in place from the
// packed activations); a B tile is 16 depth pairs x 16 columns x 2 (the VNNI
// order TDPBF16PS wants), made from 16 rows of W by a 16x16 transpose of
// 32-bit pairs. The kernel keeps 2x2 C tiles (32 rows x 32 columns) and
// streams the whole depth through them, so each C tile is written once.
#include "kernels/cpu/amx/amx_gemm.h"

#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/dtype.h"
#include "kernels/cpu/simd/cpu_kernels.h"

namespace llm {
namespace amx {
namespace {

constexpr int kArchReqXcompPerm = 0x1023;  // arch_prctl: request a dynamic XSAVE feature
constexpr int kXfeatureXtiledata = 18;

struct Availability {
  bool usable = false;
  const char* reason = "";
};

Availability Probe() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return {false, "CPUID leaf 7 missing"};
  const bool avx512f = b & (1u << 16), amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24);
  unsigned a1 = 0, b1, c1, d1;
  __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
  const bool avx512_bf16 = a1 & (1u << 5);
  if (!amx_tile || !amx_bf16) return {false, "the CPU has no AMX-BF16"};
  if (!avx512f || !avx512_bf16) return {false, "the CPU has AMX but no AVX512-BF16"};
  // Linux (5.16+) enables the 8 KiB tile state per process on request.
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0)
    return {false, "Linux refused the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM)"};
  return {true, ""};
}

const Availability& Cached() {
  static const Availability avail = [] {
    Availability a = Probe();
    // A CPU with the unit whose kernel refuses it deserves one line: the
    // bf16 prefill is then several times slower than the machine allows.
    if (!a.usable && std::strstr(a.reason, "refused")) std::fprintf(stderr, "warning: %s; bf16 GEMMs use FMA\n", a.reason);
    return a;
  }();
  return avail;
}

std::atomic<bool> g_enabled{true};

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 0-3: C, 4-5: A (x), 6-7: B (W); all 16 rows x 64 bytes.
__attribute__((target("amx-tile"))) void ConfigureTiles() {
  TileConfig cfg;
  for (int i = 0; i < 8; ++i) {
    cfg.colsb[i] = 64;
    cfg.rows[i] = 16;
  }
  // As inline asm with the whole struct as operand: GCC 12 treats the
  // _tile_loadconfig builtin as reading only its first bytes and drops the
  // stores of colsb/rows as dead (the tiles then stay unconfigured: SIGILL).
  asm volatile("ldtilecfg %0" : : "m"(cfg));
}

__attribute__((target("amx-tile"))) void ReleaseTiles() { _tile_release(); }

// GCC 12 warns that the unpack intrinsics' own undefined pass-through
// (_mm512_undefined_epi32) may be used uninitialized: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// In-register transpose of a 16x16 matrix of 32-bit elements (r[i] = row i).
__attribute__((target("avx512f"))) inline void Transpose16x16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // Each 128-bit lane now holds a transposed 4x4 block; move the blocks.
  const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), hi = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
  __m512i u[16];
  for (int j = 0; j < 4; ++j) {
    u[j] = _mm512_permutex2var_epi64(r[j], lo, r[4 + j]);
    u[4 + j] = _mm512_permutex2var_epi64(r[j], hi, r[4 + j]);
    u[8 + j] = _mm512_permutex2var_epi64(r[8 + j], lo, r[12 + j]);
    u[12 + j] = _mm512_permutex2var_epi64(r[8 + j], hi, r[12 + j]);
  }
  const __m512i s_lo = _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11), s_hi = _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15);
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm512_permutex2var_epi64(u[j], s_lo, u[8 + j]);
    r[4 + j] = _mm512_permutex2var_epi64(u[j], s_hi, u[8 + j]);
    r[8 + j] = _mm512_permutex2var_epi64(u[4 + j], s_lo, u[12 + j]);
    r[12 + j] = _mm512_permutex2var_epi64(u[4 + j], s_hi, u[12 + j]);
  }
}

// Rows n .. n+valid-1 of W (bf16 [*, K], rows ldw apart), depth k0 .. k0 + 32 * steps, into the
// B-tile order, two tiles of 16 columns per 32-deep step:
// panel[step][half][pair 0..15][column 0..15] (32-bit pairs). Rows past
// `valid` and depth past K are zero.
__attribute__((target("avx512f,avx512bw"))) void PackPanel(const uint16_t* w, int64_t K, int64_t ldw, int64_t n,
                                                           int64_t valid, int64_t k0, int64_t steps,
                                                           uint32_t* panel) {
  for (int64_t half = 0; half < 2; ++half) {
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t k = k0 + s * kTileDepth;
      const __mmask32 mask = K - k >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1ull << (K - k)) - 1);
      __m512i r[16];
      for (int i = 0; i < 16; ++i) {
        const int64_t row = half * 16 + i;
        r[i] = row < valid ? _mm512_maskz_loadu_epi16(mask, w + (n + row) * ldw + k) : _mm512_setzero_si512();
      }
      Transpose16x16(r);
      uint32_t* dst = panel + (s * 2 + half) * 256;
      for (int j = 0; j < 16; ++j) _mm512_store_si512(dst + j * 16, r[j]);
    }
  }
}

__attribute__((target("avx512f"))) inline __m512 WidenBf16(__m256bh h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(reinterpret_cast<const __m256i&>(h)), 16));
}

// 32 floats (f0: the first 16) as bfloat16 hi = RNE(f) and lo = RNE(f - hi).
__attribute__((target("avx512f,avx512bw,avx512bf16"))) inline void SplitBf16(__m512 f0, __m512 f1, __m512i* hi,
                                                                           __m512i* lo) {
  const __m256bh h0 = _mm512_cvtneps_pbh(f0), h1 = _mm512_cvtneps_pbh(f1);
  *hi = _mm512_inserti64x4(_mm512_castsi256_si512(reinterpret_cast<const __m256i&>(h0)),
                           reinterpret_cast<const __m256i&>(h1), 1);
  const __m512bh l = _mm512_cvtne2ps_pbh(_mm512_sub_ps(f1, WidenBf16(h1)), _mm512_sub_ps(f0, WidenBf16(h0)));
  *lo = reinterpret_cast<const __m512i&>(l);
}

// PackPanel for float16 W: each element w = hi + lo exactly in bfloat16
// (float16's 11 significant bits: hi keeps 8, the rest, at most 4 bits,
// is exact in lo), into a panel of the hi parts and one of the lo parts.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void PackPanelF16(const uint16_t* w, int64_t K, int64_t ldw,
                                                                       int64_t n, int64_t valid, int64_t k0,
                                                                       int64_t steps, uint32_t* panel_hi,
                                                                       uint32_t* panel_lo) {
  for (int64_t half = 0; half < 2; ++half) {
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t k = k0 + s * kTileDepth;
      const __mmask32 mask = K - k >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1ull << (K - k)) - 1);
      __m512i hi[16], lo[16];
      for (int i = 0; i < 16; ++i) {
        const int64_t row = half * 16 + i;
        const __m512i v = row < valid ? _mm512_maskz_loadu_epi16(mask, w + (n + row) * ldw + k) : _mm512_setzero_si512();
        SplitBf16(_mm512_cvtph_ps(_mm512_castsi512_si256(v)), _mm512_cvtph_ps(_mm512_extracti64x4_epi64(v, 1)), &hi[i],
                  &lo[i]);
      }
      Transpose16x16(hi);
      Transpose16x16(lo);
      uint32_t* dst_hi = panel_hi + (s * 2 + half) * 256;
      uint32_t* dst_lo = panel_lo + (s * 2 + half) * 256;
      for (int j = 0; j < 16; ++j) {
        _mm512_store_si512(dst_hi + j * 16, hi[j]);
        _mm512_store_si512(dst_lo + j * 16, lo[j]);
      }
    }
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// C tiles for rows t.. of x (one or two A tiles) and one panel's 32 columns,
// over `steps` depth steps; C starts at zero or, when `accumulate`, at c.
template <int kATiles>
__attribute__((target("amx-tile,amx-bf16"))) inline void PanelBlock(const uint16_t* a, int64_t lda_bytes,
                                                                    const uint32_t* panel, int64_t steps,
                                                                    bool accumulate, float* c, int64_t ldc_bytes) {
  float* c1 = reinterpret_cast<float*>(reinterpret_cast<char*>(c) + 16 * ldc_bytes);
  if (accumulate) {
    _tile_loadd(0, c, ldc_bytes);
    _tile_loadd(1, c + 16, ldc_bytes);
    if (kATiles == 2) {
      _tile_loadd(2, c1, ldc_bytes);
      _tile_loadd(3, c1 + 16, ldc_bytes);
    }
  } else {
    _tile_zero(0);
    _tile_zero(1);
    if (kATiles == 2) {
      _tile_zero(2);
      _tile_zero(3);
    }
  }
  const uint16_t* a1 = reinterpret_cast<const uint16_t*>(reinterpret_cast<const char*>(a) + 16 * lda_bytes);
  for (int64_t s = 0; s < steps; ++s) {
    const uint32_t* b = panel + s * 512;
    _tile_loadd(6, b, 64);
    _tile_loadd(7, b + 256, 64);
    _tile_loadd(4, a + s * kTileDepth, lda_bytes);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    if (kATiles == 2) {
      _tile_loadd(5, a1 + s * kTileDepth, lda_bytes);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, c, ldc_bytes);
  _tile_stored(1, c + 16, ldc_bytes);
  if (kATiles == 2) {
    _tile_stored(2, c1, ldc_bytes);
    _tile_stored(3, c1 + 16, ldc_bytes);
  }
}

// PanelBlock on AVX512-BF16 dot products, for CPUs without tiles: the same
// packed operands (a B-tile row of a panel is one zmm of 16 columns' depth
// pairs, VDPBF16PS's B operand), C in registers for kRows rows x 32 columns:
// per depth pair two panel loads and kRows broadcasts of x's pair feed
// 2 kRows dot products.
template <int kRows>
__attribute__((target("avx512f,avx512bf16"))) inline void DotRows(const uint16_t* a, int64_t lda,
                                                                  const uint32_t* panel, int64_t steps,
                                                                  bool accumulate, float* c, int64_t ldc) {
  __m512 c0[kRows], c1[kRows];
  for (int r = 0; r < kRows; ++r) {
    c0[r] = accumulate ? _mm512_loadu_ps(c + r * ldc) : _mm512_setzero_ps();
    c1[r] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t s = 0; s < steps; ++s) {
    const uint32_t* b = panel + s * 512;
    const uint16_t* as = a + s * kTileDepth;
    for (int p = 0; p < 16; ++p) {
      const __m512bh b0 = reinterpret_cast<__m512bh>(_mm512_load_si512(b + p * 16));
      const __m512bh b1 = reinterpret_cast<__m512bh>(_mm512_load_si512(b + 256 + p * 16));
      for (int r = 0; r < kRows; ++r) {
        uint32_t pair;
        std::memcpy(&pair, as + r * lda + 2 * p, 4);
        const __m512bh x = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(pair)));
        c0[r] = _mm512_dpbf16_ps(c0[r], x, b0);
        c1[r] = _mm512_dpbf16_ps(c1[r], x, b1);
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    _mm512_storeu_ps(c + r * ldc, c0[r]);
    _mm512_storeu_ps(c + r * ldc + 16, c1[r]);
  }
}

// Rows t .. t + rows - 1 (at most a 32-row block) of C against one panel, in
// register blocks of 8 rows (16 accumulators: enough in flight for the dot
// product's latency) and one of 4 for the rest.
__attribute__((target("avx512f,avx512bf16"))) void DotBlock(const uint16_t* a, int64_t lda, const uint32_t* panel,
                                                            int64_t steps, int64_t rows, bool accumulate, float* c,
                                                            int64_t ldc) {
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) DotRows<8>(a + r * lda, lda, panel, steps, accumulate, c + r * ldc, ldc);
  for (; r < rows; r += 4) DotRows<4>(a + r * lda, lda, panel, steps, accumulate, c + r * ldc, ldc);
}

// The mask of a vector's first n of 16 float lanes (all from 16, none below 1).
__attribute__((target("avx512f"))) inline __mmask16 FirstLanes(int64_t n) {
  return n >= 16 ? __mmask16{0xffff} : n <= 0 ? __mmask16{0} : static_cast<__mmask16>((1u << n) - 1);
}

__attribute__((target("avx512f,avx512bf16,avx512vl,avx512bw"))) void RoundRow(const float* x, int64_t K,
                                                                             int64_t padded, uint16_t* out) {
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    const __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + k));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), reinterpret_cast<const __m256i&>(v));
  }
  if (k < K) {
    const __mmask16 m = FirstLanes(K - k);
    const __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + k));
    _mm256_mask_storeu_epi16(out + k, m, reinterpret_cast<const __m256i&>(v));
  }
  std::fill(out + K, out + padded, uint16_t{0});
}

// RoundRow into hi = bf16(x) and lo = bf16(x - hi): x to ~2^-16.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void SplitRow(const float* x, int64_t K, int64_t padded,
                                                                   uint16_t* hi, uint16_t* lo) {
  for (int64_t k = 0; k < K; k += 32) {
    const int64_t left = std::min<int64_t>(32, K - k);
    const __mmask16 m0 = FirstLanes(left), m1 = FirstLanes(left - 16);
    __m512i h, l;
    SplitBf16(_mm512_maskz_loadu_ps(m0, x + k), _mm512_maskz_loadu_ps(m1, x + k + 16), &h, &l);
    const __mmask32 m = static_cast<__mmask32>(m0) | (static_cast<__mmask32>(m1) << 16);
    _mm512_mask_storeu_epi16(hi + k, m, h);
    _mm512_mask_storeu_epi16(lo + k, m, l);
  }
  std::fill(hi + K, hi + padded, uint16_t{0});
  std::fill(lo + K, lo + padded, uint16_t{0});
}

}  // namespace

namespace {

Availability ProbeDots() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return {false, "CPUID leaf 7 missing"};
  const bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30);
  unsigned a1 = 0, b1, c1, d1;
  __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
  if (!avx512f || !avx512bw || !(a1 & (1u << 5))) return {false, "the CPU has no AVX512-BF16"};
  // The OS must save the zmm state (XCR0 bits 1, 2, 5, 6, 7).
  unsigned eax, edx;
  __asm__("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  if ((eax & 0xe6) != 0xe6) return {false, "the OS does not enable the AVX-512 state"};
  return {true, ""};
}

const Availability& CachedDots() {
  static const Availability avail = ProbeDots();
  return avail;
}

// One thread's rate of a probe's independent chains, in FLOPs per second (best of 3).
template <class F>
double ChainRate(F body, int64_t iterations, double flops_per_iteration) {
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    volatile float sink = body(iterations);
    (void)sink;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, iterations * flops_per_iteration / s);
  }
  return best;
}

// (GCC 12's _mm512_reduce_add_ps trips -Wuninitialized on its own temporaries.)
__attribute__((target("avx512f"))) inline float SumLanes(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float sum = 0;
  for (float f : lanes) sum += f;
  return sum;
}

__attribute__((target("avx512f,avx512bf16"))) float DotChains(int64_t iterations) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(1e-3f * static_cast<float>(i));
  __m512i a = _mm512_set1_epi32(0x3f803f80);  // (1, 1) in bf16
  const __m512bh b = reinterpret_cast<__m512bh>(_mm512_set1_epi32(0x38d138d1));  // (1e-4, 1e-4)
  for (int64_t k = 0; k < iterations; ++k) {
#pragma GCC unroll 24  // the 24 chains in registers, not in a stack array
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], reinterpret_cast<__m512bh>(a), b);
    __asm__ volatile("" : "+v"(a));
  }
  for (int i = 1; i < 24; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  return SumLanes(acc[0]);
}

std::atomic<int> g_dots_mode{static_cast<int>(DotsMode::kAuto)};

}  // namespace

bool Bf16DotsUsable() { return CachedDots().usable; }
const char* Bf16DotsUnavailableReason() { return CachedDots().reason; }

double Bf16DotsOverFma() {
  // ~0.5 ms on Zen 4: paid once, at the first bf16 matmul that could use them.
  // Against the calibration's FMA probe (twelve chains of the best target's FMA).
  static const double ratio =
      Bf16DotsUsable() ? ChainRate(DotChains, 20000, 24.0 * 64) /
                             ChainRate([](int64_t n) { return simd::FmaPeak(n, 1.0f); }, 40000,
                                       24.0 * static_cast<double>(simd::FloatLanes()))
                       : 0.0;
  return ratio;
}

void SetBf16DotsMode(DotsMode mode) { g_dots_mode.store(static_cast<int>(mode)); }

bool Bf16DotsEnabled() {
  switch (static_cast<DotsMode>(g_dots_mode.load())) {
    case DotsMode::kOff: return false;
    case DotsMode::kOn: return Bf16DotsUsable();
    default: return Bf16DotsUsable() && Bf16DotsOverFma() >= kDotsMinSpeedup;
  }
}

double Bf16DotPeakProbe(int64_t iterations) {
  volatile float sink = DotChains(iterations);
  (void)sink;
  return static_cast<double>(iterations) * 24 * 64;
}

bool AmxBf16Usable() { return Cached().usable; }
const char* AmxUnavailableReason() { return Cached().reason; }
void SetAmxEnabled(bool enabled) { g_enabled.store(enabled); }
bool AmxEnabled() { return g_enabled.load() && AmxBf16Usable(); }

size_t PackedActivationElems(int64_t M, int64_t K) { return static_cast<size_t>(PaddedRows(M) * RowStride(K)); }

void PackSplitActivations(const float* x, int64_t M, int64_t K, int64_t m_begin, int64_t m_end, uint16_t* xb) {
  const int64_t ld = RowStride(K), lo_rows = PaddedRows(M);
  for (int64_t m = m_begin; m < m_end; ++m) {
    uint16_t* hi = xb + m * ld;
    uint16_t* lo = xb + (lo_rows + m) * ld;
    if (m < M) {
      SplitRow(x + m * K, K, ld, hi, lo);
    } else {
      std::fill(hi, hi + ld, uint16_t{0});
      std::fill(lo, lo + ld, uint16_t{0});
    }
  }
}

void PackActivations(const float* x, int64_t M, int64_t K, int64_t m_begin, int64_t m_end, uint16_t* xb,
                     int64_t ldx) {
  const int64_t ld = RowStride(K);
  if (ldx == 0) ldx = K;
  for (int64_t m = m_begin; m < m_end; ++m) {
    uint16_t* row = xb + m * ld;
    if (m < M) {
      RoundRow(x + m * ldx, K, ld, row);
    } else {
      std::fill(row, row + ld, uint16_t{0});
    }
  }
}

size_t GemmScratchBytes(int64_t M, int64_t K, bool split_f16) {
  const int64_t depth = std::min(kPassDepth, PaddedDepth(K));
  const int64_t parts = split_f16 ? 2 : 1;  // hi and lo panels; x_hi and x_lo rows of C
  return static_cast<size_t>(parts * kPassPanels * kBlock * depth) * 2 +
         static_cast<size_t>(parts * PaddedRows(M) * kPassPanels * kBlock) * 4;
}

// Loop order per pass of up to kPassPanels panels (128 columns of W) and
// depth block (up to kPassDepth): the pass's panels are packed once (512 KiB
// at most, in L2), then each pair of A tiles (32 rows of x) serves all the
// pass's panels before the next is loaded, so x streams from memory once per
// pass rather than once per panel. C accumulates across depth blocks in a
// float32 block [padded M][128] of the task's own, copied to y (+ bias) at
// the end of the pass.
namespace {

// dst[j] = src[j] (+ lo[j]) (+ bias[j]): a pass's C row into y.
__attribute__((target("avx512f"))) void StoreRow(const float* src, const float* lo, const float* bias, int64_t cols,
                                                 float* dst) {
  for (int64_t j = 0; j < cols; j += 16) {
    const __mmask16 m = FirstLanes(cols - j);
    __m512 v = _mm512_maskz_loadu_ps(m, src + j);
    if (lo != nullptr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, lo + j));
    if (bias != nullptr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + j));
    _mm512_mask_storeu_ps(dst + j, m, v);
  }
}

// GemmBf16's body; kSplitF16: W is float16, split per panel into hi and lo
// bf16 panels, xb holds x_hi in rows [0, P) and x_lo in [P, 2P) (P =
// PaddedRows(M)), and C = x_hi W_hi + x_lo W_hi (the 2P rows against the hi
// panels) + x_hi W_lo (the first P rows again, against the lo panels). The
// fourth product, x_lo W_lo, is ~2^-16 of each product and left out.
// prepacked: W's panels packed once over packed_depth (PrepackRows /
// PrepackColumns), w.data unused and w.cols the depth read.
// up (not with kSplitF16 or prepacked): w is the MLP's gate and up its up
// projection (same shape and dtype); a pass takes half its panels from gate
// rows and the same rows of up, and writes y = silu(gate product + bias) *
// (up product + up_bias) for those rows: [n_begin, n_end) are rows of both.
template <bool kSplitF16, bool kDots>
void Gemm(const uint16_t* xb, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end, const float* bias,
          float* y, void* scratch, int64_t ldw, const uint32_t* prepacked = nullptr, int64_t packed_depth = 0,
          const MatView* up = nullptr, const float* up_bias = nullptr) {
  const int64_t K = w.cols, N = w.rows;
  if (ldw == 0) ldw = K;
  const int64_t padded_depth = PaddedDepth(K);
  const int64_t lda_bytes = RowStride(K) * 2;
  const int64_t acc_cols = kPassPanels * kBlock;
  const int64_t lo_rows = PaddedRows(M);           // where x_lo starts (kSplitF16)
  const int64_t a_rows = kSplitF16 ? 2 * lo_rows : M;  // rows of A against the (hi) panels
  const auto* wb = static_cast<const uint16_t*>(w.data);
  auto* panels = static_cast<uint32_t*>(scratch);
  const size_t panel_pairs = static_cast<size_t>(kBlock * std::min(kPassDepth, padded_depth)) / 2;
  uint32_t* panels_lo = panels + kPassPanels * panel_pairs;
  float* acc = reinterpret_cast<float*>(panels + (kSplitF16 ? 2 : 1) * kPassPanels * panel_pairs);
  if (!kDots) ConfigureTiles();
  const int64_t pass_cols = up != nullptr ? acc_cols / 2 : acc_cols;  // columns of y per pass
  // Prefill attention's products (prepacked, one depth block, nothing to add):
  // the tiles of full 32 x 32 blocks store C straight into y, whose rows (the
  // block's scores, its output rows) are in L2, rather than into the pass's C
  // block and then through a copy (a quarter of the attention's time).
  const bool direct = !kDots && !kSplitF16 && prepacked != nullptr && up == nullptr && bias == nullptr &&
                      padded_depth <= kPassDepth;
  for (int64_t n0 = n_begin; n0 < n_end; n0 += pass_cols) {
    const int64_t cols = std::min(pass_cols, n_end - n0);
    const int64_t w_panels = (cols + kBlock - 1) / kBlock;  // of w; as many again of up
    const int64_t num_panels = up != nullptr ? 2 * w_panels : w_panels;
    for (int64_t k0 = 0; k0 < padded_depth; k0 += kPassDepth) {
      const int64_t steps = std::min(kPassDepth, padded_depth - k0) / kTileDepth;
      // The pass's panels: packed here into scratch, or already packed.
      const uint32_t* pass_panels = panels;
      int64_t panel_stride = static_cast<int64_t>(panel_pairs);
      if (prepacked != nullptr) {
        panel_stride = PaddedDepth(packed_depth) * kBlock / 2;
        pass_panels = prepacked + n0 / kBlock * panel_stride + k0 / kTileDepth * 512;
      }
      for (int64_t p = 0; prepacked == nullptr && p < num_panels; ++p) {
        const int64_t row = n0 + p % w_panels * kBlock;
        const int64_t valid = std::min(kBlock, n_end - row);
        if (kSplitF16) {
          PackPanelF16(wb, K, ldw, row, valid, k0, steps, panels + p * panel_pairs, panels_lo + p * panel_pairs);
        } else {
          const auto* src = p < w_panels ? wb : static_cast<const uint16_t*>(up->data);
          PackPanel(src, K, ldw, row, valid, k0, steps, panels + p * panel_pairs);
        }
      }
      // C rows t.. (one or two A tiles: rows_left) against the pass's panels.
      const auto rows_against = [&](int64_t t, int64_t rows_left, const uint32_t* pass_panels, bool accumulate) {
        const uint16_t* a = xb + t * RowStride(K) + k0;
        for (int64_t p = 0; p < num_panels; ++p) {
          float* c = acc + t * acc_cols + p * kBlock;
          int64_t ldc = acc_cols;
          if (direct && t + kBlock <= M && (p + 1) * kBlock <= cols) {
            c = y + t * N + n0 + p * kBlock;
            ldc = N;
          }
          if (kDots) {
            // Rows past M are padding (zero in A): skipped, as C's rows past M are never read.
            DotBlock(a, RowStride(K), pass_panels + p * panel_stride, steps, std::min(kBlock, rows_left), accumulate,
                     c, acc_cols);
          } else if (rows_left > 16) {
            PanelBlock<2>(a, lda_bytes, pass_panels + p * panel_stride, steps, accumulate, c, ldc * 4);
          } else {
            PanelBlock<1>(a, lda_bytes, pass_panels + p * panel_stride, steps, accumulate, c, ldc * 4);
          }
        }
      };
      for (int64_t t = 0; t < a_rows; t += kBlock) {
        const int64_t rows_left = kSplitF16 ? (t < lo_rows ? M - t : M - (t - lo_rows)) : M - t;
        rows_against(t, rows_left, pass_panels, k0 > 0);
      }
      if (kSplitF16) {
        for (int64_t t = 0; t < M; t += kBlock) rows_against(t, M - t, panels_lo, true);
      }
    }
    for (int64_t m = 0; up != nullptr && m < M; ++m) {
      float* gate_row = acc + m * acc_cols;
      float* up_row = gate_row + w_panels * kBlock;
      for (int64_t j = 0; bias != nullptr && j < cols; ++j) gate_row[j] += bias[n0 + j];
      for (int64_t j = 0; up_bias != nullptr && j < cols; ++j) up_row[j] += up_bias[n0 + j];
      simd::SiluMul(gate_row, up_row, cols, y + m * N + n0);
    }
    // What the tiles did not store in y: the edge columns of the full row
    // blocks, all columns of the last partial one (everything, unless direct).
    const int64_t full_rows = direct ? M / kBlock * kBlock : 0, full_cols = cols / kBlock * kBlock;
    for (int64_t m = 0; up == nullptr && m < M; ++m) {
      const int64_t j0 = m < full_rows ? full_cols : 0;
      StoreRow(acc + m * acc_cols + j0, kSplitF16 ? acc + (lo_rows + m) * acc_cols + j0 : nullptr,
               bias ? bias + n0 + j0 : nullptr, cols - j0, y + m * N + n0 + j0);
    }
  }
  if (!kDots) ReleaseTiles();
}

// PackFewRows' layout: x rows in groups of 32, each group PackPanel's layout
// over the whole depth (steps of 512 pairs, rows 0-15 of the group at 0,
// rows 16-31 at 256): where block b (x rows 16b ..) starts, in pairs.
constexpr int64_t XBlockAt(int64_t steps, int64_t b) { return b / 2 * steps * 512 + b % 2 * 256; }

// The few-rows kernels' C of one 32-row block of W, c[j * ldc + m] for W row
// n + j and x row m, into y's rows transposed, + bias; with up_c (the up
// projection's C), silu(c + bias) * (up_c + up_bias).
__attribute__((target("avx512f"))) void WriteTransposed(const float* c, const float* up_c, int64_t ldc, int64_t M,
                                                        int64_t n, const float* bias, const float* up_bias, float* y,
                                                        int64_t N) {
  alignas(64) float row[2][kBlock];
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t j = 0; j < kBlock; ++j) {
      row[0][j] = c[j * ldc + m] + (bias != nullptr ? bias[n + j] : 0.f);
      if (up_c != nullptr) row[1][j] = up_c[j * ldc + m] + (up_bias != nullptr ? up_bias[n + j] : 0.f);
    }
    if (up_c != nullptr) {
      simd::SiluMul(row[0], row[1], kBlock, y + m * N + n);
    } else {
      std::memcpy(y + m * N + n, row[0], sizeof(row[0]));
    }
  }
}

// kBlocks (1-4) blocks of 16 x rows against 16 W rows `a` over the whole
// depth: one A tile of W per step, each x block's B tile (tiles 5, 6, 7, then
// 5 again) and its C tile (0-3); C stored at c, block b at c + 16 b.
template <int kBlocks>
__attribute__((target("amx-tile,amx-bf16"))) inline void XBlocks(const uint16_t* a, int64_t ld_bytes,
                                                                 const uint32_t* const* x_blocks, int64_t steps,
                                                                 float* c, int64_t ldc_bytes) {
  _tile_zero(0);
  if (kBlocks > 1) _tile_zero(1);
  if (kBlocks > 2) _tile_zero(2);
  if (kBlocks > 3) _tile_zero(3);
  for (int64_t st = 0; st < steps; ++st) {
    _tile_loadd(4, a + st * kTileDepth, ld_bytes);
    _tile_loadd(5, x_blocks[0] + st * 512, 64);
    _tile_dpbf16ps(0, 4, 5);
    if (kBlocks > 1) {
      _tile_loadd(6, x_blocks[1] + st * 512, 64);
      _tile_dpbf16ps(1, 4, 6);
    }
    if (kBlocks > 2) {
      _tile_loadd(7, x_blocks[2] + st * 512, 64);
      _tile_dpbf16ps(2, 4, 7);
    }
    if (kBlocks > 3) {
      _tile_loadd(5, x_blocks[3] + st * 512, 64);
      _tile_dpbf16ps(3, 4, 5);
    }
  }
  _tile_stored(0, c, ldc_bytes);
  if (kBlocks > 1) _tile_stored(1, c + 16, ldc_bytes);
  if (kBlocks > 2) _tile_stored(2, c + 32, ldc_bytes);
  if (kBlocks > 3) _tile_stored(3, c + 48, ldc_bytes);
}

// C = W xᵀ for W rows [n_begin, n_end) in blocks of 32: per 16 W rows (one A
// tile a step: sixteen streams, 3-6% faster at pp16 / pp32 than two tiles'
// thirty-two), x in chunks of up to 64 rows (the first chunk reads W from
// memory, the others from L2); stored per block and written to y transposed
// (+ bias; with up, silu(gate + bias) * (up + up_bias)).
__attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw"))) void FewRowsGemm(
    const uint32_t* x_tiles, int64_t M, const MatView& w, const MatView* up, int64_t n_begin, int64_t n_end,
    const float* bias, const float* up_bias, float* y) {
  const int64_t K = w.cols, N = w.rows, steps = K / kTileDepth, ld_bytes = K * 2;
  if (M > kFewRowsMax) std::abort();  // callers ask FewRowsApply first
  const int64_t x_blocks = (M + 15) / 16, ldc = x_blocks * 16;
  alignas(64) static thread_local float c[2][kBlock * kFewRowsMax];  // [W row][x row] of w, then of up
  const uint32_t* x_block[kFewRowsMax / 16];
  for (int64_t b = 0; b < x_blocks; ++b) x_block[b] = x_tiles + XBlockAt(steps, b);
  ConfigureTiles();
  for (int64_t n = n_begin; n < n_end; n += kBlock) {
    for (int part = 0; part < (up != nullptr ? 2 : 1); ++part) {
      for (int64_t half = 0; half < 2; ++half) {
        const auto* a = static_cast<const uint16_t*>(part == 0 ? w.data : up->data) + (n + 16 * half) * K;
        float* cp = c[part] + 16 * half * ldc;
        for (int64_t b = 0; b < x_blocks; b += 4) {
          switch (std::min<int64_t>(4, x_blocks - b)) {
            case 1: XBlocks<1>(a, ld_bytes, x_block + b, steps, cp + 16 * b, ldc * 4); break;
            case 2: XBlocks<2>(a, ld_bytes, x_block + b, steps, cp + 16 * b, ldc * 4); break;
            case 3: XBlocks<3>(a, ld_bytes, x_block + b, steps, cp + 16 * b, ldc * 4); break;
            default: XBlocks<4>(a, ld_bytes, x_block + b, steps, cp + 16 * b, ldc * 4); break;
          }
        }
      }
    }
    WriteTransposed(c[0], up != nullptr ? c[1] : nullptr, ldc, M, n, bias, up_bias, y, N);
  }
  ReleaseTiles();
}

// float16 W, rows [n, n + 16) over the whole depth, split exactly into bf16
// hi and lo rows (PackPanelF16's split, without the transpose), K apart.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // as for PackPanelF16 above
#endif
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void SplitRowsF16(const uint16_t* w, int64_t K,
                                                                       uint16_t* hi, uint16_t* lo) {
  // Four rows at a time, each a stream with prefetches 1 KiB ahead (as the
  // decode GEMV reads W).
  for (int64_t r0 = 0; r0 < 16; r0 += 4) {
    for (int64_t k = 0; k < K; k += 32) {
      for (int64_t r = r0; r < r0 + 4; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(w + r * K + k) + 1024, _MM_HINT_T0);
        const __m512i v = _mm512_loadu_si512(w + r * K + k);
        __m512i h, l;
        SplitBf16(_mm512_cvtph_ps(_mm512_castsi512_si256(v)), _mm512_cvtph_ps(_mm512_extracti64x4_epi64(v, 1)), &h,
                  &l);
        _mm512_storeu_si512(hi + r * K + k, h);
        _mm512_storeu_si512(lo + r * K + k, l);
      }
    }
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// kBlocks (1-2) blocks of 16 x rows against 16 float16 W rows split into hi
// and lo (A tiles 4, 5): C += W_hi x_hi + W_hi x_lo + W_lo x_hi per block
// (B tiles 2, 3 and 6, 7; C tiles 0, 1), as GemmF16Split computes.
template <int kBlocks>
__attribute__((target("amx-tile,amx-bf16"))) inline void XBlocksF16(const uint16_t* a_hi, const uint16_t* a_lo,
                                                                    int64_t ld_bytes, const uint32_t* const* x_hi,
                                                                    const uint32_t* const* x_lo, int64_t steps,
                                                                    float* c, int64_t ldc_bytes) {
  _tile_zero(0);
  if (kBlocks > 1) _tile_zero(1);
  for (int64_t st = 0; st < steps; ++st) {
    _tile_loadd(4, a_hi + st * kTileDepth, ld_bytes);
    _tile_loadd(5, a_lo + st * kTileDepth, ld_bytes);
    _tile_loadd(2, x_hi[0] + st * 512, 64);
    _tile_loadd(3, x_lo[0] + st * 512, 64);
    _tile_dpbf16ps(0, 4, 2);
    _tile_dpbf16ps(0, 4, 3);
    _tile_dpbf16ps(0, 5, 2);
    if (kBlocks > 1) {
      _tile_loadd(6, x_hi[1] + st * 512, 64);
      _tile_loadd(7, x_lo[1] + st * 512, 64);
      _tile_dpbf16ps(1, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(1, 5, 6);
    }
  }
  _tile_stored(0, c, ldc_bytes);
  if (kBlocks > 1) _tile_stored(1, c + 16, ldc_bytes);
}

// FewRowsGemm for float16 W: each 16 W rows split once into bf16 hi and lo
// rows (scratch: 64 K bytes), x_tiles holding x_hi's blocks and then, from
// block lo_block, x_lo's (PackSplitActivations' rows, packed by PackFewRows).
__attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16"))) void FewRowsGemmF16(
    const uint32_t* x_tiles, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end, const float* bias,
    float* y, void* scratch) {
  const int64_t K = w.cols, N = w.rows, steps = K / kTileDepth, ld_bytes = K * 2;
  if (M > kFewRowsMax) std::abort();  // callers ask FewRowsApply first
  const int64_t x_blocks = (M + 15) / 16, ldc = x_blocks * 16, lo_block = PaddedRows(M) / 16;
  alignas(64) static thread_local float c[kBlock * kFewRowsMax];  // [W row][x row]
  const uint32_t* x_hi[kFewRowsMax / 16];
  const uint32_t* x_lo[kFewRowsMax / 16];
  for (int64_t b = 0; b < x_blocks; ++b) {
    x_hi[b] = x_tiles + XBlockAt(steps, b);
    x_lo[b] = x_tiles + XBlockAt(steps, lo_block + b);
  }
  auto* w_hi = static_cast<uint16_t*>(scratch);
  uint16_t* w_lo = w_hi + 16 * K;
  ConfigureTiles();
  for (int64_t n = n_begin; n < n_end; n += kBlock) {
    for (int64_t half = 0; half < 2; ++half) {
      SplitRowsF16(static_cast<const uint16_t*>(w.data) + (n + 16 * half) * K, K, w_hi, w_lo);
      float* cp = c + 16 * half * ldc;
      for (int64_t b = 0; b < x_blocks; b += 2) {
        if (x_blocks - b >= 2) {
          XBlocksF16<2>(w_hi, w_lo, ld_bytes, x_hi + b, x_lo + b, steps, cp + 16 * b, ldc * 4);
        } else {
          XBlocksF16<1>(w_hi, w_lo, ld_bytes, x_hi + b, x_lo + b, steps, cp + 16 * b, ldc * 4);
        }
      }
    }
    WriteTransposed(c, nullptr, ldc, M, n, bias, nullptr, y, N);
  }
  ReleaseTiles();
}

}  // namespace

void GemmBf16(const uint16_t* xb, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end, const float* bias,
              float* y, void* scratch, int64_t ldw) {
  Gemm<false, false>(xb, M, w, n_begin, n_end, bias, y, scratch, ldw);
}

namespace {
// Whether W of `dtype` takes the few-rows kernel for M rows of x whose tiles
// hold x_parts bf16 rows per row of x (float16's hi and lo: 2).
bool FewRowsFit(int64_t M, int64_t x_parts, const MatView& w, DType dtype) {
  const bool x_fits =
      M <= kBlock || (M <= kFewRowsMax && x_parts * PaddedRows(M) * PaddedDepth(w.cols) * 2 <= kFewRowsXBytes);
  return x_fits && w.dtype == dtype && w.cols % kTileDepth == 0 && w.rows % kBlock == 0;
}
}  // namespace

bool FewRowsApply(int64_t M, const MatView& w) { return FewRowsFit(M, 1, w, DType::kBF16); }

bool FewRowsApplyF16(int64_t M, const MatView& w) { return FewRowsFit(M, 2, w, DType::kF16); }

void GemmF16FewRows(const uint32_t* x_tiles, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end,
                    const float* bias, float* y, void* scratch) {
  FewRowsGemmF16(x_tiles, M, w, n_begin, n_end, bias, y, scratch);
}

void PackFewRows(const uint16_t* xb, int64_t M, int64_t K, uint32_t* x_tiles) {
  const int64_t steps = K / kTileDepth;
  for (int64_t g = 0; g * kBlock < M; ++g) {
    PackPanel(xb, K, RowStride(K), g * kBlock, std::min(kBlock, M - g * kBlock), 0, steps,
              x_tiles + XBlockAt(steps, 2 * g));
  }
}

void GemmBf16FewRows(const uint32_t* x_tiles, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end,
                     const float* bias, float* y) {
  FewRowsGemm(x_tiles, M, w, nullptr, n_begin, n_end, bias, nullptr, y);
}

void GemmBf16GateUpSiluFewRows(const uint32_t* x_tiles, int64_t M, const MatView& gate, const MatView& up,
                               int64_t n_begin, int64_t n_end, const float* gate_bias, const float* up_bias,
                               float* y) {
  FewRowsGemm(x_tiles, M, gate, &up, n_begin, n_end, gate_bias, up_bias, y);
}

void GemmBf16Dots(const uint16_t* xb, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end, const float* bias,
                  float* y, void* scratch, int64_t ldw) {
  Gemm<false, true>(xb, M, w, n_begin, n_end, bias, y, scratch, ldw);
}

void GemmF16Split(const uint16_t* xb_split, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end,
                  const float* bias, float* y, void* scratch) {
  Gemm<true, false>(xb_split, M, w, n_begin, n_end, bias, y, scratch, 0);
}

void GemmBf16GateUpSilu(const uint16_t* xb, int64_t M, const MatView& gate, const MatView& up, int64_t n_begin,
                        int64_t n_end, const float* gate_bias, const float* up_bias, float* y, void* scratch,
                        bool dots) {
  if (dots) {
    Gemm<false, true>(xb, M, gate, n_begin, n_end, gate_bias, y, scratch, 0, nullptr, 0, &up, up_bias);
  } else {
    Gemm<false, false>(xb, M, gate, n_begin, n_end, gate_bias, y, scratch, 0, nullptr, 0, &up, up_bias);
  }
}

void GemmBf16Prepacked(const uint16_t* xb, int64_t M, const uint32_t* packed, int64_t K, int64_t k_used,
                       int64_t n_begin, int64_t n_end, float* y, int64_t ldy, void* scratch, bool dots) {
  const MatView w{nullptr, DType::kBF16, ldy, k_used};  // Gemm's y rows are w.rows apart
  if (dots) {
    Gemm<false, true>(xb, M, w, n_begin, n_end, nullptr, y, scratch, 0, packed, K);
  } else {
    Gemm<false, false>(xb, M, w, n_begin, n_end, nullptr, y, scratch, 0, packed, K);
  }
}

// The panel layout (see PackPanel): panel p, step s, half h, pair r, column c
// holds W[32p + 16h + c][32s + 2r] | W[..][32s + 2r + 1] << 16. A KV head's K
// and V are packed once per layer, not once per block of query rows. The
// plain loops are the reference; the vector versions below serve wherever the
// CPU has AVX512-BF16 (which the tiles' and the dot products' paths need):
// Llama-2-7B's 32 heads x 512 positions x 128 took ~2% of a bf16 prefill in
// the plain loops, a third of its attention.
namespace {
template <class At>
void Prepack(At at, int64_t N, int64_t K, uint32_t* packed) {
  const int64_t steps = PaddedDepth(K) / kTileDepth;
  for (int64_t p = 0; p < (N + kBlock - 1) / kBlock; ++p) {
    for (int64_t st = 0; st < steps; ++st) {
      for (int64_t h = 0; h < 2; ++h) {
        for (int64_t r = 0; r < 16; ++r) {
          uint32_t* dst = packed + (p * steps + st) * 512 + h * 256 + r * 16;
          const int64_t k = st * kTileDepth + 2 * r;
          for (int64_t c = 0; c < 16; ++c) {
            const int64_t n = p * kBlock + h * 16 + c;
            const uint32_t lo = n < N && k < K ? F32ToBF16(at(n, k)) : 0;
            const uint32_t hi = n < N && k + 1 < K ? F32ToBF16(at(n, k + 1)) : 0;
            dst[c] = lo | hi << 16;
          }
        }
      }
    }
  }
}

// GCC 12 warns that the widening and shift intrinsics' own undefined
// pass-through operands may be used uninitialized: false positives.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// Rows: each W row's 32-deep step is two float vectors rounded into one
// vector of 16 pairs; 16 rows of those transposed give the half's 16 pair rows.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void PrepackRowsVector(const float* rows, int64_t ld,
                                                                            int64_t N, int64_t K,
                                                                            uint32_t* packed) {
  const int64_t steps = PaddedDepth(K) / kTileDepth;
  for (int64_t p = 0; p < (N + kBlock - 1) / kBlock; ++p) {
    for (int64_t st = 0; st < steps; ++st) {
      const int64_t k = st * kTileDepth;
      const __mmask16 m0 = FirstLanes(K - k), m1 = FirstLanes(K - k - 16);
      for (int64_t h = 0; h < 2; ++h) {
        __m512i r[16];
        for (int64_t c = 0; c < 16; ++c) {
          const int64_t n = p * kBlock + h * 16 + c;
          if (n >= N) {
            r[c] = _mm512_setzero_si512();
            continue;
          }
          const float* row = rows + n * ld + k;
          const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, row + 16), _mm512_maskz_loadu_ps(m0, row));
          r[c] = reinterpret_cast<const __m512i&>(v);
        }
        Transpose16x16(r);
        uint32_t* dst = packed + (p * steps + st) * 512 + h * 256;
        for (int j = 0; j < 16; ++j) _mm512_storeu_si512(dst + j * 16, r[j]);
      }
    }
  }
}

// Columns: a pair row is two source rows (depth k and k + 1) at the half's 16
// columns, rounded and interleaved; no transpose.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void PrepackColumnsVector(const float* cols, int64_t ld,
                                                                               int64_t N, int64_t K,
                                                                               uint32_t* packed) {
  const int64_t steps = PaddedDepth(K) / kTileDepth;
  for (int64_t p = 0; p < (N + kBlock - 1) / kBlock; ++p) {
    for (int64_t st = 0; st < steps; ++st) {
      for (int64_t h = 0; h < 2; ++h) {
        const int64_t n = p * kBlock + h * 16;
        const __mmask16 mc = FirstLanes(N - n);
        uint32_t* dst = packed + (p * steps + st) * 512 + h * 256;
        for (int64_t r = 0; r < 16; ++r) {
          const int64_t k = st * kTileDepth + 2 * r;
          const __m512 lo = k < K ? _mm512_maskz_loadu_ps(mc, cols + k * ld + n) : _mm512_setzero_ps();
          const __m512 hi = k + 1 < K ? _mm512_maskz_loadu_ps(mc, cols + (k + 1) * ld + n) : _mm512_setzero_ps();
          const __m256bh l = _mm512_cvtneps_pbh(lo), u = _mm512_cvtneps_pbh(hi);
          const __m512i pairs = _mm512_or_si512(_mm512_cvtepu16_epi32(reinterpret_cast<const __m256i&>(l)),
                                                _mm512_slli_epi32(_mm512_cvtepu16_epi32(reinterpret_cast<const __m256i&>(u)), 16));
          _mm512_storeu_si512(dst + r * 16, pairs);
        }
      }
    }
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}  // namespace

void PrepackRowsReference(const float* rows, int64_t ld, int64_t N, int64_t K, uint32_t* packed) {
  Prepack([&](int64_t n, int64_t k) { return rows[n * ld + k]; }, N, K, packed);
}

void PrepackColumnsReference(const float* cols, int64_t ld, int64_t N, int64_t K, uint32_t* packed) {
  Prepack([&](int64_t n, int64_t k) { return cols[k * ld + n]; }, N, K, packed);
}

void PrepackRows(const float* rows, int64_t ld, int64_t N, int64_t K, uint32_t* packed) {
  if (Bf16DotsUsable()) return PrepackRowsVector(rows, ld, N, K, packed);
  PrepackRowsReference(rows, ld, N, K, packed);
}

void PrepackColumns(const float* cols, int64_t ld, int64_t N, int64_t K, uint32_t* packed) {
  if (Bf16DotsUsable()) return PrepackColumnsVector(cols, ld, N, K, packed);
  PrepackColumnsReference(cols, ld, N, K, packed);
}

void RoundToBf16(const float* x, int64_t K, uint16_t* xb) { RoundRow(x, K, K, xb); }

__attribute__((target("avx512f,avx512bf16"))) inline __m512bh LoadPairs(const uint16_t* p) {
  return reinterpret_cast<__m512bh>(_mm512_loadu_si512(p));
}

// One row after the other (one linear stream per thread), 128 elements per
// step in four chains; the row's last K % 32 elements by masked loads, which
// read nothing past the row (a mapping may end there).
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void GemvBf16Dots(const uint16_t* xb, const MatView& w,
                                                                       int64_t n_begin, int64_t n_end,
                                                                       const float* bias, float* y) {
  const int64_t K = w.cols;
  const auto* rows = static_cast<const uint16_t*>(w.data);
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (K % 32)) - 1);
  for (int64_t n = n_begin; n < n_end; ++n) {
    const uint16_t* row = rows + n * K;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t k = 0;
    for (; k + 128 <= K; k += 128) {
      a0 = _mm512_dpbf16_ps(a0, LoadPairs(row + k), LoadPairs(xb + k));
      a1 = _mm512_dpbf16_ps(a1, LoadPairs(row + k + 32), LoadPairs(xb + k + 32));
      a2 = _mm512_dpbf16_ps(a2, LoadPairs(row + k + 64), LoadPairs(xb + k + 64));
      a3 = _mm512_dpbf16_ps(a3, LoadPairs(row + k + 96), LoadPairs(xb + k + 96));
    }
    for (; k + 32 <= K; k += 32) a0 = _mm512_dpbf16_ps(a0, LoadPairs(row + k), LoadPairs(xb + k));
    if (k < K) {
      a1 = _mm512_dpbf16_ps(a1, reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(tail, row + k)),
                            reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(tail, xb + k)));
    }
    y[n] = SumLanes(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))) + (bias ? bias[n] : 0.f);
  }
}

// GCC 12 warns that _mm512_max_ps's own undefined pass-through operand is
// used uninitialized: a false positive (as for the unpacks above).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
namespace {

// exp(t * ln 2) for t <= 0: 2^round(t) (VSCALEFPS, which flushes far below
// float's range to zero) times 2^f, f in [-1/2, 1/2], by its Taylor series to
// f^6 (truncation below 2.4e-7 relative).
__attribute__((target("avx512f"))) inline __m512 Exp2(__m512 t) {
  t = _mm512_max_ps(t, _mm512_set1_ps(-160.f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.5403530e-4f);  // ln2^6 / 720
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558e-3f));  // ln2^5 / 120
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));  // ln2^4 / 24
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));  // ln2^3 / 6
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));  // ln2^2 / 2
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));  // ln2
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace

// The scale and log2(e) fold into one multiplier: p = 2^((s - max) * scale * log2 e).
__attribute__((target("avx512f,avx512bw,avx512bf16,avx512vl"))) float SoftmaxRowToBf16(const float* s, int64_t seen,
                                                                                    float scale, int64_t padded,
                                                                                    uint16_t* out) {
  const float max = simd::MaxOf(s, seen);  // the FMA attention's row maximum, in vectors
  const __m512 k = _mm512_set1_ps(scale * 1.44269504f);
  const __m512 shift = _mm512_set1_ps(max);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < seen; j += 16) {
    const __mmask16 m = FirstLanes(seen - j);
    const __m512 p = _mm512_maskz_mov_ps(m, Exp2(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), shift), k)));
    sum = _mm512_add_ps(sum, p);
    const __m256bh h = _mm512_cvtneps_pbh(p);
    _mm256_mask_storeu_epi16(out + j, m, reinterpret_cast<const __m256i&>(h));
  }
  std::fill(out + seen, out + padded, uint16_t{0});
  return SumLanes(sum);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

__attribute__((target("amx-tile,amx-bf16"))) double PeakProbe(int64_t iterations) {
  alignas(64) static const uint16_t zeros[16 * 32] = {};
  ConfigureTiles();
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, zeros, 64);
  _tile_loadd(5, zeros, 64);
  _tile_loadd(6, zeros, 64);
  _tile_loadd(7, zeros, 64);
  for (int64_t i = 0; i < iterations; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float sink[16 * 16];
  _tile_stored(0, sink, 64);
  ReleaseTiles();
  return static_cast<double>(iterations) * 4 * 16 * 16 * 32 * 2 + sink[0];
}

}  // namespace amx
}  // namespace llm
