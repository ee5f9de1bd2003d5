#include "io/llama_config.h"

#include <nlohmann/json.hpp>

namespace llm {

namespace {

using nlohmann::json;

// Reads an optional integer field; a present field of the wrong type is an error.
Status GetInt(const json& j, const char* key, int* out, const std::string& src, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? InvalidArgument(src + ": missing required field '" + key + "'") : OkStatus();
  }
  if (!it->is_number_integer()) return InvalidArgument(src + ": field '" + std::string(key) + "' must be an integer");
  const int64_t v = it->get<int64_t>();
  if (v < INT32_MIN || v > INT32_MAX) return InvalidArgument(src + ": field '" + std::string(key) + "' out of range");
  *out = static_cast<int>(v);
  return OkStatus();
}

Status GetDouble(const json& j, const char* key, double* out, const std::string& src) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return OkStatus();
  if (!it->is_number()) return InvalidArgument(src + ": field '" + std::string(key) + "' must be a number");
  *out = it->get<double>();
  return OkStatus();
}

Status GetBool(const json& j, const char* key, bool* out, const std::string& src) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return OkStatus();
  if (!it->is_boolean()) return InvalidArgument(src + ": field '" + std::string(key) + "' must be true or false");
  *out = it->get<bool>();
  return OkStatus();
}

// Hub checkpoints say `rope_theta` + `rope_scaling`; transformers >= 5 writes
// both into one `rope_parameters` object. Either is accepted.
Status ParseRopeScaling(const json& j, LlamaConfig* c, const std::string& src) {
  auto it = j.find("rope_parameters");
  if (it != j.end() && it->is_object()) {
    LLM_RETURN_IF_ERROR(GetDouble(*it, "rope_theta", &c->rope_theta, src + " rope_parameters"));
  } else {
    it = j.find("rope_scaling");
  }
  if (it == j.end() || it->is_null()) return OkStatus();
  if (!it->is_object()) return InvalidArgument(src + ": 'rope_scaling' must be an object or null");
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    auto t = it->find(key);
    if (t != it->end() && t->is_string()) { type = t->get<std::string>(); break; }
  }
  if (type == "default" || type.empty()) return OkStatus();
  if (type == "linear") {
    c->rope_scaling = RopeScaling::kLinear;
  } else if (type == "llama3") {
    c->rope_scaling = RopeScaling::kLlama3;
  } else {
    return Unimplemented(src + ": rope_scaling type '" + type +
                         "' is not supported (supported: none, linear, llama3)");
  }
  LLM_RETURN_IF_ERROR(GetDouble(*it, "factor", &c->rope_factor, src + " rope_scaling"));
  if (!(c->rope_factor > 0)) return InvalidArgument(src + ": rope_scaling.factor must be > 0");
  if (c->rope_scaling == RopeScaling::kLlama3) {
    for (const char* key : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
      if (!it->contains(key)) return InvalidArgument(src + ": llama3 rope_scaling needs '" + std::string(key) + "'");
    }
    LLM_RETURN_IF_ERROR(GetDouble(*it, "low_freq_factor", &c->rope_low_freq_factor, src));
    LLM_RETURN_IF_ERROR(GetDouble(*it, "high_freq_factor", &c->rope_high_freq_factor, src));
    LLM_RETURN_IF_ERROR(GetInt(*it, "original_max_position_embeddings", &c->rope_original_max_position, src, true));
    if (!(c->rope_high_freq_factor > c->rope_low_freq_factor) || c->rope_low_freq_factor <= 0 ||
        c->rope_original_max_position <= 0) {
      return InvalidArgument(src + ": llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor");
    }
  }
  return OkStatus();
}

}  // namespace

int64_t LlamaConfig::NumParameters() const {
  const int64_t h = hidden_size, q = q_dim(), kv = kv_dim(), f = intermediate_size;
  int64_t per_layer = h * q + 2 * h * kv + q * h + 3 * h * f + 2 * h;
  if (attention_bias) per_layer += q + 2 * kv + h;
  if (mlp_bias) per_layer += 2 * f + h;
  const int64_t emb = static_cast<int64_t>(vocab_size) * h;
  return emb * (tie_word_embeddings ? 1 : 2) + per_layer * num_hidden_layers + h;
}

Status ValidateLlamaConfig(const LlamaConfig& c, const std::string& src) {
  auto positive = [&](int v, const char* name) -> Status {
    if (v <= 0) return InvalidArgument(src + ": '" + std::string(name) + "' must be positive, got " + std::to_string(v));
    return OkStatus();
  };
  LLM_RETURN_IF_ERROR(positive(c.hidden_size, "hidden_size"));
  LLM_RETURN_IF_ERROR(positive(c.intermediate_size, "intermediate_size"));
  LLM_RETURN_IF_ERROR(positive(c.num_hidden_layers, "num_hidden_layers"));
  LLM_RETURN_IF_ERROR(positive(c.num_attention_heads, "num_attention_heads"));
  LLM_RETURN_IF_ERROR(positive(c.num_key_value_heads, "num_key_value_heads"));
  LLM_RETURN_IF_ERROR(positive(c.head_dim, "head_dim"));
  LLM_RETURN_IF_ERROR(positive(c.vocab_size, "vocab_size"));
  LLM_RETURN_IF_ERROR(positive(c.max_position_embeddings, "max_position_embeddings"));
  if (c.head_dim % 2 != 0) return InvalidArgument(src + ": head_dim must be even for rotary embeddings, got " + std::to_string(c.head_dim));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return InvalidArgument(src + ": num_attention_heads (" + std::to_string(c.num_attention_heads) +
                           ") must be a multiple of num_key_value_heads (" + std::to_string(c.num_key_value_heads) + ")");
  }
  // Sizes beyond these are not Llama models but forged configs; refusing them keeps
  // allocation sizes within int64 and the machine.
  if (c.hidden_size > (1 << 16) || c.intermediate_size > (1 << 18) || c.num_hidden_layers > 1024 ||
      c.head_dim > 1024 || c.num_attention_heads > 1024 || c.vocab_size > (1 << 22)) {
    return InvalidArgument(src + ": sizes are implausibly large for a Llama model");
  }
  if (!(c.rms_norm_eps > 0) || !(c.rope_theta > 0)) return InvalidArgument(src + ": rms_norm_eps and rope_theta must be > 0");
  return OkStatus();
}

Result<LlamaConfig> ParseLlamaConfig(const std::string& text, const std::string& src) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(src + ": not valid JSON (truncated or corrupt config.json)");
  if (!j.is_object()) return InvalidArgument(src + ": config.json must be a JSON object");
  LlamaConfig c;
  c.name = src;
  // Architecture gate: only the Llama family computes what this engine computes.
  auto mt = j.find("model_type");
  if (mt != j.end() && mt->is_string() && mt->get<std::string>() != "llama") {
    return Unimplemented(src + ": model_type '" + mt->get<std::string>() +
                         "' is not supported (only 'llama': Llama 1/2/3, TinyLlama, CodeLlama)");
  }
  auto arch = j.find("architectures");
  if (arch != j.end() && arch->is_array()) {
    for (const auto& a : *arch) {
      if (!a.is_string() || a.get<std::string>() != "LlamaForCausalLM") {
        return Unimplemented(src + ": architectures lists '" + (a.is_string() ? a.get<std::string>() : a.dump()) +
                             "'; only LlamaForCausalLM is supported");
      }
    }
  }
  if (mt == j.end() && arch == j.end()) {
    return Unimplemented(src + ": neither 'model_type' nor 'architectures' is given; cannot tell it is a Llama model");
  }
  auto act = j.find("hidden_act");
  if (act != j.end() && !(act->is_string() && act->get<std::string>() == "silu")) {
    return Unimplemented(src + ": hidden_act '" + (act->is_string() ? act->get<std::string>() : act->dump()) +
                         "' is not supported (Llama uses 'silu')");
  }
  LLM_RETURN_IF_ERROR(GetInt(j, "hidden_size", &c.hidden_size, src, true));
  LLM_RETURN_IF_ERROR(GetInt(j, "intermediate_size", &c.intermediate_size, src, true));
  LLM_RETURN_IF_ERROR(GetInt(j, "num_hidden_layers", &c.num_hidden_layers, src, true));
  LLM_RETURN_IF_ERROR(GetInt(j, "num_attention_heads", &c.num_attention_heads, src, true));
  LLM_RETURN_IF_ERROR(GetInt(j, "vocab_size", &c.vocab_size, src, true));
  c.num_key_value_heads = c.num_attention_heads;
  LLM_RETURN_IF_ERROR(GetInt(j, "num_key_value_heads", &c.num_key_value_heads, src, false));
  c.head_dim = c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  LLM_RETURN_IF_ERROR(GetInt(j, "head_dim", &c.head_dim, src, false));
  LLM_RETURN_IF_ERROR(GetInt(j, "max_position_embeddings", &c.max_position_embeddings, src, false));
  double eps = c.rms_norm_eps;
  LLM_RETURN_IF_ERROR(GetDouble(j, "rms_norm_eps", &eps, src));
  c.rms_norm_eps = static_cast<float>(eps);
  LLM_RETURN_IF_ERROR(GetDouble(j, "rope_theta", &c.rope_theta, src));
  LLM_RETURN_IF_ERROR(ParseRopeScaling(j, &c, src));
  LLM_RETURN_IF_ERROR(GetBool(j, "tie_word_embeddings", &c.tie_word_embeddings, src));
  LLM_RETURN_IF_ERROR(GetBool(j, "attention_bias", &c.attention_bias, src));
  LLM_RETURN_IF_ERROR(GetBool(j, "mlp_bias", &c.mlp_bias, src));
  LLM_RETURN_IF_ERROR(GetInt(j, "bos_token_id", &c.bos_token_id, src, false));
  auto eos = j.find("eos_token_id");
  if (eos != j.end() && !eos->is_null()) {
    c.eos_token_ids.clear();
    if (eos->is_number_integer()) {
      c.eos_token_ids.push_back(eos->get<int>());
    } else if (eos->is_array()) {
      for (const auto& e : *eos) {
        if (!e.is_number_integer()) return InvalidArgument(src + ": 'eos_token_id' list must hold integers");
        c.eos_token_ids.push_back(e.get<int>());
      }
    } else {
      return InvalidArgument(src + ": 'eos_token_id' must be an integer or a list of integers");
    }
  }
  auto td = j.find("torch_dtype");
  if (td == j.end()) td = j.find("dtype");
  if (td != j.end() && td->is_string()) ParseDType(td->get<std::string>(), &c.torch_dtype);
  LLM_RETURN_IF_ERROR(ValidateLlamaConfig(c, src));
  return c;
}

namespace {

struct BuiltinArch {
  const char* name;
  const char* json;
};

// Published config.json values of each architecture (the fields that change math).
const BuiltinArch kBuiltins[] = {
    {"llama2-7b", R"({"model_type":"llama","hidden_size":4096,"intermediate_size":11008,"num_hidden_layers":32,
      "num_attention_heads":32,"num_key_value_heads":32,"vocab_size":32000,"max_position_embeddings":4096,
      "rms_norm_eps":1e-5,"rope_theta":10000.0,"bos_token_id":1,"eos_token_id":2,"torch_dtype":"float16"})"},
    {"llama2-13b", R"({"model_type":"llama","hidden_size":5120,"intermediate_size":13824,"num_hidden_layers":40,
      "num_attention_heads":40,"num_key_value_heads":40,"vocab_size":32000,"max_position_embeddings":4096,
      "rms_norm_eps":1e-5,"rope_theta":10000.0,"bos_token_id":1,"eos_token_id":2,"torch_dtype":"float16"})"},
    {"tinyllama-1.1b", R"({"model_type":"llama","hidden_size":2048,"intermediate_size":5632,"num_hidden_layers":22,
      "num_attention_heads":32,"num_key_value_heads":4,"vocab_size":32000,"max_position_embeddings":2048,
      "rms_norm_eps":1e-5,"rope_theta":10000.0,"bos_token_id":1,"eos_token_id":2,"torch_dtype":"bfloat16"})"},
    {"llama3.2-1b", R"({"model_type":"llama","hidden_size":2048,"intermediate_size":8192,"num_hidden_layers":16,
      "num_attention_heads":32,"num_key_value_heads":8,"head_dim":64,"vocab_size":128256,
      "max_position_embeddings":131072,"rms_norm_eps":1e-5,"rope_theta":500000.0,"tie_word_embeddings":true,
      "rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,
      "original_max_position_embeddings":8192,"rope_type":"llama3"},
      "bos_token_id":128000,"eos_token_id":[128001,128008,128009],"torch_dtype":"bfloat16"})"},
    {"llama3.1-8b", R"({"model_type":"llama","hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,
      "num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,"max_position_embeddings":131072,
      "rms_norm_eps":1e-5,"rope_theta":500000.0,
      "rope_scaling":{"factor":8.0,"high_freq_factor":4.0,"low_freq_factor":1.0,
      "original_max_position_embeddings":8192,"rope_type":"llama3"},
      "bos_token_id":128000,"eos_token_id":[128001,128008,128009],"torch_dtype":"bfloat16"})"},
    {"llama3-8b", R"({"model_type":"llama","hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,
      "num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,"max_position_embeddings":8192,
      "rms_norm_eps":1e-5,"rope_theta":500000.0,"bos_token_id":128000,"eos_token_id":128001,"torch_dtype":"bfloat16"})"},
    {"llama-7b", R"({"model_type":"llama","hidden_size":4096,"intermediate_size":11008,"num_hidden_layers":32,
      "num_attention_heads":32,"vocab_size":32000,"max_position_embeddings":2048,
      "rms_norm_eps":1e-6,"bos_token_id":1,"eos_token_id":2,"torch_dtype":"float16"})"},
};

}  // namespace

std::vector<std::string> BuiltinLlamaConfigNames() {
  std::vector<std::string> names;
  for (const auto& b : kBuiltins) names.emplace_back(b.name);
  return names;
}

Result<LlamaConfig> BuiltinLlamaConfig(const std::string& name) {
  for (const auto& b : kBuiltins) {
    if (name == b.name) return ParseLlamaConfig(b.json, std::string("builtin:") + b.name);
  }
  std::string list;
  for (const auto& n : BuiltinLlamaConfigNames()) list += (list.empty() ? "" : ", ") + n;
  return NotFound("unknown --model-config '" + name + "' (built-in: " + list + "; or give a path to a config.json)");
}

}  // namespace llm
