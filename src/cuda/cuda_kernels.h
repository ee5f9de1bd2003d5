// Launchers of the engine's CUDA kernels. Weights come in float32, float16 or
// bfloat16 (WType); activations and the KV cache are float32. Kernels that
// depend on the position read it from device memory (`d_pos`), so that a
// captured decode step replays unchanged for every position.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace llm::cuda {

enum class WType { kF32, kF16, kBF16 };
size_t WTypeSize(WType t);

// out[t, :] = table[ids[t], :] widened to float32.
void Embedding(const void* table, WType t, const int32_t* ids, int n, int hidden, float* out, cudaStream_t s);

// Per row: x += delta (when not null), then out = rmsnorm(x) * weight.
// out_lowp (when not null) gets the same values in `lowp` type, the input of a cuBLAS GEMM.
void AddRmsNorm(float* x, const float* delta, const float* weight, int rows, int cols, float eps, float* out,
                void* out_lowp, WType lowp, cudaStream_t s);

// Decode projections (one token): y[r] = W[r, :] . x (+ bias[r]).
void Gemv(const void* w, WType t, const float* x, const float* bias, int rows, int cols, float* y, cudaStream_t s);
// Fused gate/up: W = [gate; up] ([2F, cols]); out[f] = silu(gate[f] . x) * (up[f] . x).
void GemvGateUpSilu(const void* w, WType t, const float* x, const float* bias, int F, int cols, float* out,
                    cudaStream_t s);

// Prefill: y[n, N] += bias[N].
void AddBias(float* y, const float* bias, int n, int N, cudaStream_t s);
// Prefill: out[t, f] = silu(gu[t, f]) * gu[t, F + f], written as float32 or `lowp`.
void SiluMulRows(const float* gate_up, int n, int F, void* out, WType out_type, cudaStream_t s);
// float32 -> `t` (for GEMM inputs).
void Convert(const float* in, size_t count, void* out, WType t, cudaStream_t s);

// RoPE on q and k of n tokens from qkv [n, (H + 2 KVH) * hd]; writes roped q to
// q_out [n, H * hd] and k, v into the cache ([kv_head][capacity][hd]) at
// positions *d_pos .. *d_pos + n - 1.
void RopeKvWrite(const float* qkv, int n, int num_heads, int num_kv_heads, int head_dim, const int* d_pos,
                 const float* cos_table, const float* sin_table, float* q_out, float* k_cache, float* v_cache,
                 int capacity, cudaStream_t s);

// Causal GQA attention for n query rows at positions *d_pos + t, over the cache.
void Attention(const float* q, const float* k_cache, const float* v_cache, int capacity, int n, int num_heads,
               int num_kv_heads, int head_dim, const int* d_pos, float scale, float* out, cudaStream_t s);

// *token = argmax(logits[0 .. vocab)), first index on ties.
void ArgMax(const float* logits, int vocab, int32_t* token, cudaStream_t s);
// *d_pos += n: the last kernel of a step, so a replayed graph moves on.
void AdvancePosition(int* d_pos, int n, cudaStream_t s);

// Device-to-device copy bandwidth probe: bytes per second of one copy of `bytes`.
double MeasureCopyBandwidth(size_t bytes, int repetitions);

}  // namespace llm::cuda
