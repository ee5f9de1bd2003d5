// The arithmetic of the CUDA kernels, as __host__ __device__ functions: the
// kernels call these, and tests/cuda/kernel_math_test.cc runs the same
// functions on the CPU against the scalar reference backend, so that the math
// is tested in CI where no GPU exists.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define LLM_HD __host__ __device__ __forceinline__
#else
#define LLM_HD inline
#endif

namespace llm::kmath {

// HF LlamaRMSNorm: x * rsqrt(mean(x^2) + eps), from the sum of squares.
LLM_HD float InverseRms(float sum_squares, int n, float eps) {
  return 1.0f / sqrtf(sum_squares / static_cast<float>(n) + eps);
}

// Rotate-half RoPE on the pair (x[i], x[i + head_dim/2]).
LLM_HD void RopePair(float x0, float x1, float cos_v, float sin_v, float* y0, float* y1) {
  *y0 = x0 * cos_v - x1 * sin_v;
  *y1 = x1 * cos_v + x0 * sin_v;
}

// silu(g) * u with silu(g) = g / (1 + exp(-g)).
LLM_HD float SiluMul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

// Online softmax (flash attention): a running max m and sum l of exp(s - m).
// Moving the max from m_old to m_new multiplies what was accumulated by this
// factor; an empty state (m_old = -inf) has nothing to rescale.
LLM_HD float SoftmaxRescale(float m_old, float m_new) {
  return m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
}

// Merges state b (max mb, sum lb) into a (ma, la). The caller scales a's
// weighted sum by *scale_a and b's by *scale_b and adds them.
LLM_HD void SoftmaxMerge(float* ma, float* la, float mb, float lb, float* scale_a, float* scale_b) {
  const float m = *ma > mb ? *ma : mb;
  *scale_a = SoftmaxRescale(*ma, m);
  *scale_b = SoftmaxRescale(mb, m);
  *la = *la * *scale_a + lb * *scale_b;
  *ma = m;
}

// Argmax reduction step: does candidate (vb, ib) beat (va, ia)? Larger value,
// or equal value at a smaller index, so the result is torch.argmax's (first
// index of the maximum) whatever the reduction order.
LLM_HD bool ArgMaxBeats(float vb, int ib, float va, int ia) { return vb > va || (vb == va && ib < ia); }

}  // namespace llm::kmath
