// The SIMD CPU backend against the scalar reference backend (the oracle),
// over sizes around the vector width, odd sizes, misaligned pointers and every
// weight dtype. Matmul tolerance follows the error bound of a float32 dot
// product: |err| <= c * K * eps * sum_k |x_k w_k|.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/memory_ledger.h"
#include "core/quant.h"
#include "core/thread_pool.h"
#include "hwy/targets.h"
#include "kernels/cpu/amx/amx_gemm.h"
#include "kernels/cpu/simd/cpu_kernels.h"
#include "kernels/ops.h"
#include "profiler/profiler.h"
#include "test_util.h"

namespace llm {
namespace {

constexpr double kEps = 1.1920929e-7;

// y (one row of x against N rows of W, wf as float) against y_ref within the
// float32 dot-product bound of each row's sum of |x w|.
void ExpectRowsWithinDotBound(const float* y, const float* y_ref, const float* x, const float* wf, int64_t K,
                              int64_t N, const std::string& what) {
  for (int64_t n = 0; n < N; ++n) {
    double abs_sum = 0;
    for (int64_t k = 0; k < K; ++k) abs_sum += std::fabs(x[k] * wf[n * K + k]);
    ASSERT_NEAR(y[n], y_ref[n], 2.0 * K * kEps * abs_sum + 1e-6) << what << " row " << n;
  }
}

// Every test runs once per SIMD target compiled in and supported here (e.g.
// AVX2, SSE4, SSSE3, scalar), so the fallbacks a CPU without AVX2 would take
// are checked too.
class KernelsTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override {
    if (!(hwy::SupportedTargets() & GetParam())) {
      GTEST_SKIP() << hwy::TargetName(GetParam()) << " is compiled in but this CPU cannot run it";
    }
    // The Highway targets' own paths; the AMX and AVX512-BF16 paths have their tests below.
    amx::SetAmxEnabled(false);
    amx::SetBf16DotsMode(amx::DotsMode::kOff);
    // Decode with float32 x; float16 x (--decode-x auto on AMD AVX-512) has its own test.
    SetCpuDecodeX(DecodeX::kFloat32);
    hwy::SetSupportedTargetsForTest(GetParam());
    ASSERT_STREQ(CpuSimdTargetName(), hwy::TargetName(GetParam())) << "dispatch did not switch target";
  }
  void TearDown() override {
    if (IsSkipped()) return;
    hwy::SetSupportedTargetsForTest(0);
    amx::SetAmxEnabled(true);
    amx::SetBf16DotsMode(amx::DotsMode::kAuto);
    SetCpuDecodeX(DecodeX::kAuto);
  }
  std::vector<float> Random(size_t n, float scale = 1.0f) {
    std::vector<float> v(n);
    std::normal_distribution<float> d(0.0f, scale);
    for (auto& x : v) x = d(rng_);
    return v;
  }
  // Weights stored in `dtype`, preceded by `offset` elements to misalign them.
  std::vector<uint8_t> Store(const std::vector<float>& w, DType dtype, int offset) {
    std::vector<uint8_t> bytes((w.size() + offset) * DTypeSize(dtype) + 64);
    ConvertFloats(w.data(), DType::kF32, bytes.data() + offset * DTypeSize(dtype), dtype, w.size());
    return bytes;
  }
  // The CPU backend's causal attention against the reference on random q, K, V.
  void ExpectAttentionMatchesReference(int tokens, int start, int heads, int kv_heads, int capacity, int hd) {
    auto k = Random(kv_heads * capacity * hd);
    auto v = Random(kv_heads * capacity * hd);
    auto q = Random(tokens * heads * hd);
    AttentionArgs args =
        testing::MakeAttentionArgs(q.data(), k.data(), v.data(), kv_heads, capacity, hd, tokens, start, heads);
    std::vector<float> a(tokens * heads * hd), b(tokens * heads * hd);
    args.out = a.data();
    ref_->Attention(args);
    args.out = b.data();
    cpu_->Attention(args);
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_NEAR(b[i], a[i], 2e-5) << "tokens " << tokens << " start " << start << " hd " << hd << " kv " << kv_heads
                                    << " i " << i;
    }
  }
  std::mt19937 rng_{123};
  ThreadPool pool_{2};
  std::unique_ptr<KernelBackend> ref_ = MakeReferenceBackend();
  std::unique_ptr<KernelBackend> cpu_ = MakeCpuBackend(&pool_);
};

TEST_P(KernelsTest, MatMulMatchesReferenceOverShapesDtypesAndAlignment) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    // 2 .. 63: the batched GEMV (tiles of 2 or 4 rows and their remainders); 64, 100: the GEMM, 100 with
    // two row blocks, the last group partial.
    for (int64_t M : {1, 2, 3, 4, 5, 6, 7, 13, 63, 64, 100}) {
      for (int64_t K : {1, 7, 8, 9, 16, 17, 33, 257, 300}) {
        for (int64_t N : {1, 3, 4, 5, 17, 33, 130}) {
          for (int offset : {0, 1}) {
            const bool with_bias = (M + K + N) % 2 == 0;
            auto wf = Random(N * K);
            auto bytes = Store(wf, dtype, offset);
            const MatView w{bytes.data() + offset * DTypeSize(dtype), dtype, N, K};
            std::vector<float> xbuf = Random(M * K + offset);
            const float* x = xbuf.data() + offset;
            auto bias = Random(N);
            std::vector<float> y_ref(M * N), y(M * N);
            ref_->MatMul(x, M, w, with_bias ? bias.data() : nullptr, y_ref.data());
            cpu_->MatMul(x, M, w, with_bias ? bias.data() : nullptr, y.data());
            for (int64_t m = 0; m < M; ++m) {
              ExpectRowsWithinDotBound(y.data() + m * N, y_ref.data() + m * N, x + m * K, wf.data(), K, N,
                                       std::string("MatMul ") + DTypeName(dtype) + " M=" + std::to_string(M) +
                                           " K=" + std::to_string(K) + " N=" + std::to_string(N) +
                                           " offset=" + std::to_string(offset) + " x row " + std::to_string(m));
            }
          }
        }
      }
    }
  }
}

// Decode (one to five rows of x) at depths of whole 32-element steps, where
// AVX-512 Intel CPUs read each task's four row quarters as staggered linear
// streams (QuarterDots; up to four rows of x in one pass): quarters of 1 row
// up to hundreds, ranges shorter and longer than the streams' stagger, with
// and without bias.
TEST_P(KernelsTest, DecodeOfWholeStepRowsMatchesReference) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (int64_t M : {1, 2, 3, 4, 5}) {
      for (int64_t K : {32, 64, 96, 256, 2048}) {
        for (int64_t N : {4, 7, 64, 130, 1000}) {
          const bool with_bias = N % 2 == 0;
          auto wf = Random(N * K);
          auto bytes = Store(wf, dtype, 0);
          const MatView w{bytes.data(), dtype, N, K};
          auto x = Random(M * K);
          auto bias = Random(N);
          std::vector<float> y_ref(M * N), y(M * N, -1e30f);
          ref_->MatMul(x.data(), M, w, with_bias ? bias.data() : nullptr, y_ref.data());
          cpu_->MatMul(x.data(), M, w, with_bias ? bias.data() : nullptr, y.data());
          for (int64_t m = 0; m < M; ++m) {
            ExpectRowsWithinDotBound(y.data() + m * N, y_ref.data() + m * N, x.data() + m * K, wf.data(), K, N,
                                     std::string(DTypeName(dtype)) + " M=" + std::to_string(M) + " x row " +
                                         std::to_string(m) + " K=" + std::to_string(K) + " N=" + std::to_string(N));
          }
        }
      }
    }
  }
}

// The read probe sums every element once, whatever the way: one stream or
// four, with or without prefetches, the four in step or out of step.
TEST_P(KernelsTest, ReadProbeSumsEveryElementOnce) {
  for (int64_t n : std::vector<int64_t>{1, 31, 100, 1000, 4099, 100003, int64_t{1} << 20}) {
    std::vector<float> x(n);
    double want = 0;
    for (int64_t i = 0; i < n; ++i) want += x[i] = static_cast<float>(i % 7 + 1);  // integer sums: exact in float
    for (int streams : {1, 4}) {
      for (bool prefetch : {false, true}) {
        for (int64_t stagger : {0, 512, 4096}) {
          EXPECT_EQ(simd::ReadSum(x.data(), n, streams, prefetch, stagger), want)
              << "n=" << n << " streams=" << streams << " prefetch=" << prefetch << " stagger=" << stagger;
        }
      }
    }
  }
}

TEST_P(KernelsTest, RmsNormMatchesReference) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (int64_t D : {1, 7, 8, 9, 60, 257}) {
      const int64_t M = 3;
      auto wf = Random(D);
      auto bytes = Store(wf, dtype, 0);
      const MatView w{bytes.data(), dtype, 1, D};
      auto x = Random(M * D, 3.0f);
      std::vector<float> a(M * D), b(M * D);
      ref_->RmsNorm(x.data(), w, 1e-5f, M, a.data());
      cpu_->RmsNorm(x.data(), w, 1e-5f, M, b.data());
      for (int64_t i = 0; i < M * D; ++i) ASSERT_NEAR(b[i], a[i], 1e-5 * (1 + std::fabs(a[i]))) << "D=" << D << " i=" << i;
    }
  }
}

TEST_P(KernelsTest, RopeMatchesReference) {
  const int heads = 3, hd = 12, positions = 40, half = hd / 2;
  std::vector<float> cos_t(positions * half), sin_t(positions * half);
  for (int p = 0; p < positions; ++p) {
    for (int i = 0; i < half; ++i) {
      cos_t[p * half + i] = std::cos(p * 0.1f * (i + 1));
      sin_t[p * half + i] = std::sin(p * 0.1f * (i + 1));
    }
  }
  // 5 rows from position 31 (one thread), 37 from position 3 (rows split over the threads).
  for (auto [rows, start] : {std::pair{5, 31}, std::pair{37, 3}}) {
    auto x = Random(rows * heads * hd);
    auto a = x, b = x;
    ref_->Rope(a.data(), rows, heads, hd, start, cos_t.data(), sin_t.data());
    cpu_->Rope(b.data(), rows, heads, hd, start, cos_t.data(), sin_t.data());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(b[i], a[i], 1e-6) << "rows " << rows << " at " << i;
  }
}

// Decode (one token) over long caches: key blocks of four and value blocks of
// 64 positions with ragged ends, head sizes with and without a vector tail.
TEST_P(KernelsTest, DecodeAttentionOverLongCachesMatchesReference) {
  for (int hd : {12, 64, 128}) {
    for (int pos : {0, 3, 63, 64, 65, 200, 255}) {
      ASSERT_NO_FATAL_FAILURE(ExpectAttentionMatchesReference(1, pos, 8, 2, 256, hd));
    }
  }
}

TEST_P(KernelsTest, AttentionMatchesReferenceWithGqaAndCausalMask) {
  // 9 query tokens take the per-row path, 40 the fused GEMM path used for prefill.
  for (int tokens : {9, 40}) {
    for (int hd : {8, 12, 64}) {
      for (int kv_heads : {1, 2}) ASSERT_NO_FATAL_FAILURE(ExpectAttentionMatchesReference(tokens, 17, 4, kv_heads, 64, hd));
    }
  }
  // 200 tokens of 8 heads over 2 KV heads: 800 rows per KV head, three blocks
  // of query rows (the last partial), each with its own causal prefix.
  ASSERT_NO_FATAL_FAILURE(ExpectAttentionMatchesReference(200, 17, 8, 2, 256, 64));
  // One head per KV head: blocks of at most 192 tokens (two here, the second partial).
  ASSERT_NO_FATAL_FAILURE(ExpectAttentionMatchesReference(250, 3, 2, 2, 256, 16));
}

// K/V rows into the cache: a prompt chunk (16+ tokens, one task per KV head
// and K or V) and decode's few rows land where token t of head h belongs,
// position start + t of head h, in the reference and the SIMD backend alike,
// and nothing else in the cache changes.
TEST_P(KernelsTest, KvWriteMatchesReference) {
  for (int64_t tokens : {1, 15, 16, 40}) {
    for (int kv_heads : {1, 3}) {
      for (int hd : {8, 64}) {
        for (int start : {0, 7}) {
          const int capacity = 64;
          const auto k = Random(static_cast<size_t>(tokens) * kv_heads * hd);
          const auto v = Random(k.size());
          const size_t cache_elems = static_cast<size_t>(kv_heads) * capacity * hd;
          std::vector<float> k_want(cache_elems, -7.f), v_want(cache_elems, -7.f);
          for (int64_t t = 0; t < tokens; ++t) {
            for (int h = 0; h < kv_heads; ++h) {
              for (int d = 0; d < hd; ++d) {
                const size_t at = (static_cast<size_t>(h) * capacity + start + t) * hd + d;
                k_want[at] = k[(t * kv_heads + h) * hd + d];
                v_want[at] = v[(t * kv_heads + h) * hd + d];
              }
            }
          }
          for (KernelBackend* backend : {ref_.get(), cpu_.get()}) {
            std::vector<float> k_got(cache_elems, -7.f), v_got(cache_elems, -7.f);
            backend->KvWrite(k.data(), v.data(), tokens,
                             KvCacheView{k_got.data(), v_got.data(), kv_heads, capacity, hd}, start);
            const char* name = backend == ref_.get() ? "reference" : "SIMD";
            ASSERT_EQ(k_got, k_want) << name << ", " << tokens << " tokens, " << kv_heads << " KV heads, hd " << hd
                                     << ", start " << start;
            ASSERT_EQ(v_got, v_want) << name << ", " << tokens << " tokens, " << kv_heads << " KV heads, hd " << hd
                                     << ", start " << start;
          }
        }
      }
    }
  }
}

// The softmax's row maximum (vector accumulators and a scalar tail): exact,
// wherever the maximum sits, for every length around the vector widths.
TEST_P(KernelsTest, MaxOfFindsTheMaximumWhereverItIs) {
  EXPECT_EQ(simd::MaxOf(nullptr, 0), -INFINITY);
  for (int64_t n : {1, 2, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 257, 1000}) {
    auto x = Random(static_cast<size_t>(n));
    for (auto& v : x) v -= 10.0f;  // all negative: a zero-initialised maximum would be wrong
    for (int64_t at : {int64_t{0}, n / 3, n / 2, n - 1}) {
      std::vector<float> y = x;
      y[at] = -1.5f;
      float want = -INFINITY;
      for (float v : y) want = std::max(want, v);
      ASSERT_EQ(simd::MaxOf(y.data(), n), want) << "n=" << n << " max at " << at;
    }
  }
}

TEST_P(KernelsTest, ElementwiseAndEmbeddingMatchReference) {
  for (size_t n : {1, 7, 8, 9, 100, 4097}) {
    auto g = Random(n, 4.0f), u = Random(n);
    std::vector<float> a(n), b(n);
    ref_->SiluMul(g.data(), u.data(), n, a.data());
    cpu_->SiluMul(g.data(), u.data(), n, b.data());
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR(b[i], a[i], 1e-5 * (1 + std::fabs(a[i]))) << i;
    // Gates far below zero (exp(-g) past float's range: silu -> 0) and far above (silu -> g).
    for (size_t i = 0; i < n; ++i) g[i] = (i % 2 ? -1.0f : 1.0f) * (80.0f + 40.0f * static_cast<float>(i % 7));
    ref_->SiluMul(g.data(), u.data(), n, a.data());
    cpu_->SiluMul(g.data(), u.data(), n, b.data());
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR(b[i], a[i], 1e-5 * (1 + std::fabs(a[i]))) << "g=" << g[i];
    auto x1 = Random(n), x2 = x1, y = Random(n);
    ref_->Add(x1.data(), y.data(), n);
    cpu_->Add(x2.data(), y.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(x1[i], x2[i]);
  }
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    auto table = Random(10 * 13);
    auto bytes = Store(table, dtype, 0);
    const MatView t{bytes.data(), dtype, 10, 13};
    const int32_t ids[3] = {9, 0, 4};
    std::vector<float> a(3 * 13), b(3 * 13);
    ref_->Embedding(t, ids, 3, a.data());
    cpu_->Embedding(t, ids, 3, b.data());
    EXPECT_EQ(a, b);
  }
}

// Every target compiled into the binary: those this CPU lacks show as "not
// run" with the reason, so a machine of each kind reports what it covered.
std::vector<int64_t> CompiledTargets() {
  std::vector<int64_t> targets;
  const uint64_t compiled = static_cast<uint64_t>(HWY_TARGETS | HWY_SCALAR);
  for (uint64_t bit = 1; bit != 0; bit <<= 1) {  // unsigned: the shift past bit 63 ends the loop
    if (compiled & bit) targets.push_back(static_cast<int64_t>(bit));
  }
  return targets;
}

// Random rows of a block-quantized type: random quant bytes, with every f16
// scale field set to a random small normal value (random bits there would be
// NaN or Inf), in each type's block layout (ggml-common.h).
std::vector<uint8_t> RandomQuantRows(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  const size_t row_bytes = DTypeRowBytes(t, cols);
  std::vector<uint8_t> bytes(rows * row_bytes + 64);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  const GgmlTypeInfo* info = GgmlTypeInfoOf(DTypeGgmlType(t));
  int half_offsets[2];
  const int num_halves = GgmlHalfFieldOffsets(static_cast<GgmlType>(DTypeGgmlType(t)), half_offsets);
  std::uniform_real_distribution<float> scale(1e-3f, 2e-2f);
  for (size_t blk = 0; blk < bytes.size() / info->type_size; ++blk) {
    for (int f = 0; f < num_halves; ++f) {
      const int off = half_offsets[f];
      const uint16_t h = F32ToF16(scale(rng) * ((rng() & 1) ? 1 : -1));
      std::memcpy(bytes.data() + blk * info->type_size + off, &h, 2);
    }
  }
  return bytes;
}

// x rounded as the int8 decode path quantizes it (per 32: d = amax / 127 in
// float32, q = x / d rounded to nearest even), back in float: x-hat = q d.
std::vector<float> Int8RoundTrip(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0;
    for (size_t k = b; k < b + 32; ++k) amax = std::max(amax, std::fabs(x[k]));
    const float d = amax / 127.f, id = d > 0 ? 1.f / d : 0.f;
    for (size_t k = b; k < b + 32; ++k) out[k] = std::nearbyint(x[k] * id) * d;
  }
  return out;
}

// Quantized matmuls (decode reads the blocks; prefill dequantizes panels for
// the GEMM) against the reference's float64 dequantization, over batch sizes
// on both paths, on every target. Where decode quantizes x to int8 (AVX-512
// VNNI), the reference gets the same rounded x: the kernel must then match
// it as tightly as the float path does, and the float x within the rounding.
TEST_P(KernelsTest, QuantizedMatMulMatchesReferenceDequantization) {
  int packed_cases = 0, packed_prefill = 0;
  std::map<DType, int> packed_by_type, int8_by_type;
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ4_K, DType::kQ5_K,
                  DType::kQ6_K}) {
    const int64_t block = DTypeBlockSize(t);
    for (int64_t M : {1, 2, 3, 5, 13, 64, 100}) {
      for (int64_t K : {block, 3 * block, 9 * block}) {
        // N = 16, 80: whole 16-row groups, which PrepareWeights repacks for
        // the VNNI decode kernel (Q4_0, Q8_0; 80 = a 4-group tile and one more).
        for (int64_t N : {1, 5, 16, 33, 80}) {
          auto bytes = RandomQuantRows(t, N, K, rng_);
          const MatView w{bytes.data(), t, N, K};
          cpu_->PrepareWeights(w);
          packed_cases += simd::PackedQuantBytes(w) > 0 && M < simd::GemvMaxRows();
          packed_by_type[t] += simd::PackedQuantBytes(w) > 0;
          std::vector<float> wf(N * K);
          for (int64_t n = 0; n < N; ++n) {
            DequantizeRow(static_cast<GgmlType>(DTypeGgmlType(t)), bytes.data() + n * DTypeRowBytes(t, K),
                          wf.data() + n * K, K);
          }
          const auto x = Random(M * K);
          // Decode quantizes x where the target has int8 dot products; prefill on W
          // repacked for VNNI does too (MatMulUnit says so).
          const bool int8_x = M < simd::GemvMaxRows() ? simd::QuantActivationBytes(M, w) > 0
                                                      : cpu_->MatMulUnit(M, w) == ComputeUnit::kInt8Vnni;
          packed_prefill += M >= simd::GemvMaxRows() && int8_x;
          int8_by_type[t] += int8_x;
          const auto x_ref = int8_x ? Int8RoundTrip(x) : x;
          const auto bias = Random(N);
          const bool with_bias = (M + N) % 2 == 0;
          std::vector<float> y_ref(M * N), y_float(M * N), y(M * N, std::nanf(""));
          ref_->MatMul(x_ref.data(), M, w, with_bias ? bias.data() : nullptr, y_ref.data());
          ref_->MatMul(x.data(), M, w, with_bias ? bias.data() : nullptr, y_float.data());
          cpu_->MatMul(x.data(), M, w, with_bias ? bias.data() : nullptr, y.data());
          for (int64_t m = 0; m < M; ++m) {
            for (int64_t n = 0; n < N; ++n) {
              double abs_sum = 0, rounding = 0;
              for (int64_t k = 0; k < K; ++k) {
                abs_sum += std::fabs(x_ref[m * K + k] * wf[n * K + k]);
                rounding += std::fabs(static_cast<double>(x[m * K + k]) - x_ref[m * K + k]) * std::fabs(wf[n * K + k]);
              }
              ASSERT_NEAR(y[m * N + n], y_ref[m * N + n], 2.0 * K * kEps * abs_sum + 1e-6)
                  << DTypeName(t) << " M=" << M << " K=" << K << " N=" << N << " at (" << m << ", " << n << ")"
                  << (int8_x ? " (int8 x)" : "");
              ASSERT_NEAR(y[m * N + n], y_float[m * N + n], rounding + 2.0 * K * kEps * abs_sum + 1e-6)
                  << DTypeName(t) << " M=" << M << " K=" << K << " N=" << N;
            }
          }
          cpu_->ReleaseWeights(w);
        }
      }
    }
    // A quantized embedding table (GGUF token_embd) widens rows exactly.
    auto table = RandomQuantRows(t, 7, block, rng_);
    const MatView tv{table.data(), t, 7, block};
    const int32_t ids[] = {6, 0, 3};
    std::vector<float> a(3 * block), b(3 * block);
    ref_->Embedding(tv, ids, 3, a.data());
    cpu_->Embedding(tv, ids, 3, b.data());
    EXPECT_EQ(a, b) << DTypeName(t);
  }
  if (GetParam() == HWY_AVX2 || GetParam() == HWY_AVX3) {  // the one-block int8 kernels (VPMADDUBSW)
    for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ4_K, DType::kQ6_K}) {
      EXPECT_GT(int8_by_type[t], 0) << DTypeName(t) << " never ran on int8 x";
    }
  }
  if (GetParam() == HWY_AVX3_DL && simd::Int8DotsOnVnni()) {
    EXPECT_GT(packed_cases, 0) << "the packed kernel never ran";
    for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ4_K, DType::kQ5_K,
                    DType::kQ6_K}) {
      EXPECT_GT(packed_by_type[t], 0) << "the packed " << DTypeName(t) << " kernel never ran";
    }
    EXPECT_GT(packed_prefill, 0) << "prefill on the packed kernel never ran";
  }
}

// Decode (one row of x, or a batch of 3) of float W on the GEMV: q, k and v
// in one parallel region, and gate and up with silu(g) * u in one, against
// the same backend's MatMul of each matrix and silu in double. Widths below
// one task; float32 and float16 x. Quantized W stays one region per matrix.
TEST_P(KernelsTest, FusedProjectionsOnGemvMatchMatMul) {
  struct Matrix {
    std::vector<uint8_t> bytes;
    std::vector<float> values;  // dequantized
    MatView view;
  };
  const auto make = [&](DType t, int64_t N, int64_t K) {
    Matrix m;
    if (IsQuantized(t)) {
      m.bytes = RandomQuantRows(t, N, K, rng_);
      m.values.resize(N * K);
      for (int64_t n = 0; n < N; ++n) {
        DequantizeRow(static_cast<GgmlType>(DTypeGgmlType(t)), m.bytes.data() + n * DTypeRowBytes(t, K),
                      m.values.data() + n * K, K);
      }
    } else {
      m.values = Random(N * K);
      m.bytes = Store(m.values, t, 0);
    }
    m.view = MatView{m.bytes.data(), t, N, K};
    cpu_->PrepareWeights(m.view);
    return m;
  };
  for (DecodeX mode : {DecodeX::kFloat32, DecodeX::kFloat16}) {
    SetCpuDecodeX(mode);
    for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
      for (int64_t K : {7, 64, 300}) {
        for (int64_t M : {1, 3}) {
          for (const std::vector<int64_t>& widths : {std::vector<int64_t>{300, 17, 33}, {320, 32, 48}}) {
            std::vector<Matrix> ws;
            for (int64_t N : widths) ws.push_back(make(t, N, K));
            ws.push_back(make(t, widths[0], K));  // up, beside gate = ws[0]
            const auto x = Random(M * K);
            std::vector<std::vector<float>> bias(3), y(3), y_one(4);
            MatView views[3];
            const float* biases[3];
            float* outs[3];
            for (int i = 0; i < 4; ++i) {
              const int64_t N = ws[i].view.rows;
              if (i < 3) {
                views[i] = ws[i].view;
                bias[i] = Random(N);
                biases[i] = i == 1 ? nullptr : bias[i].data();
                y[i].assign(M * N, std::nanf(""));
                outs[i] = y[i].data();
              }
              y_one[i].resize(M * N);
              cpu_->MatMul(x.data(), M, ws[i].view, i < 3 ? biases[i] : nullptr, y_one[i].data());
            }
            ASSERT_TRUE(cpu_->FusesSameX(M, views[0])) << DTypeName(t) << " M=" << M;
            ASSERT_TRUE(cpu_->FusesGateUpSilu(M, views[0])) << DTypeName(t) << " M=" << M;
            cpu_->MatMulSameX(x.data(), M, views, biases, outs, 3);
            std::vector<float> silu_out(M * widths[0], std::nanf(""));
            cpu_->GateUpSilu(x.data(), M, views[0], ws[3].view, biases[0], nullptr, silu_out.data());
            const auto tol = [&](int i, int64_t m, int64_t n) {
              double abs_sum = 0;
              for (int64_t k = 0; k < K; ++k) abs_sum += std::fabs(x[m * K + k] * ws[i].values[n * K + k]);
              return 2.0 * K * kEps * abs_sum + 1e-6;
            };
            for (int i = 0; i < 3; ++i) {
              const int64_t N = widths[i];
              for (int64_t m = 0; m < M; ++m) {
                for (int64_t n = 0; n < N; ++n) {
                  ASSERT_NEAR(y[i][m * N + n], y_one[i][m * N + n], tol(i, m, n))
                      << DTypeName(t) << " K=" << K << " M=" << M << " matrix " << i << " at (" << m << ", " << n << ")";
                }
              }
            }
            const int64_t F = widths[0];
            for (int64_t m = 0; m < M; ++m) {
              for (int64_t n = 0; n < F; ++n) {
                const double g = y_one[0][m * F + n], u = y_one[3][m * F + n];
                const double silu = g / (1.0 + std::exp(-g)), want = silu * u;
                const double bound = 1.1 * tol(0, m, n) * std::fabs(u) + std::fabs(silu) * tol(3, m, n) +
                                     1e-5 * std::fabs(want) + 1e-6;
                ASSERT_NEAR(silu_out[m * F + n], want, bound)
                    << DTypeName(t) << " K=" << K << " M=" << M << " at (" << m << ", " << n << ")";
              }
            }
            for (const Matrix& w : ws) cpu_->ReleaseWeights(w.view);
          }
        }
      }
    }
  }
  // Quantized W, and from GemvMaxRows rows of x (the GEMM's paths): unfused.
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K}) {
    const Matrix q = make(t, 32, DTypeBlockSize(t));
    EXPECT_FALSE(cpu_->FusesSameX(1, q.view)) << DTypeName(t);
    cpu_->ReleaseWeights(q.view);
  }
  const auto w = Random(64 * 32);
  EXPECT_FALSE(cpu_->FusesSameX(simd::GemvMaxRows(), MatView{w.data(), DType::kF32, 64, 32}));
}

// ReserveWeights: a model's repacked matrices share one allocation (huge
// pages), hold exactly what they did alone, give the same decode bit for bit,
// and leave nothing in the ledger once released; a matrix the reservation has
// no room for gets its own buffer.
TEST_P(KernelsTest, ReservedWeightsShareOneAllocationAndDecodeAlike) {
  const std::vector<std::pair<DType, std::pair<int64_t, int64_t>>> shapes = {
      {DType::kQ4_0, {16, 64}}, {DType::kQ4_K, {80, 256}}, {DType::kQ5_K, {48, 512}}, {DType::kQ6_K, {32, 512}},
      {DType::kQ4_1, {32, 96}}, {DType::kQ5_0, {16, 160}}, {DType::kQ5_1, {64, 32}}, {DType::kQ8_0, {48, 96}}};
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<MatView> views;
  size_t need = 0;
  for (const auto& [t, nk] : shapes) {
    bytes.push_back(RandomQuantRows(t, nk.first, nk.second, rng_));
    views.push_back(MatView{bytes.back().data(), t, nk.first, nk.second});
    need += cpu_->PrepareWeightsBytes(views.back());
  }
  const size_t first_bytes = cpu_->PrepareWeightsBytes(views[0]);
  if (need == 0) {  // this target keeps quantized W row-major (no VNNI): nothing is held
    const int64_t before = MemoryLedger::Get().current(MemCategory::kWeights);
    cpu_->ReserveWeights(need);
    for (const MatView& w : views) cpu_->PrepareWeights(w);
    EXPECT_EQ(cpu_->prepared_weight_bytes(), 0u);
    EXPECT_EQ(MemoryLedger::Get().current(MemCategory::kWeights), before);
    for (const MatView& w : views) cpu_->ReleaseWeights(w);
    return;
  }
  ThreadPool alone_pool(2);
  auto alone = MakeCpuBackend(&alone_pool);  // each matrix in its own buffer
  for (const MatView& w : views) alone->PrepareWeights(w);
  const int64_t before = MemoryLedger::Get().current(MemCategory::kWeights);
  // One matrix short: the last one does not fit and is allocated alone.
  const size_t last_size = cpu_->PrepareWeightsBytes(views.back());
  cpu_->ReserveWeights(need - last_size);
  for (const MatView& w : views) cpu_->PrepareWeights(w);
  EXPECT_EQ(cpu_->prepared_weight_bytes(), need);
  EXPECT_EQ(cpu_->prepared_weight_bytes(), alone->prepared_weight_bytes());
  EXPECT_EQ(MemoryLedger::Get().current(MemCategory::kWeights) - before, static_cast<int64_t>(need));
  for (const MatView& w : views) {
    const auto x = Random(w.cols);
    std::vector<float> a(w.rows), b(w.rows);
    alone->MatMul(x.data(), 1, w, nullptr, a.data());
    cpu_->MatMul(x.data(), 1, w, nullptr, b.data());
    EXPECT_EQ(a, b) << DTypeName(w.dtype);
  }
  // Prepared twice, released twice; the arena goes with the last of its
  // matrices. While views[0] is held, the whole arena is (shared, all but the
  // last matrix) and the last matrix's own buffer is not: per-matrix buffers
  // would leave first_bytes.
  cpu_->PrepareWeights(views[0]);
  for (const MatView& w : views) cpu_->ReleaseWeights(w);
  EXPECT_EQ(cpu_->prepared_weight_bytes(), first_bytes);
  EXPECT_EQ(MemoryLedger::Get().current(MemCategory::kWeights) - before, static_cast<int64_t>(need - last_size));
  cpu_->ReleaseWeights(views[0]);
  EXPECT_EQ(cpu_->prepared_weight_bytes(), 0u);
  EXPECT_EQ(MemoryLedger::Get().current(MemCategory::kWeights), before);
  // A reservation larger than what is prepared: released with its last matrix
  // (nothing else may keep it).
  cpu_->ReserveWeights(need + 4096);
  cpu_->PrepareWeights(views[1]);
  EXPECT_EQ(MemoryLedger::Get().current(MemCategory::kWeights) - before, static_cast<int64_t>(need + 4096));
  cpu_->ReleaseWeights(views[1]);
  EXPECT_EQ(MemoryLedger::Get().current(MemCategory::kWeights), before);
  for (const MatView& w : views) alone->ReleaseWeights(w);
}

// --decode-x float16 (and auto where CpuDecodeHalfX): one row of a float16 or
// bfloat16 matmul with x rounded to float16, one W row after the other;
// against the reference on the same rounded x, the float32 dot-product bound,
// over the 4-chain body, 16-lane steps and scalar tails. Where some |x| does
// not fit float16 (past 65504, NaN) the matmul keeps float32 x. TearDown
// restores the default.
TEST_P(KernelsTest, DecodeWithFloat16XMatchesReferenceOnRoundedInputs) {
  std::mt19937 rng(12);
  std::normal_distribution<float> d(0.0f, 1.0f);
  ThreadPool pool(2);
  auto ref = MakeReferenceBackend();
  auto cpu = MakeCpuBackend(&pool);
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    for (int64_t K : {1, 7, 15, 16, 17, 63, 64, 65, 300, 2100, 5632, 8193}) {  // 8193: four rows at a time
      for (int64_t N : {1, 5, 33}) {
        for (int offset : {0, 1}) {
          const bool with_bias = (K + N + offset) % 2 == 0;
          std::vector<float> wf(N * K), x(K), bias(N);
          for (auto& v : wf) v = d(rng);
          for (auto& v : x) v = d(rng) * 100.f;
          for (auto& v : bias) v = d(rng);
          std::vector<uint16_t> wb(N * K + offset), xh(K);
          ConvertFloats(wf.data(), DType::kF32, wb.data() + offset, dtype, wf.size());
          ConvertFloats(wb.data() + offset, dtype, wf.data(), DType::kF32, wf.size());
          std::vector<float> x_rounded(K);
          ConvertFloats(x.data(), DType::kF32, xh.data(), DType::kF16, x.size());
          ConvertFloats(xh.data(), DType::kF16, x_rounded.data(), DType::kF32, x.size());
          const MatView w{wb.data() + offset, dtype, N, K};
          // One |x| past float16's range: float32 x instead (the reference on x as is).
          std::vector<float> x_big = x;
          x_big[K / 2] = 70000.f;
          for (const auto& [input, expected_x] :
               {std::pair<const std::vector<float>*, const std::vector<float>*>{&x, &x_rounded}, {&x_big, &x_big}}) {
            std::vector<float> y_ref(N), y(N, std::nanf(""));
            SetCpuDecodeX(DecodeX::kFloat16);
            ref->MatMul(expected_x->data(), 1, w, with_bias ? bias.data() : nullptr, y_ref.data());
            cpu->MatMul(input->data(), 1, w, with_bias ? bias.data() : nullptr, y.data());
            for (int64_t n = 0; n < N; ++n) {
              double abs_sum = 0;
              for (int64_t k = 0; k < K; ++k) abs_sum += std::fabs((*expected_x)[k] * wf[n * K + k]);
              ASSERT_NEAR(y[n], y_ref[n], 2.0 * K * kEps * abs_sum + 1e-6)
                  << DTypeName(dtype) << " K=" << K << " N=" << N << " offset=" << offset << " row " << n
                  << (input == &x_big ? " (|x| past float16: float32 x)" : "");
            }
          }
        }
      }
    }
  }
}

// The rounding itself: nearest-even float16 of every element, and false
// where some |x| exceeds 65504 or is NaN (65504 itself fits).
TEST_P(KernelsTest, RoundToF16RoundsAndRefusesWhatDoesNotFit) {
  for (int64_t n : {1, 15, 16, 17, 100}) {
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = (i % 2 ? -1.f : 1.f) * (0.1f + 37.3f * i) * (i == n - 1 ? 1.f : 1.0001f);
    x[0] = 65504.f;
    std::vector<uint16_t> out(n);
    // Exact ties (1 + 2^-11 rounds down to even 1.0, 1 + 3 * 2^-11 up), a
    // subnormal float16 and one below its range, where n has room.
    const float specials[] = {1.f + 0x1p-11f, 1.f + 3 * 0x1p-11f, 1e-6f, 3e-8f, -0x1p-25f};
    for (int64_t i = 1; i < n && i <= 5; ++i) x[i] = specials[i - 1];
    ASSERT_TRUE(simd::RoundToF16(x.data(), n, out.data())) << n;
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(out[i], F32ToF16(x[i])) << "n=" << n << " i=" << i;
    if (n > 2) {
      EXPECT_EQ(out[1], 0x3c00) << "tie to even: 1.0";
      EXPECT_EQ(out[2], 0x3c02) << "tie to even: up";
    }
    for (float bad : {65536.f, -70000.f, std::nanf(""), INFINITY}) {
      for (int64_t at : {int64_t{0}, n - 1}) {
        std::vector<float> y = x;
        y[at] = bad;
        EXPECT_FALSE(simd::RoundToF16(y.data(), n, out.data())) << "n=" << n << " at " << at << " value " << bad;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, KernelsTest, ::testing::ValuesIn(CompiledTargets()),
                         [](const ::testing::TestParamInfo<int64_t>& info) { return hwy::TargetName(info.param); });

// The reference and the CPU backend on two threads, and normal(0, 1) draws,
// for the matrix-unit tests.
struct RefAndCpu {
  explicit RefAndCpu(unsigned seed) : rng(seed) {}
  float Normal() { return normal(rng); }
  std::mt19937 rng;
  std::normal_distribution<float> normal{0.0f, 1.0f};
  ThreadPool pool{2};
  std::unique_ptr<KernelBackend> ref = MakeReferenceBackend();
  std::unique_ptr<KernelBackend> cpu = MakeCpuBackend(&pool);
};

// v rounded to bfloat16 (nearest even) in place; returns the bf16 bits.
std::vector<uint16_t> RoundToBf16InPlace(std::vector<float>* v) {
  std::vector<uint16_t> bits(v->size());
  ConvertFloats(v->data(), DType::kF32, bits.data(), DType::kBF16, v->size());
  ConvertFloats(bits.data(), DType::kBF16, v->data(), DType::kF32, v->size());
  return bits;
}

// The bf16 GEMM of `unit` over shapes, against the reference on bf16-rounded
// x (on x itself up to 16 rows, where x runs as hi + lo).
void ExpectBf16GemmMatchesReference(ComputeUnit unit, const std::vector<int64_t>& row_counts) {
  RefAndCpu b(7);
  KernelBackend* ref = b.ref.get();
  KernelBackend* cpu = b.cpu.get();
  for (int64_t M : row_counts) {
    for (int64_t K : {1, 7, 31, 32, 33, 64, 300, 2100}) {  // 2100: two depth blocks
      for (int64_t N : {1, 17, 31, 32, 33, 130, 200}) {
        for (int offset : {0, 1}) {
          const bool with_bias = (M + K + N + offset) % 2 == 0;
          std::vector<float> wf(N * K), x(M * K), bias(N);
          for (auto& v : wf) v = b.Normal();
          for (auto& v : x) v = b.Normal();
          for (auto& v : bias) v = b.Normal();
          std::vector<uint16_t> wb(N * K + offset);
          ConvertFloats(wf.data(), DType::kF32, wb.data() + offset, DType::kBF16, wf.size());
          ConvertFloats(wb.data() + offset, DType::kBF16, wf.data(), DType::kF32, wf.size());  // exact weights
          std::vector<float> x_rounded = x;
          RoundToBf16InPlace(&x_rounded);
          const MatView w{wb.data() + offset, DType::kBF16, N, K};
          ASSERT_EQ(cpu->MatMulUnit(M, w), unit) << "M=" << M;
          std::vector<float> y_ref(M * N), y(M * N, std::nanf(""));
          const bool split = M <= 16;
          const std::vector<float>& x_seen = split ? x : x_rounded;
          ref->MatMul(x_seen.data(), M, w, with_bias ? bias.data() : nullptr, y_ref.data());
          cpu->MatMul(x.data(), M, w, with_bias ? bias.data() : nullptr, y.data());
          for (int64_t m = 0; m < M; ++m) {
            for (int64_t n = 0; n < N; ++n) {
              double abs_sum = 0;
              for (int64_t k = 0; k < K; ++k) abs_sum += std::fabs(x_seen[m * K + k] * wf[n * K + k]);
              const double split_err = split ? std::ldexp(abs_sum, -16) : 0.0;
              ASSERT_NEAR(y[m * N + n], y_ref[m * N + n], 2.0 * K * kEps * abs_sum + split_err + 1e-6)
                  << "M=" << M << " K=" << K << " N=" << N << " offset=" << offset << " at (" << m << ", " << n << ")";
            }
          }
        }
      }
    }
  }
}

// The AMX-BF16 GEMM rounds x to bfloat16 and accumulates in float32: against
// the reference on the same rounded x, it must meet the float32 dot-product
// bound; against unrounded x, the error is that of one bf16 rounding. Up to 16
// rows x runs as hi + lo bf16 parts: against unrounded x within the float32
// bound plus the lo part's rounding (2^-16 of each product: bf16 keeps 8 bits).
TEST(AmxGemm, MatchesReferenceOnBf16RoundedInputsOverShapes) {
  if (!amx::AmxBf16Usable()) GTEST_SKIP() << "AMX-BF16 not usable here: " << amx::AmxUnavailableReason();
  amx::SetAmxEnabled(true);
  ExpectBf16GemmMatchesReference(ComputeUnit::kAmxBf16, {6, 7, 15, 16, 17, 31, 32, 33, 100});  // from 6 rows: decode batches
}

// The fused MLP GEMM (gate and up paired per pass, silu(g) * u written)
// against the reference's two matmuls on the same bf16-rounded x and silu in
// double: each product within the float32 dot-product bound (e_g, e_u), so
// the output within |silu'(g)| e_g |u| + |silu(g)| e_u (|silu'| < 1.1), plus
// the float32 exp and divide of the epilogue.
void ExpectGateUpSiluMatchesReference(ComputeUnit unit, const std::vector<int64_t>& row_counts) {
  RefAndCpu b(11);
  KernelBackend* ref = b.ref.get();
  KernelBackend* cpu = b.cpu.get();
  for (int64_t M : row_counts) {
    for (int64_t K : {7, 32, 33, 300, 2100}) {
      for (int64_t F : {1, 31, 33, 64, 65, 100, 200}) {
        const bool with_bias = (M + K + F) % 2 == 0;
        std::vector<float> gf(F * K), uf(F * K), x(M * K), gate_bias(F), up_bias(F);
        for (auto* v : {&gf, &uf, &x, &gate_bias, &up_bias}) {
          for (float& e : *v) e = b.Normal();
        }
        const std::vector<uint16_t> gb = RoundToBf16InPlace(&gf), ub = RoundToBf16InPlace(&uf);  // exact weights
        std::vector<float> x_rounded = x;
        RoundToBf16InPlace(&x_rounded);
        MatView gate{gb.data(), DType::kBF16, F, K}, up{ub.data(), DType::kBF16, F, K};
        gate.bf16_compute = up.bf16_compute = true;
        ASSERT_EQ(cpu->MatMulUnit(M, gate), unit) << "M=" << M;
        ASSERT_TRUE(cpu->FusesGateUpSilu(M, gate)) << "M=" << M;
        const float* gbias = with_bias ? gate_bias.data() : nullptr;
        const float* ubias = with_bias ? up_bias.data() : nullptr;
        std::vector<float> g_ref(M * F), u_ref(M * F), out(M * F, std::nanf(""));
        ref->MatMul(x_rounded.data(), M, gate, gbias, g_ref.data());
        ref->MatMul(x_rounded.data(), M, up, ubias, u_ref.data());
        cpu->GateUpSilu(x.data(), M, gate, up, gbias, ubias, out.data());
        for (int64_t m = 0; m < M; ++m) {
          for (int64_t n = 0; n < F; ++n) {
            double g_abs = 0, u_abs = 0;
            for (int64_t k = 0; k < K; ++k) {
              g_abs += std::fabs(x_rounded[m * K + k] * gf[n * K + k]);
              u_abs += std::fabs(x_rounded[m * K + k] * uf[n * K + k]);
            }
            const double g = g_ref[m * F + n], u = u_ref[m * F + n];
            const double silu = g / (1.0 + std::exp(-g)), want = silu * u;
            const double bound = 1.1 * (2.0 * K * kEps * g_abs + 1e-6) * std::fabs(u) +
                                 std::fabs(silu) * (2.0 * K * kEps * u_abs + 1e-6) + 1e-5 * std::fabs(want) + 1e-6;
            ASSERT_NEAR(out[m * F + n], want, bound)
                << "M=" << M << " K=" << K << " F=" << F << " bias=" << with_bias << " at (" << m << ", " << n << ")";
          }
        }
      }
    }
  }
  // On the matrix unit below the split threshold (x as bf16 hi + lo): unfused.
  const std::vector<uint16_t> w(64 * 32);
  MatView w16{w.data(), DType::kBF16, 64, 32};
  w16.bf16_compute = true;
  if (cpu->MatMulUnit(16, w16) == unit) {
    EXPECT_FALSE(cpu->FusesGateUpSilu(16, w16));
  }
}

// Projections of one x in one call (q, k, v of different widths, one
// without bias): each against the reference on the same bf16-rounded x,
// within the float32 dot-product bound.
void ExpectSameXMatchesReference(ComputeUnit unit, const std::vector<int64_t>& row_counts) {
  RefAndCpu b(13);
  KernelBackend* ref = b.ref.get();
  KernelBackend* cpu = b.cpu.get();
  for (int64_t M : row_counts) {
    for (int64_t K : {33, 300, 2100}) {
      const int64_t widths[3] = {200, 33, 129};
      std::vector<float> x(M * K);
      for (float& e : x) e = b.Normal();
      std::vector<float> x_rounded = x;
      RoundToBf16InPlace(&x_rounded);
      std::vector<float> wf[3], bias[3], y[3], y_ref[3];
      std::vector<uint16_t> wb[3];
      MatView views[3];
      const float* biases[3];
      float* outs[3];
      for (int i = 0; i < 3; ++i) {
        const int64_t N = widths[i];
        wf[i].resize(N * K);
        bias[i].resize(N);
        for (float& e : wf[i]) e = b.Normal();
        for (float& e : bias[i]) e = b.Normal();
        wb[i] = RoundToBf16InPlace(&wf[i]);  // exact weights
        views[i] = MatView{wb[i].data(), DType::kBF16, N, K};
        views[i].bf16_compute = true;
        biases[i] = i == 1 ? nullptr : bias[i].data();
        y[i].assign(M * N, std::nanf(""));
        y_ref[i].resize(M * N);
        outs[i] = y[i].data();
        ref->MatMul(x_rounded.data(), M, views[i], biases[i], y_ref[i].data());
      }
      ASSERT_EQ(cpu->MatMulUnit(M, views[0]), unit) << "M=" << M;
      ASSERT_TRUE(cpu->FusesSameX(M, views[0])) << "M=" << M;
      cpu->MatMulSameX(x.data(), M, views, biases, outs, 3);
      for (int i = 0; i < 3; ++i) {
        for (int64_t m = 0; m < M; ++m) {
          for (int64_t n = 0; n < widths[i]; ++n) {
            double abs_sum = 0;
            for (int64_t k = 0; k < K; ++k) abs_sum += std::fabs(x_rounded[m * K + k] * wf[i][n * K + k]);
            ASSERT_NEAR(y[i][m * widths[i] + n], y_ref[i][m * widths[i] + n], 2.0 * K * kEps * abs_sum + 1e-6)
                << "M=" << M << " K=" << K << " matrix " << i << " at (" << m << ", " << n << ")";
          }
        }
      }
    }
  }
}

TEST(AmxGemm, SameXProjectionsMatchReferenceOnBf16RoundedInputs) {
  if (!amx::AmxBf16Usable()) GTEST_SKIP() << "AMX-BF16 not usable here: " << amx::AmxUnavailableReason();
  amx::SetAmxEnabled(true);
  ExpectSameXMatchesReference(ComputeUnit::kAmxBf16, {17, 33, 100});
}

TEST(AmxGemm, GateUpSiluMatchesReferenceOnBf16RoundedInputs) {
  if (!amx::AmxBf16Usable()) GTEST_SKIP() << "AMX-BF16 not usable here: " << amx::AmxUnavailableReason();
  amx::SetAmxEnabled(true);
  ExpectGateUpSiluMatchesReference(ComputeUnit::kAmxBf16, {17, 31, 33, 100});
}

// The few-rows GEMM (W's rows straight into the A tiles, x as B tiles, C
// transposed into y) over several 32-row blocks and tasks, one and two B
// tiles, with and without bias, and its gate/up form, against double sums of
// the same bf16 values: within the float32 dot-product bound. Through the
// backend (q/k/v-like widths, multiples of 32) and the amx calls at an
// offset block range.
TEST(AmxGemm, FewRowsTakeWInPlaceAndMatchDoubleSums) {
  if (!amx::AmxBf16Usable()) GTEST_SKIP() << "AMX-BF16 not usable here: " << amx::AmxUnavailableReason();
  amx::SetAmxEnabled(true);
  RefAndCpu b(17);
  // Up to 32 rows, at any depth; x in chunks of 64 beyond, while its tiles fit L2.
  EXPECT_FALSE(amx::FewRowsApply(amx::kFewRowsMax + 1, MatView{nullptr, DType::kBF16, 64, 64}));
  EXPECT_FALSE(amx::FewRowsApply(96, MatView{nullptr, DType::kBF16, 64, 11008}));
  EXPECT_TRUE(amx::FewRowsApply(32, MatView{nullptr, DType::kBF16, 64, 11008}));
  EXPECT_FALSE(amx::FewRowsApply(8, MatView{nullptr, DType::kBF16, 48, 64}));  // N not whole blocks
  EXPECT_FALSE(amx::FewRowsApply(8, MatView{nullptr, DType::kF16, 64, 64}));
  for (int64_t M : {1, 6, 16, 17, 32, 33, 64, 65, 96}) {
    for (int64_t K : {32, 96, 2048}) {
      const int64_t N = 256, n_begin = 64, n_end = 224;
      std::vector<float> wf(N * K), x(M * K), bias(N), uf(N * K), ubias(N);
      for (auto* v : {&wf, &x, &bias, &uf, &ubias}) {
        for (float& e : *v) e = b.Normal();
      }
      const std::vector<uint16_t> wb = RoundToBf16InPlace(&wf), ub = RoundToBf16InPlace(&uf);
      std::vector<uint16_t> xb(amx::PackedActivationElems(M, K));
      amx::PackActivations(x.data(), M, K, 0, amx::PaddedRows(M), xb.data());
      std::vector<float> x_rounded = x;
      RoundToBf16InPlace(&x_rounded);
      MatView w{wb.data(), DType::kBF16, N, K}, up{ub.data(), DType::kBF16, N, K};
      ASSERT_TRUE(amx::FewRowsApply(M, w));
      std::vector<uint32_t> x_tiles_store(amx::FewRowsXElems(M, K) + 16);  // 64-byte aligned within
      uint32_t* x_tiles = x_tiles_store.data() + (16 - reinterpret_cast<uintptr_t>(x_tiles_store.data()) % 64 / 4) % 16;
      amx::PackFewRows(xb.data(), M, K, x_tiles);
      std::vector<float> y(M * N, -7.f), gu(M * N, -7.f);
      amx::GemmBf16FewRows(x_tiles, M, w, n_begin, n_end, M % 2 ? bias.data() : nullptr, y.data());
      amx::GemmBf16GateUpSiluFewRows(x_tiles, M, w, up, n_begin, n_end, bias.data(), ubias.data(), gu.data());
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < N; ++n) {
          if (n < n_begin || n >= n_end) {  // outside the range: untouched
            ASSERT_EQ(y[m * N + n], -7.f);
            ASSERT_EQ(gu[m * N + n], -7.f);
            continue;
          }
          double g = 0, u = 0, abs_g = 0, abs_u = 0;
          for (int64_t k = 0; k < K; ++k) {
            g += double(x_rounded[m * K + k]) * wf[n * K + k];
            u += double(x_rounded[m * K + k]) * uf[n * K + k];
            abs_g += std::fabs(double(x_rounded[m * K + k]) * wf[n * K + k]);
            abs_u += std::fabs(double(x_rounded[m * K + k]) * uf[n * K + k]);
          }
          const double e_g = 2.0 * K * kEps * abs_g + 1e-6, e_u = 2.0 * K * kEps * abs_u + 1e-6;
          ASSERT_NEAR(y[m * N + n], g + (M % 2 ? bias[n] : 0.f), e_g) << "M=" << M << " K=" << K << " (" << m << ", " << n << ")";
          const double gb = g + bias[n], ubv = u + ubias[n], silu = gb / (1.0 + std::exp(-gb)), want = silu * ubv;
          ASSERT_NEAR(gu[m * N + n], want, 1.1 * e_g * std::fabs(ubv) + std::fabs(silu) * e_u + 1e-5 * std::fabs(want) + 1e-6)
              << "gate/up M=" << M << " K=" << K << " (" << m << ", " << n << ")";
        }
      }
      // Through the backend: q/k/v-like widths in one call, and one matmul.
      if (M > amx::kBlock / 2) {
        MatView views[3] = {w, MatView{wb.data(), DType::kBF16, 64, K}, MatView{ub.data(), DType::kBF16, 96, K}};
        for (auto& v : views) v.bf16_compute = true;
        std::vector<float> ys[3], ys_ref[3];
        float* outs[3];
        const float* biases[3] = {bias.data(), nullptr, ubias.data()};
        for (int i = 0; i < 3; ++i) {
          ys[i].assign(M * views[i].rows, std::nanf(""));
          ys_ref[i].resize(M * views[i].rows);
          outs[i] = ys[i].data();
          b.ref->MatMul(x_rounded.data(), M, views[i], biases[i], ys_ref[i].data());
        }
        ASSERT_TRUE(b.cpu->FusesSameX(M, views[0]));
        b.cpu->MatMulSameX(x.data(), M, views, biases, outs, 3);
        for (int i = 0; i < 3; ++i) {
          for (int64_t e = 0; e < M * views[i].rows; ++e) {
            const int64_t m = e / views[i].rows, n = e % views[i].rows;
            double abs_sum = 0;
            for (int64_t k = 0; k < K; ++k) abs_sum += std::fabs(double(x_rounded[m * K + k]) * (i == 2 ? uf : wf)[n * K + k]);
            ASSERT_NEAR(ys[i][e], ys_ref[i][e], 2.0 * K * kEps * abs_sum + 1e-6) << "same x, matrix " << i << " M=" << M;
          }
        }
      }
    }
  }
}

// Restores the dot products' default mode and the tiles when a test ends.
struct Bf16DotsOn {
  Bf16DotsOn() {
    amx::SetAmxEnabled(false);
    amx::SetBf16DotsMode(amx::DotsMode::kOn);
  }
  ~Bf16DotsOn() {
    amx::SetBf16DotsMode(amx::DotsMode::kAuto);
    amx::SetAmxEnabled(true);
  }
};

// The same bound for the AVX512-BF16 dot products (forced on: on Xeons the
// default leaves them off as slower than FMA), from the first row count that
// uses them; 8-row and 4-row register blocks and the padding rows past M.
TEST(Bf16Dots, MatchesReferenceOnBf16RoundedInputsOverShapes) {
  if (!amx::Bf16DotsUsable()) GTEST_SKIP() << "AVX512-BF16 not usable here: " << amx::Bf16DotsUnavailableReason();
  Bf16DotsOn on;
  ExpectBf16GemmMatchesReference(ComputeUnit::kBf16Dot, {64, 65, 70, 95, 100, 129});
}

TEST(Bf16Dots, SameXProjectionsMatchReferenceOnBf16RoundedInputs) {
  if (!amx::Bf16DotsUsable()) GTEST_SKIP() << "AVX512-BF16 not usable here: " << amx::Bf16DotsUnavailableReason();
  Bf16DotsOn on;
  ExpectSameXMatchesReference(ComputeUnit::kBf16Dot, {64, 100});
}

TEST(Bf16Dots, GateUpSiluMatchesReferenceOnBf16RoundedInputs) {
  if (!amx::Bf16DotsUsable()) GTEST_SKIP() << "AVX512-BF16 not usable here: " << amx::Bf16DotsUnavailableReason();
  Bf16DotsOn on;
  ExpectGateUpSiluMatchesReference(ComputeUnit::kBf16Dot, {64, 65, 100});
}

// --decode-x bf16: one row of a bf16 matmul on the dot products with x rounded
// to bf16 (wherever AVX512-BF16 exists, probe or not); against the reference on
// the same rounded x, the float32 dot-product bound. Default and batches: FMA.
TEST(Bf16Dots, DecodeWithBf16XMatchesReferenceOnRoundedInputs) {
  if (!amx::Bf16DotsUsable()) GTEST_SKIP() << "AVX512-BF16 not usable here: " << amx::Bf16DotsUnavailableReason();
  RefAndCpu b(11);
  KernelBackend* ref = b.ref.get();
  KernelBackend* cpu = b.cpu.get();
  std::vector<uint16_t> probe_w(64 * 64);
  const MatView probe{probe_w.data(), DType::kBF16, 64, 64};
  EXPECT_NE(cpu->MatMulUnit(1, probe), ComputeUnit::kBf16Dot) << "float32 x by default";
  const testing::ScopedDecodeX decode_x(DecodeX::kBf16);
  EXPECT_EQ(cpu->MatMulUnit(1, probe), ComputeUnit::kBf16Dot);
  EXPECT_NE(cpu->MatMulUnit(2, probe), ComputeUnit::kBf16Dot) << "batches keep their kernels";
  for (int64_t K : {1, 7, 31, 32, 33, 127, 128, 129, 300, 2100}) {  // the 4-chain body, 32-steps, masked tails
    for (int64_t N : {1, 5, 33, 200}) {
      for (int offset : {0, 1}) {
        const bool with_bias = (K + N + offset) % 2 == 0;
        std::vector<float> wf(N * K), x(K), bias(N);
        for (auto& v : wf) v = b.Normal();
        for (auto& v : x) v = b.Normal();
        for (auto& v : bias) v = b.Normal();
        std::vector<uint16_t> wb(N * K + offset);
        ConvertFloats(wf.data(), DType::kF32, wb.data() + offset, DType::kBF16, wf.size());
        ConvertFloats(wb.data() + offset, DType::kBF16, wf.data(), DType::kF32, wf.size());
        std::vector<float> x_rounded = x;
        RoundToBf16InPlace(&x_rounded);
        const MatView w{wb.data() + offset, DType::kBF16, N, K};
        std::vector<float> y_ref(N), y(N, std::nanf(""));
        ref->MatMul(x_rounded.data(), 1, w, with_bias ? bias.data() : nullptr, y_ref.data());
        cpu->MatMul(x.data(), 1, w, with_bias ? bias.data() : nullptr, y.data());
        ExpectRowsWithinDotBound(
            y.data(), y_ref.data(), x_rounded.data(), wf.data(), K, N,
            "K=" + std::to_string(K) + " N=" + std::to_string(N) + " offset=" + std::to_string(offset));
      }
    }
  }
}

// float16 W on the bf16 tiles is split into hi + lo bf16 parts: the split
// must be exact for every finite float16 value, so x = the identity gives
// W^T back bit for bit (1024 rows x 64 columns hold all 65536 codes).
TEST(AmxGemm, Float16WeightsSplitExactlyForEveryFiniteValue) {
  if (!amx::AmxBf16Usable()) GTEST_SKIP() << "AMX-BF16 not usable here: " << amx::AmxUnavailableReason();
  amx::SetAmxEnabled(true);
  ThreadPool pool(2);
  auto cpu = MakeCpuBackend(&pool);
  const int64_t M = 64, K = 64, N = 1024;
  std::vector<uint16_t> wh(N * K);
  for (int64_t i = 0; i < N * K; ++i) {
    const auto code = static_cast<uint16_t>(i);
    wh[i] = (code & 0x7c00) == 0x7c00 ? 0 : code;  // inf and NaN codes left out
  }
  const MatView w{wh.data(), DType::kF16, N, K};
  ASSERT_EQ(cpu->MatMulUnit(M, w), ComputeUnit::kAmxBf16);
  std::vector<float> x(M * K, 0.f), y(M * N, std::nanf(""));
  for (int64_t m = 0; m < M; ++m) x[m * K + m] = 1.f;
  cpu->MatMul(x.data(), M, w, nullptr, y.data());
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      ASSERT_EQ(y[m * N + n], F16ToF32(wh[n * K + m])) << "float16 code 0x" << std::hex << wh[n * K + m];
    }
  }
}

// With random x and W, float16 on the tiles keeps float32 FMA's accuracy
// against the float64 reference on unrounded x: the float32 dot-product bound
// plus x's split (x_lo rounded: 2^-16 of each product, bf16 keeping 8
// significant bits) and the dropped x_lo W_lo (2^-16).
TEST(AmxGemm, Float16WeightsMatchReferenceOnUnroundedInputs) {
  if (!amx::AmxBf16Usable()) GTEST_SKIP() << "AMX-BF16 not usable here: " << amx::AmxUnavailableReason();
  amx::SetAmxEnabled(true);
  std::mt19937 rng(9);
  std::normal_distribution<float> d(0.0f, 1.0f);
  ThreadPool pool(2);
  auto ref = MakeReferenceBackend();
  auto cpu = MakeCpuBackend(&pool);
  // K and N multiples of 32 up to 96 rows: the few-rows kernel (W split per 16 rows, in place).
  for (int64_t M : {16, 17, 33, 64, 96, 100}) {
    for (int64_t K : {1, 31, 64, 300, 2048, 2100}) {  // 2100: two depth blocks
      for (int64_t N : {1, 31, 33, 96, 200}) {
        const bool with_bias = (M + K + N) % 2 == 0;
        if (N == 96 && K % 32 == 0) {
          EXPECT_EQ(amx::FewRowsApplyF16(M, MatView{nullptr, DType::kF16, N, K}), M <= 96);
        }
        std::vector<float> wf(N * K), x(M * K), bias(N);
        for (auto& v : wf) v = d(rng);
        for (auto& v : x) v = d(rng);
        for (auto& v : bias) v = d(rng);
        std::vector<uint16_t> wh(N * K);
        ConvertFloats(wf.data(), DType::kF32, wh.data(), DType::kF16, wf.size());
        ConvertFloats(wh.data(), DType::kF16, wf.data(), DType::kF32, wf.size());
        const MatView w{wh.data(), DType::kF16, N, K};
        ASSERT_EQ(cpu->MatMulUnit(M, w), ComputeUnit::kAmxBf16);
        std::vector<float> y_ref(M * N), y(M * N, std::nanf(""));
        ref->MatMul(x.data(), M, w, with_bias ? bias.data() : nullptr, y_ref.data());
        cpu->MatMul(x.data(), M, w, with_bias ? bias.data() : nullptr, y.data());
        double worst = 0;
        for (int64_t m = 0; m < M; ++m) {
          for (int64_t n = 0; n < N; ++n) {
            double abs_sum = 0;
            for (int64_t k = 0; k < K; ++k) abs_sum += std::fabs(x[m * K + k] * wf[n * K + k]);
            const double bound = 2.0 * K * kEps * abs_sum + std::ldexp(abs_sum, -15) + 1e-6;
            ASSERT_NEAR(y[m * N + n], y_ref[m * N + n], bound)
                << "M=" << M << " K=" << K << " N=" << N << " at (" << m << ", " << n << ")";
            worst = std::max(worst, std::fabs(y[m * N + n] - y_ref[m * N + n]) / (abs_sum + 1e-30));
          }
        }
        if (K == 2100 && N == 200) std::printf("  M %lld K %lld N %lld: worst |err| / sum|x w| %.2e\n",
                                                static_cast<long long>(M), static_cast<long long>(K),
                                                static_cast<long long>(N), worst);
      }
    }
  }
  // Below the threshold (decode, small batches) float16 stays on FMA.
  EXPECT_EQ(cpu->MatMulUnit(1, MatView{nullptr, DType::kF16, 64, 64}), ComputeUnit::kFma);
}

// Quantized W of a bfloat16 model on `unit` (long prefill chunks): W
// dequantized exactly, then rounded to bf16 with x; against the reference on
// those same rounded inputs, within the float32 dot-product bound.
void ExpectQuantizedBf16MatMulMatchesReference(ComputeUnit unit) {
  RefAndCpu b(5);
  KernelBackend* ref = b.ref.get();
  KernelBackend* cpu = b.cpu.get();
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K}) {
    const int64_t M = 130, K = 2 * DTypeBlockSize(t) * 4, N = 161;
    auto bytes = RandomQuantRows(t, N, K, b.rng);
    MatView w{bytes.data(), t, N, K};
    w.bf16_compute = true;
    ASSERT_EQ(cpu->MatMulUnit(M, w), unit);
    // The same values as a bf16 matrix: dequantized, rounded.
    std::vector<float> wf(N * K);
    for (int64_t n = 0; n < N; ++n) {
      DequantizeRow(static_cast<GgmlType>(DTypeGgmlType(t)), bytes.data() + n * DTypeRowBytes(t, K), wf.data() + n * K, K);
    }
    const std::vector<uint16_t> wb = RoundToBf16InPlace(&wf);
    std::vector<float> x(M * K), bias(N);
    for (auto& v : x) v = b.Normal();
    for (auto& v : bias) v = b.Normal();
    std::vector<float> x_rounded = x;
    RoundToBf16InPlace(&x_rounded);
    std::vector<float> y_ref(M * N), y(M * N, std::nanf(""));
    ref->MatMul(x_rounded.data(), M, MatView{wb.data(), DType::kBF16, N, K}, bias.data(), y_ref.data());
    cpu->MatMul(x.data(), M, w, bias.data(), y.data());
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n) {
        double abs_sum = 0;
        for (int64_t k = 0; k < K; ++k) abs_sum += std::fabs(x_rounded[m * K + k] * wf[n * K + k]);
        ASSERT_NEAR(y[m * N + n], y_ref[m * N + n], 2.0 * K * kEps * abs_sum + 1e-6)
            << DTypeName(t) << " at (" << m << ", " << n << ")";
      }
    }
    // Without bf16_compute (a float32 model) the same W stays on the FMA path.
    w.bf16_compute = false;
    EXPECT_EQ(cpu->MatMulUnit(M, w), ComputeUnit::kFma);
  }
}

TEST(AmxGemm, QuantizedWeightsOfABf16ModelMatchReferenceOnRoundedInputs) {
  if (!amx::AmxBf16Usable()) GTEST_SKIP() << "AMX-BF16 not usable here: " << amx::AmxUnavailableReason();
  amx::SetAmxEnabled(true);
  ExpectQuantizedBf16MatMulMatchesReference(ComputeUnit::kAmxBf16);
}

TEST(Bf16Dots, QuantizedWeightsOfABf16ModelMatchReferenceOnRoundedInputs) {
  if (!amx::Bf16DotsUsable()) GTEST_SKIP() << "AVX512-BF16 not usable here: " << amx::Bf16DotsUnavailableReason();
  Bf16DotsOn on;
  ExpectQuantizedBf16MatMulMatchesReference(ComputeUnit::kBf16Dot);
}

// Fused prefill attention on `unit` against the reference (see below).
void ExpectBf16AttentionMatchesReference(ComputeUnit unit) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0.0f, 1.0f);
  ThreadPool pool(2);
  auto ref = MakeReferenceBackend();
  auto cpu = MakeCpuBackend(&pool);
  struct Shape { int tokens, start, heads, kv_heads, hd; };
  for (const Shape& sh : {Shape{16, 0, 4, 4, 12}, Shape{37, 5, 6, 2, 16}, Shape{100, 0, 8, 1, 64},
                          Shape{64, 130, 4, 2, 128}, Shape{200, 0, 32, 4, 64},
                          Shape{250, 3, 2, 2, 32}}) {  // one head per KV head: blocks of 192 tokens and the rest
    const int capacity = sh.start + sh.tokens + 3;
    std::vector<float> k(sh.kv_heads * capacity * sh.hd), v(k.size()), q(sh.tokens * sh.heads * sh.hd);
    for (auto* vec : {&k, &v, &q}) for (auto& x : *vec) x = d(rng);
    AttentionArgs args = testing::MakeAttentionArgs(q.data(), k.data(), v.data(), sh.kv_heads, capacity, sh.hd,
                                                    sh.tokens, sh.start, sh.heads);
    args.bf16_inputs = true;
    ASSERT_EQ(cpu->AttentionUnit(args), unit);
    std::vector<float> a(q.size()), b(q.size(), std::nanf(""));
    args.out = a.data();
    ref->Attention(args);
    args.out = b.data();
    Profiler profiler(1, 16);
    profiler.set_active(true);
    cpu->set_profiler(&profiler);
    cpu->Attention(args);
    cpu->set_profiler(nullptr);
    // One fused scope, costed without the score round trip it avoids.
    ASSERT_EQ(profiler.events(0).size(), 1u);
    EXPECT_EQ(profiler.events(0)[0].op, Op::kSdpaFused);
    EXPECT_EQ(profiler.events(0)[0].cost.bytes, SdpaCost(args).fused.bytes);
    EXPECT_EQ(profiler.events(0)[0].cost.unit, unit);
    const double err = testing::RelErr(b.data(), a.data(), a.size());
    std::printf("  tokens %d start %d heads %d/%d hd %d: rel err %.2e\n", sh.tokens, sh.start, sh.heads, sh.kv_heads,
                sh.hd, err);
    EXPECT_LT(err, 1e-2);
    EXPECT_GT(err, 1e-6) << "no bf16 rounding seen: the " << ComputeUnitName(unit) << " path did not run";
  }
}

// Prefill attention's fused softmax row: every p against float64's exp
// within the bf16 rounding it is stored with (2^-8 relative, plus the
// polynomial's 1e-6), the returned sum against the float64 sum within 1e-6,
// zeros from `seen` to the padded end, and underflow (scores 200 below the
// maximum) to exactly zero.
TEST(Bf16Dots, SoftmaxRowToBf16MatchesExpWithinBf16Rounding) {
  if (!amx::Bf16DotsUsable()) GTEST_SKIP() << "AVX512-BF16 not usable here: " << amx::Bf16DotsUnavailableReason();
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0.0f, 4.0f);
  for (int64_t seen : {1, 2, 15, 16, 17, 31, 32, 33, 100, 511, 512}) {
    const float scale = 0.125f;
    std::vector<float> s(seen);
    for (auto& v : s) v = d(rng);
    if (seen > 2) s[1] = s[0] - 200.f / scale;  // exp underflows to zero
    const int64_t padded = (seen + 31) / 32 * 32 + 32;
    std::vector<uint16_t> out(padded, 0xffff);
    const float sum = amx::SoftmaxRowToBf16(s.data(), seen, scale, padded, out.data());
    const double max = *std::max_element(s.begin(), s.end());
    double want_sum = 0;
    for (int64_t j = 0; j < seen; ++j) {
      const double p = std::exp(static_cast<double>(scale) * (s[j] - max));
      want_sum += p;
      float got;
      ConvertFloats(&out[j], DType::kBF16, &got, DType::kF32, 1);
      ASSERT_NEAR(got, p, p * (std::ldexp(1.0, -8) + 1e-6) + 1e-30) << "seen " << seen << " j " << j;
    }
    EXPECT_NEAR(sum, want_sum, 1e-6 * want_sum) << "seen " << seen;
    if (seen > 2) {
      EXPECT_EQ(out[1], 0) << "underflow";
    }
    for (int64_t j = seen; j < padded; ++j) ASSERT_EQ(out[j], 0) << "padding at " << j;
  }
  // Exponents half-way between integers, where the polynomial errs most:
  // the float32 sum still within 1e-6 (dropping its f^6 term fails this).
  const float scale = 0.125f;
  std::vector<float> s(64, 0.f);
  for (int64_t j = 1; j < 64; ++j) s[j] = -static_cast<float>(j % 4 + 0.5) / (scale * 1.44269504f);
  std::vector<uint16_t> out(128);
  double want_sum = 0;
  for (float v : s) want_sum += std::exp(static_cast<double>(scale) * v);
  EXPECT_NEAR(amx::SoftmaxRowToBf16(s.data(), 64, scale, 128, out.data()), want_sum, 1e-6 * want_sum);
}

// Fused prefill attention of a bf16 model on AMX (Q, K, P, V rounded to
// bf16): against the float64 reference, the error of one bf16 rounding per
// input (2^-9 relative) summed over the products; bounded at 1e-2 of the
// output's norm (measured: 2.4e-3 to 3.2e-3). Also checks that the path taken
// is the AMX one (the FMA path is within 1e-6 here).
TEST(AmxGemm, PrefillAttentionMatchesReferenceWithinBf16Error) {
  if (!amx::AmxBf16Usable()) GTEST_SKIP() << "AMX-BF16 not usable here: " << amx::AmxUnavailableReason();
  amx::SetAmxEnabled(true);
  ExpectBf16AttentionMatchesReference(ComputeUnit::kAmxBf16);
}

// K and Vᵀ put in the tiles' panels by the vector code: bit for bit what the
// plain loops make, over sizes around the 32-row panels and 32-deep steps
// (partial halves, odd depths, rows further apart than they are long).
TEST(Bf16Dots, PrepackedPanelsEqualThePlainLoops) {
  if (!amx::Bf16DotsUsable()) GTEST_SKIP() << "AVX512-BF16 not usable here: " << amx::Bf16DotsUnavailableReason();
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.0f, 3.0f);
  for (int64_t N : {1, 15, 16, 17, 33, 64, 70}) {
    for (int64_t K : {1, 2, 31, 32, 33, 64, 100}) {
      for (int64_t pad : {0, 3}) {
        // Rows: W[n][k] at n * ld + k (ld >= K); columns: W[n][k] at k * ld + n (ld >= N).
        for (const bool columns : {false, true}) {
          const int64_t ld = (columns ? N : K) + pad;
          std::vector<float> src((columns ? K : N) * ld);
          for (auto& x : src) x = d(rng);
          std::vector<uint32_t> want(amx::PrepackedElems(N, K), 0xdeadbeef), got(want.size(), 0x12345678);
          if (columns) {
            amx::PrepackColumnsReference(src.data(), ld, N, K, want.data());
            amx::PrepackColumns(src.data(), ld, N, K, got.data());
          } else {
            amx::PrepackRowsReference(src.data(), ld, N, K, want.data());
            amx::PrepackRows(src.data(), ld, N, K, got.data());
          }
          ASSERT_EQ(got, want) << (columns ? "columns" : "rows") << " N " << N << " K " << K << " ld " << ld;
        }
      }
    }
  }
}

// The same on the AVX512-BF16 dot products (the same operands and bound).
TEST(Bf16Dots, PrefillAttentionMatchesReferenceWithinBf16Error) {
  if (!amx::Bf16DotsUsable()) GTEST_SKIP() << "AVX512-BF16 not usable here: " << amx::Bf16DotsUnavailableReason();
  Bf16DotsOn on;
  ExpectBf16AttentionMatchesReference(ComputeUnit::kBf16Dot);
}

// auto follows the startup probe, off and short batches stay on FMA, and the
// tiles take precedence where they are on.
TEST(Bf16Dots, ModesChooseTheUnit) {
  ThreadPool pool(1);
  auto cpu = MakeCpuBackend(&pool);
  std::vector<uint16_t> wb(64 * 64);
  const MatView w{wb.data(), DType::kBF16, 64, 64};
  amx::SetAmxEnabled(false);
  const bool faster = amx::Bf16DotsOverFma() >= amx::kDotsMinSpeedup;
  EXPECT_EQ(amx::Bf16DotsOverFma() > 0, amx::Bf16DotsUsable());
  std::printf("  AVX512-BF16 dot products: %.2fx the FMA rate (usable: %d)\n", amx::Bf16DotsOverFma(),
              amx::Bf16DotsUsable());
  EXPECT_EQ(cpu->MatMulUnit(512, w), amx::Bf16DotsUsable() && faster ? ComputeUnit::kBf16Dot : ComputeUnit::kFma);
  amx::SetBf16DotsMode(amx::DotsMode::kOff);
  EXPECT_EQ(cpu->MatMulUnit(512, w), ComputeUnit::kFma);
  amx::SetBf16DotsMode(amx::DotsMode::kOn);
  EXPECT_EQ(cpu->MatMulUnit(512, w), amx::Bf16DotsUsable() ? ComputeUnit::kBf16Dot : ComputeUnit::kFma);
  EXPECT_EQ(cpu->MatMulUnit(63, w), ComputeUnit::kFma) << "decode GEMV below 64 rows";
  const MatView w_f32{wb.data(), DType::kF32, 32, 64};
  EXPECT_EQ(cpu->MatMulUnit(512, w_f32), ComputeUnit::kFma);
  amx::SetAmxEnabled(true);
  if (amx::AmxBf16Usable()) {
    EXPECT_EQ(cpu->MatMulUnit(512, w), ComputeUnit::kAmxBf16);
  }
  amx::SetBf16DotsMode(amx::DotsMode::kAuto);
}

TEST(Bf16Dots, PeakProbeDoesWork) {
  if (!amx::Bf16DotsUsable()) GTEST_SKIP() << "AVX512-BF16 not usable here: " << amx::Bf16DotsUnavailableReason();
  EXPECT_EQ(amx::Bf16DotPeakProbe(1000), 1000.0 * 24 * 64);
}

TEST(AmxGemm, OffMeansFmaPath) {
  // With the unit turned off the bf16 GEMM must be the float32-exact FMA path:
  // rounding x would show as errors far above the float32 bound.
  amx::SetAmxEnabled(false);
  EXPECT_FALSE(amx::AmxEnabled());
  amx::SetAmxEnabled(true);
  EXPECT_EQ(amx::AmxEnabled(), amx::AmxBf16Usable());
}

TEST(AmxGemm, PeakProbeDoesWork) {
  if (!amx::AmxBf16Usable()) GTEST_SKIP() << "AMX-BF16 not usable here: " << amx::AmxUnavailableReason();
  EXPECT_GE(amx::PeakProbe(1000), 1000.0 * 4 * 16 * 16 * 32 * 2);
}

TEST(KernelTargets, FallbacksAreCompiledIn) {
  // A CPU without AVX2 needs at least one target below it.
  bool below_avx2 = false;
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) below_avx2 = below_avx2 || t > HWY_AVX2;
  EXPECT_TRUE(below_avx2);
}

}  // namespace
}  // namespace llm
