// The weights of a Llama model, described as data: one table names every
// tensor with its expected shape, and both the checkpoint loader and the
// random initialiser walk that table.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/llama_config.h"
#include "kernels/ops.h"

namespace llm {

class ThreadPool;

// A 1-D or 2-D tensor in a float or block-quantized storage type (rows of
// whole blocks). `owner` keeps the bytes alive:
// either an allocation made at load or the memory-mapped checkpoint file.
struct Tensor {
  DType dtype = DType::kF32;
  int64_t rows = 0;  // 1 for vectors
  int64_t cols = 0;
  const void* data = nullptr;
  std::shared_ptr<const void> owner;
  bool mapped = false;  // data points into a file mapping (zero-copy load)

  bool empty() const { return data == nullptr; }
  size_t nbytes() const { return static_cast<size_t>(rows) * DTypeRowBytes(dtype, cols); }
  MatView view() const { return MatView{data, dtype, rows, cols}; }
  const float* f32() const { return static_cast<const float*>(data); }
};

struct LayerWeights {
  Tensor input_layernorm;           // [hidden]
  Tensor q_proj, k_proj, v_proj;    // [q_dim, hidden], [kv_dim, hidden], [kv_dim, hidden]
  Tensor o_proj;                    // [hidden, q_dim]
  Tensor q_bias, k_bias, v_bias, o_bias;  // float32, only with attention_bias
  Tensor post_attention_layernorm;  // [hidden]
  Tensor gate_proj, up_proj;        // [intermediate, hidden]
  Tensor down_proj;                 // [hidden, intermediate]
  Tensor gate_bias, up_bias, down_bias;   // float32, only with mlp_bias
};

struct ModelWeights {
  Tensor embed_tokens;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  Tensor norm;          // [hidden]
  Tensor lm_head;       // [vocab, hidden]; aliases embed_tokens when tied
  DType dtype = DType::kF32;

  // Bytes a decode step must read: every matrix and norm once, plus one row of
  // the embedding (the whole table when it doubles as lm_head).
  size_t DecodeBytesPerToken(const LlamaConfig& c) const;
  size_t TotalBytes() const;  // distinct bytes held
};

// One entry of the tensor table: HF name, shape, where it goes, whether it is a
// bias (kept in float32) and whether it may be absent.
struct TensorSpec {
  std::string name;
  int64_t rows;
  int64_t cols;
  Tensor* slot;
  bool is_bias;
  enum Init { kNormal, kOnes, kZeros } init;
};
std::vector<TensorSpec> ListTensors(const LlamaConfig& c, ModelWeights* w);

// A new weight tensor's storage (rows of whole blocks when quantized), counted
// as weights in the memory ledger; a clean error naming `name` when memory is short.
Result<Tensor> AllocateTensor(DType dtype, int64_t rows, int64_t cols, const std::string& name);

// Loads model.safetensors or a sharded checkpoint from `dir`, checking every
// tensor's name, shape and dtype against `config`, converting to `dtype`.
Result<ModelWeights> LoadSafetensorsWeights(const std::string& dir, const LlamaConfig& config, DType dtype,
                                            ThreadPool* pool);

// --mmap off: every tensor that points into a file mapping is copied into
// one allocation of the model's own (huge pages; the mappings are released
// where nothing else holds them). Refused with the figures when memory is short.
Status CopyMappedWeights(const LlamaConfig& config, ModelWeights* w, ThreadPool* pool);

// "tensor 'NAME' holds nan at element I" for the first weight holding NaN or
// Inf, else "". A full scan: for explaining non-finite logits, not for every load.
std::string DescribeNonFiniteWeight(const LlamaConfig& config, const ModelWeights& weights);

// Replaces every matrix of `w` (any float type) by its q8_0 or q4_0
// quantization with llama.cpp's rounding; norms and biases stay float.
Status QuantizeWeights(const LlamaConfig& config, DType type, ModelWeights* w, ThreadPool* pool);

// Deterministic random weights shaped like a trained model's: normal(0, 0.02)
// for matrices, ones for norms, zeros for biases; made directly in `dtype`, in
// parallel, identical for a seed whatever the thread count.
Result<ModelWeights> MakeDummyWeights(const LlamaConfig& config, DType dtype, uint64_t seed, ThreadPool* pool);

}  // namespace llm
