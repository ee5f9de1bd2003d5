// Highway implementations of the per-row CPU kernels. This file is compiled
// once per SIMD target through foreach_target.h; the HWY_ONCE section at the
// bottom exports the dispatchers declared in cpu_kernels.h.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/simd/cpu_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/quant.h"
#include "hwy/cache_control.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#if HWY_ARCH_X86
#include <cpuid.h>
#include <immintrin.h>
#endif
#include "kernels/cpu/simd/cpu_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace llm {
namespace simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// --- Loading weights of any storage type as float32 lanes ---------------------

HWY_INLINE VF LoadW(DF df, const float* p) { return hn::LoadU(df, p); }
HWY_INLINE VF LoadW(DF df, const hwy::bfloat16_t* p) {
  const hn::Rebind<hwy::bfloat16_t, DF> dbf;
  return hn::PromoteTo(df, hn::LoadU(dbf, p));
}
HWY_INLINE VF LoadW(DF df, const hwy::float16_t* p) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, p));
}
HWY_INLINE float ScalarW(const float* p) { return *p; }
HWY_INLINE float ScalarW(const hwy::bfloat16_t* p) { return BF16ToF32(p->bits); }
HWY_INLINE float ScalarW(const hwy::float16_t* p) { return F16ToF32(reinterpret_cast<const uint16_t*>(p)[0]); }

HWY_INLINE float ReduceSum(DF df, VF v) { return hn::GetLane(hn::SumOfLanes(df, v)); }

// Calls fn with `data` as a pointer of its storage type (float, float16, bfloat16).
template <class F>
HWY_INLINE void WithWeightType(const void* data, DType dtype, F fn) {
  switch (dtype) {
    case DType::kF16: return fn(static_cast<const hwy::float16_t*>(data));
    case DType::kBF16: return fn(static_cast<const hwy::bfloat16_t*>(data));
    default: return fn(static_cast<const float*>(data));
  }
}

// --- GEMV: four weight rows at a time share each load of x ---------------------

// Whether decode kernels issue their software prefetches. AMD CPUs with
// AVX-512 (Zen 4) read more without them. Zen 4, 2 threads, bf16 from DRAM, medians of 5
// sweeps in alternating runs: 2048x5632 25-28 vs 19-24 GB/s, 2048x2048 28
// vs 19, 5632x2048 unchanged; Q8_0 / Q4_0 (PackedTile) 25-33 / 22-29 vs
// 17-26 / 18-25; a plain linear read there: 46-55 with none, 28 with
// prefetches 1 KiB ahead; decode batches (GemvBatchTile), TinyLlama bf16
// S_TG, 4 alternating runs: B = 4 42.4-44.8 vs 36.6-38.9 tok/s, B = 16
// 70.4-75.4 vs 65.7-71.0. Intel's AVX-512 CPUs and AVX2 keep them. Where
// this is false, a float decode GEMV of one row of x with K <= 4096 also reads
// one weight row at a time (GemvT).
HWY_INLINE bool SoftwarePrefetch() {
#if HWY_TARGET <= HWY_AVX3
  static const bool amd = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
    return b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;  // "AuthenticAMD"
  }();
  return !amd;
#else
  return true;
#endif
}

// Whether a GEMV's four weight streams are the four quarters of its task's
// rows, each read row after row, rather than four adjacent rows: a stream
// then continues into its next row, where its prefetches 1 KiB ahead already
// went (four adjacent rows each stop at their row's end, a page at bf16 K =
// 2048, and the prefetches there hit the row beside, already read). Measured
// on an Intel Xeon (README); AVX2 (Zen 3 among others) keeps adjacent rows
// until measured there, and AMD's AVX-512 reads one row at a time.
HWY_INLINE bool QuarterStreams() { return HWY_TARGET <= HWY_AVX3 && SoftwarePrefetch(); }

// A batch of decode rows (M = 2 .. a few dozen): each weight vector is loaded
// and widened once and serves R rows of x (4 W rows x R x rows of
// accumulators), so W streams from memory once per call and the x rows stay
// in L1. R = 4 with AVX-512's 32 registers, 2 with AVX2's 16.
constexpr int kGemvRowsPerPass = HWY_MAX_BYTES >= 64 ? 4 : 2;

// The four W rows are `apart` rows apart (see GemvT's quarters).
template <int R, class WT>
HWY_INLINE void GemvBatchTile(const float* x, const WT* w0, int64_t K, int64_t N, int64_t n, const float* bias,
                              float* y, int64_t apart) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const WT* w1 = w0 + apart * K;
  const WT* w2 = w1 + apart * K;
  const WT* w3 = w2 + apart * K;
  VF acc[4][R];
  for (int j = 0; j < 4; ++j) {
    for (int i = 0; i < R; ++i) acc[j][i] = hn::Zero(df);
  }
  const bool prefetch = SoftwarePrefetch();
  int64_t k = 0;
  for (; k + L <= K; k += L) {
    if (prefetch) {
      hwy::Prefetch(reinterpret_cast<const char*>(w0 + k) + 1024);
      hwy::Prefetch(reinterpret_cast<const char*>(w1 + k) + 1024);
      hwy::Prefetch(reinterpret_cast<const char*>(w2 + k) + 1024);
      hwy::Prefetch(reinterpret_cast<const char*>(w3 + k) + 1024);
    }
    const VF a = LoadW(df, w0 + k), b = LoadW(df, w1 + k), c = LoadW(df, w2 + k), d = LoadW(df, w3 + k);
    for (int i = 0; i < R; ++i) {
      const VF xv = hn::LoadU(df, x + i * K + k);
      acc[0][i] = hn::MulAdd(a, xv, acc[0][i]);
      acc[1][i] = hn::MulAdd(b, xv, acc[1][i]);
      acc[2][i] = hn::MulAdd(c, xv, acc[2][i]);
      acc[3][i] = hn::MulAdd(d, xv, acc[3][i]);
    }
  }
  const WT* rows[4] = {w0, w1, w2, w3};
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < 4; ++j) {
      float s = ReduceSum(df, acc[j][i]);
      for (int64_t t = k; t < K; ++t) s += x[i * K + t] * ScalarW(rows[j] + t);
      y[i * N + n + j * apart] = s + (bias ? bias[n + j * apart] : 0.f);
    }
  }
}

template <class WT>
void GemvBatch(const float* x, int64_t M, const WT* w, int64_t K, int64_t N, int64_t n, const float* bias,
               float* y, int64_t apart = 1) {
  constexpr int R = kGemvRowsPerPass;
  int64_t m = 0;
  for (; m + R <= M; m += R) GemvBatchTile<R>(x + m * K, w + n * K, K, N, n, bias, y + m * N, apart);
  switch (M - m) {
    case 3: GemvBatchTile<3>(x + m * K, w + n * K, K, N, n, bias, y + m * N, apart); break;
    case 2: GemvBatchTile<2>(x + m * K, w + n * K, K, N, n, bias, y + m * N, apart); break;
    case 1: GemvBatchTile<1>(x + m * K, w + n * K, K, N, n, bias, y + m * N, apart); break;
    default: break;
  }
}

// One row . x with four independent FMA chains; x float32 or (GemvRowsHalfX) float16.
template <class WT, class XT>
HWY_INLINE float RowDot(DF df, const WT* w, const XT* x, int64_t K) {
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  int64_t k = 0;
  for (; k + 4 * L <= K; k += 4 * L) {
    a0 = hn::MulAdd(LoadW(df, w + k), LoadW(df, x + k), a0);
    a1 = hn::MulAdd(LoadW(df, w + k + L), LoadW(df, x + k + L), a1);
    a2 = hn::MulAdd(LoadW(df, w + k + 2 * L), LoadW(df, x + k + 2 * L), a2);
    a3 = hn::MulAdd(LoadW(df, w + k + 3 * L), LoadW(df, x + k + 3 * L), a3);
  }
  for (; k + L <= K; k += L) a0 = hn::MulAdd(LoadW(df, w + k), LoadW(df, x + k), a0);
  float s = ReduceSum(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)));
  for (; k < K; ++k) s += ScalarW(x + k) * ScalarW(w + k);
  return s;
}

// Four W rows . x (float32, or float16 for GemvRowsHalfX) at once, plus the
// four rows' bias where given: four weight streams, each load of x serving
// four rows, eight independent FMA chains (two vectors per row per step) to
// cover the FMA latency.
// The rows are `apart` rows apart (1: four adjacent rows), and so are their
// bias and out entries.
template <class WT, class XT>
HWY_INLINE void FourRowDots(DF df, const WT* w0, const XT* x, int64_t K, bool prefetch, const float* bias4,
                            float* out, int64_t apart = 1) {
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const WT* w1 = w0 + apart * K;
  const WT* w2 = w1 + apart * K;
  const WT* w3 = w2 + apart * K;
  VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  VF b0 = hn::Zero(df), b1 = hn::Zero(df), b2 = hn::Zero(df), b3 = hn::Zero(df);
  int64_t k = 0;
  for (; k + 2 * L <= K; k += 2 * L) {
    if (prefetch) {
      // The four weight streams 1 KiB ahead: more misses in flight than the
      // hardware prefetcher keeps for four rows (as the read probe does).
      hwy::Prefetch(reinterpret_cast<const char*>(w0 + k) + 1024);
      hwy::Prefetch(reinterpret_cast<const char*>(w1 + k) + 1024);
      hwy::Prefetch(reinterpret_cast<const char*>(w2 + k) + 1024);
      hwy::Prefetch(reinterpret_cast<const char*>(w3 + k) + 1024);
    }
    const VF xv = LoadW(df, x + k), xw = LoadW(df, x + k + L);
    a0 = hn::MulAdd(LoadW(df, w0 + k), xv, a0);
    a1 = hn::MulAdd(LoadW(df, w1 + k), xv, a1);
    a2 = hn::MulAdd(LoadW(df, w2 + k), xv, a2);
    a3 = hn::MulAdd(LoadW(df, w3 + k), xv, a3);
    b0 = hn::MulAdd(LoadW(df, w0 + k + L), xw, b0);
    b1 = hn::MulAdd(LoadW(df, w1 + k + L), xw, b1);
    b2 = hn::MulAdd(LoadW(df, w2 + k + L), xw, b2);
    b3 = hn::MulAdd(LoadW(df, w3 + k + L), xw, b3);
  }
  a0 = hn::Add(a0, b0);
  a1 = hn::Add(a1, b1);
  a2 = hn::Add(a2, b2);
  a3 = hn::Add(a3, b3);
  for (; k + L <= K; k += L) {
    const VF xv = LoadW(df, x + k);
    a0 = hn::MulAdd(LoadW(df, w0 + k), xv, a0);
    a1 = hn::MulAdd(LoadW(df, w1 + k), xv, a1);
    a2 = hn::MulAdd(LoadW(df, w2 + k), xv, a2);
    a3 = hn::MulAdd(LoadW(df, w3 + k), xv, a3);
  }
  const WT* rows[4] = {w0, w1, w2, w3};
  const VF sums[4] = {a0, a1, a2, a3};
  for (int j = 0; j < 4; ++j) {
    float sum = ReduceSum(df, sums[j]);
    for (int64_t t = k; t < K; ++t) sum += ScalarW(x + t) * ScalarW(rows[j] + t);
    out[j * apart] = sum + (bias4 ? bias4[j * apart] : 0.f);
  }
}

// Where a stream's next load lies modulo 4 KiB matters on the Xeon with AMX:
// a task's four row quarters (rows of 4 KiB: bf16 at K = 2048) read in step
// are four streams at one offset of their pages, and read 34-35 GB/s from
// memory on 2 threads; 512 bytes apart from each other, 38-39 (roof_pairs,
// README "Decode: four streams out of step"). So each quarter's rows are
// one linear stream, stream j kStaggerBytes behind stream j - 1, and a
// row's sum is written when its stream reaches the row's end.
constexpr int64_t kStaggerBytes = 512;

// Whether QuarterDots takes rows of K elements of WT: 16-bit W (float32 W,
// two lines a step, read 3% less so in TinyLlama tg128: 7.97-8.03 -> 7.72-7.74
// tok/s, and keeps FourRowDots), whole steps of two vectors per row, and the
// stagger a whole number of steps.
template <class WT>
HWY_INLINE bool QuarterDotsFit(int64_t K) {
  const int64_t step = 2 * static_cast<int64_t>(hn::Lanes(DF()));
  const int64_t lag = kStaggerBytes / static_cast<int64_t>(sizeof(WT));
  return sizeof(WT) == 2 && K % step == 0 && lag % step == 0;
}

// y[r][i] = W[i] . x[r] (+ bias[i]) for the 4 q rows at w (rows K apart)
// and the R rows of x (K apart; y's rows N apart): stream j reads W rows
// j q .. j q + q - 1 as one range of q K elements, starting kStaggerBytes
// after stream j - 1 started, with software prefetches ahead. Each W vector
// serves the R rows of x (decode of a batch of up to four sequences).
template <int R, class WT>
HWY_INLINE void QuarterDots(DF df, const WT* w, const float* x, int64_t K, int64_t N, int64_t q, const float* bias,
                            float* y) {
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  // 2 KiB ahead (one line a step; roof_pairs 2048 x 5632, Xeon with AMX: bf16
  // 88% -> 92% of the probe beside over 1 KiB, 5 rounds, before the stagger).
  constexpr int64_t kAhead = 2048;
  // Accumulators per (stream, x row): two for one row (latency), one for more.
  constexpr int kAcc = R == 1 ? 2 : 1;
  const int64_t lag = kStaggerBytes / static_cast<int64_t>(sizeof(WT));
  const int64_t len = q * K;  // elements per stream
  const WT* base[4] = {w, w + len, w + 2 * len, w + 3 * len};
  int64_t col[4] = {0, 0, 0, 0}, row[4] = {0, 0, 0, 0};
  VF acc[4][R][kAcc];
  for (int j = 0; j < 4; ++j) {
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < kAcc; ++c) acc[j][r][c] = hn::Zero(df);
    }
  }
  // Stream j at element t = T - j lag of its range; one step: two vectors.
  const auto step = [&](int j, int64_t t) HWY_ATTR {
    const WT* p = base[j] + t;
    hwy::Prefetch(reinterpret_cast<const char*>(p) + kAhead);
    const VF w0 = LoadW(df, p), w1 = LoadW(df, p + L);
    for (int r = 0; r < R; ++r) {
      const float* xr = x + r * K + col[j];
      acc[j][r][0] = hn::MulAdd(w0, hn::LoadU(df, xr), acc[j][r][0]);
      acc[j][r][kAcc - 1] = hn::MulAdd(w1, hn::LoadU(df, xr + L), acc[j][r][kAcc - 1]);
    }
    col[j] += 2 * L;
    if (col[j] == K) {
      const int64_t i = j * q + row[j];
      for (int r = 0; r < R; ++r) {
        const VF sum = kAcc == 2 ? hn::Add(acc[j][r][0], acc[j][r][kAcc - 1]) : acc[j][r][0];
        y[r * N + i] = ReduceSum(df, sum) + (bias ? bias[i] : 0.f);
        for (int c = 0; c < kAcc; ++c) acc[j][r][c] = hn::Zero(df);
      }
      col[j] = 0;
      ++row[j];
    }
  };
  const int64_t end = len + 3 * lag;
  int64_t T = 0;
  // Ramp: streams start one after the other (as long as the range allows).
  for (; T < std::min(3 * lag, len); T += 2 * L) {
    for (int j = 0; j < 4; ++j) {
      if (T >= j * lag) step(j, T - j * lag);
    }
  }
  for (; T < len; T += 2 * L) {
    step(0, T);
    step(1, T - lag);
    step(2, T - 2 * lag);
    step(3, T - 3 * lag);
  }
  // Drain: streams end one after the other.
  for (; T < end; T += 2 * L) {
    for (int j = 0; j < 4; ++j) {
      const int64_t t = T - j * lag;
      if (t >= 0 && t < len) step(j, t);
    }
  }
}

template <class WT>
void GemvT(const float* x, int64_t M, const WT* w, int64_t K, int64_t N, int64_t n_begin, int64_t n_end,
           const float* bias, float* y) {
  const DF df;
  int64_t n = n_begin;
  if (M >= 2 && QuarterStreams()) {
    const int64_t quarter = (n_end - n) / 4;
    if (M <= 4 && QuarterDotsFit<WT>(K)) {
      // Up to four rows of x: one staggered pass (more would re-stream W).
      if (quarter > 0) {
        const float* b = bias ? bias + n : nullptr;
        if (M == 2) QuarterDots<2>(df, w + n * K, x, K, N, quarter, b, y + n);
        if (M == 3) QuarterDots<3>(df, w + n * K, x, K, N, quarter, b, y + n);
        if (M == 4) QuarterDots<4>(df, w + n * K, x, K, N, quarter, b, y + n);
      }
      n += 4 * quarter;
    } else {
      for (int64_t i = 0; i < quarter; ++i, ++n) GemvBatch(x, M, w, K, N, n, bias, y, quarter);
      n += 3 * quarter;
    }
  }
  if (M >= 2) {
    for (; n + 4 <= n_end; n += 4) GemvBatch(x, M, w, K, N, n, bias, y);
  }
  const bool prefetch = SoftwarePrefetch();
  if (!prefetch && M == 1 && K <= 4096) {
    // Zen 4: one row after the other, so that each thread reads one linear
    // stream, where x (K floats) fits in half of the 32 KiB L1 beside it. Four
    // interleaved row streams read 10-45% less there at K = 2048 (2 threads, bf16
    // from DRAM, medians of 5 alternating rounds: N 5632 32.7-39.1 vs 27.6-30.9
    // GB/s, 2048 32.3-45.3 vs 26.7-30.6, 32000 28.9 vs 25.2), 0-25% at K = 4096;
    // from K = 5632 (x evicted from L1 by the stream) the four streams win
    // (2048x5632 27.8 vs 29.4, 4096x11008 20.5-21.0 vs 29.8-31.3).
    for (; n < n_end; ++n) y[n] = RowDot(df, w + n * K, x, K) + (bias ? bias[n] : 0.f);
    return;
  }
  if (M == 1 && QuarterStreams()) {
    const int64_t quarter = (n_end - n) / 4;
    if (QuarterDotsFit<WT>(K)) {
      if (quarter > 0) QuarterDots<1>(df, w + n * K, x, K, N, quarter, bias ? bias + n : nullptr, y + n);
      n += 4 * quarter;
    } else {
      for (int64_t i = 0; i < quarter; ++i, ++n) {
        FourRowDots(df, w + n * K, x, K, prefetch, bias ? bias + n : nullptr, y + n, quarter);
      }
      n += 3 * quarter;
    }
  }
  for (; n + 4 <= n_end; n += 4) {
    for (int64_t m = 0; m < M; ++m) {
      FourRowDots(df, w + n * K, x + m * K, K, prefetch, bias ? bias + n : nullptr, y + m * N + n);
    }
  }
  for (; n < n_end; ++n) {
    for (int64_t m = 0; m < M; ++m) y[m * N + n] = RowDot(df, w + n * K, x + m * K, K) + (bias ? bias[n] : 0.f);
  }
}

void GemvRows(const float* x, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end, const float* bias,
              float* y) {
  WithWeightType(w.data, w.dtype, [&](auto* wt) { GemvT(x, M, wt, w.cols, w.rows, n_begin, n_end, bias, y); });
}

// Decode with x in float16 where the one-row rule holds (Zen 4 so far): x
// takes half the L1 of float32 x, so one W row after the other works up to
// K = 8192 (float32 x: 4096), and past it four rows share each load of x.
// Zen 4, 2 threads, from memory (bench_kernels BM_Gemv_DecodeX, interleaved
// repetitions, medians, GB/s): float16 W of 2048 columns x 5632 rows 36.9
// against 31.7 with float32 x, 5632 columns 35.6 against 31.3, 4096 x 4096
// 35.3 against 32.9; bfloat16 W of 5632 columns 38.8 against 31.8; 11008
// columns (four rows) 34.8 / 34.3 against 33.0 / 33.1 (one row there: 28.6).
// In a profiled TinyLlama F16 decode down_proj (5632 columns) read 33-36 GB/s
// with float32 x against up_proj's 49-61 in the same steps, at up_proj's rate
// with 16-bit x; end to end see README (1.14-1.40x F16, 1.23x BF16).
bool HalfXPays() { return !SoftwarePrefetch(); }

bool RoundToF16(const float* x, int64_t n, uint16_t* out) {
  constexpr float kMaxF16 = 65504.f;  // the largest finite float16
  bool ok = true;
  int64_t i = 0;
#if HWY_TARGET <= HWY_AVX2
  // F16C's vcvtps2ph rounds to nearest even; Highway's emulation on older
  // targets truncates, so those take the scalar loop below.
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const VF limit = hn::Set(df, kMaxF16);
  for (; i + L <= n; i += L) {
    const VF v = hn::LoadU(df, x + i);
    ok = ok && hn::AllTrue(df, hn::Le(hn::Abs(v), limit));  // false for NaN too
    hn::StoreU(hn::DemoteTo(dh, v), dh, reinterpret_cast<hwy::float16_t*>(out + i));
  }
#endif
  for (; i < n; ++i) {
    ok = ok && std::fabs(x[i]) <= kMaxF16;
    out[i] = F32ToF16(x[i]);
  }
  return ok;
}

void GemvRowsHalfX(const uint16_t* x_f16, const MatView& w, int64_t n_begin, int64_t n_end, const float* bias,
                   float* y) {
  const DF df;
  const auto* xh = reinterpret_cast<const hwy::float16_t*>(x_f16);
  const int64_t K = w.cols;
  WithWeightType(w.data, w.dtype, [&](auto* wt) {
    int64_t n = n_begin;
    if (K > kHalfXOneRowMaxK) {  // x past half the L1: four rows share each load of x
      for (; n + 4 <= n_end; n += 4) FourRowDots(df, wt + n * K, xh, K, /*prefetch=*/false, bias ? bias + n : nullptr, y + n);
    }
    for (; n < n_end; ++n) y[n] = RowDot(df, wt + n * K, xh, K) + (bias ? bias[n] : 0.f);
  });
}

// --- Block-quantized weights (ggml's Q8_0, Q4_0, ... ; core/quant.h) -----------
//
// Decode reads the blocks directly: each block is widened to float32 lanes
// already multiplied by its scale (d * q is exact in float32: an 11-bit
// mantissa times a 4- or 8-bit integer), so a dot product of a quantized row
// with float32 x equals the reference's on the dequantized row up to float32
// summation. x stays float32 here: the targets with integer dot products
// (below) quantize it to int8 instead unless --int8-dot off.

// A quantized matrix: rows of whole blocks.
struct QuantW {
  const uint8_t* data;
  GgmlType type;
  size_t row_bytes;
};

// A block's f16 scale, broadcast: one hardware conversion where the target
// has one (F16C, AVX-512), not a call per block.
HWY_INLINE VF HalfAt(const uint8_t* p) {
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh1;
  return hn::Set(DF(), hn::GetLane(hn::PromoteTo(d1, hn::LoadU(dh1, reinterpret_cast<const hwy::float16_t*>(p)))));
}

// The Dot* functions below add row . x[r] into acc[4 r] .. acc[4 r + 3]:
// four independent FMA chains per row of x, so a block's FMAs do not wait on
// the previous block's (one chain ran at the FMA latency, ~4 weights/cycle).
constexpr int kChains = 4;

// Q8_0 (blocks: f16 d, int8 q[32]); block b uses chains 2 (b & 1) and 2 (b & 1) + 1.
template <int R, int kChain>
HWY_INLINE void BlockQ8_0(const uint8_t* blk, const float* x, int64_t ldx, VF* acc) {
  const DF df;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<int8_t, DF> d8;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const VF d = HalfAt(blk);
  const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
  for (int64_t c = 0; c < 32; c += 2 * L) {
    const VF w0 = hn::Mul(d, hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, q + c))));
    const VF w1 = hn::Mul(d, hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, q + c + L))));
    for (int r = 0; r < R; ++r) {
      acc[kChains * r + kChain] = hn::MulAdd(w0, hn::LoadU(df, x + r * ldx + c), acc[kChains * r + kChain]);
      acc[kChains * r + kChain + 1] = hn::MulAdd(w1, hn::LoadU(df, x + r * ldx + c + L), acc[kChains * r + kChain + 1]);
    }
  }
}

template <int R>
HWY_INLINE void DotQ8_0(const uint8_t* row, int64_t K, const float* x, int64_t ldx, VF* acc) {
  const int64_t blocks = K / 32;
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    hwy::Prefetch(row + b * 34 + 1024);
    BlockQ8_0<R, 0>(row + b * 34, x + b * 32, ldx, acc);
    BlockQ8_0<R, 2>(row + (b + 1) * 34, x + (b + 1) * 32, ldx, acc);
  }
  if (b < blocks) BlockQ8_0<R, 0>(row + b * 34, x + b * 32, ldx, acc);
}

// Q4_0 (blocks: f16 d, 16 bytes of nibbles): element j < 16 is the low
// nibble of byte j, element j + 16 its high nibble; w = d * (nibble - 8).
template <int R, int kChain>
HWY_INLINE void BlockQ4_0(const uint8_t* blk, const float* x, int64_t ldx, VF* acc) {
  const DF df;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<uint8_t, DF> du8;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const auto low = hn::Set(di, 15);
  const VF d = HalfAt(blk);
  const VF offset = hn::Mul(d, hn::Set(df, -8.0f));  // d * (n - 8) = n * d - 8 d, one FMA per vector
  for (int64_t c = 0; c < 16; c += L) {
    const auto bytes = hn::PromoteTo(di, hn::LoadU(du8, blk + 2 + c));
    const VF w_lo = hn::MulAdd(hn::ConvertTo(df, hn::And(bytes, low)), d, offset);
    const VF w_hi = hn::MulAdd(hn::ConvertTo(df, hn::ShiftRight<4>(bytes)), d, offset);
    for (int r = 0; r < R; ++r) {
      const float* xr = x + r * ldx;
      acc[kChains * r + kChain] = hn::MulAdd(w_lo, hn::LoadU(df, xr + c), acc[kChains * r + kChain]);
      acc[kChains * r + kChain + 1] = hn::MulAdd(w_hi, hn::LoadU(df, xr + 16 + c), acc[kChains * r + kChain + 1]);
    }
  }
}

template <int R>
HWY_INLINE void DotQ4_0(const uint8_t* row, int64_t K, const float* x, int64_t ldx, VF* acc) {
  const int64_t blocks = K / 32;
  int64_t b = 0;
  for (; b + 4 <= blocks; b += 4) {
    hwy::Prefetch(row + b * 18 + 1024);
    hwy::Prefetch(row + b * 18 + 1024 + 64);
    BlockQ4_0<R, 0>(row + b * 18, x + b * 32, ldx, acc);
    BlockQ4_0<R, 2>(row + (b + 1) * 18, x + (b + 1) * 32, ldx, acc);
    BlockQ4_0<R, 0>(row + (b + 2) * 18, x + (b + 2) * 32, ldx, acc);
    BlockQ4_0<R, 2>(row + (b + 3) * 18, x + (b + 3) * 32, ldx, acc);
  }
  for (; b < blocks; ++b) BlockQ4_0<R, 0>(row + b * 18, x + b * 32, ldx, acc);
}

// The 8 six-bit scales and 8 mins of a Q4_K/Q5_K super-block's 12 bytes, one
// per byte (sub-block j in byte j). ggml's packing: sub-blocks 0-3 in the low 6
// bits of bytes 0-3 (scales) and 4-7 (mins); 4-7 from the nibbles of bytes
// 8-11 plus the top 2 bits of bytes 0-3 / 4-7, as ggml's get_scale_min_k4 reads them.
HWY_INLINE void ScalesMinsK4(const uint8_t* q, uint64_t* scales, uint64_t* mins) {
  uint32_t a, b, c;
  std::memcpy(&a, q, 4);
  std::memcpy(&b, q + 4, 4);
  std::memcpy(&c, q + 8, 4);
  const uint32_t sc03 = a & 0x3f3f3f3fu, m03 = b & 0x3f3f3f3fu;
  const uint32_t sc47 = (c & 0x0f0f0f0fu) | (((a >> 6) & 0x03030303u) << 4);
  const uint32_t m47 = ((c >> 4) & 0x0f0f0f0fu) | (((b >> 6) & 0x03030303u) << 4);
  *scales = sc03 | static_cast<uint64_t>(sc47) << 32;
  *mins = m03 | static_cast<uint64_t>(m47) << 32;
}

HWY_INLINE float HalfScalar(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  return _cvtsh_ss(h);  // F16C: one instruction, not a call per super-block
#else
  return F16ToF32(h);
#endif
}

// Sub-block pair j (elements 64 j .. 64 j + 63) of a Q4_K/Q5_K super-block;
// sc[i], mn[i]: sub-block i's 6-bit scale and min.
template <int R, bool kFifthBit, int kChain>
HWY_INLINE void PairQ45_K(int j, float d, float dmin, const uint8_t* sc, const uint8_t* mn, const uint8_t* qh,
                          const uint8_t* q, const float* x, int64_t ldx, VF* acc) {
  const DF df;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<uint8_t, DF> du8;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const auto low = hn::Set(di, 15), one = hn::Set(di, 1);
  const VF d1 = hn::Set(df, d * static_cast<float>(sc[2 * j])), m1 = hn::Set(df, -(dmin * static_cast<float>(mn[2 * j])));
  const VF d2 = hn::Set(df, d * static_cast<float>(sc[2 * j + 1]));
  const VF m2 = hn::Set(df, -(dmin * static_cast<float>(mn[2 * j + 1])));
  for (int64_t c = 0; c < 32; c += L) {
    const auto bytes = hn::PromoteTo(di, hn::LoadU(du8, q + 32 * j + c));
    auto n_lo = hn::And(bytes, low), n_hi = hn::ShiftRight<4>(bytes);
    if constexpr (kFifthBit) {
      const auto h = hn::PromoteTo(di, hn::LoadU(du8, qh + c));
      n_lo = hn::Or(n_lo, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h, 2 * j), one)));
      n_hi = hn::Or(n_hi, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h, 2 * j + 1), one)));
    }
    const VF w_lo = hn::MulAdd(hn::ConvertTo(df, n_lo), d1, m1);
    const VF w_hi = hn::MulAdd(hn::ConvertTo(df, n_hi), d2, m2);
    for (int r = 0; r < R; ++r) {
      const float* xr = x + r * ldx + 64 * j;
      acc[kChains * r + kChain] = hn::MulAdd(w_lo, hn::LoadU(df, xr + c), acc[kChains * r + kChain]);
      acc[kChains * r + kChain + 1] = hn::MulAdd(w_hi, hn::LoadU(df, xr + 32 + c), acc[kChains * r + kChain + 1]);
    }
  }
}

// Q4_K and Q5_K (super-blocks of 256: f16 d, f16 dmin, 12 bytes of 6-bit
// scales and mins, [Q5_K: 32 bytes of fifth bits], 128 bytes of nibbles):
// sub-block pair j holds elements 64 j .. 64 j + 63, low nibbles first;
// w = d * sc * n - dmin * m.
template <int R, bool kFifthBit>
HWY_INLINE void DotQ45_K(const uint8_t* row, int64_t K, const float* x, int64_t ldx, VF* acc) {
  constexpr int64_t kBlockBytes = kFifthBit ? 176 : 144;
  for (int64_t sb = 0; sb < K / 256; ++sb) {
    const uint8_t* blk = row + sb * kBlockBytes;
    hwy::Prefetch(blk + 1024);
    hwy::Prefetch(blk + 1024 + 64);
    hwy::Prefetch(blk + 1024 + 128);
    const float d = HalfScalar(blk), dmin = HalfScalar(blk + 2);
    uint64_t sc8, m8;
    ScalesMinsK4(blk + 4, &sc8, &m8);
    uint8_t sc[8], mn[8];
    std::memcpy(sc, &sc8, 8);  // byte j: sub-block j (little-endian)
    std::memcpy(mn, &m8, 8);
    const uint8_t* qh = blk + 16;
    const uint8_t* q = blk + (kFifthBit ? 48 : 16);
    const float* xs = x + sb * 256;
    PairQ45_K<R, kFifthBit, 0>(0, d, dmin, sc, mn, qh, q, xs, ldx, acc);
    PairQ45_K<R, kFifthBit, 2>(1, d, dmin, sc, mn, qh, q, xs, ldx, acc);
    PairQ45_K<R, kFifthBit, 0>(2, d, dmin, sc, mn, qh, q, xs, ldx, acc);
    PairQ45_K<R, kFifthBit, 2>(3, d, dmin, sc, mn, qh, q, xs, ldx, acc);
  }
}

// Q6_K (super-blocks of 256: 128 bytes of low nibbles, 64 bytes of 2-bit
// highs, 16 int8 scales, f16 d): w = d * sc * (q - 32), as ggml's dequantize_row_q6_K.
template <int R>
HWY_INLINE void DotQ6_K(const uint8_t* row, int64_t K, const float* x, int64_t ldx, VF* acc) {
  const DF df;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<uint8_t, DF> du8;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const auto low = hn::Set(di, 15), three = hn::Set(di, 3), thirty_two = hn::Set(di, 32);
  for (int64_t sb = 0; sb < K / 256; ++sb) {
    const uint8_t* blk = row + sb * 210;
    for (int p = 0; p < 4; ++p) hwy::Prefetch(blk + 1024 + 64 * p);
    const float d = HalfScalar(blk + 208);
    const auto* scales = reinterpret_cast<const int8_t*>(blk + 192);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = blk + 64 * half;
      const uint8_t* qh = blk + 128 + 32 * half;
      const int8_t* sc = scales + 8 * half;
      const int64_t base = sb * 256 + 128 * half;
      for (int64_t c = 0; c < 32; c += L) {
        const int is = static_cast<int>(c / 16);
        const auto a = hn::PromoteTo(di, hn::LoadU(du8, ql + c));
        const auto b = hn::PromoteTo(di, hn::LoadU(du8, ql + 32 + c));
        const auto h = hn::PromoteTo(di, hn::LoadU(du8, qh + c));
        const auto q1 = hn::Sub(hn::Or(hn::And(a, low), hn::ShiftLeft<4>(hn::And(h, three))), thirty_two);
        const auto q2 = hn::Sub(hn::Or(hn::And(b, low), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(h), three))), thirty_two);
        const auto q3 = hn::Sub(hn::Or(hn::ShiftRight<4>(a), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(h), three))), thirty_two);
        const auto q4 = hn::Sub(hn::Or(hn::ShiftRight<4>(b), hn::ShiftLeft<4>(hn::ShiftRight<6>(h))), thirty_two);
        const VF w1 = hn::Mul(hn::ConvertTo(df, q1), hn::Set(df, d * sc[is + 0]));
        const VF w2 = hn::Mul(hn::ConvertTo(df, q2), hn::Set(df, d * sc[is + 2]));
        const VF w3 = hn::Mul(hn::ConvertTo(df, q3), hn::Set(df, d * sc[is + 4]));
        const VF w4 = hn::Mul(hn::ConvertTo(df, q4), hn::Set(df, d * sc[is + 6]));
        for (int r = 0; r < R; ++r) {
          const float* xr = x + r * ldx + base + c;
          acc[kChains * r + 0] = hn::MulAdd(w1, hn::LoadU(df, xr), acc[kChains * r + 0]);
          acc[kChains * r + 1] = hn::MulAdd(w2, hn::LoadU(df, xr + 32), acc[kChains * r + 1]);
          acc[kChains * r + 2] = hn::MulAdd(w3, hn::LoadU(df, xr + 64), acc[kChains * r + 2]);
          acc[kChains * r + 3] = hn::MulAdd(w4, hn::LoadU(df, xr + 96), acc[kChains * r + 3]);
        }
      }
    }
  }
}

// Any other type: the row dequantized by the scalar reference into `tmp`
// (K floats), then float32 dot products.
template <int R>
HWY_INLINE void DotDequantized(const QuantW& w, const uint8_t* row, int64_t K, const float* x, int64_t ldx, VF* acc,
                               float* tmp) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  DequantizeRow(w.type, row, tmp, static_cast<size_t>(K));
  int64_t k = 0;
  for (; k + L <= K; k += L) {
    const VF wv = hn::LoadU(df, tmp + k);
    for (int r = 0; r < R; ++r) acc[kChains * r] = hn::MulAdd(wv, hn::LoadU(df, x + r * ldx + k), acc[kChains * r]);
  }
  // K is a multiple of 32, and of L on every x86 target; a scalar tail for the rest.
  for (; k < K; ++k) {
    for (int r = 0; r < R; ++r) {
      acc[kChains * r] = hn::Add(acc[kChains * r], hn::InsertLane(hn::Zero(df), 0, tmp[k] * x[r * ldx + k]));
    }
  }
}

template <int R>
HWY_INLINE void GemvQuantTile(const QuantW& w, int64_t K, int64_t N, int64_t n, const float* x, const float* bias,
                              float* y, float* tmp) {
  const DF df;
  VF acc[R * kChains];
  for (int i = 0; i < R * kChains; ++i) acc[i] = hn::Zero(df);
  const uint8_t* row = w.data + static_cast<size_t>(n) * w.row_bytes;
  switch (w.type) {
    case GgmlType::kQ8_0: DotQ8_0<R>(row, K, x, K, acc); break;
    case GgmlType::kQ4_0: DotQ4_0<R>(row, K, x, K, acc); break;
    case GgmlType::kQ4_K: DotQ45_K<R, false>(row, K, x, K, acc); break;
    case GgmlType::kQ5_K: DotQ45_K<R, true>(row, K, x, K, acc); break;
    case GgmlType::kQ6_K: DotQ6_K<R>(row, K, x, K, acc); break;
    default: DotDequantized<R>(w, row, K, x, K, acc, tmp); break;
  }
  for (int r = 0; r < R; ++r) {
    const VF sum = hn::Add(hn::Add(acc[kChains * r], acc[kChains * r + 1]), hn::Add(acc[kChains * r + 2], acc[kChains * r + 3]));
    y[r * N + n] = ReduceSum(df, sum) + (bias ? bias[n] : 0.f);
  }
}

// --- Integer dot products for quantized weights ----------------------------------
//
// Widening blocks to float32 costs ~10 vector instructions per 32 weights, so
// the float path above runs at 10-13 GB/s of Q4_0/Q4_K even from the cache
// (bench_kernels BM_MatMul_Quant), a third of the read roof. Here x is
// quantized instead, once per matmul, as llama.cpp's Q8 activations are (per
// 32: d = amax / 127, q = x / d rounded to nearest even, d kept in float32),
// and the weights' integer quants meet x's in integer dot products:
//   AVX3_DL (AVX-512 VNNI + VBMI): each weight group is one gather (VPERMT2B)
//     of its quant bytes plus VPDPBUSD dot products of 64 u8 * s8 pairs;
//   AVX2 and AVX3: one 32-element block at a time, VPMADDUBSW + VPMADDWD on
//     256 bits (what an AVX2-only CPU such as Zen 3 runs).
// Weights are unsigned in the dot product (nibbles; Q6_K's 6-bit values are
// stored +32; Q8_0 is shifted by +128 on VNNI and takes x's sign on AVX2, where
// 255 * 127 * 2 would saturate VPMADDUBSW's int16), and the offset that takes
// back, o * sum(q_x) per lane, starts the accumulator (`init`). The x side is
// laid out in the order each kernel reads: natural on AVX2/AVX3; on AVX3_DL
//   Q8_0 (64 per group: 2 blocks), Q6_K (64 per dot): natural order;
//   Q4_0 (128: 4 blocks): the low-nibble halves of the 4 blocks, then the highs;
//   Q4_K (128: 2 sub-block pairs): sub-blocks 0, 2, then 1, 3.
#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX2
#if HWY_TARGET == HWY_AVX3_DL
// Highway 1.0.3's AVX3_DL target string names "avxvnni" (the VEX form), not
// AVX-512 VNNI: the int8 kernels ask for it themselves, and
// QuantActivationBytes checks the CPU for it too.
// (The whole target string: clang's function attribute replaces the one
// Highway's pragma gives, GCC's adds to it.)
#define LLM_VNNI __attribute__((target(HWY_TARGET_STR ",avx512vnni,gfni")))
constexpr bool kVnni = true;
#else
#define LLM_VNNI
constexpr bool kVnni = false;
#endif
// GCC 12 reports the `_mm512_undefined_*` pass-through inside its own
// AVX-512 intrinsic headers as maybe-uninitialized: a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// GFNI (Q5_K's fifth bits, one GF2P8AFFINEQB each) comes with every CPU of
// the AVX3_DL target (Ice Lake and later, Zen 4); checked all the same.
bool Int8DotsOnVnni() { return kVnni && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("gfni"); }

constexpr int kInt8Prefetch = 2048;  // bytes ahead (bench_kernels: 2048 beat 1024 and 4096 by ~5-10%)
constexpr int64_t kInt8Group = 128;  // x rows are padded to whole groups

bool Int8DotType(GgmlType t) {
  // AVX2 / AVX3's one-block kernels also read Q4_1, Q5_0 and Q5_1; VNNI reads them packed only.
  return t == GgmlType::kQ8_0 || t == GgmlType::kQ4_0 || t == GgmlType::kQ4_K || t == GgmlType::kQ6_K ||
         (!kVnni && (t == GgmlType::kQ4_1 || t == GgmlType::kQ5_0 || t == GgmlType::kQ5_1));
}
// Types with the packed kernel alone (16-row groups, VNNI): int8 x only where W is packed.
bool PackedOnlyType(GgmlType t) {
  return t == GgmlType::kQ4_1 || t == GgmlType::kQ5_0 || t == GgmlType::kQ5_1 || t == GgmlType::kQ5_K;
}

// The prepared x of M rows, each padded to kp elements.
struct Int8X {
  int64_t kp;
  int8_t* q;         // kp per row
  int32_t* init;     // kp / 4 per row: each dot product lane's starting value
  float* lane_d;     // kp / 4 per row: each lane's block scale
  float* sub_dsum;   // kp / 32 per row: d * sum(q) per 32-block (Q4_K's mins)
  float* block_d;    // kp / 32 per row: each 32-block's scale (lane_d's compact copy)
};
// The packed kernels read x as q, block_d and sub_dsum: ~0.6 cache lines per
// block rather than ~1.1 with lane_d, whose lines a 16-row group's stream
// (50 KB at K = 5632) evicts from L1 between passes. TinyLlama Q4_0 decode
// trace, Zen 4: down_proj's time per byte over gate_proj's 1.22-1.27 ->
// 1.04-1.14 (1.0 with x confined to 2 KB, as a test of the cause).


HWY_INLINE int64_t Int8Padded(int64_t K) { return (K + kInt8Group - 1) / kInt8Group * kInt8Group; }

HWY_INLINE Int8X Int8Layout(void* buffer, int64_t M, int64_t K) {
  const int64_t kp = Int8Padded(K);
  auto* bytes = static_cast<uint8_t*>(buffer);
  Int8X x;
  x.kp = kp;
  x.q = reinterpret_cast<int8_t*>(bytes);
  x.init = reinterpret_cast<int32_t*>(bytes + M * kp);
  x.lane_d = reinterpret_cast<float*>(bytes + 2 * M * kp);
  x.sub_dsum = reinterpret_cast<float*>(bytes + 3 * M * kp);
  x.block_d = reinterpret_cast<float*>(bytes + 3 * M * kp + M * kp / 8);
  return x;
}

size_t Int8Bytes(int64_t M, int64_t K) {
  const int64_t kp = Int8Padded(K);
  return static_cast<size_t>(3 * M * kp + M * kp / 4);
}

// One row: q, d and sum per 32-block in natural order (padding blocks zero),
// then the type's layout.
LLM_VNNI void PrepareInt8Row(const float* x, int64_t K, GgmlType type, bool packed_w, const Int8X& out, int64_t m,
                             int8_t* qn, float* dn, int32_t* sum4) {
  const int64_t kp = out.kp, blocks = kp / 32;
  int8_t* q = out.q + m * kp;
  int32_t* init = out.init + m * kp / 4;
  float* lane_d = out.lane_d + m * kp / 4;
  float* sub_dsum = out.sub_dsum + m * kp / 32;
  float* block_d = out.block_d + m * kp / 32;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t k0 = b * 32, k1 = std::min(K, k0 + 32);
    if (k1 == k0 + 32) {  // a whole block: vectors, unless it holds a NaN or Inf
      const DF df;
      const hn::Rebind<int8_t, DF> d8;
      constexpr int64_t L = HWY_MAX_BYTES / 4;
      VF amax_v = hn::Zero(df);
      bool finite = true;
      for (int64_t c = 0; c < 32; c += L) {
        const VF v = hn::LoadU(df, x + k0 + c);
        finite &= hn::AllTrue(df, hn::IsFinite(v));
        amax_v = hn::Max(amax_v, hn::Abs(v));
      }
      if (finite) {
        const float amax = hn::GetLane(hn::MaxOfLanes(df, amax_v));
        const float d = amax / 127.f, id = d > 0.f ? 1.f / d : 0.f;
        dn[b] = d;
        // NearestInt rounds to nearest even, as the scalar tail's nearbyint does.
        for (int64_t c = 0; c < 32; c += L) {
          hn::StoreU(hn::DemoteTo(d8, hn::NearestInt(hn::Mul(hn::LoadU(df, x + k0 + c), hn::Set(df, id)))), d8,
                     qn + k0 + c);
        }
        continue;
      }
    }
    float amax = 0.f;
    for (int64_t k = k0; k < k1; ++k) {
      const float a = std::fabs(x[k]);
      if (!(a <= amax)) amax = a;  // a NaN is kept (below: d = NaN, the dot is NaN)
    }
    const float d = amax / 127.f, id = d > 0.f ? 1.f / d : 0.f;
    dn[b] = std::isfinite(amax) ? d : std::nanf("");
    for (int64_t k = k0; k < k0 + 32; ++k) {
      qn[k] = k < k1 && std::isfinite(amax) ? static_cast<int8_t>(std::nearbyint(x[k] * id)) : 0;
    }
  }
  for (int64_t l = 0; l < kp / 4; ++l) sum4[l] = qn[4 * l] + qn[4 * l + 1] + qn[4 * l + 2] + qn[4 * l + 3];
  for (int64_t b = 0; b < blocks; ++b) {
    int32_t sum = 0;
    for (int i = 0; i < 8; ++i) sum += sum4[8 * b + i];
    sub_dsum[b] = dn[b] * static_cast<float>(sum);
    block_d[b] = dn[b];
  }
  // Natural order: every type on AVX2 / AVX3 (one block per dot product),
  // Q8_0 and Q6_K on VNNI, and packed W. The weights' offset o: Q4_0 8, Q5_0 16, Q6_K 32, Q8_0 128
  // on VNNI (0 on AVX2, where x takes q's sign), Q4_K, Q4_1 and Q5_1 none (their mins).
  if (!kVnni || packed_w || type == GgmlType::kQ8_0 || type == GgmlType::kQ6_K) {
    std::memcpy(q, qn, static_cast<size_t>(kp));
    // The packed kernels read q, block_d and sub_dsum; Q6_K's also init.
    if (kVnni && packed_w && type != GgmlType::kQ6_K) return;
    const int32_t offset = type == GgmlType::kQ4_0   ? 8
                           : type == GgmlType::kQ5_0 ? 16
                           : type == GgmlType::kQ6_K ? 32
                           : type == GgmlType::kQ8_0 && kVnni ? 128
                                                               : 0;
    for (int64_t l = 0; l < kp / 4; ++l) {
      init[l] = -offset * sum4[l];
      lane_d[l] = dn[l / 8];
    }
    return;
  }
  switch (type) {
    case GgmlType::kQ4_0:
      for (int64_t g = 0; g < kp / 128; ++g) {
        for (int j = 0; j < 4; ++j) {
          const int64_t src = g * 128 + 32 * j;
          std::memcpy(q + g * 128 + 16 * j, qn + src, 16);
          std::memcpy(q + g * 128 + 64 + 16 * j, qn + src + 16, 16);
          for (int i = 0; i < 4; ++i) {
            init[g * 16 + 4 * j + i] = -8 * (sum4[src / 4 + i] + sum4[src / 4 + 4 + i]);
            lane_d[g * 16 + 4 * j + i] = dn[g * 4 + j];
          }
        }
      }
      break;
    case GgmlType::kQ4_K:
      for (int64_t g = 0; g < kp / 128; ++g) {
        static constexpr int kOrder[4] = {0, 2, 1, 3};
        for (int j = 0; j < 4; ++j) {
          std::memcpy(q + g * 128 + 32 * j, qn + g * 128 + 32 * kOrder[j], 32);
          for (int i = 0; i < 8; ++i) lane_d[g * 32 + 8 * j + i] = dn[g * 4 + kOrder[j]];
        }
      }
      break;
    default: break;
  }
}

size_t PackedQuantBytes(const MatView& w);

size_t QuantActivationBytes(int64_t M, const MatView& w) {
  const auto type = static_cast<GgmlType>(DTypeGgmlType(w.dtype));
  const bool int8_type = Int8DotType(type) || (PackedOnlyType(type) && PackedQuantBytes(w) > 0);
  return (!kVnni || Int8DotsOnVnni()) && Int8DotEnabled() && int8_type ? Int8Bytes(M, w.cols) : 0;
}

LLM_VNNI void PrepareQuantActivations(const float* x, int64_t M, const MatView& w, void* buffer, bool packed_w,
                                      int64_t m_begin, int64_t m_end) {
  const auto type = static_cast<GgmlType>(DTypeGgmlType(w.dtype));
  if (!Int8DotType(type) && !(PackedOnlyType(type) && packed_w)) return;
  const int64_t K = w.cols;
  const Int8X out = Int8Layout(buffer, M, K);
  thread_local std::vector<int8_t> qn;
  thread_local std::vector<float> dn;
  thread_local std::vector<int32_t> sum4;
  qn.resize(static_cast<size_t>(out.kp));
  dn.resize(static_cast<size_t>(out.kp / 32));
  sum4.resize(static_cast<size_t>(out.kp / 4));
  for (int64_t m = m_begin; m < m_end; ++m) {
    PrepareInt8Row(x + m * K, K, type, packed_w, out, m, qn.data(), dn.data(), sum4.data());
  }
}

#if HWY_TARGET == HWY_AVX3_DL
// Byte-gather indices: entry i of the result takes byte idx[i] of (a, b) (>= 64: b).
HWY_INLINE __m512i GatherIndex(int (*f)(int)) {
  alignas(64) uint8_t idx[64];
  for (int i = 0; i < 64; ++i) idx[i] = static_cast<uint8_t>(f(i));
  return _mm512_load_si512(idx);
}

// Lanes of the 16 x 32-bit result: lane i takes float i of src / 4 ... (f32 permute index).
HWY_INLINE __m512i LaneIndex(int (*f)(int)) {
  alignas(64) int32_t idx[16];
  for (int i = 0; i < 16; ++i) idx[i] = f(i);
  return _mm512_load_si512(idx);
}

// The first `bytes` bytes of a 64-byte load (masked loads do not fault past the end of a mapping).
HWY_INLINE __mmask64 TailMask(int64_t bytes) {
  return bytes >= 64 ? ~__mmask64{0} : bytes <= 0 ? __mmask64{0} : ((__mmask64{1} << bytes) - 1);
}

// A group's bytes at p (group_bytes of them, at most 128; fewer where the row
// ends: `left`), prefetched kInt8Prefetch ahead, as two 64-byte registers.
HWY_INLINE void LoadGroup(const uint8_t* p, int64_t group_bytes, int64_t left, __m512i* lo, __m512i* hi) {
  _mm_prefetch(reinterpret_cast<const char*>(p + kInt8Prefetch), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(p + kInt8Prefetch + 64), _MM_HINT_T0);
  const int64_t bytes = std::min(group_bytes, left);
  *lo = _mm512_maskz_loadu_epi8(TailMask(bytes), p);
  *hi = _mm512_maskz_loadu_epi8(TailMask(bytes - 64), p + 64);
}

// Q8_0: a group is 2 blocks (68 bytes): [d0 q0[32] d1 q1[32]].
template <int R>
LLM_VNNI HWY_INLINE void Int8DotQ8_0(const uint8_t* row, int64_t K, const Int8X& x, int64_t m0, __m512* acc) {
  static const __m512i idx_q = GatherIndex([](int i) { return 2 + i + 2 * (i / 32); });
  static const __m512i idx_d = GatherIndex([](int i) { return 34 * ((i / 2) / 8) + i % 2; });
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const int64_t blocks = K / 32;
  for (int64_t b = 0; b < blocks; b += 2) {
    __m512i lo, hi;
    LoadGroup(row + b * 34, 68, (blocks - b) * 34, &lo, &hi);
    const __m512i u = _mm512_xor_si512(_mm512_permutex2var_epi8(lo, idx_q, hi), flip);
    const __m512 wd = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi8(idx_d, lo)));
    for (int r = 0; r < R; ++r) {
      const int64_t at = (m0 + r) * x.kp + b * 32;
      __m512i dot = _mm512_loadu_si512(x.init + at / 4);
      dot = _mm512_dpbusd_epi32(dot, u, _mm512_loadu_si512(x.q + at));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(wd, _mm512_loadu_ps(x.lane_d + at / 4)), acc[r]);
    }
  }
}

// Q4_0: a group is 4 blocks (72 bytes): [d q[16]] x 4; lane i of the dot is block i / 4.
template <int R>
LLM_VNNI HWY_INLINE void Int8DotQ4_0(const uint8_t* row, int64_t K, const Int8X& x, int64_t m0, __m512* acc) {
  static const __m512i idx_q = GatherIndex([](int i) { return 18 * (i / 16) + 2 + i % 16; });
  static const __m512i idx_d = GatherIndex([](int i) { return 18 * ((i / 2) / 4) + i % 2; });
  const __m512i low = _mm512_set1_epi8(0x0f);
  const int64_t blocks = K / 32;
  for (int64_t b = 0; b < blocks; b += 4) {
    __m512i lo, hi;
    LoadGroup(row + b * 18, 72, (blocks - b) * 18, &lo, &hi);
    const __m512i nibbles = _mm512_permutex2var_epi8(lo, idx_q, hi);
    const __m512i n_lo = _mm512_and_si512(nibbles, low);
    const __m512i n_hi = _mm512_and_si512(_mm512_srli_epi16(nibbles, 4), low);
    const __m512 wd = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi8(idx_d, lo)));
    for (int r = 0; r < R; ++r) {
      const int64_t at = (m0 + r) * x.kp + b * 32;
      const int64_t lanes = (m0 + r) * x.kp / 4 + b * 4;  // 16 lanes per group of 4 blocks
      __m512i dot = _mm512_loadu_si512(x.init + lanes);
      dot = _mm512_dpbusd_epi32(dot, n_lo, _mm512_loadu_si512(x.q + at));
      dot = _mm512_dpbusd_epi32(dot, n_hi, _mm512_loadu_si512(x.q + at + 64));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(wd, _mm512_loadu_ps(x.lane_d + lanes)), acc[r]);
    }
  }
}

// Q4_K: super-blocks of 256 (144 bytes: d, dmin, 12 bytes of 6-bit scales and
// mins, 128 bytes of nibbles); groups of 128 = sub-blocks 0, 2 (low nibbles)
// and 1, 3 (high) of 64 nibble bytes. w = d sc n - dmin m: the mins go into `mins`.
template <int R>
LLM_VNNI HWY_INLINE void Int8DotQ4_K(const uint8_t* row, int64_t K, const Int8X& x, int64_t m0, __m512* acc, __m512* mins) {
  // Per group g (0, 1): the lo dot's lanes 0-7 are sub-block 4 g, 8-15 are 4 g + 2; hi's 4 g + 1 and 4 g + 3.
  static const __m512i idx_lo0 = LaneIndex([](int i) { return i < 8 ? 0 : 2; });
  static const __m512i idx_hi0 = LaneIndex([](int i) { return i < 8 ? 1 : 3; });
  static const __m512i idx_lo1 = LaneIndex([](int i) { return i < 8 ? 4 : 6; });
  static const __m512i idx_hi1 = LaneIndex([](int i) { return i < 8 ? 5 : 7; });
  static const __m512i idx_dd = LaneIndex([](int i) { return i < 8 ? 0 : 1; });  // d for scales, dmin for mins
  const __m512i low = _mm512_set1_epi8(0x0f);
  for (int64_t sb = 0; sb < K / 256; ++sb) {
    const uint8_t* blk = row + sb * 144;
    for (int l = 0; l < 3; ++l) _mm_prefetch(reinterpret_cast<const char*>(blk + kInt8Prefetch + 64 * l), _MM_HINT_T0);
    uint64_t sc8, m8;
    ScalesMinsK4(blk + 4, &sc8, &m8);
    const __m512 sm = _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_set_epi64x(static_cast<int64_t>(m8), static_cast<int64_t>(sc8))));
    uint32_t d_dmin;
    std::memcpy(&d_dmin, blk, 4);
    const __m512 dd = _mm512_permutexvar_ps(idx_dd, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d_dmin)))));
    const __m512 scales = _mm512_mul_ps(sm, dd);  // lanes 0-7: d sc_j; 8-15: dmin m_j
    for (int g = 0; g < 2; ++g) {
      const __m512i v = _mm512_loadu_si512(blk + 16 + 64 * g);
      const __m512i n_lo = _mm512_and_si512(v, low);
      const __m512i n_hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      const __m512 s_lo = _mm512_permutexvar_ps(g ? idx_lo1 : idx_lo0, scales);
      const __m512 s_hi = _mm512_permutexvar_ps(g ? idx_hi1 : idx_hi0, scales);
      for (int r = 0; r < R; ++r) {
        const int64_t at = (m0 + r) * x.kp + sb * 256 + 128 * g;
        const __m512i dot_lo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), n_lo, _mm512_loadu_si512(x.q + at));
        const __m512i dot_hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), n_hi, _mm512_loadu_si512(x.q + at + 64));
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_lo), _mm512_mul_ps(s_lo, _mm512_loadu_ps(x.lane_d + at / 4)), acc[r]);
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_hi), _mm512_mul_ps(s_hi, _mm512_loadu_ps(x.lane_d + at / 4 + 16)),
                                 acc[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      // lanes 8-15 of `scales` (dmin m_j) times the 8 sub-blocks' d sum(q); lanes 0-7 times zero.
      const __m512 dsum = _mm512_maskz_expandloadu_ps(0xff00, x.sub_dsum + ((m0 + r) * x.kp + sb * 256) / 32);
      mins[r] = _mm512_fmadd_ps(scales, dsum, mins[r]);
    }
  }
}

// Q6_K: super-blocks of 256 (210 bytes: ql[128], qh[64], int8 scales[16], f16
// d); per half of 128, dot a is elements 0-63 and dot b 64-127; each 16
// elements (a 128-bit lane) have their own scale. w = d sc (q - 32).
template <int R>
LLM_VNNI HWY_INLINE void Int8DotQ6_K(const uint8_t* row, int64_t K, const Int8X& x, int64_t m0, __m512* acc) {
  static const __m512i idx_a0 = LaneIndex([](int i) { return i / 4; });
  static const __m512i idx_b0 = LaneIndex([](int i) { return 4 + i / 4; });
  static const __m512i idx_a1 = LaneIndex([](int i) { return 8 + i / 4; });
  static const __m512i idx_b1 = LaneIndex([](int i) { return 12 + i / 4; });
  const __m512i low = _mm512_set1_epi8(0x0f), three = _mm512_set1_epi8(3);
  for (int64_t sb = 0; sb < K / 256; ++sb) {
    const uint8_t* blk = row + sb * 210;
    for (int l = 0; l < 4; ++l) _mm_prefetch(reinterpret_cast<const char*>(blk + kInt8Prefetch + 64 * l), _MM_HINT_T0);
    uint16_t hd;
    std::memcpy(&hd, blk + 208, 2);
    const __m512 scales = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192)))),
        _mm512_set1_ps(_cvtsh_ss(hd)));
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = _mm512_loadu_si512(blk + 64 * h);
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
      // bytes 0-31: qh's bits 0-1 (elements 0-31), bytes 32-63: bits 2-3 (32-63); >> 4 gives 64-127's.
      const __m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
      const __m512i q_a = _mm512_or_si512(_mm512_and_si512(ql, low), _mm512_slli_epi16(_mm512_and_si512(qh2, three), 4));
      const __m512i q_b = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low),
                                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh2, 4), three), 4));
      const __m512 s_a = _mm512_permutexvar_ps(h ? idx_a1 : idx_a0, scales);
      const __m512 s_b = _mm512_permutexvar_ps(h ? idx_b1 : idx_b0, scales);
      for (int r = 0; r < R; ++r) {
        const int64_t at = (m0 + r) * x.kp + sb * 256 + 128 * h;
        const __m512i dot_a = _mm512_dpbusd_epi32(_mm512_loadu_si512(x.init + at / 4), q_a, _mm512_loadu_si512(x.q + at));
        const __m512i dot_b =
            _mm512_dpbusd_epi32(_mm512_loadu_si512(x.init + at / 4 + 16), q_b, _mm512_loadu_si512(x.q + at + 64));
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_a), _mm512_mul_ps(s_a, _mm512_loadu_ps(x.lane_d + at / 4)), acc[r]);
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_b), _mm512_mul_ps(s_b, _mm512_loadu_ps(x.lane_d + at / 4 + 16)),
                                 acc[r]);
      }
    }
  }
}

template <int R>
LLM_VNNI HWY_INLINE void Int8GemvTile(const QuantW& w, int64_t K, int64_t N, int64_t n, const Int8X& x, int64_t m0,
                             const float* bias, float* y) {
  __m512 acc[R], mins[R];
  for (int r = 0; r < R; ++r) acc[r] = mins[r] = _mm512_setzero_ps();
  const uint8_t* row = w.data + static_cast<size_t>(n) * w.row_bytes;
  switch (w.type) {
    case GgmlType::kQ8_0: Int8DotQ8_0<R>(row, K, x, m0, acc); break;
    case GgmlType::kQ4_0: Int8DotQ4_0<R>(row, K, x, m0, acc); break;
    case GgmlType::kQ4_K: Int8DotQ4_K<R>(row, K, x, m0, acc, mins); break;
    default: Int8DotQ6_K<R>(row, K, x, m0, acc); break;
  }
  for (int r = 0; r < R; ++r) {
    y[(m0 + r) * N + n] = ReduceSum(DF(), VF{_mm512_sub_ps(acc[r], mins[r])}) + (bias ? bias[n] : 0.f);
  }
}

LLM_VNNI double Int8DotPeak(int64_t iterations, int seed) {
  if (!Int8DotsOnVnni()) return 0;
  __m512i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_epi32(seed + i);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(static_cast<char>(seed | 1));
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  }
  __m512i sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_epi32(sum, acc[i]);
  volatile int sink = _mm_cvtsi128_si32(_mm512_castsi512_si128(sum));
  (void)sink;
  return 12.0 * 64 * 2 * static_cast<double>(iterations);
}

// --- Decode on packed W (PackQuantRows' layout) ------------------------------
// Per block and group: 4 (Q4_0, Q4_1, Q5_0, Q5_1) or 8 (Q8_0) 64-byte loads,
// each 4 elements of the 16 rows; Q4_0's low nibbles and its high nibbles
// times 16 (x & 0xf0, one AND; the sum is a multiple of 16, so >> 4 is exact)
// go to two VPDPBUSD chains, Q8_0 is shifted to u8 by +128; Q5_0 / Q5_1 merge
// their fifth bits as Q5_K does (GF2P8AFFINEQB + VPTERNLOGD); the offsets come
// off in float as o * d_x * sum(q_x) (sub_dsum), the _1 types' m likewise.
// From L2 (bench_kernels 2048 x 1536) this is ~3x the rate of the row-major
// kernels above, so decode is left to memory; one group streams at ~70% of
// the read probe per core, G = 4 groups in flight (four streams) at ~95% (a
// prototype on the Xeon with AMX, 2 threads).

constexpr int kPackedPrefetch = 1024;  // bytes ahead in each group's stream

// acc += W's u8 lanes . x's s8 word, broadcast. One row of x by one group (AMD's
// decode): each broadcast serves one VPDPBUSD, so it is taken as the
// instruction's own {1to16} memory operand (GCC 12 does not fold the set1):
// one instruction less per dot. roof_pairs, 2048 x 5632 from memory, in the
// same rounds (Zen 4, 2 threads): Q4_0 1.054x at fast minutes (~54 GB/s, 16
// rounds), 1.008x at slow ones (~34 GB/s); Q4_K 1.025x / 1.010x (30 / 60
// rounds). Q6_K ran 0.95x in L2 and keeps the set1; Q4_1, Q5_0, Q5_1 and Q5_K
// share the code of Q4_0 and Q4_K and were not measured on their own.
template <bool kOwnBroadcast>
LLM_VNNI HWY_INLINE __m512i DotWithX(__m512i acc, __m512i w_u8, const int32_t* x_s8) {
  if constexpr (kOwnBroadcast) {
    asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w_u8), "m"(*x_s8));
    return acc;
  } else {
    return _mm512_dpbusd_epi32(acc, w_u8, _mm512_set1_epi32(*x_s8));
  }
}

// The low and high 5-bit quants of a 64-byte vector of nibbles v: bit `bit`
// of each byte of h (the fifth bits) goes to the low quant's bit 4, bit
// `bit` + 1 to the high one's (one GF2P8AFFINEQB and one VPTERNLOGD each).
LLM_VNNI HWY_INLINE void WithFifthBits(__m512i v, __m512i h, int bit, __m512i* n_lo, __m512i* n_hi) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  const __m512i h_lo = _mm512_gf2p8affine_epi64_epi8(h, _mm512_set1_epi64(int64_t{1} << (bit + 24)), 0);
  const __m512i h_hi = _mm512_gf2p8affine_epi64_epi8(h, _mm512_set1_epi64(int64_t{2} << (bit + 24)), 0);
  *n_lo = _mm512_ternarylogic_epi32(v, h_lo, low, 0xEC);  // (v & 0x0f) | h_lo
  *n_hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), h_hi, low, 0xEC);
}

template <int G, int R, DType kType>
LLM_VNNI HWY_INLINE void PackedTile(const uint8_t* group, int64_t group_bytes, int64_t blocks, const Int8X& x,
                                    int64_t m0, int64_t N, int64_t n, const float* bias, float* y) {
  // Nibbles (Q4_0, Q4_1, Q5_0, Q5_1) or bytes (Q8_0); w = d q + m (the _1
  // types) or d (q - offset).
  constexpr bool kNibbles = PackedWords(kType) == 4, kMin = PackedHasMin(kType), kFifth = PackedHasFifthBits(kType);
  constexpr float kOffset = kType == DType::kQ4_0 ? 8.f : kType == DType::kQ5_0 ? 16.f : kType == DType::kQ8_0 ? 128.f : 0.f;
  constexpr int64_t kWordsAt = PackedWordsAt(kType), bb = PackedBlockBytes(kType);
  const __m512i low = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi8(static_cast<char>(0xf0));
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[G * R];
  for (int i = 0; i < G * R; ++i) acc[i] = _mm512_setzero_ps();
  const bool sw_prefetch = SoftwarePrefetch();
  for (int64_t b = 0; b < blocks; ++b) {
    const int32_t* xw[R];
    __m512 dx[R], dsum[R];  // dsum: d_x sum(q_x), times -o for the offset types
    for (int r = 0; r < R; ++r) {
      const int64_t at = (m0 + r) * x.kp + 32 * b;
      xw[r] = reinterpret_cast<const int32_t*>(x.q + at);
      dx[r] = _mm512_set1_ps(x.block_d[at / 32]);
      dsum[r] = _mm512_set1_ps((kMin ? 1.f : -kOffset) * x.sub_dsum[at / 32]);
    }
    for (int j = 0; j < G; ++j) {
      const uint8_t* p = group + j * group_bytes + b * bb;
      for (int64_t l = 0; sw_prefetch && l < bb; l += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(p + kPackedPrefetch + l), _MM_HINT_T0);
      }
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
      __m512i dot[R];
      if constexpr (kNibbles) {
        __m512i hi[R];
        for (int r = 0; r < R; ++r) dot[r] = hi[r] = _mm512_setzero_si512();
        for (int c = 0; c < 4; ++c) {
          const __m512i v = _mm512_loadu_si512(p + kWordsAt + 64 * c);
          __m512i n_lo, n_hi;  // Q5: the high quants themselves (5 bits do not fit times 16)
          if constexpr (kFifth) {  // bit 2 c: element 4 c + k's, 2 c + 1: 16 + 4 c + k's
            WithFifthBits(v, _mm512_loadu_si512(p + PackedFifthBitsAt(kType)), 2 * c, &n_lo, &n_hi);
          } else {
            n_lo = _mm512_and_si512(v, low);
            n_hi = _mm512_and_si512(v, high);  // times 16
          }
          for (int r = 0; r < R; ++r) {
            dot[r] = DotWithX<G == 1 && R == 1>(dot[r], n_lo, &xw[r][c]);
            hi[r] = DotWithX<G == 1 && R == 1>(hi[r], n_hi, &xw[r][4 + c]);
          }
        }
        for (int r = 0; r < R; ++r) dot[r] = _mm512_add_epi32(dot[r], kFifth ? hi[r] : _mm512_srai_epi32(hi[r], 4));
      } else {
        for (int r = 0; r < R; ++r) dot[r] = _mm512_setzero_si512();
        for (int c = 0; c < PackedWords(kType); ++c) {
          const __m512i u = _mm512_xor_si512(_mm512_loadu_si512(p + kWordsAt + 64 * c), flip);
          for (int r = 0; r < R; ++r) dot[r] = _mm512_dpbusd_epi32(dot[r], u, _mm512_set1_epi32(xw[r][c]));
        }
      }
      for (int r = 0; r < R; ++r) {
        if constexpr (kMin) {
          const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)));
          acc[j * R + r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot[r]), dx[r]), dw, acc[j * R + r]);
          acc[j * R + r] = _mm512_fmadd_ps(mw, dsum[r], acc[j * R + r]);
        } else {
          acc[j * R + r] = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r]), dx[r], dsum[r]), dw, acc[j * R + r]);
        }
      }
    }
  }
  for (int j = 0; j < G; ++j) {
    const int64_t n0 = n + kPackedRows * j;
    const __m512 bias_v = bias ? _mm512_loadu_ps(bias + n0) : _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(y + (m0 + r) * N + n0, _mm512_add_ps(acc[j * R + r], bias_v));
  }
}

size_t PackedQuantBytes(const MatView& w) {
  const int64_t block = DTypeBlockSize(w.dtype);
  if (!Int8DotsOnVnni() || !Int8DotEnabled() || !RepackEnabled() || PackedBlockBytes(w.dtype) == 0 || w.rows % kPackedRows != 0 ||
      w.cols % block != 0) {
    return 0;
  }
  return static_cast<size_t>(w.rows / kPackedRows * (w.cols / block) * PackedBlockBytes(w.dtype));
}

// Q4_K and Q6_K super-blocks: each sub-block's dot (16 rows in the lanes)
// times its per-row scale and x's d, summed over the super-block, then times
// the rows' d; Q4_K's mins (dmin m sum(x)) and Q6_K's offset (-32 sum(q_x)
// per 16, from init) likewise.
template <int G, int R, bool kQ5 = false>
LLM_VNNI HWY_INLINE void PackedTileK(DType dtype, const uint8_t* group, int64_t group_bytes, int64_t blocks,
                                     const Int8X& x, int64_t m0, int64_t N, int64_t n, const float* bias, float* y) {
  const int64_t bb = PackedBlockBytes(dtype);
  const __m512i low = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi8(static_cast<char>(0xf0));
  const __m512i top = _mm512_set1_epi8(0x30);
  // The G groups advance together, 64 bytes of each in turn (Q4_K) or one
  // sub-block of 192 bytes (Q6_K), so that all G streams have prefetches in
  // flight: a whole super-block per group at a time left one stream busy
  // (Q6_K 18 -> 26 GB/s from memory), Q4_K's 512-byte runs per group 19.5 ->
  // 24 (2048 x 5632) and 23 -> 30 (4096 x 11008), bench_kernels, Xeon with AMX.
  // On AMD (no SoftwarePrefetch(); measured on Zen 4 only) Q4_K goes without
  // them, as its packed rows now sit on huge pages (a model's reservation, the
  // backend's weight arena): bench_kernels from memory, 7 alternating rounds
  // over 5 shapes, 1.02-1.10x paired medians without. On 4 KiB pages (a
  // matrix prepared without a reservation, or THP off) they had helped
  // (4096 x 11008: 29-30 GB/s with, 27 without): those lose a little. Q6_K
  // keeps them (0.84-1.10x without: no gain).
  constexpr int ahead = kPackedPrefetch;
  const bool pf = dtype == DType::kQ6_K || SoftwarePrefetch();
  const auto prefetch = [&](const uint8_t* at, int lines) {
    if (!pf) return;
    for (int l = 0; l < lines; ++l) _mm_prefetch(reinterpret_cast<const char*>(at + ahead + 64 * l), _MM_HINT_T0);
  };
  __m512 acc[G * R];
  for (int i = 0; i < G * R; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < blocks; ++sb) {
    const int32_t* xw[R];
    for (int r = 0; r < R; ++r) xw[r] = reinterpret_cast<const int32_t*>(x.q + (m0 + r) * x.kp + 256 * sb);
    const uint8_t* blk[G];
    for (int j = 0; j < G; ++j) {
      blk[j] = group + j * group_bytes + sb * bb;
      prefetch(blk[j], 5);  // the header: d (dmin), scales (Q4_K 320 bytes, Q6_K 288)
    }
    if (dtype == DType::kQ4_K || kQ5) {
      // d and dmin are folded into each sub-block's scale and min, so that the
      // accumulators are acc alone (sum and mins per group spilled at G = 4).
      for (int pair = 0; pair < 4; ++pair) {
        // The G groups' chunks interleaved (64 bytes of each in turn).
        // Two accumulator sets (even and odd chunks) halve the VPDPBUSD chains.
        __m512i even[2][G * R], odd16[2][G * R];
        for (int i = 0; i < G * R; ++i) even[0][i] = odd16[0][i] = even[1][i] = odd16[1][i] = _mm512_setzero_si512();
        // Fully unrolled, so that c & 1 is a constant: without the pragma the
        // R = 4 tiles ran at less than half this rate (Zen 4, 2048 x 5632
        // Q4_K: 16 rows 188 -> 456-487 GFLOP/s, 512 rows 176-197 -> 410-450).
#pragma GCC unroll 8
        for (int c = 0; c < 8; ++c) {
          for (int j = 0; j < G; ++j) {
            const uint8_t* q = blk[j] + PackedK45Nibbles(kQ5 ? DType::kQ5_K : DType::kQ4_K) + 512 * pair + 64 * c;
            if (pf) _mm_prefetch(reinterpret_cast<const char*>(q + ahead), _MM_HINT_T0);
            const __m512i v = _mm512_loadu_si512(q);
            __m512i n_lo, n_hi16;  // Q5_K: the high quants themselves (5 bits do not fit times 16)
            if constexpr (kQ5) {
              // The fifth bits of these 4 elements of the 16 rows, all four
              // pairs' in one byte each (bit 2 pair: low sub-block, 2 pair + 1:
              // high).
              WithFifthBits(v, _mm512_loadu_si512(blk[j] + kPackedK45FifthBits + 64 * c), 2 * pair, &n_lo, &n_hi16);
            } else {
              n_lo = _mm512_and_si512(v, low);
              n_hi16 = _mm512_and_si512(v, high);
            }
            for (int r = 0; r < R; ++r) {
              __m512i& e = even[c & 1][j * R + r];
              __m512i& o = odd16[c & 1][j * R + r];
              e = DotWithX<G == 1 && R == 1>(e, n_lo, &xw[r][16 * pair + c]);
              o = DotWithX<G == 1 && R == 1>(o, n_hi16, &xw[r][16 * pair + 8 + c]);
            }
          }
        }
        for (int j = 0; j < G; ++j) {
          const uint8_t* scales = blk[j] + 64;
          const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[j])));
          const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[j] + 32)));
          for (int half = 0; half < 2; ++half) {
            const int sub = 2 * pair + half;
            const __m512 sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                                                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 16 * sub)))));
            const __m512 mn = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(
                                                      reinterpret_cast<const __m128i*>(scales + 128 + 16 * sub)))));
            for (int r = 0; r < R; ++r) {
              const int64_t at = (m0 + r) * x.kp + 256 * sb + 32 * sub;
              const int i = j * R + r;
              const __m512i odd = _mm512_add_epi32(odd16[0][i], odd16[1][i]);
              const __m512i dot = !half ? _mm512_add_epi32(even[0][i], even[1][i])
                                  : kQ5 ? odd
                                        : _mm512_srai_epi32(odd, 4);
              acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(sc, _mm512_set1_ps(x.block_d[at / 32])), acc[i]);
              acc[i] = _mm512_fnmadd_ps(mn, _mm512_set1_ps(x.sub_dsum[at / 32]), acc[i]);
            }
          }
        }
      }
    } else {  // kQ6_K
      __m512 sum[G * R];
      for (int i = 0; i < G * R; ++i) sum[i] = _mm512_setzero_ps();
      for (int sub = 0; sub < 16; ++sub) {
        int32_t corr[R];  // -32 sum(q_x) over the 16 elements, from init (-32 sum per 4)
        for (int r = 0; r < R; ++r) {
          const int32_t* init = x.init + ((m0 + r) * x.kp + 256 * sb + 16 * sub) / 4;
          corr[r] = init[0] + init[1] + init[2] + init[3];
        }
        for (int j = 0; j < G; ++j) {
          const uint8_t* q = blk[j] + 32 + 256 + 192 * sub;
          prefetch(q, 3);
          const __m512i la = _mm512_loadu_si512(q), lb = _mm512_loadu_si512(q + 64), h = _mm512_loadu_si512(q + 128);
          // 0xF8: a | (b & c) (VPTERNLOG's table for A | B & C).
          const __m512i u[4] = {
              _mm512_ternarylogic_epi32(_mm512_and_si512(la, low), _mm512_slli_epi16(h, 4), top, 0xF8),
              _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(la, 4), low), _mm512_slli_epi16(h, 2), top,
                                        0xF8),
              _mm512_ternarylogic_epi32(_mm512_and_si512(lb, low), h, top, 0xF8),
              _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(lb, 4), low), _mm512_srli_epi16(h, 2), top,
                                        0xF8)};
          const __m512 sc = _mm512_cvtepi32_ps(
              _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[j] + 32 + 16 * sub))));
          for (int r = 0; r < R; ++r) {
            const int64_t at = (m0 + r) * x.kp + 256 * sb + 16 * sub;
            __m512i dot = _mm512_set1_epi32(corr[r]);
            for (int c = 0; c < 4; ++c) dot = _mm512_dpbusd_epi32(dot, u[c], _mm512_set1_epi32(xw[r][4 * sub + c]));
            sum[j * R + r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(sc, _mm512_set1_ps(x.block_d[at / 32])),
                                             sum[j * R + r]);
          }
        }
      }
      for (int j = 0; j < G; ++j) {
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[j])));
        for (int r = 0; r < R; ++r) acc[j * R + r] = _mm512_fmadd_ps(sum[j * R + r], d, acc[j * R + r]);
      }
    }
  }
  for (int j = 0; j < G; ++j) {
    const int64_t n0 = n + kPackedRows * j;
    const __m512 bias_v = bias ? _mm512_loadu_ps(bias + n0) : _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(y + (m0 + r) * N + n0, _mm512_add_ps(acc[j * R + r], bias_v));
  }
}

template <int G, int R>
LLM_VNNI HWY_INLINE void PackedTileOf(DType dtype, const uint8_t* group, int64_t group_bytes, int64_t blocks,
                                      const Int8X& x, int64_t m0, int64_t N, int64_t n, const float* bias, float* y) {
  switch (dtype) {
    case DType::kQ5_K: PackedTileK<G, R, true>(dtype, group, group_bytes, blocks, x, m0, N, n, bias, y); break;
    case DType::kQ4_K:
    case DType::kQ6_K: PackedTileK<G, R>(dtype, group, group_bytes, blocks, x, m0, N, n, bias, y); break;
    case DType::kQ8_0: PackedTile<G, R, DType::kQ8_0>(group, group_bytes, blocks, x, m0, N, n, bias, y); break;
    case DType::kQ4_0: PackedTile<G, R, DType::kQ4_0>(group, group_bytes, blocks, x, m0, N, n, bias, y); break;
    case DType::kQ4_1: PackedTile<G, R, DType::kQ4_1>(group, group_bytes, blocks, x, m0, N, n, bias, y); break;
    case DType::kQ5_0: PackedTile<G, R, DType::kQ5_0>(group, group_bytes, blocks, x, m0, N, n, bias, y); break;
    default: PackedTile<G, R, DType::kQ5_1>(group, group_bytes, blocks, x, m0, N, n, bias, y); break;  // kQ5_1
  }
}

// Whether a one-row decode on AMD reads W one 16-row group after the other
// rather than four at a time (one load of x per 64 rows, but three new
// streams per 4-group tile).
// Zen 4, decode traces of TinyLlama and Llama-2-7B GGUF files with one mode on
// even layers and the other on odd, time of one over four per projection:
// Q8_0 K = 2048 0.81-0.86, 4096 0.91-0.93, 5632 0.88, 11008 0.94 (one at
// every K); Q4_K 2048 0.80-0.86, 4096 0.95-0.99, 5632 1.16, 11008 1.18; Q6_K
// 4096 1.38, 5632 1.49, 11008 1.57 (and TinyLlama Q5_K_M's Q6_K down_proj,
// every layer one: 294 us against 185). Q4_K at 4096 stays at four
// (bench_kernels had one at 0.93x there). Earlier (bench_kernels from memory,
// one over four in speed): Q4_0 1.06-1.41x at 5 shapes; Q5_K 4096 x 11008
// 1.26-1.39x, 5632 x 2048 0.98-1.29x; the other nibble types as Q4_0 (not
// measured).
HWY_INLINE bool OneGroupAtATime(DType dtype, int64_t K) {
  switch (dtype) {
    case DType::kQ8_0:
    case DType::kQ5_K: return true;
    case DType::kQ4_K: return K <= 2048;
    case DType::kQ6_K: return false;
    default: return PackedWords(dtype) == 4;  // Q4_0, Q4_1, Q5_0, Q5_1
  }
}

LLM_VNNI void GemvPackedRows(const void* x_prepared, int64_t M, const MatView& w, const void* packed, int64_t n_begin,
                             int64_t n_end, const float* bias, float* y, int64_t m_begin, int64_t m_end) {
  const int64_t K = w.cols, N = w.rows, blocks = K / DTypeBlockSize(w.dtype);
  const int64_t group_bytes = blocks * PackedBlockBytes(w.dtype);
  const Int8X x = Int8Layout(const_cast<void*>(x_prepared), M, K);
  const auto* groups = static_cast<const uint8_t*>(packed);
  // One sequence: four 16-row groups advance together (four streams per
  // thread, each load of x serving 64 rows), except where one group after the
  // other (one linear stream) reads faster: on AMD (the one-row rule of the
  // float GEMV), OneGroupAtATime.
  const bool one_group = !SoftwarePrefetch() && OneGroupAtATime(w.dtype, K);
  for (int64_t n = n_begin; n < n_end;) {
    const uint8_t* g = groups + n / kPackedRows * group_bytes;
    if (M == 1 && n + 4 * kPackedRows <= n_end && !one_group) {
      PackedTileOf<4, 1>(w.dtype, g, group_bytes, blocks, x, 0, N, n, bias, y);
      n += 4 * kPackedRows;
      continue;
    }
    int64_t m = m_begin;
    for (; m + 4 <= m_end; m += 4) PackedTileOf<1, 4>(w.dtype, g, group_bytes, blocks, x, m, N, n, bias, y);
    for (; m < m_end; ++m) PackedTileOf<1, 1>(w.dtype, g, group_bytes, blocks, x, m, N, n, bias, y);
    n += kPackedRows;
  }
}

LLM_VNNI void Int8GemvRows(const QuantW& q, int64_t K, int64_t N, const Int8X& x, int64_t M, int64_t n_begin,
                           int64_t n_end, const float* bias, float* y) {
  constexpr int R = kGemvRowsPerPass;
  for (int64_t n = n_begin; n < n_end; ++n) {
    int64_t m = 0;
    for (; m + R <= M; m += R) Int8GemvTile<R>(q, K, N, n, x, m, bias, y);
    for (; m < M; ++m) Int8GemvTile<1>(q, K, N, n, x, m, bias, y);
  }
}
#else  // AVX2, AVX3: 256-bit VPMADDUBSW + VPMADDWD, one 32-element block per dot, x in natural order

double Int8DotPeak(int64_t, int) { return 0; }  // the roofline's int8 unit is VNNI's
size_t PackedQuantBytes(const MatView&) { return 0; }  // W stays row-major: GemvPackedRows is never called here
void GemvPackedRows(const void*, int64_t, const MatView&, const void*, int64_t, int64_t, const float*, float*, int64_t,
                    int64_t) {
  std::abort();
}

HWY_INLINE float Sum256(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// Byte j of 32: 0xff where bit j of `bits` is set (Q5_0 / Q5_1's qh).
HWY_INLINE __m256i BitsToBytes(uint32_t bits) {
  // Bytes 8 i .. 8 i + 7 take byte i of bits (VPSHUFB stays within each 128-bit half).
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                                             _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202,
                                                                0x0303030303030303));
  const __m256i select = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
}

// 8 int32 lanes, each the sum of 4 consecutive u8 * s8 products (as VPDPBUSD's).
HWY_INLINE __m256i Dot4(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// acc += (dot + init) * d_w * lane_d, for the block at element `at` of the prepared x.
HWY_INLINE __m256 BlockFma(__m256i dot, const Int8X& x, int64_t at, __m256 dw, __m256 acc, bool with_init) {
  if (with_init) dot = _mm256_add_epi32(dot, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.init + at / 4)));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(dw, _mm256_loadu_ps(x.lane_d + at / 4)), acc);
}

HWY_INLINE __m256i LoadX(const Int8X& x, int64_t at) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + at));
}

template <int R>
HWY_INLINE void Int8DotRow(const QuantW& w, const uint8_t* row, int64_t K, const Int8X& x, int64_t m0, __m256* acc,
                           __m256* mins) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  switch (w.type) {
    case GgmlType::kQ8_0:
      for (int64_t b = 0; b < K / 32; ++b) {
        const uint8_t* p = row + b * 34;
        _mm_prefetch(reinterpret_cast<const char*>(p + kInt8Prefetch), _MM_HINT_T0);
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
        const __m256i abs_q = _mm256_sign_epi8(q, q);  // |q| as u8; x takes q's sign
        const __m256 dw = _mm256_set1_ps(HalfScalar(p));
        for (int r = 0; r < R; ++r) {
          const int64_t at = (m0 + r) * x.kp + b * 32;
          acc[r] = BlockFma(Dot4(abs_q, _mm256_sign_epi8(LoadX(x, at), q)), x, at, dw, acc[r], false);
        }
      }
      break;
    case GgmlType::kQ4_0:
      for (int64_t b = 0; b < K / 32; ++b) {
        const uint8_t* p = row + b * 18;
        _mm_prefetch(reinterpret_cast<const char*>(p + kInt8Prefetch), _MM_HINT_T0);
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
        const __m256i n = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low);  // elements 0-31
        const __m256 dw = _mm256_set1_ps(HalfScalar(p));
        for (int r = 0; r < R; ++r) {
          const int64_t at = (m0 + r) * x.kp + b * 32;
          acc[r] = BlockFma(Dot4(n, LoadX(x, at)), x, at, dw, acc[r], true);
        }
      }
      break;
    case GgmlType::kQ4_K:
      for (int64_t sb = 0; sb < K / 256; ++sb) {
        const uint8_t* blk = row + sb * 144;
        for (int l = 0; l < 3; ++l) _mm_prefetch(reinterpret_cast<const char*>(blk + kInt8Prefetch + 64 * l), _MM_HINT_T0);
        uint64_t sc8, m8;
        ScalesMinsK4(blk + 4, &sc8, &m8);
        const float d = HalfScalar(blk), dmin = HalfScalar(blk + 2);
        alignas(32) float sc[8];
        _mm256_store_ps(sc, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                                                                 _mm_cvtsi64_si128(static_cast<int64_t>(sc8))))));
        const __m256 m = _mm256_mul_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                                                                 _mm_cvtsi64_si128(static_cast<int64_t>(m8)))));
        for (int j = 0; j < 4; ++j) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * j));
          const __m256i n_lo = _mm256_and_si256(v, low), n_hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
          const __m256 s_lo = _mm256_set1_ps(sc[2 * j]), s_hi = _mm256_set1_ps(sc[2 * j + 1]);
          for (int r = 0; r < R; ++r) {
            const int64_t at = (m0 + r) * x.kp + sb * 256 + 64 * j;
            acc[r] = BlockFma(Dot4(n_lo, LoadX(x, at)), x, at, s_lo, acc[r], false);
            acc[r] = BlockFma(Dot4(n_hi, LoadX(x, at + 32)), x, at + 32, s_hi, acc[r], false);
          }
        }
        for (int r = 0; r < R; ++r) {
          mins[r] = _mm256_fmadd_ps(m, _mm256_loadu_ps(x.sub_dsum + ((m0 + r) * x.kp + sb * 256) / 32), mins[r]);
        }
      }
      break;
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1: {
      // d, [m], [qh], 16 bytes of nibbles; w = d q + m, or d (q - 16) for Q5_0 (init).
      const bool has_min = w.type != GgmlType::kQ5_0, fifth = w.type != GgmlType::kQ4_1;
      const int64_t qs = 2 + (has_min ? 2 : 0) + (fifth ? 4 : 0), block_bytes = qs + 16;
      for (int64_t b = 0; b < K / 32; ++b) {
        const uint8_t* p = row + b * block_bytes;
        _mm_prefetch(reinterpret_cast<const char*>(p + kInt8Prefetch), _MM_HINT_T0);
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + qs));
        __m256i n = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low);  // elements 0-31
        if (fifth) {
          uint32_t qh;
          std::memcpy(&qh, p + qs - 4, 4);
          n = _mm256_or_si256(n, _mm256_and_si256(BitsToBytes(qh), _mm256_set1_epi8(0x10)));
        }
        const __m256 dw = _mm256_set1_ps(HalfScalar(p));
        const float m = has_min ? HalfScalar(p + 2) : 0.f;
        for (int r = 0; r < R; ++r) {
          const int64_t at = (m0 + r) * x.kp + b * 32;
          acc[r] = BlockFma(Dot4(n, LoadX(x, at)), x, at, dw, acc[r], !has_min);
          // + m d_x sum(q_x), one lane: `mins` is subtracted at the end.
          if (has_min) mins[r] = _mm256_sub_ps(mins[r], _mm256_setr_ps(m * x.sub_dsum[at / 32], 0, 0, 0, 0, 0, 0, 0));
        }
      }
      break;
    }
    default:  // kQ6_K
      for (int64_t sb = 0; sb < K / 256; ++sb) {
        const uint8_t* blk = row + sb * 210;
        for (int l = 0; l < 4; ++l) _mm_prefetch(reinterpret_cast<const char*>(blk + kInt8Prefetch + 64 * l), _MM_HINT_T0);
        const float d = HalfScalar(blk + 208);
        const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192));
        for (int h = 0; h < 2; ++h) {
          // d * scale of each 16 elements of this half, 8 floats.
          const __m256 sch = _mm256_mul_ps(_mm256_set1_ps(d),
                                           _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(h ? _mm_srli_si128(sc8, 8) : sc8)));
          const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h));
          const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h + 32));
          const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
          const __m256i m3 = _mm256_set1_epi8(3);
          const __m256i q6[4] = {
              _mm256_or_si256(_mm256_and_si256(ql0, low), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4)),
              _mm256_or_si256(_mm256_and_si256(ql1, low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4)),
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low),
                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4)),
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low),
                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4))};
          for (int c = 0; c < 4; ++c) {
            // Lanes 0-3 are elements 32 c .. 32 c + 15 (scale 2 c), lanes 4-7 the next 16 (2 c + 1).
            const __m256 s = _mm256_permutevar8x32_ps(sch, _mm256_set_epi32(2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1,
                                                                            2 * c, 2 * c, 2 * c, 2 * c));
            for (int r = 0; r < R; ++r) {
              const int64_t at = (m0 + r) * x.kp + sb * 256 + 128 * h + 32 * c;
              acc[r] = BlockFma(Dot4(q6[c], LoadX(x, at)), x, at, s, acc[r], true);
            }
          }
        }
      }
      break;
  }
}

template <int R>
HWY_INLINE void Int8GemvTile(const QuantW& w, int64_t K, int64_t N, int64_t n, const Int8X& x, int64_t m0,
                             const float* bias, float* y) {
  __m256 acc[R], mins[R];
  for (int r = 0; r < R; ++r) acc[r] = mins[r] = _mm256_setzero_ps();
  Int8DotRow<R>(w, w.data + static_cast<size_t>(n) * w.row_bytes, K, x, m0, acc, mins);
  for (int r = 0; r < R; ++r) y[(m0 + r) * N + n] = Sum256(_mm256_sub_ps(acc[r], mins[r])) + (bias ? bias[n] : 0.f);
}

void Int8GemvRows(const QuantW& q, int64_t K, int64_t N, const Int8X& x, int64_t M, int64_t n_begin, int64_t n_end,
                  const float* bias, float* y) {
  constexpr int R = 2;  // 16 ymm registers on AVX2
  for (int64_t n = n_begin; n < n_end; ++n) {
    int64_t m = 0;
    for (; m + R <= M; m += R) Int8GemvTile<R>(q, K, N, n, x, m, bias, y);
    for (; m < M; ++m) Int8GemvTile<1>(q, K, N, n, x, m, bias, y);
  }
}
#endif  // HWY_TARGET == HWY_AVX3_DL
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#else
bool Int8DotsOnVnni() { return false; }
double Int8DotPeak(int64_t, int) { return 0; }
size_t QuantActivationBytes(int64_t, const MatView&) { return 0; }
void PrepareQuantActivations(const float*, int64_t, const MatView&, void*, bool, int64_t, int64_t) {}
size_t PackedQuantBytes(const MatView&) { return 0; }  // W stays row-major: GemvPackedRows is never called here
void GemvPackedRows(const void*, int64_t, const MatView&, const void*, int64_t, int64_t, const float*, float*, int64_t,
                    int64_t) {
  std::abort();
}
#endif  // HWY_TARGET == HWY_AVX3_DL

void GemvQuantRows(const float* x, const void* x_prepared, int64_t M, const MatView& w, int64_t n_begin,
                   int64_t n_end, const float* bias, float* y) {
  const QuantW q{static_cast<const uint8_t*>(w.data), static_cast<GgmlType>(DTypeGgmlType(w.dtype)),
                 DTypeRowBytes(w.dtype, w.cols)};
  const int64_t K = w.cols, N = w.rows;
  constexpr int R = kGemvRowsPerPass;
#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX2
  if (x_prepared != nullptr && Int8DotType(q.type)) {
    Int8GemvRows(q, K, N, Int8Layout(const_cast<void*>(x_prepared), M, K), M, n_begin, n_end, bias, y);
    return;
  }
#else
  (void)x_prepared;
#endif
  thread_local std::vector<float> tmp;  // the dequantized row of the generic path
  tmp.resize(std::max(tmp.size(), static_cast<size_t>(K)));
  for (int64_t n = n_begin; n < n_end; ++n) {
    int64_t m = 0;
    for (; m + R <= M; m += R) GemvQuantTile<R>(q, K, N, n, x + m * K, bias, y + m * N, tmp.data());
    for (; m < M; ++m) GemvQuantTile<1>(q, K, N, n, x + m * K, bias, y + m * N, tmp.data());
  }
}

// --- GEMM: packed panels of W and of x, a 6 x (2 vectors) register tile -----
//
// C[m0:m0+6, n0:n0+2L] accumulates over a K block: per k, two loads of the
// packed W panel and six broadcasts of packed x feed twelve FMAs, so the FMA
// units, not the load ports, are the limit. W is widened to float32 while
// packing, once per K block; x is packed once per matmul by the caller
// (PackGemmRows) so the six rows of a k step share a cache line instead of
// sitting K floats apart (16 KiB at K = 4096: the same L1 sets).
constexpr int kMr = static_cast<int>(kGemmRowGroup);
constexpr int64_t kKc = kGemmDepth;
constexpr int64_t kPanelsPerBlock = 8;
// Rows per block: the block's packed x (kMc x kc floats, 96 KiB) stays in L2
// while one W panel (kc x 2L floats) stays in L1 across the block's row
// groups, so the inner loop streams x from L2 and W from L1.
constexpr int64_t kMc = 96;

HWY_INLINE int64_t PanelWidth() { return 2 * static_cast<int64_t>(hn::Lanes(DF())); }

// Adds (or with `first`, stores plus bias) the tile into rows of y; the y
// lines were prefetched when the k loop started, so the read-modify-write
// of the K blocks after the first finds them in cache.
template <bool kFullPanel>
HWY_INLINE void MicroKernel(const float* a, const float* b, int64_t kc, float* y, int64_t ldy, int64_t rows,
                            int64_t cols, bool first, const float* bias, float* tile) {
  const DF df;
  const size_t L = hn::Lanes(df);
  for (int64_t i = 0; i < rows; ++i) {
    hwy::Prefetch(y + i * ldy);
    hwy::Prefetch(y + i * ldy + 2 * L - 1);
  }
  VF c0[kMr], c1[kMr];
  for (int i = 0; i < kMr; ++i) c0[i] = c1[i] = hn::Zero(df);
  for (int64_t k = 0; k < kc; ++k) {
    const VF b0 = hn::Load(df, b + k * 2 * L);
    const VF b1 = hn::Load(df, b + k * 2 * L + L);
    for (int i = 0; i < kMr; ++i) {
      const VF ai = hn::Set(df, a[k * kMr + i]);
      c0[i] = hn::MulAdd(ai, b0, c0[i]);
      c1[i] = hn::MulAdd(ai, b1, c1[i]);
    }
  }
  if constexpr (kFullPanel) {
    const VF bias0 = bias ? hn::LoadU(df, bias) : hn::Zero(df);
    const VF bias1 = bias ? hn::LoadU(df, bias + L) : hn::Zero(df);
    for (int i = 0; i < kMr; ++i) {
      if (i >= rows) break;
      float* yi = y + i * ldy;
      if (first) {
        hn::StoreU(hn::Add(c0[i], bias0), df, yi);
        hn::StoreU(hn::Add(c1[i], bias1), df, yi + L);
      } else {
        hn::StoreU(hn::Add(c0[i], hn::LoadU(df, yi)), df, yi);
        hn::StoreU(hn::Add(c1[i], hn::LoadU(df, yi + L)), df, yi + L);
      }
    }
  } else {
    for (int i = 0; i < kMr; ++i) {
      hn::Store(c0[i], df, tile + i * 2 * L);
      hn::Store(c1[i], df, tile + i * 2 * L + L);
    }
    for (int64_t i = 0; i < rows; ++i) {
      float* yi = y + i * ldy;
      const float* t = tile + i * 2 * L;
      for (int64_t j = 0; j < cols; ++j) yi[j] = first ? t[j] + (bias ? bias[j] : 0.f) : yi[j] + t[j];
    }
  }
}

template <class WT>
void WidenT(const WT* src, int64_t n, float* out);

// Transposes W[n0:n0+nr, k0:k0+kc] into out[kc][nr], widening to float32 with
// SIMD first (the scalar f16 conversion would dominate packing).
template <class WT>
void PackPanel(const WT* w, int64_t ldw, int64_t n0, int64_t n_end, int64_t k0, int64_t kc, int64_t nr, float* out) {
  HWY_ALIGN float row_f32[kKc];
  // The row 4 ahead is fetched while this one is transposed: rows are K
  // elements apart, a stride the hardware prefetchers do not follow, and each
  // row's first touch was a wait on L3 or DRAM (a float32 W's row copy was 11%
  // of the GEMM by perf). Xeon with AMX, 2 threads: bench_kernels float32
  // 512 x 2048 x 5632 316 -> 359 GFLOP/s, TinyLlama float32 pp512 1.05x.
  constexpr int64_t kAhead = 4;
  const int64_t line_elems = 64 / static_cast<int64_t>(sizeof(WT));
  for (int64_t j = 0; j < nr; ++j) {
    const int64_t n = n0 + j;
    if (n >= n_end) {
      for (int64_t k = 0; k < kc; ++k) out[k * nr + j] = 0.f;
      continue;
    }
    if (n + kAhead < n_end) {
      for (int64_t k = 0; k < kc; k += line_elems) hwy::Prefetch(w + (n + kAhead) * ldw + k0 + k);
    }
    WidenT(w + n * ldw + k0, kc, row_f32);
    for (int64_t k = 0; k < kc; ++k) out[k * nr + j] = row_f32[k];
  }
}

// A quantized panel: kc (a multiple of the block size: k0 is a multiple of
// 256) dequantized per row by the scalar reference, once per K block and
// panel, shared by every row of x. Its rows are w->row_bytes apart (ldw unused).
void PackPanel(const QuantW* w, int64_t /*ldw*/, int64_t n0, int64_t n_end, int64_t k0, int64_t kc, int64_t nr,
               float* out) {
  HWY_ALIGN float row_f32[kKc];
  const GgmlTypeInfo* info = GgmlTypeInfoOf(static_cast<uint32_t>(w->type));
  const size_t block_bytes = info->type_size;
  const int64_t block = info->block_size;
  for (int64_t j = 0; j < nr; ++j) {
    const int64_t n = n0 + j;
    if (n >= n_end) {
      for (int64_t k = 0; k < kc; ++k) out[k * nr + j] = 0.f;
      continue;
    }
    DequantizeRow(w->type, w->data + n * w->row_bytes + (k0 / block) * block_bytes, row_f32, static_cast<size_t>(kc));
    for (int64_t k = 0; k < kc; ++k) out[k * nr + j] = row_f32[k];
  }
}

template <class WT>
void GemmT(const float* x_packed, int64_t M, const WT* w, int64_t K, int64_t ldw, int64_t N, int64_t n_begin,
           int64_t n_end, const float* bias, float* y, float* pack) {
  const int64_t nr = PanelWidth();
  const int64_t padded_m = GemmPaddedRows(M);
  HWY_ALIGN float tile[kMr * 2 * 16];  // 16 = widest x86 lane count
  for (int64_t nb = n_begin; nb < n_end; nb += kPanelsPerBlock * nr) {
    const int64_t ne = std::min(n_end, nb + kPanelsPerBlock * nr);
    const int64_t num_panels = (ne - nb + nr - 1) / nr;
    for (int64_t k0 = 0; k0 < K; k0 += kKc) {
      const int64_t kc = std::min(kKc, K - k0);
      for (int64_t p = 0; p < num_panels; ++p) PackPanel(w, ldw, nb + p * nr, ne, k0, kc, nr, pack + p * kc * nr);
      const float* x_block = x_packed + k0 * padded_m;  // this K block: [padded_m / kMr][kc][kMr]
      for (int64_t mb = 0; mb < M; mb += kMc) {
        const int64_t me = std::min(M, mb + kMc);
        for (int64_t p = 0; p < num_panels; ++p) {
          const float* b = pack + p * kc * nr;
          const int64_t n0 = nb + p * nr;
          const int64_t cols = std::min(nr, ne - n0);
          for (int64_t m0 = mb; m0 < me; m0 += kMr) {
            // Rows past M are zero padding: computed, not written.
            const int64_t rows = std::min<int64_t>(kMr, M - m0);
            const float* bias_n = bias ? bias + n0 : nullptr;
            if (cols == nr) {
              MicroKernel<true>(x_block + m0 * kc, b, kc, y + m0 * N + n0, N, rows, cols, k0 == 0, bias_n, tile);
            } else {
              MicroKernel<false>(x_block + m0 * kc, b, kc, y + m0 * N + n0, N, rows, cols, k0 == 0, bias_n, tile);
            }
          }
        }
      }
    }
  }
}

void GemmRows(const float* x_packed, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end,
              const float* bias, float* y, float* pack, int64_t ldw) {
  if (IsQuantized(w.dtype)) {
    const QuantW q{static_cast<const uint8_t*>(w.data), static_cast<GgmlType>(DTypeGgmlType(w.dtype)),
                   DTypeRowBytes(w.dtype, w.cols)};
    return GemmT(x_packed, M, &q, w.cols, w.cols, w.rows, n_begin, n_end, bias, y, pack);
  }
  if (ldw == 0) ldw = w.cols;
  WithWeightType(w.data, w.dtype,
                 [&](auto* wt) { GemmT(x_packed, M, wt, w.cols, ldw, w.rows, n_begin, n_end, bias, y, pack); });
}

int64_t GemmRowBlock() { return kPanelsPerBlock * PanelWidth(); }

// Below this many rows GemvRows beats packing for the GEMM (bench_kernels
// BM_MatMul_Batch, 2048 x 5632, Xeon with AMX: float32 M = 32 4.9 vs 7.7 ms,
// M = 64 9.8 vs 11.3 ms; the AVX2 target: M = 16 4.2 vs 7.5, M = 64 15.5 vs 13.5).
int64_t GemvMaxRows() { return HWY_MAX_BYTES >= 64 ? 64 : 32; }

// --- Vector helpers for attention, norms and activations -----------------------

// Lane sums of four vectors as one 4-lane vector [sum a, sum b, sum c, sum d]:
// two interleave-and-add steps inside each 128-bit block, then the blocks are
// folded together: about a third of the shuffles of four separate reductions.
using D4 = hn::CappedTag<float, 4>;
#if HWY_TARGET != HWY_SCALAR
template <class D>
HWY_INLINE hn::Vec<D4> FoldBlocks(D d, hn::Vec<D> v) {
  if constexpr (hn::MaxLanes(d) <= 4) {
    return v;
  } else {
    const hn::Half<D> dh;
    return FoldBlocks(dh, hn::Add(hn::LowerHalf(dh, v), hn::UpperHalf(dh, v)));
  }
}
HWY_INLINE hn::Vec<D4> Sum4(DF df, VF a, VF b, VF c, VF d) {
  const hn::Repartition<uint64_t, DF> du64;
  const VF ab = hn::Add(hn::InterleaveLower(df, a, b), hn::InterleaveUpper(df, a, b));  // a02 b02 a13 b13
  const VF cd = hn::Add(hn::InterleaveLower(df, c, d), hn::InterleaveUpper(df, c, d));
  const VF lo = hn::BitCast(df, hn::InterleaveLower(du64, hn::BitCast(du64, ab), hn::BitCast(du64, cd)));
  const VF hi = hn::BitCast(df, hn::InterleaveUpper(du64, hn::BitCast(du64, ab), hn::BitCast(du64, cd)));
  return FoldBlocks(df, hn::Add(lo, hi));
}
#endif

// The four scores of one row: out[j] = scale * (sum of acc[j] + the scalar
// tail of dimensions [hv, hd)).
HWY_INLINE void StoreScores4(DF df, const VF* acc, const float* q, const float* k, int64_t hv, int64_t hd,
                             float scale, float* out) {
  float part[4];
#if HWY_TARGET != HWY_SCALAR
  const D4 d4;
  const hn::Vec<D4> sums = Sum4(df, acc[0], acc[1], acc[2], acc[3]);
  if (hv == hd) {
    hn::StoreU(hn::Mul(sums, hn::Set(d4, scale)), d4, out);
    return;
  }
  hn::StoreU(sums, d4, part);
#else
  for (int j = 0; j < 4; ++j) part[j] = ReduceSum(df, acc[j]);
#endif
  for (int j = 0; j < 4; ++j) {
    float sum = part[j];
    for (int64_t d = hv; d < hd; ++d) sum += q[d] * k[j * hd + d];
    out[j] = sum * scale;
  }
}

// Scores of kRows query rows (q, q + hd, ...) against four consecutive keys:
// out[r * stride + j] = scale * q[r] . k[j]. Each vector load of q or k feeds
// several FMA chains (2 rows x 4 keys = 8 accumulators), so the loop is bound
// by FMAs rather than loads; the four key rows stay in L1 across row pairs.
// kHd > 0 fixes the head dimension at compile time (64 and 128 cover the Llama
// families): the d loop then unrolls fully and the accumulators stay in
// registers, about twice the throughput of the run-time loop.
template <int kRows, int kHd>
HWY_INLINE void ScoresTile(const float* q, const float* k, int64_t head_dim, float scale, float* out,
                           int64_t stride) {
  const int64_t hd = kHd > 0 ? kHd : head_dim;
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const int64_t hv = hd / L * L;
  VF acc[kRows][4];
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < 4; ++j) acc[r][j] = hn::Zero(df);
  }
  for (int64_t d = 0; d < hv; d += L) {
    VF kv[4];
    for (int j = 0; j < 4; ++j) kv[j] = hn::LoadU(df, k + j * hd + d);
    for (int r = 0; r < kRows; ++r) {
      const VF qv = hn::LoadU(df, q + r * hd + d);
      for (int j = 0; j < 4; ++j) acc[r][j] = hn::MulAdd(qv, kv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < kRows; ++r) StoreScores4(df, acc[r], q + r * hd, k, hv, hd, scale, out + r * stride);
}

// Cache lines of `bytes` from p on, requested ahead of use: a decode step
// reads each K/V row once, from memory, so the hardware prefetcher alone
// leaves the FMAs waiting at the start of every row. kLocality 3 fetches
// into L1; 2 into L2 only, for data a whole L1-sized block ahead (into L1 it
// would evict the block still being worked on).
template <int kLocality>
HWY_INLINE void PrefetchBytes(const float* p, int64_t bytes) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t i = 0; i < bytes; i += 64) __builtin_prefetch(c + i, 0, kLocality);
}

// Decode attention of one KV head's group of G query rows over n cached keys:
// scores[g * stride + p] = scale * (q[g] . keys[p]).
template <int kHd>
void AttentionScoresT(const float* q, int64_t G, const float* keys, int64_t n, int64_t head_dim, float scale,
                      float* scores, int64_t stride) {
  const int64_t hd = kHd > 0 ? kHd : head_dim;
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const int64_t hv = hd / L * L;
  int64_t p0 = 0;
  for (; p0 + 4 <= n; p0 += 4) {
    const float* k = keys + p0 * hd;
    if (p0 + 12 <= n) PrefetchBytes<3>(k + 8 * hd, 4 * hd * sizeof(float));
    int64_t g = 0;
    for (; g + 2 <= G; g += 2) ScoresTile<2, kHd>(q + g * hd, k, hd, scale, scores + g * stride + p0, stride);
    if (g < G) ScoresTile<1, kHd>(q + g * hd, k, hd, scale, scores + g * stride + p0, stride);
  }
  for (; p0 < n; ++p0) {
    const float* k = keys + p0 * hd;
    for (int64_t g = 0; g < G; ++g) {
      const float* qg = q + g * hd;
      VF a = hn::Zero(df);
      for (int64_t d = 0; d < hv; d += L) a = hn::MulAdd(hn::LoadU(df, qg + d), hn::LoadU(df, k + d), a);
      float sum = ReduceSum(df, a);
      for (int64_t d = hv; d < hd; ++d) sum += qg[d] * k[d];
      scores[g * stride + p0] = sum * scale;
    }
  }
}

void AttentionScores(const float* q, int64_t G, const float* keys, int64_t n, int64_t hd, float scale,
                     float* scores, int64_t stride) {
  if (hd == 64) return AttentionScoresT<64>(q, G, keys, n, hd, scale, scores, stride);
  if (hd == 128) return AttentionScoresT<128>(q, G, keys, n, hd, scale, scores, stride);
  AttentionScoresT<0>(q, G, keys, n, hd, scale, scores, stride);
}

// kRows output rows, dimensions [d, d + kVecs * L): o[r] += sum over p in
// [p0, pe) of probs[r * stride + p] * values[p]. Each loaded value vector
// feeds kRows FMA chains.
// With `ahead` > 0 the tile also prefetches its columns of the value row
// `ahead` positions on (up to `n`).
template <int kRows, int kVecs, int kHd>
HWY_INLINE void WeightedSumTile(const float* probs, int64_t stride, const float* values, int64_t head_dim,
                                int64_t p0, int64_t pe, int64_t d, float* o, int64_t ahead, int64_t n) {
  const int64_t hd = kHd > 0 ? kHd : head_dim;
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  VF acc[kRows][kVecs];
  for (int r = 0; r < kRows; ++r) {
    for (int i = 0; i < kVecs; ++i) acc[r][i] = hn::LoadU(df, o + r * hd + d + i * L);
  }
  for (int64_t p = p0; p < pe; ++p) {
    if (ahead > 0 && p + ahead < n) PrefetchBytes<2>(values + (p + ahead) * hd + d, kVecs * L * sizeof(float));
    VF v[kVecs];
    for (int i = 0; i < kVecs; ++i) v[i] = hn::LoadU(df, values + p * hd + d + i * L);
    for (int r = 0; r < kRows; ++r) {
      const VF w = hn::Set(df, probs[r * stride + p]);
      for (int i = 0; i < kVecs; ++i) acc[r][i] = hn::MulAdd(w, v[i], acc[r][i]);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int i = 0; i < kVecs; ++i) hn::StoreU(acc[r][i], df, o + r * hd + d + i * L);
  }
}

// kRows rows of the weighted sum over positions [p0, pe), all head dims:
// tiles of 2 vectors (4 rows x 2 vectors keeps both value vectors in
// registers for four FMA rows: 6 loads per 8 FMAs, 1.6x the 2 x 4 tile that
// re-read each value vector per row), then 1 vector, then scalar.
template <int kRows, int kHd>
HWY_INLINE void WeightedSumRows(const float* pr, int64_t stride, const float* values, int64_t hd, int64_t p0,
                                int64_t pe, float* o, int64_t ahead, int64_t n) {
  const int64_t L = static_cast<int64_t>(hn::Lanes(DF()));
  int64_t d = 0;
  for (; d + 2 * L <= hd; d += 2 * L) WeightedSumTile<kRows, 2, kHd>(pr, stride, values, hd, p0, pe, d, o, ahead, n);
  for (; d + L <= hd; d += L) WeightedSumTile<kRows, 1, kHd>(pr, stride, values, hd, p0, pe, d, o, ahead, n);
  for (; d < hd; ++d) {
    for (int r = 0; r < kRows; ++r) {
      float a = o[r * hd + d];
      for (int64_t p = p0; p < pe; ++p) a += pr[r * stride + p] * values[p * hd + d];
      o[r * hd + d] = a;
    }
  }
}

// out[g] = sum over p < n of probs[g * stride + p] * values[p], for G rows.
// Positions go in blocks of 64 that stay in L1 while every row group uses
// them; the first group prefetches the next block.
template <int kHd>
void AttentionWeightedSumT(const float* probs, int64_t G, int64_t stride, const float* values, int64_t n,
                           int64_t head_dim, float* out) {
  const int64_t hd = kHd > 0 ? kHd : head_dim;
  constexpr int64_t kBlock = 64;
  std::fill(out, out + G * hd, 0.0f);
  for (int64_t p0 = 0; p0 < n; p0 += kBlock) {
    const int64_t pe = std::min(n, p0 + kBlock);
    for (int64_t g = 0; g < G;) {
      const int64_t ahead = g == 0 ? kBlock : 0;
      const float* pr = probs + g * stride;
      float* o = out + g * hd;
      if (g + 4 <= G) {
        WeightedSumRows<4, kHd>(pr, stride, values, hd, p0, pe, o, ahead, n);
        g += 4;
      } else if (g + 2 <= G) {
        WeightedSumRows<2, kHd>(pr, stride, values, hd, p0, pe, o, ahead, n);
        g += 2;
      } else {
        WeightedSumRows<1, kHd>(pr, stride, values, hd, p0, pe, o, ahead, n);
        g += 1;
      }
    }
  }
}

void AttentionWeightedSum(const float* probs, int64_t G, int64_t stride, const float* values, int64_t n,
                          int64_t hd, float* out) {
  if (hd == 64) return AttentionWeightedSumT<64>(probs, G, stride, values, n, hd, out);
  if (hd == 128) return AttentionWeightedSumT<128>(probs, G, stride, values, n, hd, out);
  AttentionWeightedSumT<0>(probs, G, stride, values, n, hd, out);
}

void Scale(float alpha, float* y, int64_t n) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const VF va = hn::Set(df, alpha);
  int64_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hn::Mul(va, hn::LoadU(df, y + i)), df, y + i);
  for (; i < n; ++i) y[i] *= alpha;
}

// Four vector maxima in flight: the scalar loop GCC made of std::max was one
// dependent maxss per element, 4.3% of a bfloat16 TinyLlama pp512 (perf, Xeon
// with AMX), as much as a sixth of the projections' tile time.
float MaxOf(const float* x, int64_t n) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  VF m0 = hn::Set(df, -INFINITY), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    m0 = hn::Max(m0, hn::LoadU(df, x + i));
    m1 = hn::Max(m1, hn::LoadU(df, x + i + L));
    m2 = hn::Max(m2, hn::LoadU(df, x + i + 2 * L));
    m3 = hn::Max(m3, hn::LoadU(df, x + i + 3 * L));
  }
  for (; i + L <= n; i += L) m0 = hn::Max(m0, hn::LoadU(df, x + i));
  float m = hn::GetLane(hn::MaxOfLanes(df, hn::Max(hn::Max(m0, m1), hn::Max(m2, m3))));
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

float ExpShiftSum(float* x, int64_t n, float max) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const VF vmax = hn::Set(df, max);
  VF vsum = hn::Zero(df);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vmax));
    hn::StoreU(e, df, x + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = ReduceSum(df, vsum);
  for (; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
  return sum;
}

template <class WT>
void RmsNormT(const float* x, const WT* w, int64_t D, float eps, float* out) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  VF ss = hn::Zero(df);
  int64_t i = 0;
  for (; i + L <= D; i += L) {
    const VF v = hn::LoadU(df, x + i);
    ss = hn::MulAdd(v, v, ss);
  }
  float sum = ReduceSum(df, ss);
  for (; i < D; ++i) sum += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(sum / static_cast<float>(D) + eps);
  const VF vinv = hn::Set(df, inv);
  for (i = 0; i + L <= D; i += L) hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), vinv), LoadW(df, w + i)), df, out + i);
  for (; i < D; ++i) out[i] = x[i] * inv * ScalarW(w + i);
}

void RmsNormRow(const float* x, const MatView& weight, float eps, float* out) {
  WithWeightType(weight.data, weight.dtype, [&](auto* wt) { RmsNormT(x, wt, weight.cols, eps, out); });
}

void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  const VF one = hn::Set(df, 1.0f);
  // Highway's Exp is valid up to +104 only (beyond, garbage: silu(-200) came
  // out as -200); from 88 on, exp(-g) is > 1e38 and silu(g) ~0 either way.
  const VF max_exponent = hn::Set(df, 88.0f);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const VF g = hn::LoadU(df, gate + i);
    const VF sig = hn::Div(one, hn::Add(one, hn::Exp(df, hn::Min(hn::Neg(g), max_exponent))));
    hn::StoreU(hn::Mul(hn::Mul(g, sig), hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void Add(float* x, const float* y, int64_t n) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hn::Add(hn::LoadU(df, x + i), hn::LoadU(df, y + i)), df, x + i);
  for (; i < n; ++i) x[i] += y[i];
}

template <class WT>
void WidenT(const WT* src, int64_t n, float* out) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(LoadW(df, src + i), df, out + i);
  for (; i < n; ++i) out[i] = ScalarW(src + i);
}

void WidenRow(const void* src, DType dtype, int64_t n, float* out) {
  if (IsQuantized(dtype)) {
    return DequantizeRow(static_cast<GgmlType>(DTypeGgmlType(dtype)), src, out, static_cast<size_t>(n));
  }
  WithWeightType(src, dtype, [&](auto* wt) { WidenT(wt, n, out); });
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

// --- Machine probes for the profiler's roofline -----------------------------

// Sum of n floats: a pure streaming read, as four interleaved streams (the
// quarters of the range, like the four weight rows a GEMV tile reads) with
// two accumulators each, or as one; with `prefetch`, a software prefetch 1 KiB
// ahead of every stream: more independent misses in flight than one sequential
// stream gets from the hardware prefetcher alone on Intel and Zen 3; on Zen 4
// the prefetches cost a third and one stream reads most, so the calibration
// takes several ways and keeps the best. `stagger_bytes`: the four streams'
// starts that far apart beyond the quarters (the quarters of a range of
// whole pages all start at one offset in their pages, which reads 4-14% less
// on the Xeon with AMX: see kStaggerBytes).
float ReadSum(const float* x, int64_t n, int streams, bool prefetch, int64_t stagger_bytes) {
  const DF df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(df));
  constexpr int64_t kAhead = 256;  // floats: 1 KiB
  VF a[8];
  for (auto& v : a) v = hn::Zero(df);
  if (streams == 1) {  // Zen 4 reads one linear stream per core fastest (as its decode GEMV does)
    const int64_t whole = n / (4 * L) * (4 * L);
    for (int64_t i = 0; i < whole; i += 4 * L) {
      if (prefetch) hwy::Prefetch(x + i + kAhead);
      a[0] = hn::Add(a[0], hn::LoadU(df, x + i));
      a[1] = hn::Add(a[1], hn::LoadU(df, x + i + L));
      a[2] = hn::Add(a[2], hn::LoadU(df, x + i + 2 * L));
      a[3] = hn::Add(a[3], hn::LoadU(df, x + i + 3 * L));
    }
    for (int j = 1; j < 4; ++j) a[0] = hn::Add(a[0], a[j]);
    float s = ReduceSum(df, a[0]);
    for (int64_t i = whole; i < n; ++i) s += x[i];
    return s;
  }
  // Stream j starts at j (quarter + skew) and reads `quarter` floats in the main loop.
  int64_t skew = stagger_bytes / static_cast<int64_t>(sizeof(float)) / (2 * L) * (2 * L);
  if (8 * skew > n) skew = 0;
  const int64_t quarter = (n - 3 * skew) / 4 / (2 * L) * (2 * L);
  const float* s0 = x;
  const float* s1 = x + quarter + skew;
  const float* s2 = x + 2 * (quarter + skew);
  const float* s3 = x + 3 * (quarter + skew);
  // What the main loop leaves: each stream's last `skew` floats, and the tail past the fourth.
  float rest = 0;
  for (const float* s : {s0, s1, s2}) {
    for (int64_t i = quarter; i < quarter + skew; ++i) rest += s[i];
  }
  for (int64_t i = 3 * (quarter + skew) + quarter; i < n; ++i) rest += x[i];
  for (int64_t i = 0; i < quarter; i += 2 * L) {
    if (prefetch) {
      hwy::Prefetch(s0 + i + kAhead);
      hwy::Prefetch(s1 + i + kAhead);
      hwy::Prefetch(s2 + i + kAhead);
      hwy::Prefetch(s3 + i + kAhead);
    }
    a[0] = hn::Add(a[0], hn::LoadU(df, s0 + i));
    a[1] = hn::Add(a[1], hn::LoadU(df, s0 + i + L));
    a[2] = hn::Add(a[2], hn::LoadU(df, s1 + i));
    a[3] = hn::Add(a[3], hn::LoadU(df, s1 + i + L));
    a[4] = hn::Add(a[4], hn::LoadU(df, s2 + i));
    a[5] = hn::Add(a[5], hn::LoadU(df, s2 + i + L));
    a[6] = hn::Add(a[6], hn::LoadU(df, s3 + i));
    a[7] = hn::Add(a[7], hn::LoadU(df, s3 + i + L));
  }
  for (int j = 1; j < 8; ++j) a[0] = hn::Add(a[0], a[j]);
  return ReduceSum(df, a[0]) + rest;
}

// Twelve independent FMA chains (enough to cover FMA latency x throughput on
// current x86 cores); returns lanes * 12 * 2 * iterations FLOPs worth of work.
float FmaPeak(int64_t iterations, float seed) {
  const DF df;
  const VF m = hn::Set(df, 0.999999f), b = hn::Set(df, 1e-7f);
  VF c[12];
  for (int j = 0; j < 12; ++j) c[j] = hn::Set(df, seed + j);
  for (int64_t i = 0; i < iterations; ++i) {
    for (int j = 0; j < 12; ++j) c[j] = hn::MulAdd(c[j], m, b);
  }
  VF s = c[0];
  for (int j = 1; j < 12; ++j) s = hn::Add(s, c[j]);
  return ReduceSum(df, s);
}

int64_t FloatLanes() { return static_cast<int64_t>(hn::Lanes(DF())); }

}  // namespace HWY_NAMESPACE
}  // namespace simd
}  // namespace llm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace llm {
namespace simd {

namespace {
std::atomic<bool> g_int8_dot{true};
std::atomic<bool> g_repack{true};
}  // namespace
void SetInt8DotEnabled(bool on) { g_int8_dot.store(on); }
bool Int8DotEnabled() { return g_int8_dot.load(std::memory_order_relaxed); }
void SetRepackEnabled(bool on) { g_repack.store(on); }
bool RepackEnabled() { return g_repack.load(std::memory_order_relaxed); }

HWY_EXPORT(GemvRows);
HWY_EXPORT(HalfXPays);
HWY_EXPORT(RoundToF16);
HWY_EXPORT(GemvRowsHalfX);
HWY_EXPORT(GemvQuantRows);
HWY_EXPORT(PackedQuantBytes);
HWY_EXPORT(GemvPackedRows);
HWY_EXPORT(QuantActivationBytes);
HWY_EXPORT(PrepareQuantActivations);
HWY_EXPORT(GemmRows);
HWY_EXPORT(GemmRowBlock);
HWY_EXPORT(GemvMaxRows);
HWY_EXPORT(AttentionScores);
HWY_EXPORT(AttentionWeightedSum);
HWY_EXPORT(Scale);
HWY_EXPORT(MaxOf);
HWY_EXPORT(ExpShiftSum);
HWY_EXPORT(RmsNormRow);
HWY_EXPORT(SiluMul);
HWY_EXPORT(Add);
HWY_EXPORT(WidenRow);
HWY_EXPORT(TargetName);
HWY_EXPORT(ReadSum);
HWY_EXPORT(FmaPeak);
HWY_EXPORT(FloatLanes);
HWY_EXPORT(Int8DotPeak);
HWY_EXPORT(Int8DotsOnVnni);
bool Int8DotsOnVnni() { return HWY_DYNAMIC_DISPATCH(Int8DotsOnVnni)(); }
double Int8DotPeak(int64_t iterations, int seed) { return HWY_DYNAMIC_DISPATCH(Int8DotPeak)(iterations, seed); }
float ReadSum(const float* x, int64_t n, int streams, bool prefetch, int64_t stagger_bytes) {
  return HWY_DYNAMIC_DISPATCH(ReadSum)(x, n, streams, prefetch, stagger_bytes);
}
float FmaPeak(int64_t iterations, float seed) { return HWY_DYNAMIC_DISPATCH(FmaPeak)(iterations, seed); }
int64_t FloatLanes() { return HWY_DYNAMIC_DISPATCH(FloatLanes)(); }

void GemvRows(const float* x, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end, const float* bias,
              float* y) {
  HWY_DYNAMIC_DISPATCH(GemvRows)(x, M, w, n_begin, n_end, bias, y);
}
bool HalfXPays() { return HWY_DYNAMIC_DISPATCH(HalfXPays)(); }
bool RoundToF16(const float* x, int64_t n, uint16_t* out) { return HWY_DYNAMIC_DISPATCH(RoundToF16)(x, n, out); }
void GemvRowsHalfX(const uint16_t* x_f16, const MatView& w, int64_t n_begin, int64_t n_end, const float* bias,
                   float* y) {
  HWY_DYNAMIC_DISPATCH(GemvRowsHalfX)(x_f16, w, n_begin, n_end, bias, y);
}
void GemvQuantRows(const float* x, const void* x_prepared, int64_t M, const MatView& w, int64_t n_begin,
                   int64_t n_end, const float* bias, float* y) {
  HWY_DYNAMIC_DISPATCH(GemvQuantRows)(x, x_prepared, M, w, n_begin, n_end, bias, y);
}
size_t PackedQuantBytes(const MatView& w) { return HWY_DYNAMIC_DISPATCH(PackedQuantBytes)(w); }
void GemvPackedRows(const void* x_prepared, int64_t M, const MatView& w, const void* packed, int64_t n_begin,
                    int64_t n_end, const float* bias, float* y, int64_t m_begin, int64_t m_end) {
  HWY_DYNAMIC_DISPATCH(GemvPackedRows)(x_prepared, M, w, packed, n_begin, n_end, bias, y, m_begin, m_end < 0 ? M : m_end);
}
namespace {
// Q4_K super-block (d, dmin, scales[12], qs[128]) or Q5_K's (d, dmin,
// scales[12], qh[32], qs[128]) of 16 rows -> the packed layout: 16 d, 16 dmin,
// one byte per row for each sub-block's scale (8 x 16) and min (8 x 16); Q5_K
// then its fifth bits; then the nibbles, 64 bytes per 4 elements c of a pair.
// Fifth bits: 64 bytes per 4 elements c of every pair, byte i of row r =
// qh[4 c + i] (bit 2 pair: element 64 pair + 4 c + i, bit 2 pair + 1: element
// 64 pair + 32 + 4 c + i). Before the nibbles, not after: pair 0 then reads
// both in one forward stream (after them, Zen 4 from memory read 14-19 GB/s,
// before 26).
void PackQ45KBlock(const uint8_t* const* rows, bool q5, uint8_t* dst) {
  const int64_t qs = q5 ? 48 : 16, nibbles = PackedK45Nibbles(q5 ? DType::kQ5_K : DType::kQ4_K);
  for (int r = 0; r < kPackedRows; ++r) {
    const uint8_t* b = rows[r];
    std::memcpy(dst + 2 * r, b, 2);
    std::memcpy(dst + 32 + 2 * r, b + 2, 2);
    for (int sub = 0; sub < 8; ++sub) ScaleMinK4(sub, b + 4, dst + 64 + 16 * sub + r, dst + 64 + 128 + 16 * sub + r);
    for (int c = 0; q5 && c < 8; ++c) std::memcpy(dst + kPackedK45FifthBits + 64 * c + 4 * r, b + 16 + 4 * c, 4);
    for (int pair = 0; pair < 4; ++pair) {
      for (int c = 0; c < 8; ++c) std::memcpy(dst + nibbles + 512 * pair + 64 * c + 4 * r, b + qs + 32 * pair + 4 * c, 4);
    }
  }
}

// Q6_K super-block (ql[128], qh[64], scales[16], d) of 16 rows -> the packed layout.
void PackQ6KBlock(const uint8_t* const* rows, uint8_t* dst) {
  for (int r = 0; r < kPackedRows; ++r) {
    const uint8_t* b = rows[r];
    std::memcpy(dst + 2 * r, b + 208, 2);
    for (int sub = 0; sub < 16; ++sub) dst[32 + 16 * sub + r] = b[192 + sub];
    uint8_t q6[256];
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, l = e % 128;
      const int lo = (b[64 * h + l % 64] >> (l < 64 ? 0 : 4)) & 0x0f;
      const int hi = (b[128 + 32 * h + l % 32] >> (2 * (l / 32))) & 3;
      q6[e] = static_cast<uint8_t>(lo | hi << 4);
    }
    for (int sub = 0; sub < 16; ++sub) {
      uint8_t* v = dst + 288 + 192 * sub + 4 * r;
      const uint8_t* e = q6 + 16 * sub;
      for (int j = 0; j < 4; ++j) {
        v[j] = static_cast<uint8_t>((e[j] & 15) | (e[4 + j] & 15) << 4);
        v[64 + j] = static_cast<uint8_t>((e[8 + j] & 15) | (e[12 + j] & 15) << 4);
        v[128 + j] = static_cast<uint8_t>(e[j] >> 4 | (e[4 + j] >> 4) << 2 | (e[8 + j] >> 4) << 4 | (e[12 + j] >> 4) << 6);
      }
    }
  }
}
}  // namespace

void PackQuantRows(const MatView& w, int64_t g_begin, int64_t g_end, void* packed) {
  if (w.dtype == DType::kQ4_K || w.dtype == DType::kQ5_K || w.dtype == DType::kQ6_K) {
    const int64_t blocks = w.cols / 256, bb = PackedBlockBytes(w.dtype);
    const size_t row_bytes = DTypeRowBytes(w.dtype, w.cols), block_bytes = DTypeRowBytes(w.dtype, 256);
    for (int64_t g = g_begin; g < g_end; ++g) {
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* rows[kPackedRows];
        for (int64_t r = 0; r < kPackedRows; ++r) {
          rows[r] = static_cast<const uint8_t*>(w.data) + (g * kPackedRows + r) * row_bytes + b * block_bytes;
        }
        uint8_t* dst = static_cast<uint8_t*>(packed) + (g * blocks + b) * bb;
        if (w.dtype == DType::kQ4_K || w.dtype == DType::kQ5_K) {
          PackQ45KBlock(rows, w.dtype == DType::kQ5_K, dst);
        } else {
          PackQ6KBlock(rows, dst);
        }
      }
    }
    return;
  }
  // 32-element blocks: d, [m], [qh (4 bytes, bit j: element j's fifth bit)], quants.
  const int words = PackedWords(w.dtype);
  const bool has_min = PackedHasMin(w.dtype), fifth = PackedHasFifthBits(w.dtype);
  const int64_t blocks = w.cols / 32, bb = PackedBlockBytes(w.dtype), block_bytes = DTypeRowBytes(w.dtype, 32);
  const int64_t quants = 2 + (has_min ? 2 : 0) + (fifth ? 4 : 0);
  const size_t row_bytes = DTypeRowBytes(w.dtype, w.cols);
  for (int64_t g = g_begin; g < g_end; ++g) {
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* dst = static_cast<uint8_t*>(packed) + (g * blocks + b) * bb;
      for (int64_t r = 0; r < kPackedRows; ++r) {
        const uint8_t* src = static_cast<const uint8_t*>(w.data) + (g * kPackedRows + r) * row_bytes + b * block_bytes;
        std::memcpy(dst + 2 * r, src, 2);
        if (has_min) std::memcpy(dst + 2 * kPackedRows + 2 * r, src + 2, 2);
        if (fifth) {
          uint32_t qh;
          std::memcpy(&qh, src + quants - 4, 4);
          for (int k = 0; k < 4; ++k) {
            uint8_t bits = 0;
            for (int c = 0; c < 4; ++c) {
              bits |= static_cast<uint8_t>(((qh >> (4 * c + k)) & 1) << (2 * c) | ((qh >> (16 + 4 * c + k)) & 1) << (2 * c + 1));
            }
            dst[PackedFifthBitsAt(w.dtype) + 4 * r + k] = bits;
          }
        }
        for (int c = 0; c < words; ++c) std::memcpy(dst + PackedWordsAt(w.dtype) + 64 * c + 4 * r, src + quants + 4 * c, 4);
      }
    }
  }
}
size_t QuantActivationBytes(int64_t M, const MatView& w) { return HWY_DYNAMIC_DISPATCH(QuantActivationBytes)(M, w); }
void PrepareQuantActivations(const float* x, int64_t M, const MatView& w, void* buffer, bool packed_w, int64_t m_begin,
                             int64_t m_end) {
  HWY_DYNAMIC_DISPATCH(PrepareQuantActivations)(x, M, w, buffer, packed_w, m_begin, m_end < 0 ? M : m_end);
}
void GemmRows(const float* x_packed, int64_t M, const MatView& w, int64_t n_begin, int64_t n_end,
              const float* bias, float* y, float* pack, int64_t ldw) {
  HWY_DYNAMIC_DISPATCH(GemmRows)(x_packed, M, w, n_begin, n_end, bias, y, pack, ldw);
}
size_t GemmPackedRowsFloats(int64_t M, int64_t K) {
  return static_cast<size_t>(GemmPaddedRows(M) * K);
}
void PackGemmRows(const float* x, int64_t M, int64_t K, int64_t k0, float* x_packed) {
  const int64_t padded_m = GemmPaddedRows(M);
  const int64_t kc = std::min(kGemmDepth, K - k0);
  float* block = x_packed + k0 * padded_m;
  for (int64_t m0 = 0; m0 < padded_m; m0 += kGemmRowGroup) {
    float* group = block + m0 * kc;
    for (int64_t i = 0; i < kGemmRowGroup; ++i) {
      const float* row = m0 + i < M ? x + (m0 + i) * K + k0 : nullptr;
      for (int64_t k = 0; k < kc; ++k) group[k * kGemmRowGroup + i] = row ? row[k] : 0.f;
    }
  }
}
// Enough for the widest x86 target (AVX-512, 16 float lanes): kPanelsPerBlock
// panels of 2 vectors x kKc. HWY_MAX_BYTES is not usable here: in this
// HWY_ONCE section it describes the baseline target, not the widest.
size_t GemmPackFloats() { return 8 * 2 * 16 * 256; }
int64_t GemmRowBlock() { return HWY_DYNAMIC_DISPATCH(GemmRowBlock)(); }
int64_t GemvMaxRows() { return HWY_DYNAMIC_DISPATCH(GemvMaxRows)(); }
void AttentionScores(const float* q, int64_t G, const float* keys, int64_t n, int64_t hd, float scale,
                     float* scores, int64_t stride) {
  HWY_DYNAMIC_DISPATCH(AttentionScores)(q, G, keys, n, hd, scale, scores, stride);
}
void AttentionWeightedSum(const float* probs, int64_t G, int64_t stride, const float* values, int64_t n,
                          int64_t hd, float* out) {
  HWY_DYNAMIC_DISPATCH(AttentionWeightedSum)(probs, G, stride, values, n, hd, out);
}
void Scale(float alpha, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(Scale)(alpha, y, n); }
float MaxOf(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(MaxOf)(x, n); }
float ExpShiftSum(float* x, int64_t n, float max) { return HWY_DYNAMIC_DISPATCH(ExpShiftSum)(x, n, max); }
void RmsNormRow(const float* x, const MatView& weight, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNormRow)(x, weight, eps, out);
}
void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(SiluMul)(gate, up, n, out);
}
void Add(float* x, const float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(Add)(x, y, n); }
void WidenRow(const void* src, DType dtype, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(WidenRow)(src, dtype, n, out);
}
const char* TargetName() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace simd
}  // namespace llm
#endif  // HWY_ONCE
