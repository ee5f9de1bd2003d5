#include "cuda/cuda_engine.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "cuda/cuda_kernels.h"
#include "cuda/cupti_tracer.h"
#include "model/llama_model.h"

namespace llm {

namespace {

using cuda::WType;

Status CudaError(const char* what, cudaError_t e) {
  return Internal(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}
#define LLM_CUDA_TRY(expr)                                     \
  do {                                                         \
    const cudaError_t llm_cuda_err_ = (expr);                  \
    if (llm_cuda_err_ != cudaSuccess) return CudaError(#expr, llm_cuda_err_); \
  } while (0)

Result<WType> ToWType(DType t) {
  switch (t) {
    case DType::kF32: return WType::kF32;
    case DType::kF16: return WType::kF16;
    case DType::kBF16: return WType::kBF16;
    default: return InvalidArgument("--device cuda supports float32, float16 and bfloat16 weights");
  }
}

// Device allocations of the engine, counted by category; freed together.
class DeviceArena {
 public:
  enum Category { kWeights, kKvCache, kWorkspace, kCategories };
  ~DeviceArena() {
    for (void* p : blocks_) cudaFree(p);
  }
  template <typename T>
  Result<T*> Alloc(size_t count, Category c) {
    void* p = nullptr;
    const size_t bytes = count * sizeof(T);
    if (cudaError_t e = cudaMalloc(&p, bytes > 0 ? bytes : 1); e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error so later calls report their own
      return IoError("out of GPU memory allocating " + std::to_string(bytes >> 20) + " MiB (" +
                     cudaGetErrorString(e) + "); try a smaller --max-seq-len or a 16-bit --dtype");
    }
    blocks_.push_back(p);
    bytes_[c] += bytes;
    size_t total = 0;
    for (size_t b : bytes_) total += b;
    peak_ = std::max(peak_, total);
    return static_cast<T*>(p);
  }
  size_t bytes(Category c) const { return bytes_[c]; }
  size_t peak() const { return peak_; }

 private:
  std::vector<void*> blocks_;
  size_t bytes_[kCategories] = {};
  size_t peak_ = 0;
};

class CudaEngine final : public DeviceEngine {
 public:
  static Result<std::unique_ptr<CudaEngine>> Create(const LlamaConfig& c, const ModelWeights& w,
                                                    const CudaOptions& o);
  ~CudaEngine() override;

  std::string name() const override { return name_; }
  Status Forward(const int32_t* tokens, int n, int start_pos, bool all_logits) override;
  Status CopyLogits(float* host, int rows) override;
  Result<int32_t> GreedyToken() override;
  void set_profiler(Profiler* profiler) override;
  Status FlushTrace() override;
  DeviceMemory memory() const override;

 private:
  struct Layer {
    const void* qkv = nullptr;  // [q_dim + 2 kv_dim, hidden]: q, k, v rows stacked
    const void* o = nullptr;
    const void* gate_up = nullptr;  // [2 intermediate, hidden]: gate rows then up rows
    const void* down = nullptr;
    const float *qkv_bias = nullptr, *o_bias = nullptr, *gate_up_bias = nullptr, *down_bias = nullptr;
    const float *ln_attention = nullptr, *ln_ffn = nullptr;
  };

  CudaEngine() = default;
  Status Upload(const ModelWeights& w);
  Result<const void*> UploadRows(std::initializer_list<const Tensor*> parts);
  Result<const float*> UploadFloat32(std::initializer_list<const Tensor*> parts);
  // Enqueue one forward pass on stream_: n == 1 as decode (GEMV, fused gate/up,
  // device argmax into d_tokens_[0]), else as prefill (cuBLAS GEMMs).
  void EnqueueDecode();
  void EnqueuePrefill(int n, bool all_logits);
  void Gemm(const void* w, int N, int K, const void* x_lowp, int M, float* y, const float* bias);
  Status CaptureDecodeGraph();
  // Names what was just launched: for graph kernels, their op in launch order.
  void Launched(Op op, int layer) {
    if (capturing_) graph_ops_.emplace_back(op, layer);
  }

  LlamaConfig c_;
  CudaOptions o_;
  WType wt_ = WType::kF32;
  std::string name_;
  DeviceArena arena_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cudaGraphExec_t graph_exec_ = nullptr;
  bool capturing_ = false;
  std::vector<std::pair<Op, int>> graph_ops_;
  cublasStatus_t gemm_status_ = CUBLAS_STATUS_SUCCESS;  // first failure of the last prefill

  std::vector<Layer> layers_;
  const void* embed_ = nullptr;
  const void* lm_head_ = nullptr;
  const float* norm_ = nullptr;
  float *cos_ = nullptr, *sin_ = nullptr;
  float* kv_ = nullptr;  // [layer][k|v][kv_head][max_seq_len][head_dim]
  int32_t* d_tokens_ = nullptr;
  int* d_pos_ = nullptr;
  int32_t* pinned_token_ = nullptr;  // host side of the sampled id
  // Activations for up to max_batch_tokens rows.
  float *x_ = nullptr, *xn_ = nullptr, *qkv_ = nullptr, *q_ = nullptr, *attn_ = nullptr, *proj_ = nullptr;
  float *gate_up_ = nullptr, *act_ = nullptr, *logits_ = nullptr;
  void* lowp_ = nullptr;  // GEMM input in the weight type, [T, max(hidden, q_dim, intermediate)]

  int device_pos_ = -1;          // position d_pos_ holds, -1 = unknown
  int32_t device_token_ = -1;    // id d_tokens_[0] holds, -1 = unknown
  bool argmax_done_ = false;     // d_tokens_[0] is the argmax of the current logits
  int logits_rows_ = 1;
  Profiler* profiler_ = nullptr;
  std::unique_ptr<cuda::CuptiTracer> tracer_;
};

Result<std::unique_ptr<CudaEngine>> CudaEngine::Create(const LlamaConfig& c, const ModelWeights& w,
                                                       const CudaOptions& o) {
  if (c.head_dim % 2 != 0 || c.head_dim > 256) {
    return InvalidArgument("--device cuda supports head_dim up to 256 (even); this model has " +
                           std::to_string(c.head_dim));
  }
  LLM_ASSIGN_OR_RETURN(WType wt, ToWType(w.dtype));
  LLM_ASSIGN_OR_RETURN(int count, CudaDeviceCount());
  if (o.device < 0 || o.device >= count) {
    return InvalidArgument("CUDA device " + std::to_string(o.device) + " does not exist (" + std::to_string(count) +
                           " visible)");
  }
  LLM_CUDA_TRY(cudaSetDevice(o.device));
  std::unique_ptr<CudaEngine> e(new CudaEngine());
  e->c_ = c;
  e->o_ = o;
  if (e->o_.max_batch_tokens <= 0) e->o_.max_batch_tokens = o.max_seq_len;
  e->wt_ = wt;
  cudaDeviceProp prop{};
  LLM_CUDA_TRY(cudaGetDeviceProperties(&prop, o.device));
  e->name_ = "cuda:" + std::to_string(o.device) + " " + prop.name + " (sm_" + std::to_string(prop.major) +
             std::to_string(prop.minor) + ", " + std::to_string(prop.totalGlobalMem >> 30) + " GiB)";
  LLM_CUDA_TRY(cudaStreamCreateWithFlags(&e->stream_, cudaStreamNonBlocking));
  if (cublasCreate(&e->cublas_) != CUBLAS_STATUS_SUCCESS) return Internal("cuBLAS could not be initialised");
  cublasSetStream(e->cublas_, e->stream_);
  LLM_RETURN_IF_ERROR(e->Upload(w));

  DeviceArena& a = e->arena_;
  const size_t T = e->o_.max_batch_tokens, H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(),
               F = c.intermediate_size, V = c.vocab_size, S = o.max_seq_len, half = c.head_dim / 2;
  LLM_ASSIGN_OR_RETURN(e->kv_, a.Alloc<float>(static_cast<size_t>(c.num_hidden_layers) * 2 * KV * S,
                                              DeviceArena::kKvCache));
  LLM_CUDA_TRY(cudaMemset(e->kv_, 0, static_cast<size_t>(c.num_hidden_layers) * 2 * KV * S * sizeof(float)));
  std::vector<float> cos_t(S * half), sin_t(S * half);
  BuildRopeTables(c, o.max_seq_len, cos_t.data(), sin_t.data());
  const auto ws = DeviceArena::kWorkspace;
  LLM_ASSIGN_OR_RETURN(e->cos_, a.Alloc<float>(S * half, ws));
  LLM_ASSIGN_OR_RETURN(e->sin_, a.Alloc<float>(S * half, ws));
  LLM_CUDA_TRY(cudaMemcpy(e->cos_, cos_t.data(), cos_t.size() * sizeof(float), cudaMemcpyHostToDevice));
  LLM_CUDA_TRY(cudaMemcpy(e->sin_, sin_t.data(), sin_t.size() * sizeof(float), cudaMemcpyHostToDevice));
  LLM_ASSIGN_OR_RETURN(e->d_tokens_, a.Alloc<int32_t>(T, ws));
  LLM_ASSIGN_OR_RETURN(e->d_pos_, a.Alloc<int>(1, ws));
  LLM_ASSIGN_OR_RETURN(e->x_, a.Alloc<float>(T * H, ws));
  LLM_ASSIGN_OR_RETURN(e->xn_, a.Alloc<float>(T * H, ws));
  LLM_ASSIGN_OR_RETURN(e->qkv_, a.Alloc<float>(T * (Q + 2 * KV), ws));
  LLM_ASSIGN_OR_RETURN(e->q_, a.Alloc<float>(T * Q, ws));
  LLM_ASSIGN_OR_RETURN(e->attn_, a.Alloc<float>(T * Q, ws));
  LLM_ASSIGN_OR_RETURN(e->proj_, a.Alloc<float>(T * H, ws));
  LLM_ASSIGN_OR_RETURN(e->gate_up_, a.Alloc<float>(T * 2 * F, ws));
  LLM_ASSIGN_OR_RETURN(e->act_, a.Alloc<float>(F, ws));
  LLM_ASSIGN_OR_RETURN(e->logits_, a.Alloc<float>(T * V, ws));
  LLM_ASSIGN_OR_RETURN(float* lowp, a.Alloc<float>(T * std::max({H, Q, F}), ws));  // float32 is the widest type
  e->lowp_ = lowp;
  LLM_CUDA_TRY(cudaMallocHost(&e->pinned_token_, sizeof(int32_t)));
  return Result<std::unique_ptr<CudaEngine>>(std::move(e));
}

CudaEngine::~CudaEngine() {
  if (stream_) cudaStreamSynchronize(stream_);
  tracer_.reset();
  if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
  if (cublas_) cublasDestroy(cublas_);
  if (pinned_token_) cudaFreeHost(pinned_token_);
  if (stream_) cudaStreamDestroy(stream_);
}

// Stacks the rows of `parts` (same dtype and width) into one device matrix.
Result<const void*> CudaEngine::UploadRows(std::initializer_list<const Tensor*> parts) {
  size_t bytes = 0;
  for (const Tensor* t : parts) {
    if (t->dtype != parts.begin()[0]->dtype || t->cols != parts.begin()[0]->cols) {
      return Internal("tensors to fuse differ in dtype or width");
    }
    bytes += t->nbytes();
  }
  LLM_ASSIGN_OR_RETURN(uint8_t* d, arena_.Alloc<uint8_t>(bytes, DeviceArena::kWeights));
  size_t offset = 0;
  for (const Tensor* t : parts) {
    LLM_CUDA_TRY(cudaMemcpy(d + offset, t->data, t->nbytes(), cudaMemcpyHostToDevice));
    offset += t->nbytes();
  }
  return static_cast<const void*>(d);
}

// Norm weights and biases as float32 (widening is exact): null when absent.
Result<const float*> CudaEngine::UploadFloat32(std::initializer_list<const Tensor*> parts) {
  std::vector<float> host;
  for (const Tensor* t : parts) {
    if (t->empty()) return static_cast<const float*>(nullptr);
    const size_t n = static_cast<size_t>(t->rows * t->cols);
    host.resize(host.size() + n);
    ConvertFloats(t->data, t->dtype, host.data() + host.size() - n, DType::kF32, n);
  }
  LLM_ASSIGN_OR_RETURN(float* d, arena_.Alloc<float>(host.size(), DeviceArena::kWeights));
  LLM_CUDA_TRY(cudaMemcpy(d, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
  return static_cast<const float*>(d);
}

Status CudaEngine::Upload(const ModelWeights& w) {
  for (const LayerWeights& lw : w.layers) {
    Layer l;
    LLM_ASSIGN_OR_RETURN(l.qkv, UploadRows({&lw.q_proj, &lw.k_proj, &lw.v_proj}));
    LLM_ASSIGN_OR_RETURN(l.o, UploadRows({&lw.o_proj}));
    LLM_ASSIGN_OR_RETURN(l.gate_up, UploadRows({&lw.gate_proj, &lw.up_proj}));
    LLM_ASSIGN_OR_RETURN(l.down, UploadRows({&lw.down_proj}));
    LLM_ASSIGN_OR_RETURN(l.qkv_bias, UploadFloat32({&lw.q_bias, &lw.k_bias, &lw.v_bias}));
    LLM_ASSIGN_OR_RETURN(l.o_bias, UploadFloat32({&lw.o_bias}));
    LLM_ASSIGN_OR_RETURN(l.gate_up_bias, UploadFloat32({&lw.gate_bias, &lw.up_bias}));
    LLM_ASSIGN_OR_RETURN(l.down_bias, UploadFloat32({&lw.down_bias}));
    LLM_ASSIGN_OR_RETURN(l.ln_attention, UploadFloat32({&lw.input_layernorm}));
    LLM_ASSIGN_OR_RETURN(l.ln_ffn, UploadFloat32({&lw.post_attention_layernorm}));
    layers_.push_back(l);
  }
  LLM_ASSIGN_OR_RETURN(embed_, UploadRows({&w.embed_tokens}));
  if (w.lm_head.data == w.embed_tokens.data) {
    lm_head_ = embed_;  // tied: one copy
  } else {
    LLM_ASSIGN_OR_RETURN(lm_head_, UploadRows({&w.lm_head}));
  }
  LLM_ASSIGN_OR_RETURN(norm_, UploadFloat32({&w.norm}));
  return OkStatus();
}

// y[M, N] = x[M, K] W[N, K]^T (+ bias) in cuBLAS's column-major terms:
// y^T[N, M] = W[N, K] x^T[K, M], with W and x row-major. float32 accumulation;
// float32 weights stay in float32 arithmetic (no TF32), so that the f32
// results match the CPU engine.
void CudaEngine::Gemm(const void* w, int N, int K, const void* x_lowp, int M, float* y, const float* bias) {
  const float alpha = 1.0f, beta = 0.0f;
  const cudaDataType t = wt_ == WType::kF32 ? CUDA_R_32F : wt_ == WType::kF16 ? CUDA_R_16F : CUDA_R_16BF;
  const cublasStatus_t st = cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w, t, K, x_lowp, t, K,
                                         &beta, y, CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS && gemm_status_ == CUBLAS_STATUS_SUCCESS) gemm_status_ = st;  // Forward reports it
  if (bias) cuda::AddBias(y, bias, M, N, stream_);
}

void CudaEngine::EnqueueDecode() {
  const LlamaConfig& c = c_;
  const int H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), F = c.intermediate_size, V = c.vocab_size;
  const int S = o_.max_seq_len;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const size_t wb = cuda::WTypeSize(wt_);
  Profiler* prof = capturing_ ? nullptr : profiler_;
  cudaStream_t s = stream_;
  {
    LLM_PROFILE(prof, Op::kEmbedding, -1);
    cuda::Embedding(embed_, wt_, d_tokens_, 1, H, x_, s);
    Launched(Op::kEmbedding, -1);
  }
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const Layer& w = layers_[l];
    float* k_cache = kv_ + static_cast<size_t>(l) * 2 * KV * S;
    float* v_cache = k_cache + static_cast<size_t>(KV) * S;
    LLM_PROFILE(prof, Op::kLayer, l);
    {
      // The previous block's residual add is fused in: x += proj, then norm.
      LLM_PROFILE(prof, Op::kAttentionNorm, l, RmsNormCost(1, H, 4));
      cuda::AddRmsNorm(x_, l == 0 ? nullptr : proj_, w.ln_attention, 1, H, c.rms_norm_eps, xn_, nullptr, wt_, s);
      Launched(Op::kAttentionNorm, l);
    }
    {
      LLM_PROFILE(prof, Op::kQkvProj, l, MatMulCost(1, Q + 2 * KV, H, wb));
      cuda::Gemv(w.qkv, wt_, xn_, w.qkv_bias, Q + 2 * KV, H, qkv_, s);
      Launched(Op::kQkvProj, l);
    }
    {
      LLM_PROFILE(prof, Op::kRope, l, ElementwiseCost(Q + 2 * KV, 3, 2));
      cuda::RopeKvWrite(qkv_, 1, c.num_attention_heads, c.num_key_value_heads, c.head_dim, d_pos_, cos_, sin_, q_,
                        k_cache, v_cache, S, s);
      Launched(Op::kRope, l);
    }
    {
      LLM_PROFILE(prof, Op::kSdpa, l);
      cuda::Attention(q_, k_cache, v_cache, S, 1, c.num_attention_heads, c.num_key_value_heads, c.head_dim, d_pos_,
                      scale, attn_, s);
      Launched(Op::kSdpa, l);
    }
    {
      LLM_PROFILE(prof, Op::kOProj, l, MatMulCost(1, H, Q, wb));
      cuda::Gemv(w.o, wt_, attn_, w.o_bias, H, Q, proj_, s);
      Launched(Op::kOProj, l);
    }
    {
      LLM_PROFILE(prof, Op::kFfnNorm, l, RmsNormCost(1, H, 4));
      cuda::AddRmsNorm(x_, proj_, w.ln_ffn, 1, H, c.rms_norm_eps, xn_, nullptr, wt_, s);
      Launched(Op::kFfnNorm, l);
    }
    {
      LLM_PROFILE(prof, Op::kGateUpSilu, l, MatMulCost(1, 2 * F, H, wb));
      cuda::GemvGateUpSilu(w.gate_up, wt_, xn_, w.gate_up_bias, F, H, act_, s);
      Launched(Op::kGateUpSilu, l);
    }
    {
      LLM_PROFILE(prof, Op::kDownProj, l, MatMulCost(1, H, F, wb));
      cuda::Gemv(w.down, wt_, act_, w.down_bias, H, F, proj_, s);
      Launched(Op::kDownProj, l);
    }
  }
  {
    LLM_PROFILE(prof, Op::kNorm, -1, RmsNormCost(1, H, 4));
    cuda::AddRmsNorm(x_, proj_, norm_, 1, H, c.rms_norm_eps, xn_, nullptr, wt_, s);
    Launched(Op::kNorm, -1);
  }
  {
    LLM_PROFILE(prof, Op::kLmHead, -1, MatMulCost(1, V, H, wb));
    cuda::Gemv(lm_head_, wt_, xn_, nullptr, V, H, logits_, s);
    Launched(Op::kLmHead, -1);
  }
  {
    LLM_PROFILE(prof, Op::kSampling, -1, ElementwiseCost(V, 1, 1));
    cuda::ArgMax(logits_, V, d_tokens_, s);
    Launched(Op::kSampling, -1);
  }
  cuda::AdvancePosition(d_pos_, 1, s);
  Launched(Op::kDecodeStep, -1);
}

void CudaEngine::EnqueuePrefill(int n, bool all_logits) {
  const LlamaConfig& c = c_;
  const int H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), F = c.intermediate_size, V = c.vocab_size;
  const int S = o_.max_seq_len;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const size_t wb = cuda::WTypeSize(wt_);
  Profiler* prof = profiler_;
  cudaStream_t s = stream_;
  {
    LLM_PROFILE(prof, Op::kEmbedding, -1);
    cuda::Embedding(embed_, wt_, d_tokens_, n, H, x_, s);
  }
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const Layer& w = layers_[l];
    float* k_cache = kv_ + static_cast<size_t>(l) * 2 * KV * S;
    float* v_cache = k_cache + static_cast<size_t>(KV) * S;
    LLM_PROFILE(prof, Op::kLayer, l);
    {
      LLM_PROFILE(prof, Op::kAttentionNorm, l, RmsNormCost(n, H, 4));
      cuda::AddRmsNorm(x_, l == 0 ? nullptr : proj_, w.ln_attention, n, H, c.rms_norm_eps, xn_, lowp_, wt_, s);
    }
    {
      LLM_PROFILE(prof, Op::kQkvProj, l, MatMulCost(n, Q + 2 * KV, H, wb));
      Gemm(w.qkv, Q + 2 * KV, H, lowp_, n, qkv_, w.qkv_bias);
    }
    {
      LLM_PROFILE(prof, Op::kRope, l, ElementwiseCost(n * (Q + 2 * KV), 3, 2));
      cuda::RopeKvWrite(qkv_, n, c.num_attention_heads, c.num_key_value_heads, c.head_dim, d_pos_, cos_, sin_, q_,
                        k_cache, v_cache, S, s);
    }
    {
      LLM_PROFILE(prof, Op::kSdpa, l);
      cuda::Attention(q_, k_cache, v_cache, S, n, c.num_attention_heads, c.num_key_value_heads, c.head_dim, d_pos_,
                      scale, attn_, s);
    }
    {
      LLM_PROFILE(prof, Op::kOProj, l, MatMulCost(n, H, Q, wb));
      cuda::Convert(attn_, static_cast<size_t>(n) * Q, lowp_, wt_, s);
      Gemm(w.o, H, Q, lowp_, n, proj_, w.o_bias);
    }
    {
      LLM_PROFILE(prof, Op::kFfnNorm, l, RmsNormCost(n, H, 4));
      cuda::AddRmsNorm(x_, proj_, w.ln_ffn, n, H, c.rms_norm_eps, xn_, lowp_, wt_, s);
    }
    {
      LLM_PROFILE(prof, Op::kGateUpSilu, l, MatMulCost(n, 2 * F, H, wb));
      Gemm(w.gate_up, 2 * F, H, lowp_, n, gate_up_, w.gate_up_bias);
      cuda::SiluMulRows(gate_up_, n, F, lowp_, wt_, s);
    }
    {
      LLM_PROFILE(prof, Op::kDownProj, l, MatMulCost(n, H, F, wb));
      Gemm(w.down, H, F, lowp_, n, proj_, w.down_bias);
    }
  }
  {
    LLM_PROFILE(prof, Op::kNorm, -1, RmsNormCost(n, H, 4));
    cuda::AddRmsNorm(x_, proj_, norm_, n, H, c.rms_norm_eps, xn_, lowp_, wt_, s);
  }
  {
    const int rows = all_logits ? n : 1;
    LLM_PROFILE(prof, Op::kLmHead, -1, MatMulCost(rows, V, H, wb));
    if (all_logits) {
      Gemm(lm_head_, V, H, lowp_, n, logits_, nullptr);
    } else {
      cuda::Gemv(lm_head_, wt_, xn_ + static_cast<size_t>(n - 1) * H, nullptr, V, H, logits_, s);
    }
  }
  cuda::AdvancePosition(d_pos_, n, s);
}

Status CudaEngine::CaptureDecodeGraph() {
  graph_ops_.clear();
  LLM_CUDA_TRY(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  capturing_ = true;
  EnqueueDecode();
  capturing_ = false;
  cudaGraph_t graph = nullptr;
  LLM_CUDA_TRY(cudaStreamEndCapture(stream_, &graph));
  const cudaError_t e = cudaGraphInstantiate(&graph_exec_, graph, 0);
  cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    graph_exec_ = nullptr;
    return CudaError("cudaGraphInstantiate", e);
  }
  return OkStatus();
}

Status CudaEngine::Forward(const int32_t* tokens, int n, int start_pos, bool all_logits) {
  if (n <= 0 || n > o_.max_batch_tokens) return InvalidArgument("CUDA forward of " + std::to_string(n) + " tokens");
  // Inputs cross from pageable memory: the copy has read them when the call returns.
  if (start_pos != device_pos_) {
    LLM_CUDA_TRY(cudaMemcpyAsync(d_pos_, &start_pos, sizeof(int), cudaMemcpyHostToDevice, stream_));
  }
  const bool decode = n == 1 && !all_logits;
  if (!decode || tokens[0] != device_token_) {
    LLM_CUDA_TRY(cudaMemcpyAsync(d_tokens_, tokens, n * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
  }
  if (decode && o_.graphs) {
    if (graph_exec_ == nullptr) LLM_RETURN_IF_ERROR(CaptureDecodeGraph());
    LLM_CUDA_TRY(cudaGraphLaunch(graph_exec_, stream_));
  } else if (decode) {
    EnqueueDecode();
  } else {
    gemm_status_ = CUBLAS_STATUS_SUCCESS;
    EnqueuePrefill(n, all_logits);
    if (gemm_status_ != CUBLAS_STATUS_SUCCESS) {
      return Internal(std::string("cuBLAS GEMM failed: ") + cublasGetStatusString(gemm_status_));
    }
  }
  LLM_CUDA_TRY(cudaGetLastError());
  argmax_done_ = decode;
  device_token_ = -1;  // decode overwrote d_tokens_[0] with the argmax; the host learns it in GreedyToken
  device_pos_ = start_pos + n;
  logits_rows_ = all_logits ? n : 1;
  return OkStatus();
}

Status CudaEngine::CopyLogits(float* host, int rows) {
  if (rows > logits_rows_) return InvalidArgument("asked for more logit rows than the last forward kept");
  const size_t offset = static_cast<size_t>(logits_rows_ - rows) * c_.vocab_size;
  LLM_CUDA_TRY(cudaMemcpyAsync(host, logits_ + offset, static_cast<size_t>(rows) * c_.vocab_size * sizeof(float),
                               cudaMemcpyDeviceToHost, stream_));
  LLM_CUDA_TRY(cudaStreamSynchronize(stream_));
  return OkStatus();
}

Result<int32_t> CudaEngine::GreedyToken() {
  if (!argmax_done_) {
    cuda::ArgMax(logits_ + static_cast<size_t>(logits_rows_ - 1) * c_.vocab_size, c_.vocab_size, d_tokens_, stream_);
    argmax_done_ = true;
  }
  LLM_CUDA_TRY(cudaMemcpyAsync(pinned_token_, d_tokens_, sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  LLM_CUDA_TRY(cudaStreamSynchronize(stream_));
  device_token_ = *pinned_token_;
  return device_token_;
}

void CudaEngine::set_profiler(Profiler* profiler) {
  if (profiler_ != nullptr) profiler_->set_listener(nullptr);
  tracer_.reset();
  profiler_ = profiler;
  if (profiler == nullptr) return;
  cudaStreamSynchronize(stream_);  // nothing earlier leaks into the trace
  auto tracer = cuda::CuptiTracer::Start();
  if (tracer.ok()) {
    tracer_ = std::move(tracer.value());
    profiler->set_listener(tracer_.get());
  } else {
    profiler->AddNote("GPU activity not recorded: " + tracer.status().message());
  }
}

Status CudaEngine::FlushTrace() {
  LLM_CUDA_TRY(cudaStreamSynchronize(stream_));
  if (profiler_ == nullptr) return OkStatus();
  if (tracer_) profiler_->AddGpuActivities(tracer_->Flush(graph_ops_));
  const DeviceMemory m = memory();
  auto mib = [](size_t b) { return std::to_string(b >> 20) + " MiB"; };
  profiler_->AddNote("device: " + name_ + (o_.graphs ? ", decode step as a CUDA graph of " +
                                                         std::to_string(graph_ops_.size()) + " kernels"
                                                   : ", eager launches"));
  profiler_->AddNote("device memory: weights " + mib(m.weights) + ", KV cache " + mib(m.kv_cache) + ", workspace " +
                     mib(m.workspace) + ", engine peak " + mib(m.peak) + "; driver: " + mib(m.total - m.free) +
                     " used of " + mib(m.total));
  return OkStatus();
}

DeviceMemory CudaEngine::memory() const {
  DeviceMemory m;
  m.weights = arena_.bytes(DeviceArena::kWeights);
  m.kv_cache = arena_.bytes(DeviceArena::kKvCache);
  m.workspace = arena_.bytes(DeviceArena::kWorkspace);
  m.peak = arena_.peak();
  cudaMemGetInfo(&m.free, &m.total);
  return m;
}

}  // namespace

bool CudaBuilt() { return true; }

Result<int> CudaDeviceCount() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    return NotFound(std::string("no CUDA device is visible (") +
                    (e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found 0") + ")");
  }
  return count;
}

Result<std::unique_ptr<DeviceEngine>> MakeCudaEngine(const LlamaConfig& config, const ModelWeights& weights,
                                                     const CudaOptions& options) {
  LLM_ASSIGN_OR_RETURN(auto e, CudaEngine::Create(config, weights, options));
  return std::unique_ptr<DeviceEngine>(std::move(e));
}

Result<double> MeasureCudaCopyBandwidth(int repetitions) {
  if (auto count = CudaDeviceCount(); !count.ok()) return count.status();
  const double bps = cuda::MeasureCopyBandwidth(size_t{1} << 30, repetitions);
  if (bps <= 0) return Internal("the device-to-device copy probe failed");
  return bps / 1e9;
}

}  // namespace llm
