// The Llama forward pass over a KV cache. Reads top to bottom like HF's
// LlamaForCausalLM.forward; all arithmetic goes through a KernelBackend.
#pragma once

#include <cstdint>
#include <algorithm>
#include <functional>
#include <memory>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/status.h"
#include "io/llama_config.h"
#include "kernels/ops.h"
#include "model/device_engine.h"
#include "model/weights.h"
#include "profiler/profiler.h"

namespace llm {

// Called with the hidden state after each stage: stage 0 = embeddings,
// stage l+1 = output of layer l, stage num_layers+1 = after the final norm.
// Lets a test name the first layer that diverges from the reference.
using LayerObserver = std::function<void(int stage, const float* hidden, int64_t num_tokens)>;

struct ModelOptions {
  int max_seq_len = 512;      // KV cache capacity in positions
  int max_batch_tokens = 0;   // largest prefill chunk; 0 = max_seq_len
  bool all_logits = false;    // keep logits of every position (tests), not just the last
  int max_sequences = 1;      // independent sequences of a static batch, each with its own KV cache
};

// One sequence's part of a batched forward pass: `n` tokens of sequence `seq`,
// appended at that sequence's own position.
struct SequenceTokens {
  int seq = 0;
  const int32_t* tokens = nullptr;
  int n = 0;
};

class LlamaModel {
 public:
  static Result<std::unique_ptr<LlamaModel>> Create(const LlamaConfig& config, ModelWeights weights,
                                                    KernelBackend* backend, const ModelOptions& options);
  ~LlamaModel();  // releases what the backend prepared for the weights
  // Bytes Create allocates besides the weights (KV cache first, then RoPE
  // tables and activations), so that they can be checked before anything is.
  static std::vector<size_t> PlannedBufferBytes(const LlamaConfig& config, const ModelOptions& options);
  static size_t PlannedHostBytes(const LlamaConfig& config, const ModelOptions& options);
  // A model whose forward pass runs on `engine` (CUDA); the host keeps only the
  // logits it is asked for. backend() is null.
  static Result<std::unique_ptr<LlamaModel>> CreateOnDevice(const LlamaConfig& config, ModelWeights weights,
                                                            std::unique_ptr<DeviceEngine> engine,
                                                            const ModelOptions& options);

  // Runs `tokens` of sequence 0 at positions position() .. position()+n-1 and
  // appends them to its cache. Prompts longer than max_batch_tokens run in chunks.
  Status Forward(const int32_t* tokens, int n);
  // One forward pass over several sequences (each at most once): their rows
  // share every matmul (M = total tokens); RoPE, the KV write and attention use
  // each sequence's own positions and cache. Chunked at max_batch_tokens rows.
  Status ForwardBatch(const std::vector<SequenceTokens>& batch);
  // Logits of the last token of the last Forward, [vocab].
  const float* last_logits() const;
  // Logits of the last token of batch entry i of the last ForwardBatch.
  const float* batch_logits(int i) const;
  // With all_logits: logits of every token of the last Forward, [n, vocab].
  const float* all_logits() const;
  // Argmax of the logits of batch entry i (first index on ties), on the device
  // when there is one, so that greedy decoding moves only the token id.
  Result<int32_t> GreedyToken(int i = 0) const;
  // Sequence `to` continues from the same prefix as `from` (its KV rows and
  // position copied): B continuations of one prompt prefilled once.
  Status CopySequence(int from, int to);

  int position(int seq = 0) const { return positions_[seq]; }
  void Reset() { std::fill(positions_.begin(), positions_.end(), 0); }
  int max_sequences() const { return options_.max_sequences; }
  void set_layer_observer(LayerObserver obs) { observer_ = std::move(obs); }
  // Operator scopes go to `profiler` while it is active; null = none.
  void set_profiler(Profiler* profiler);
  Profiler* profiler() const { return profiler_; }

  const LlamaConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  KernelBackend* backend() const { return backend_; }  // null on a device
  DeviceEngine* device() const { return device_.get(); }  // null on the CPU
  int max_seq_len() const { return options_.max_seq_len; }
  size_t kv_cache_bytes() const { return device_ ? device_->memory().kv_cache : kv_cache_.size(); }
  // KV bytes holding tokens now, all sequences (used, as opposed to allocated).
  size_t kv_cache_used_bytes() const;
  // KV bytes that `positions` tokens occupy.
  size_t KvCacheBytesFor(int positions) const;
  size_t scratch_bytes() const;
  double prepare_weights_s() const { return prepare_weights_s_; }  // the backend's PrepareWeights at Create

 private:
  LlamaModel() = default;
  // Rows of one sequence inside a chunk; logits_row >= 0 when its last token
  // ends the sequence's batch entry (its logits go to that row).
  struct ChunkPiece {
    int seq = 0;
    const int32_t* tokens = nullptr;
    int n = 0;
    int logits_row = -1;
  };
  Status ForwardChunk(const std::vector<ChunkPiece>& pieces, int T);
  std::vector<const Tensor*> Matrices() const;  // every projection and lm_head
  const float* HostLogits(int rows) const;  // copies from the device when stale
  KvCacheView LayerCache(int seq, int layer) const;

  LlamaConfig config_;
  ModelWeights weights_;
  KernelBackend* backend_ = nullptr;
  bool prepared_weights_ = false;  // backend_->PrepareWeights ran for Matrices()
  double prepare_weights_s_ = 0;
  ModelOptions options_;
  std::vector<int> positions_;  // per sequence
  int last_n_ = 0;
  std::vector<int32_t> row_tokens_;  // token id of each row of a chunk
  LayerObserver observer_;
  Profiler* profiler_ = nullptr;
  std::unique_ptr<DeviceEngine> device_;
  mutable bool host_logits_stale_ = false;

  AlignedBuffer kv_cache_;          // [seq][layer][k|v][kv_head][max_seq_len][head_dim] float32
  AlignedBuffer rope_cos_, rope_sin_;  // [max_seq_len][head_dim / 2]
  // Activations for up to max_batch_tokens rows; names say what they hold.
  AlignedBuffer x_;        // [T, hidden] residual stream
  AlignedBuffer xnorm_;    // [T, hidden] normed input of a block
  AlignedBuffer q_;        // [T, q_dim]
  AlignedBuffer k_, v_;    // [T, kv_dim]
  AlignedBuffer attn_;     // [T, q_dim]
  AlignedBuffer proj_;     // [T, hidden] block output before the residual add
  AlignedBuffer gate_, up_;  // [T, intermediate]
  AlignedBuffer logits_;   // [T (all_logits) or max_sequences, vocab]
};

// Inverse frequencies of RoPE with HF's scaling rules (default, linear, llama3,
// dynamic, yarn, longrope), [head_dim / 2], float32 as HF computes them, for a
// forward pass whose last position is seq_len - 1 (dynamic and longrope depend
// on it; 0 = the frequencies transformers starts with).
std::vector<float> RopeInverseFrequencies(const LlamaConfig& c, int64_t seq_len = 0);
// HF's attention_scaling (yarn, longrope; else 1), folded into the cos/sin tables.
float RopeAttentionScaling(const LlamaConfig& c);
// dynamic and longrope: the frequencies change with the sequence length.
bool RopeDependsOnSequenceLength(const LlamaConfig& c);
// cos/sin tables [positions][head_dim / 2] as HF computes them (for dynamic and
// longrope: as for a sequence no longer than the original context).
void BuildRopeTables(const LlamaConfig& c, int positions, float* cos_table, float* sin_table);
// Rows first .. first+count-1 of those tables for a forward pass of sequence length seq_len.
void BuildRopeRows(const LlamaConfig& c, int64_t seq_len, int first, int count, float* cos_table, float* sin_table);

}  // namespace llm
