#include "kernels/ops.h"

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
  return w;
}

}  // namespace llm
