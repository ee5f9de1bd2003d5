// The Llama architecture as described by a Hugging Face config.json, plus the
// parser that refuses anything the engine cannot compute exactly.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace llm {

// transformers' rope_type values for Llama checkpoints (modeling_rope_utils).
enum class RopeScaling { kNone, kLinear, kLlama3, kDynamic, kYarn, kLongRope };
const char* RopeScalingName(RopeScaling s);  // "default", "linear", "llama3", "dynamic", "yarn", "longrope"

struct LlamaConfig {
  // Field names follow config.json.
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;  // = num_attention_heads when absent (MHA)
  int head_dim = 0;             // = hidden_size / num_attention_heads when absent
  int vocab_size = 0;
  int max_position_embeddings = 2048;
  float rms_norm_eps = 1e-6f;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling = RopeScaling::kNone;
  double rope_factor = 1.0;             // linear, llama3, dynamic, yarn, longrope
  double rope_low_freq_factor = 1.0;    // llama3
  double rope_high_freq_factor = 4.0;   // llama3
  int rope_original_max_position = 8192;  // llama3, yarn, longrope: original_max_position_embeddings
  // yarn: attention_factor < 0 = derived from factor and mscale/mscale_all_dim (0 = absent).
  double rope_attention_factor = -1;    // yarn, longrope
  double rope_beta_fast = 32, rope_beta_slow = 1, rope_mscale = 0, rope_mscale_all_dim = 0;
  bool rope_truncate = true;
  std::vector<double> rope_short_factor, rope_long_factor;  // longrope, head_dim / 2 each
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  int bos_token_id = 1;
  std::vector<int> eos_token_ids = {2};
  DType torch_dtype = DType::kF32;  // as stored, informative only
  std::string name;                 // where it came from, for messages and reports

  int q_dim() const { return num_attention_heads * head_dim; }
  int kv_dim() const { return num_key_value_heads * head_dim; }
  // Parameters (elements), embeddings and lm_head included (counted once when tied).
  int64_t NumParameters() const;
};

// Parses config.json text. `source` names the file in messages.
Result<LlamaConfig> ParseLlamaConfig(const std::string& json_text, const std::string& source);
// Reads a token id or a list of them (eos_token_id of config.json and
// generation_config.json): integers in int32 range, non-negative, else an
// error starting with `what`.
Status ParseTokenIds(const nlohmann::json& v, const std::string& what, std::vector<int>* out);
// Checks internal consistency (positive sizes, divisibility, ids in range).
Status ValidateLlamaConfig(const LlamaConfig& c, const std::string& source);

// Built-in architectures for --load-format dummy: llama2-7b, llama2-13b,
// tinyllama-1.1b, llama3.2-1b, llama3.1-8b, ... Returns NotFound with the list.
Result<LlamaConfig> BuiltinLlamaConfig(const std::string& name);
std::vector<std::string> BuiltinLlamaConfigNames();

}  // namespace llm
