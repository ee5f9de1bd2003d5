// The narrow interface between the model and the kernels. The model calls only
// these operations; a backend (scalar reference, SIMD CPU) implements them.
// Activations are float32 row-major; weights are any float
// storage type and are widened inside the kernel, accumulating in float32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "profiler/profiler.h"

namespace llm {

class ThreadPool;

// A read-only 2-D weight matrix [rows, cols] in HF layout: rows = out_features,
// cols = in_features, row-major, rows contiguous.
struct MatView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  // A bfloat16 model's matmul: activations (and dequantized weights of a
  // quantized W) may be rounded to bfloat16 for a matrix unit, accumulating
  // in float32. bfloat16 W always may; this extends it to quantized W.
  bool bf16_compute = false;
};

// One layer's KV cache: [num_kv_heads][capacity][head_dim], contiguous per head
// so that decode attention reads each head's keys and values in one stream.
struct KvCacheView {
  float* k = nullptr;
  float* v = nullptr;
  int num_kv_heads = 0;
  int capacity = 0;  // positions
  int head_dim = 0;
  float* KeyAt(int kv_head, int pos) const { return k + (static_cast<size_t>(kv_head) * capacity + pos) * head_dim; }
  float* ValueAt(int kv_head, int pos) const { return v + (static_cast<size_t>(kv_head) * capacity + pos) * head_dim; }
};

// Attention for `num_tokens` query rows at positions start_pos .. start_pos+num_tokens-1,
// each attending causally to cache positions 0..its own position.
struct AttentionArgs {
  const float* q = nullptr;  // [num_tokens, num_heads * head_dim]
  KvCacheView cache;
  int num_tokens = 0;
  int start_pos = 0;
  int num_heads = 0;
  float scale = 1.0f;        // 1/sqrt(head_dim)
  float* out = nullptr;      // [num_tokens, num_heads * head_dim]
  int layer = -1;            // for profiler scopes
  // A bfloat16 model: Q·Kᵀ and P·V may round their inputs to bfloat16 as the
  // model's own matmuls do (AMX tiles), accumulating in float32.
  bool bf16_inputs = false;
};

// Work of scaled dot-product attention by part. With ctx = sum over query rows
// of the positions each attends to: scores 2*H*hd*ctx FLOPs and reads K once
// per KV head; softmax ~5 FLOPs per score (max, subtract, exp, sum, divide);
// weighted sum 2*H*hd*ctx FLOPs and reads V once per KV head.
struct SdpaWork {
  OpCost scores, softmax, weighted_sum, total;
  // The three run back to back per block of query rows (sdpa.fused): the
  // same FLOPs, but the scores stay in the worker's cache, so memory sees
  // only K and V read and the queries read and outputs written.
  OpCost fused;
};
SdpaWork SdpaCost(const AttentionArgs& args);

class KernelBackend {
 public:
  virtual ~KernelBackend() = default;
  virtual const char* name() const = 0;

  // y[M, N] = x[M, K] * W[N, K]^T (+ bias[N] when not null); K = w.cols, N = w.rows.
  virtual void MatMul(const float* x, int64_t M, const MatView& w, const float* bias, float* y) = 0;
  // out[m, :] = x[m, :] / sqrt(mean(x[m, :]^2) + eps) * weight   (HF LlamaRMSNorm)
  virtual void RmsNorm(const float* x, const MatView& weight, float eps, int64_t M, float* out) = 0;
  // In-place rotate-half RoPE on x[M, num_heads, head_dim]; row m has position
  // start_pos + m; cos/sin tables are [positions, head_dim / 2].
  virtual void Rope(float* x, int64_t M, int num_heads, int head_dim, int start_pos,
                    const float* cos_table, const float* sin_table) = 0;
  virtual void Attention(const AttentionArgs& args) = 0;
  // out = silu(gate) * up, elementwise over n.
  virtual void SiluMul(const float* gate, const float* up, size_t n, float* out) = 0;
  // Projections of one x (attention's q, k and v): ys[i][M, ws[i].rows] =
  // x ws[i]^T (+ biases[i], which may be null). A backend that
  // FusesSameX(M, ws[0]) prepares x once and runs all their columns in one
  // parallel region; this default calls MatMul for each.
  virtual bool FusesSameX(int64_t M, const MatView& w) const { return false; }
  virtual void MatMulSameX(const float* x, int64_t M, const MatView* ws, const float* const* biases, float* const* ys,
                           int count);
  // Llama's MLP before down_proj: out[M, F] = silu(x Wg^T + bg) * (x Wu^T + bu)
  // (biases may be null), F = gate.rows = up.rows. A backend that
  // FusesGateUpSilu(M, gate) does it in one pass that never writes the two
  // products; this default runs MatMul, MatMul and SiluMul (tests, and any
  // backend's unfused shapes).
  virtual bool FusesGateUpSilu(int64_t M, const MatView& gate) const { return false; }
  virtual void GateUpSilu(const float* x, int64_t M, const MatView& gate, const MatView& up, const float* gate_bias,
                          const float* up_bias, float* out);
  // x += y, elementwise over n.
  virtual void Add(float* x, const float* y, size_t n) = 0;
  // out[i, :] = table[ids[i], :] widened to float32.
  virtual void Embedding(const MatView& table, const int32_t* ids, int64_t n, float* out) = 0;
  // Appends num_tokens rows to a KV cache: k[t] and v[t] ([kv_heads * head_dim]
  // each) go to position start_pos + t of every KV head.
  virtual void KvWrite(const float* k, const float* v, int64_t num_tokens, const KvCacheView& cache, int start_pos);
  // One part of KvWrite, the one a backend may run in parallel: part 2h
  // writes KV head h's K rows, part 2h + 1 its V rows, position after position.
  static void KvWritePart(const float* k, const float* v, int64_t num_tokens, const KvCacheView& cache, int start_pos,
                          int part);
  // Positions 0 .. count-1 of every KV head of `from` copied into `to` (same
  // shape): B continuations of one prompt share its prefill.
  virtual void KvCopy(const KvCacheView& from, const KvCacheView& to, int count);
  // Called once per weight matrix when a model is created, and released with
  // the model (not while MatMul runs): a backend may keep a copy in the layout
  // its kernels read fastest (the CPU's quantized decode: 16-row groups). Its
  // bytes go to the memory ledger as weights. Counted: a matrix prepared twice
  // needs two releases.
  virtual void PrepareWeights(const MatView& w) {}
  // Called before a model's PrepareWeights calls with the sum of their
  // PrepareWeightsBytes: a backend may hold them all in one allocation.
  virtual void ReserveWeights(size_t bytes) {}
  virtual void ReleaseWeights(const MatView& w) {}
  virtual size_t prepared_weight_bytes() const { return 0; }  // held by PrepareWeights
  virtual size_t PrepareWeightsBytes(const MatView& w) const { return 0; }  // what PrepareWeights(w) would add
  // Backends that split an op into parts record them as child scopes.
  virtual void set_profiler(Profiler* profiler) {}
  // The unit MatMul / Attention will run these shapes on (the profiler's roof).
  virtual ComputeUnit MatMulUnit(int64_t M, const MatView& w) const { return ComputeUnit::kFma; }
  virtual ComputeUnit AttentionUnit(const AttentionArgs& args) const { return ComputeUnit::kFma; }
};

// Scalar reference backend: plain loops, double accumulation; the oracle for tests.
std::unique_ptr<KernelBackend> MakeReferenceBackend();
// Highway SIMD backend with runtime ISA dispatch, parallel over `pool`.
std::unique_ptr<KernelBackend> MakeCpuBackend(ThreadPool* pool);
// Name of the SIMD target the CPU backend dispatches to on this machine (e.g. "AVX2").
const char* CpuSimdTargetName();
// The units the CPU backend's matmuls of this weight dtype run on here, e.g.
// "prefill AMX-BF16 tiles, decode AVX3_SPR FMA".
std::string CpuMatMulPath(DType dtype);
// auto (default): quantized decode quantizes activations to int8 where the
// CPU has integer dot products (AVX-512 VNNI, AVX2); off: float32 activations everywhere.
void SetCpuInt8DotEnabled(bool on);
// The x of a float16 or bfloat16 matmul of one row (the decode of one
// sequence, a prompt's last-row lm_head), --decode-x:
// kAuto (default): float32, except where the one-row GEMV reads faster with
//   x in float16 (CpuDecodeHalfX) and every |x| fits float16 (<= 65504);
// kFloat32: always float32;
// kFloat16: float16 wherever |x| fits, any K (the A/B, and the fixture tests
//   hold it to transformers' bounds);
// kBf16: bfloat16 W on AVX512-BF16 dot products with x rounded to bf16,
//   wherever the CPU has them (the dots mode governs prefill only), as
//   llama.cpp does; float16 W, and bfloat16 W where the CPU lacks the dot
//   products, as kAuto.
enum class DecodeX { kAuto, kFloat32, kFloat16, kBf16 };
void SetCpuDecodeX(DecodeX mode);
// Whether kAuto rounds x to float16 for one-row matmuls on this CPU (AMD with
// AVX-512: at every K measured, 2048 to 11008).
bool CpuDecodeHalfX();
// Off: quantized matrices are not repacked for the VNNI decode kernel at
// model creation (--repack off: the A/B of the layout, and half the weight memory).
void SetCpuRepackEnabled(bool on);

}  // namespace llm
