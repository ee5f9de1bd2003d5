// The CUDA kernels' arithmetic on the CPU, in CI where no GPU exists. Each
// twin below follows its kernel's order of operations (which lane sums what,
// how warps merge) using the same kernel_math.h functions the kernels call,
// and is compared with the scalar reference backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "cuda/kernel_math.h"
#include "kernels/ops.h"
#include "model/sampler.h"
#include "test_util.h"

namespace llm {
namespace {

using testing::RelErr;

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// A warp's butterfly sum (__shfl_xor_sync with offsets 16, 8, 4, 2, 1): lane 0's result.
float WarpSumTwin(std::vector<float> lanes) {
  for (int o = 16; o > 0; o >>= 1) {
    std::vector<float> next(32);
    for (int l = 0; l < 32; ++l) next[l] = lanes[l] + lanes[l ^ o];
    lanes = next;
  }
  return lanes[0];
}

// GemvKernel's WarpDotRow: lane l takes 8 consecutive columns every 256 (or one
// column every 32 when cols % 8 != 0), then the warp sums.
float GemvRowTwin(const float* w, const float* x, int cols) {
  std::vector<float> lanes(32, 0.0f);
  for (int lane = 0; lane < 32; ++lane) {
    float acc = 0;
    if (cols % 8 == 0) {
      for (int c = lane * 8; c < cols; c += 256) {
        acc += w[c] * x[c] + w[c + 1] * x[c + 1] + w[c + 2] * x[c + 2] + w[c + 3] * x[c + 3];
        acc += w[c + 4] * x[c + 4] + w[c + 5] * x[c + 5] + w[c + 6] * x[c + 6] + w[c + 7] * x[c + 7];
      }
    } else {
      for (int c = lane; c < cols; c += 32) acc += w[c] * x[c];
    }
    lanes[lane] = acc;
  }
  return WarpSumTwin(lanes);
}

TEST(CudaKernelMath, GemvMatchesReference) {
  auto ref = MakeReferenceBackend();
  for (int cols : {8, 60, 64, 100, 2048, 5632}) {
    const int rows = 37;
    const auto w = Random(static_cast<size_t>(rows) * cols, 1, 0.02f);
    const auto x = Random(cols, 2);
    std::vector<float> expected(rows), got(rows);
    ref->MatMul(x.data(), 1, MatView{w.data(), DType::kF32, rows, cols}, nullptr, expected.data());
    for (int r = 0; r < rows; ++r) got[r] = GemvRowTwin(w.data() + static_cast<size_t>(r) * cols, x.data(), cols);
    EXPECT_LT(RelErr(got.data(), expected.data(), rows), 1e-6) << "cols " << cols;
  }
}

TEST(CudaKernelMath, RmsNormMatchesReference) {
  auto ref = MakeReferenceBackend();
  for (int cols : {60, 64, 2048, 4096}) {
    const auto x = Random(cols, 3, 3.0f);
    const auto weight = Random(cols, 4);
    std::vector<float> expected(cols), got(cols);
    ref->RmsNorm(x.data(), MatView{weight.data(), DType::kF32, 1, cols}, 1e-5f, 1, expected.data());
    // AddRmsNormKernel: 256 threads each sum a strided share, then a block sum.
    std::vector<float> partial(256, 0.0f);
    for (int c = 0; c < cols; ++c) partial[c % 256] += x[c] * x[c];
    float sum = 0;
    for (float p : partial) sum += p;
    const float inv = kmath::InverseRms(sum, cols, 1e-5f);
    for (int c = 0; c < cols; ++c) got[c] = x[c] * inv * weight[c];
    EXPECT_LT(RelErr(got.data(), expected.data(), cols), 1e-6) << "cols " << cols;
  }
}

TEST(CudaKernelMath, RopeMatchesReference) {
  auto ref = MakeReferenceBackend();
  const int heads = 3, hd = 16, half = hd / 2, positions = 40, start = 29;
  auto cos_t = Random(positions * half, 5), sin_t = Random(positions * half, 6);
  auto x = Random(heads * hd * 2, 7);
  std::vector<float> expected = x, got(x.size());
  ref->Rope(expected.data(), 2, heads, hd, start, cos_t.data(), sin_t.data());
  for (int t = 0; t < 2; ++t) {
    for (int h = 0; h < heads; ++h) {
      const float* in = x.data() + (t * heads + h) * hd;
      float* out = got.data() + (t * heads + h) * hd;
      const int p = start + t;
      for (int i = 0; i < half; ++i) {
        kmath::RopePair(in[i], in[i + half], cos_t[p * half + i], sin_t[p * half + i], &out[i], &out[i + half]);
      }
    }
  }
  EXPECT_LT(RelErr(got.data(), expected.data(), got.size()), 1e-7);
}

TEST(CudaKernelMath, SiluMulMatchesReference) {
  auto ref = MakeReferenceBackend();
  const auto g = Random(1000, 8, 4.0f), u = Random(1000, 9);
  std::vector<float> expected(1000), got(1000);
  ref->SiluMul(g.data(), u.data(), 1000, expected.data());
  for (int i = 0; i < 1000; ++i) got[i] = kmath::SiluMul(g[i], u[i]);
  EXPECT_LT(RelErr(got.data(), expected.data(), 1000), 1e-6);
}

// AttentionKernel for one (query head, token): 8 warps take interleaved chunks
// of 32 keys, each with its own online softmax, merged at the end.
void AttentionRowTwin(const float* q, const float* keys, const float* values, int num_keys, int hd, float scale,
                      float* out) {
  constexpr int kWarps = 8;
  std::vector<float> m(kWarps, -INFINITY), l(kWarps, 0.0f), acc(kWarps * hd, 0.0f);
  for (int w = 0; w < kWarps; ++w) {
    for (int base = w * 32; base < num_keys; base += kWarps * 32) {
      float score[32], chunk_max = -INFINITY;
      for (int lane = 0; lane < 32; ++lane) {
        score[lane] = -INFINITY;
        if (base + lane < num_keys) {
          float dot = 0;
          for (int d = 0; d < hd; ++d) dot += q[d] * keys[(base + lane) * hd + d];
          score[lane] = dot * scale;
        }
        chunk_max = std::max(chunk_max, score[lane]);
      }
      const float m_new = std::max(m[w], chunk_max);
      const float rescale = kmath::SoftmaxRescale(m[w], m_new);
      std::vector<float> e(32, 0.0f);
      for (int lane = 0; lane < 32; ++lane) e[lane] = base + lane < num_keys ? std::exp(score[lane] - m_new) : 0.0f;
      l[w] = l[w] * rescale + WarpSumTwin(e);
      m[w] = m_new;
      for (int d = 0; d < hd; ++d) acc[w * hd + d] *= rescale;
      for (int j = 0; j < std::min(32, num_keys - base); ++j) {
        for (int d = 0; d < hd; ++d) acc[w * hd + d] += e[j] * values[(base + j) * hd + d];
      }
    }
  }
  float M = -INFINITY, L = 0;
  std::vector<float> total(hd, 0.0f);
  for (int w = 0; w < kWarps; ++w) {
    float scale_self, scale_w;
    kmath::SoftmaxMerge(&M, &L, m[w], l[w], &scale_self, &scale_w);
    for (int d = 0; d < hd; ++d) total[d] = total[d] * scale_self + acc[w * hd + d] * scale_w;
  }
  for (int d = 0; d < hd; ++d) out[d] = total[d] / L;
}

TEST(CudaKernelMath, FlashDecodingAttentionMatchesReference) {
  auto ref = MakeReferenceBackend();
  for (int hd : {12, 64, 128}) {
    for (int pos : {0, 1, 31, 32, 33, 255, 256, 257, 700}) {
      const int heads = 4, kv_heads = 2, capacity = 704;
      auto k = Random(static_cast<size_t>(kv_heads) * capacity * hd, 10 + pos, 1.5f);
      auto v = Random(static_cast<size_t>(kv_heads) * capacity * hd, 11 + pos);
      const auto q = Random(static_cast<size_t>(heads) * hd, 12 + pos, 1.5f);
      AttentionArgs a = testing::MakeAttentionArgs(q.data(), k.data(), v.data(), kv_heads, capacity, hd, 1, pos, heads);
      std::vector<float> expected(heads * hd), got(heads * hd);
      a.out = expected.data();
      ref->Attention(a);
      for (int h = 0; h < heads; ++h) {
        const int kvh = h / (heads / kv_heads);
        AttentionRowTwin(q.data() + h * hd, a.cache.KeyAt(kvh, 0), a.cache.ValueAt(kvh, 0), pos + 1, hd, a.scale,
                         got.data() + h * hd);
      }
      EXPECT_LT(RelErr(got.data(), expected.data(), got.size()), 2e-6) << "head_dim " << hd << " position " << pos;
    }
  }
}

TEST(CudaKernelMath, SoftmaxMergeOfEmptyStatesStaysEmpty) {
  float m = -INFINITY, l = 0, sa = -1, sb = -1;
  kmath::SoftmaxMerge(&m, &l, -INFINITY, 0.0f, &sa, &sb);
  EXPECT_EQ(m, -INFINITY);
  EXPECT_EQ(l, 0.0f);
  EXPECT_EQ(sa, 0.0f);  // not NaN: exp(-inf - -inf) is never taken
  EXPECT_EQ(sb, 0.0f);
}

// ArgMaxKernel: 1024 threads scan strided, warps reduce by butterfly, thread 0
// merges the warps; the result must be torch.argmax's whatever the order.
int ArgMaxTwin(const std::vector<float>& logits) {
  const int vocab = static_cast<int>(logits.size());
  std::vector<float> v(1024, -INFINITY);
  std::vector<int> idx(1024, vocab);
  for (int t = 0; t < 1024; ++t) {
    for (int i = t; i < vocab; i += 1024) {
      if (kmath::ArgMaxBeats(logits[i], i, v[t], idx[t])) v[t] = logits[i], idx[t] = i;
    }
  }
  for (int warp = 0; warp < 32; ++warp) {
    for (int o = 16; o > 0; o >>= 1) {
      std::vector<float> nv(32);
      std::vector<int> ni(32);
      for (int l = 0; l < 32; ++l) {
        const int a = warp * 32 + l, b = warp * 32 + (l ^ o);
        const bool take = kmath::ArgMaxBeats(v[b], idx[b], v[a], idx[a]);
        nv[l] = take ? v[b] : v[a];
        ni[l] = take ? idx[b] : idx[a];
      }
      for (int l = 0; l < 32; ++l) v[warp * 32 + l] = nv[l], idx[warp * 32 + l] = ni[l];
    }
  }
  float best_v = v[0];
  int best_i = idx[0];
  for (int w = 1; w < 32; ++w) {
    if (kmath::ArgMaxBeats(v[w * 32], idx[w * 32], best_v, best_i)) best_v = v[w * 32], best_i = idx[w * 32];
  }
  return best_i < vocab ? best_i : 0;
}

TEST(CudaKernelMath, ArgMaxPicksTheFirstMaximumLikeTorch) {
  for (int vocab : {1, 7, 301, 1024, 1025, 32000, 128256}) {
    auto logits = Random(vocab, 20 + vocab);
    EXPECT_EQ(ArgMaxTwin(logits), ArgMax(logits.data(), vocab)) << "vocab " << vocab;
    // Ties across threads and warps: the smallest index wins.
    const float top = 100.0f;
    for (int i : {vocab - 1, vocab / 2, vocab / 3}) logits[i] = top;
    EXPECT_EQ(ArgMaxTwin(logits), ArgMax(logits.data(), vocab)) << "ties, vocab " << vocab;
  }
}

}  // namespace
}  // namespace llm
