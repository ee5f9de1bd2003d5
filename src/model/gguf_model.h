// A Llama model from a GGUF file (llama.cpp's format): LlamaConfig from the
// `llama.*` keys, weights from the tensors by llama.cpp's names, the
// tokenizer from `tokenizer.ggml.*`.
//
// Weights end up as the same ModelWeights a safetensors checkpoint gives:
// float tensors follow --dtype, and block-quantized tensors are dequantized at
// load into the --dtype float type (kernels that read the blocks directly are
// a later step of issue #16). llama.cpp's converter permutes the rows of q and
// k for its RoPE; the rows are put back at load, so the model is the Hugging
// Face one.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/status.h"
#include "io/gguf.h"
#include "io/llama_config.h"
#include "model/weights.h"
#include "tokenizer/gguf_tokenizer.h"

namespace llm {

class ThreadPool;

// The llama.* hyperparameters, rope scaling (linear; rope_freqs.weight
// divisors as Llama 3.1 files carry them), tied output, biases by presence,
// vocabulary size from token_embd, BOS/EOS from tokenizer.ggml.*.
Result<LlamaConfig> GgufLlamaConfig(const GgufFile& file);

// Every tensor the model needs, checked by name, shape and type, converted or
// dequantized into `dtype` (biases float32); any other tensor in the file is
// refused by name.
// Float tensors already in `dtype` (and not q/k) point into the mapping, which
// they keep alive.
Result<ModelWeights> LoadGgufWeights(const std::shared_ptr<const GgufFile>& file, const LlamaConfig& config,
                                     DType dtype, ThreadPool* pool);

// The GGUF tensor name of a tensor of ListTensors ("model.layers.3.mlp.up_proj.weight" ->
// "blk.3.ffn_up.weight"); "" for names with no GGUF counterpart.
std::string GgufTensorName(const std::string& hf_name);

// Tensor count per ggml type as stored in the file ("Q4_K": 97, "F32": 65).
std::map<std::string, int> GgufTensorTypeCounts(const GgufHeader& header);

// The tokenizer.ggml.* metadata; NotFound when the file has none.
Result<GgufVocab> GgufVocabOf(const GgufHeader& header, const std::string& path);

}  // namespace llm
