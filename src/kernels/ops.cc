#include "kernels/ops.h"

#include <cstring>
#include <vector>

namespace llm {

SdpaWork SdpaCost(const AttentionArgs& a) {
  const int64_t T = a.num_tokens, H = a.num_heads, hd = a.cache.head_dim, kvh = a.cache.num_kv_heads;
  const int64_t ctx = T * a.start_pos + T * (T + 1) / 2;  // scores computed, summed over query rows
  const int64_t ctx_max = a.start_pos + T;                // cache positions read
  SdpaWork w;
  w.scores.flops = 2 * H * hd * ctx;
  w.scores.bytes = 4 * (kvh * ctx_max * hd + T * H * hd + H * ctx);
  w.softmax.flops = 5 * H * ctx;
  w.softmax.bytes = 8 * H * ctx;
  w.weighted_sum.flops = 2 * H * hd * ctx;
  w.weighted_sum.bytes = 4 * (kvh * ctx_max * hd + H * ctx + T * H * hd);
  for (OpCost* c : {&w.scores, &w.softmax, &w.weighted_sum}) {
    c->m = static_cast<int32_t>(T);
    c->n = static_cast<int32_t>(H);
    c->k = static_cast<int32_t>(ctx_max);
    w.total.flops += c->flops;
    w.total.bytes += c->bytes;
  }
  w.total.m = static_cast<int32_t>(T);
  w.total.n = static_cast<int32_t>(H);
  w.total.k = static_cast<int32_t>(ctx_max);
  w.fused = w.total;
  w.fused.bytes = 4 * (2 * kvh * ctx_max * hd + 2 * T * H * hd);
  return w;
}

// Plain copies, shared by every host backend: a scatter of [T, kv_head, hd]
// rows into the [kv_head, pos, hd] layout, ~1% of a decode step.
void KernelBackend::KvWrite(const float* k, const float* v, int64_t num_tokens, const KvCacheView& cache,
                            int start_pos) {
  for (int part = 0; part < 2 * cache.num_kv_heads; ++part) KvWritePart(k, v, num_tokens, cache, start_pos, part);
}

void KernelBackend::KvWritePart(const float* k, const float* v, int64_t num_tokens, const KvCacheView& cache,
                                int start_pos, int part) {
  const int h = part / 2;
  const size_t row = static_cast<size_t>(cache.num_kv_heads) * cache.head_dim;
  const float* src = (part % 2 == 0 ? k : v) + static_cast<size_t>(h) * cache.head_dim;
  float* dst = part % 2 == 0 ? cache.KeyAt(h, start_pos) : cache.ValueAt(h, start_pos);
  for (int64_t t = 0; t < num_tokens; ++t) {
    std::memcpy(dst + t * cache.head_dim, src + t * row, static_cast<size_t>(cache.head_dim) * sizeof(float));
  }
}

void KernelBackend::MatMulSameX(const float* x, int64_t M, const MatView* ws, const float* const* biases,
                                float* const* ys, int count) {
  for (int i = 0; i < count; ++i) MatMul(x, M, ws[i], biases[i], ys[i]);
}

void KernelBackend::GateUpSilu(const float* x, int64_t M, const MatView& gate, const MatView& up,
                               const float* gate_bias, const float* up_bias, float* out) {
  std::vector<float> up_out(static_cast<size_t>(M * up.rows));
  MatMul(x, M, gate, gate_bias, out);
  MatMul(x, M, up, up_bias, up_out.data());
  SiluMul(out, up_out.data(), up_out.size(), out);
}

void KernelBackend::KvCopy(const KvCacheView& from, const KvCacheView& to, int count) {
  const size_t bytes = static_cast<size_t>(count) * from.head_dim * sizeof(float);
  for (int h = 0; h < from.num_kv_heads; ++h) {
    std::memcpy(to.KeyAt(h, 0), from.KeyAt(h, 0), bytes);
    std::memcpy(to.ValueAt(h, 0), from.ValueAt(h, 0), bytes);
  }
}

}  // namespace llm
