// The engine's CUDA kernels, each followed by its launcher. Arithmetic lives
// in kernel_math.h (tested on the CPU); what is here is data movement: which
// thread reads what, vector widths, reductions.
#include "cuda/cuda_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "cuda/kernel_math.h"

namespace llm::cuda {

size_t WTypeSize(WType t) { return t == WType::kF32 ? 4 : 2; }

namespace {

constexpr unsigned kFullMask = 0xffffffffu;

template <typename T>
__device__ __forceinline__ float ToFloat(T v);
template <>
__device__ __forceinline__ float ToFloat<float>(float v) { return v; }
template <>
__device__ __forceinline__ float ToFloat<__half>(__half v) { return __half2float(v); }
template <>
__device__ __forceinline__ float ToFloat<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Eight consecutive weights as float32, in 16-byte loads (one for 16-bit
// types, two for float32). p must be 16-byte aligned.
__device__ __forceinline__ void Load8(const float* p, float out[8]) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p));
  const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
  out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w, out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
}
__device__ __forceinline__ void Load8(const __half* p, float out[8]) {
  const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(h[i]);
    out[2 * i] = f.x, out[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void Load8(const __nv_bfloat16* p, float out[8]) {
  const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    out[2 * i] = f.x, out[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}
__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// Sum over a block of up to 32 warps; every thread gets the result.
__device__ float BlockSum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
  v = WarpSum(v);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : 0.0f;
  return WarpSum(v);
}

// Calls f with `p` cast to the runtime type's pointer (float, __half or
// __nv_bfloat16), keeping p's constness: weights in, outputs out.
template <typename T, typename V>
using SameConst = std::conditional_t<std::is_const_v<V>, const T, T>;
template <typename V, typename F>
void WithType(WType t, V* p, F&& f) {
  switch (t) {
    case WType::kF32: f(static_cast<SameConst<float, V>*>(p)); break;
    case WType::kF16: f(static_cast<SameConst<__half, V>*>(p)); break;
    case WType::kBF16: f(static_cast<SameConst<__nv_bfloat16, V>*>(p)); break;
  }
}

int Blocks(size_t n, int threads) { return static_cast<int>((n + threads - 1) / threads); }

// ---------------------------------------------------------------- embedding
template <typename T>
__global__ void EmbeddingKernel(const T* table, const int32_t* ids, int hidden, float* out) {
  const T* row = table + static_cast<size_t>(ids[blockIdx.x]) * hidden;
  float* o = out + static_cast<size_t>(blockIdx.x) * hidden;
  for (int c = threadIdx.x; c < hidden; c += blockDim.x) o[c] = ToFloat(row[c]);
}

}  // namespace

void Embedding(const void* table, WType t, const int32_t* ids, int n, int hidden, float* out, cudaStream_t s) {
  WithType(t, table, [&](auto* w) { EmbeddingKernel<<<n, 256, 0, s>>>(w, ids, hidden, out); });
}

// ---------------------------------------------------------------- RMSNorm
namespace {

template <typename L>
__global__ void AddRmsNormKernel(float* x, const float* delta, const float* weight, int cols, float eps, float* out,
                                 L* out_lowp) {
  float* xr = x + static_cast<size_t>(blockIdx.x) * cols;
  const float* dr = delta ? delta + static_cast<size_t>(blockIdx.x) * cols : nullptr;
  float sum = 0;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = xr[c];
    if (dr) xr[c] = v = v + dr[c];
    sum += v * v;
  }
  const float inv = kmath::InverseRms(BlockSum(sum), cols, eps);
  float* orow = out + static_cast<size_t>(blockIdx.x) * cols;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = xr[c] * inv * weight[c];
    orow[c] = v;
    if (out_lowp) out_lowp[static_cast<size_t>(blockIdx.x) * cols + c] = FromFloat<L>(v);
  }
}

}  // namespace

void AddRmsNorm(float* x, const float* delta, const float* weight, int rows, int cols, float eps, float* out,
                void* out_lowp, WType lowp, cudaStream_t s) {
  WithType(lowp, out_lowp, [&](auto* o) {
    AddRmsNormKernel<<<rows, 256, 0, s>>>(x, delta, weight, cols, eps, out, o);  // o null: float32 output only
  });
}

// ---------------------------------------------------------------- GEMV
namespace {

constexpr int kGemvWarps = 8;  // rows per block: one warp per row

// Dot product of one weight row with x, by a whole warp; every lane gets it.
// Rows whose length is a multiple of 8 go in 16-byte loads, two in flight per lane.
template <typename T>
__device__ __forceinline__ float WarpDotRow(const T* __restrict__ w, const float* __restrict__ x, int cols) {
  const int lane = threadIdx.x % 32;
  float acc = 0;
  if (cols % 8 == 0) {
#pragma unroll 2
    for (int c = lane * 8; c < cols; c += 32 * 8) {
      float wv[8];
      Load8(w + c, wv);
      const float4 x0 = *reinterpret_cast<const float4*>(x + c);
      const float4 x1 = *reinterpret_cast<const float4*>(x + c + 4);
      acc += wv[0] * x0.x + wv[1] * x0.y + wv[2] * x0.z + wv[3] * x0.w;
      acc += wv[4] * x1.x + wv[5] * x1.y + wv[6] * x1.z + wv[7] * x1.w;
    }
  } else {
    for (int c = lane; c < cols; c += 32) acc += ToFloat(w[c]) * x[c];
  }
  return WarpSum(acc);
}

template <typename T>
__global__ void GemvKernel(const T* __restrict__ w, const float* __restrict__ x, const float* __restrict__ bias,
                           int rows, int cols, float* __restrict__ y) {
  const int row = blockIdx.x * kGemvWarps + threadIdx.x / 32;
  if (row >= rows) return;
  const float dot = WarpDotRow(w + static_cast<size_t>(row) * cols, x, cols);
  if (threadIdx.x % 32 == 0) y[row] = dot + (bias ? bias[row] : 0.0f);
}

template <typename T>
__global__ void GemvGateUpSiluKernel(const T* __restrict__ w, const float* __restrict__ x,
                                     const float* __restrict__ bias, int F, int cols, float* __restrict__ out) {
  const int f = blockIdx.x * kGemvWarps + threadIdx.x / 32;
  if (f >= F) return;
  float g = WarpDotRow(w + static_cast<size_t>(f) * cols, x, cols);
  float u = WarpDotRow(w + static_cast<size_t>(F + f) * cols, x, cols);
  if (threadIdx.x % 32 == 0) {
    if (bias) g += bias[f], u += bias[F + f];
    out[f] = kmath::SiluMul(g, u);
  }
}

}  // namespace

void Gemv(const void* w, WType t, const float* x, const float* bias, int rows, int cols, float* y, cudaStream_t s) {
  WithType(t, w, [&](auto* wt) {
    GemvKernel<<<Blocks(rows, kGemvWarps), 32 * kGemvWarps, 0, s>>>(wt, x, bias, rows, cols, y);
  });
}

void GemvGateUpSilu(const void* w, WType t, const float* x, const float* bias, int F, int cols, float* out,
                    cudaStream_t s) {
  WithType(t, w, [&](auto* wt) {
    GemvGateUpSiluKernel<<<Blocks(F, kGemvWarps), 32 * kGemvWarps, 0, s>>>(wt, x, bias, F, cols, out);
  });
}

// ---------------------------------------------------------------- elementwise
namespace {

__global__ void AddBiasKernel(float* y, const float* bias, size_t total, int N) {
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i < total) y[i] += bias[i % N];
}

template <typename O>
__global__ void SiluMulRowsKernel(const float* gu, int n, int F, O* out) {
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<size_t>(n) * F) return;
  const size_t t = i / F, f = i % F;
  const float* row = gu + t * 2 * F;
  out[i] = FromFloat<O>(kmath::SiluMul(row[f], row[F + f]));
}

template <typename O>
__global__ void ConvertKernel(const float* in, size_t count, O* out) {
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i < count) out[i] = FromFloat<O>(in[i]);
}


}  // namespace

void AddBias(float* y, const float* bias, int n, int N, cudaStream_t s) {
  const size_t total = static_cast<size_t>(n) * N;
  AddBiasKernel<<<Blocks(total, 256), 256, 0, s>>>(y, bias, total, N);
}

void SiluMulRows(const float* gate_up, int n, int F, void* out, WType out_type, cudaStream_t s) {
  const size_t total = static_cast<size_t>(n) * F;
  WithType(out_type, out, [&](auto* o) { SiluMulRowsKernel<<<Blocks(total, 256), 256, 0, s>>>(gate_up, n, F, o); });
}

void Convert(const float* in, size_t count, void* out, WType t, cudaStream_t s) {
  WithType(t, out, [&](auto* o) { ConvertKernel<<<Blocks(count, 256), 256, 0, s>>>(in, count, o); });
}

// ---------------------------------------------------------------- RoPE + KV write
namespace {

// Block (token, head) over q heads then kv heads; thread i rotates the pair (i, i + hd/2).
__global__ void RopeKvWriteKernel(const float* qkv, int num_heads, int num_kv_heads, int hd, const int* d_pos,
                                  const float* cos_t, const float* sin_t, float* q_out, float* k_cache,
                                  float* v_cache, int capacity) {
  const int t = blockIdx.x, head = blockIdx.y, half = hd / 2;
  const int pos = *d_pos + t;
  const int row_width = (num_heads + 2 * num_kv_heads) * hd;
  const float* row = qkv + static_cast<size_t>(t) * row_width;
  const float* cs = cos_t + static_cast<size_t>(pos) * half;
  const float* sn = sin_t + static_cast<size_t>(pos) * half;
  const bool is_q = head < num_heads;
  const int kvh = head - num_heads;
  const float* in = row + (is_q ? head * hd : (num_heads + kvh) * hd);
  float* out = is_q ? q_out + (static_cast<size_t>(t) * num_heads + head) * hd
                    : k_cache + (static_cast<size_t>(kvh) * capacity + pos) * hd;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    kmath::RopePair(in[i], in[i + half], cs[i], sn[i], &out[i], &out[i + half]);
  }
  if (!is_q) {
    const float* v = row + (num_heads + num_kv_heads + kvh) * hd;
    float* vo = v_cache + (static_cast<size_t>(kvh) * capacity + pos) * hd;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) vo[i] = v[i];
  }
}

}  // namespace

void RopeKvWrite(const float* qkv, int n, int num_heads, int num_kv_heads, int head_dim, const int* d_pos,
                 const float* cos_table, const float* sin_table, float* q_out, float* k_cache, float* v_cache,
                 int capacity, cudaStream_t s) {
  const dim3 grid(n, num_heads + num_kv_heads);
  const int threads = head_dim / 2 < 32 ? 32 : (head_dim / 2 > 256 ? 256 : head_dim / 2);
  RopeKvWriteKernel<<<grid, threads, 0, s>>>(qkv, num_heads, num_kv_heads, head_dim, d_pos, cos_table, sin_table,
                                             q_out, k_cache, v_cache, capacity);
}

// ---------------------------------------------------------------- attention
namespace {

constexpr int kAttnWarps = 8;
constexpr int kMaxDimsPerLane = 8;  // head_dim <= 256

// Block (query head, token). Each warp takes chunks of 32 keys, one key per
// lane for the scores, then the chunk's weighted V rows with each lane owning
// head_dim/32 output dimensions, keeping an online softmax (max m, sum l) in
// registers; the warps' states merge at the end (flash-decoding inside a block).
// K and V are read once per query head (GQA groups share them through L2).
__global__ void AttentionKernel(const float* __restrict__ q, const float* __restrict__ k_cache,
                                const float* __restrict__ v_cache, int capacity, int num_heads, int num_kv_heads,
                                int hd, const int* d_pos, float scale, float* __restrict__ out) {
  extern __shared__ float smem[];
  float* q_s = smem;                                // [hd]
  float* m_s = q_s + hd;                            // [warps]
  float* l_s = m_s + kAttnWarps;                    // [warps]
  float* acc_s = l_s + kAttnWarps;                  // [warps][hd]
  const int head = blockIdx.x, t = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int kvh = head / (num_heads / num_kv_heads);
  const int num_keys = *d_pos + t + 1;
  const float* qrow = q + (static_cast<size_t>(t) * num_heads + head) * hd;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) q_s[d] = qrow[d];
  __syncthreads();
  const float* kb = k_cache + static_cast<size_t>(kvh) * capacity * hd;
  const float* vb = v_cache + static_cast<size_t>(kvh) * capacity * hd;

  float m = -INFINITY, l = 0, acc[kMaxDimsPerLane];
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) acc[i] = 0;
  for (int base = warp * 32; base < num_keys; base += kAttnWarps * 32) {
    const int p = base + lane;
    float score = -INFINITY;
    if (p < num_keys) {
      const float* kr = kb + static_cast<size_t>(p) * hd;
      float dot = 0;
      for (int d = 0; d < hd; ++d) dot += q_s[d] * kr[d];
      score = dot * scale;
    }
    const float m_new = fmaxf(m, WarpMax(score));
    const float rescale = kmath::SoftmaxRescale(m, m_new);
    const float e = p < num_keys ? expf(score - m_new) : 0.0f;
    l = l * rescale + WarpSum(e);
    m = m_new;
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) acc[i] *= rescale;
    const int count = min(32, num_keys - base);
    for (int j = 0; j < count; ++j) {
      const float pj = __shfl_sync(kFullMask, e, j);
      const float* vr = vb + static_cast<size_t>(base + j) * hd;
#pragma unroll
      for (int i = 0; i < kMaxDimsPerLane; ++i) {
        const int d = lane + 32 * i;
        if (d < hd) acc[i] += pj * vr[d];
      }
    }
  }
  if (lane == 0) m_s[warp] = m, l_s[warp] = l;
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) acc_s[warp * hd + d] = acc[i];
  }
  __syncthreads();
  if (warp != 0) return;
  float M = -INFINITY, L = 0, total[kMaxDimsPerLane];
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) total[i] = 0;
  for (int w = 0; w < kAttnWarps; ++w) {
    float scale_self, scale_w;
    kmath::SoftmaxMerge(&M, &L, m_s[w], l_s[w], &scale_self, &scale_w);
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) total[i] = total[i] * scale_self + acc_s[w * hd + d] * scale_w;
    }
  }
  float* orow = out + (static_cast<size_t>(t) * num_heads + head) * hd;
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) orow[d] = total[i] / L;
  }
}

}  // namespace

void Attention(const float* q, const float* k_cache, const float* v_cache, int capacity, int n, int num_heads,
               int num_kv_heads, int head_dim, const int* d_pos, float scale, float* out, cudaStream_t s) {
  const size_t smem = (head_dim + 2 * kAttnWarps + kAttnWarps * head_dim) * sizeof(float);
  AttentionKernel<<<dim3(num_heads, n), 32 * kAttnWarps, smem, s>>>(q, k_cache, v_cache, capacity, num_heads,
                                                                   num_kv_heads, head_dim, d_pos, scale, out);
}

// ---------------------------------------------------------------- greedy sampling
namespace {

__global__ void ArgMaxKernel(const float* logits, int vocab, int32_t* token) {
  __shared__ float best_v[32];
  __shared__ int best_i[32];
  float v = -INFINITY;
  int idx = vocab;  // loses to any real index
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    if (kmath::ArgMaxBeats(logits[i], i, v, idx)) v = logits[i], idx = i;
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFullMask, v, o);
    const int oi = __shfl_xor_sync(kFullMask, idx, o);
    if (kmath::ArgMaxBeats(ov, oi, v, idx)) v = ov, idx = oi;
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) best_v[warp] = v, best_i[warp] = idx;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) {
      if (kmath::ArgMaxBeats(best_v[w], best_i[w], v, idx)) v = best_v[w], idx = best_i[w];
    }
    *token = idx < vocab ? idx : 0;  // all NaN: 0, like a sampler that found nothing
  }
}

__global__ void AdvancePositionKernel(int* d_pos, int n) { *d_pos += n; }

__global__ void TouchKernel(float* p, size_t n) {
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i < n) p[i] = static_cast<float>(i & 1023);
}

}  // namespace

void ArgMax(const float* logits, int vocab, int32_t* token, cudaStream_t s) {
  ArgMaxKernel<<<1, 1024, 0, s>>>(logits, vocab, token);
}

void AdvancePosition(int* d_pos, int n, cudaStream_t s) { AdvancePositionKernel<<<1, 1, 0, s>>>(d_pos, n); }

double MeasureCopyBandwidth(size_t bytes, int repetitions) {
  float *a = nullptr, *b = nullptr;
  if (cudaMalloc(&a, bytes) != cudaSuccess) return 0;
  if (cudaMalloc(&b, bytes) != cudaSuccess) {
    cudaFree(a);
    return 0;
  }
  TouchKernel<<<Blocks(bytes / 4, 256), 256>>>(a, bytes / 4);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  double best_s = 1e30;
  for (int r = 0; r < repetitions; ++r) {
    cudaEventRecord(start);
    cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    if (ms > 0 && ms * 1e-3 < best_s) best_s = ms * 1e-3;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(a);
  cudaFree(b);
  // A copy reads and writes every byte: 2x bytes moved.
  return best_s < 1e30 ? 2.0 * bytes / best_s : 0;
}

}  // namespace llm::cuda
