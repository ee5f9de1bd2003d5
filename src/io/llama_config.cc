#include "io/llama_config.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace llm {

namespace {

using nlohmann::json;

// Every number of config.json goes through these readers: a present field of
// the wrong type, outside the range of the C++ type it is stored in, or not
// finite is an error that names the field and shows the value as written.
Status CheckedInt(const json& v, const std::string& what, int* out) {
  if (!v.is_number_integer()) return InvalidArgument(what + " must be an integer, got " + v.dump());
  const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(INT32_MAX)
                                               : v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX;
  if (!in_range) return InvalidArgument(what + " is out of range: " + v.dump());
  *out = static_cast<int>(v.get<int64_t>());
  return OkStatus();
}

Status GetInt(const json& j, const char* key, int* out, const std::string& src, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? InvalidArgument(src + ": missing required field '" + key + "'") : OkStatus();
  }
  return CheckedInt(*it, src + ": field '" + std::string(key) + "'", out);
}

// Doubles that the engine uses as float32 (rms_norm_eps, rope_theta, rope
// factors): they must be finite in float32 too, or they would become inf.
Status CheckedDouble(const json& v, const std::string& what, double* out) {
  if (!v.is_number()) return InvalidArgument(what + " must be a number, got " + v.dump());
  const double d = v.get<double>();
  // Nonzero values below float32's smallest normal would round to 0 or lose
  // their precision there (rope_theta 1e-50 became 0).
  const double a = std::fabs(d);
  if (!std::isfinite(d) || a > std::numeric_limits<float>::max() || (a != 0 && a < std::numeric_limits<float>::min())) {
    return InvalidArgument(what + " is outside the float32 range: " + v.dump());
  }
  *out = d;
  return OkStatus();
}

Status GetDouble(const json& j, const char* key, double* out, const std::string& src) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return OkStatus();
  return CheckedDouble(*it, src + ": field '" + std::string(key) + "'", out);
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
  if (it != j.end() && !it->is_null() && !it->is_object()) {
    return InvalidArgument(src + ": 'rope_parameters' must be an object or null, got " + it->dump());
  }
  if (it != j.end() && it->is_object()) {
    LLM_RETURN_IF_ERROR(GetDouble(*it, "rope_theta", &c->rope_theta, src + " rope_parameters"));
  } else {
    it = j.find("rope_scaling");
  }
  if (it == j.end() || it->is_null()) return OkStatus();
  if (!it->is_object()) return InvalidArgument(src + ": 'rope_scaling' must be an object or null");
  const std::string where = src + " rope_scaling";
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    auto t = it->find(key);
    if (t == it->end() || t->is_null()) continue;
    if (!t->is_string()) return InvalidArgument(where + ": '" + std::string(key) + "' must be a string, got " + t->dump());
    type = t->get<std::string>();
    break;
  }
  if (type == "default" || type.empty()) return OkStatus();
  const std::pair<const char*, RopeScaling> kTypes[] = {{"linear", RopeScaling::kLinear},   {"llama3", RopeScaling::kLlama3},
                                                        {"dynamic", RopeScaling::kDynamic}, {"yarn", RopeScaling::kYarn},
                                                        {"longrope", RopeScaling::kLongRope}};
  bool known = false;
  for (const auto& [name, kind] : kTypes) {
    if (type == name) { c->rope_scaling = kind; known = true; }
  }
  if (!known) {
    return Unimplemented(src + ": rope_scaling type '" + type +
                         "' is not supported (supported: default, linear, llama3, dynamic, yarn, longrope)");
  }
  if (auto prf = it->find("partial_rotary_factor"); prf != it->end() && !prf->is_null() && *prf != 1.0) {
    return Unimplemented(where + ": partial_rotary_factor " + prf->dump() + " is not supported (Llama rotates the whole head)");
  }
  // transformers: llama3, yarn and longrope take original_max_position_embeddings from
  // the config's top level when given there, else from rope_scaling, else max_position_embeddings.
  c->rope_original_max_position = c->max_position_embeddings;
  LLM_RETURN_IF_ERROR(GetInt(*it, "original_max_position_embeddings", &c->rope_original_max_position, where, false));
  LLM_RETURN_IF_ERROR(GetInt(j, "original_max_position_embeddings", &c->rope_original_max_position, src, false));
  if (c->rope_original_max_position <= 0) return InvalidArgument(where + ": original_max_position_embeddings must be > 0");
  const bool factor_optional = c->rope_scaling == RopeScaling::kYarn || c->rope_scaling == RopeScaling::kLongRope;
  auto factor = it->find("factor");
  if (factor == it->end() || factor->is_null()) {
    if (!factor_optional) return InvalidArgument(where + ": " + type + " rope_scaling needs 'factor'");
    // transformers: the ratio of the context lengths.
    c->rope_factor = static_cast<double>(c->max_position_embeddings) / c->rope_original_max_position;
  } else {
    LLM_RETURN_IF_ERROR(GetDouble(*it, "factor", &c->rope_factor, where));
  }
  if (!(c->rope_factor > 0)) return InvalidArgument(src + ": rope_scaling.factor must be > 0");
  if (c->rope_scaling == RopeScaling::kLlama3) {
    for (const char* key : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
      if (!it->contains(key)) return InvalidArgument(src + ": llama3 rope_scaling needs '" + std::string(key) + "'");
    }
    LLM_RETURN_IF_ERROR(GetDouble(*it, "low_freq_factor", &c->rope_low_freq_factor, src));
    LLM_RETURN_IF_ERROR(GetDouble(*it, "high_freq_factor", &c->rope_high_freq_factor, src));
    if (!(c->rope_high_freq_factor > c->rope_low_freq_factor) || c->rope_low_freq_factor <= 0 ||
        c->rope_original_max_position <= 0) {
      return InvalidArgument(src + ": llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor");
    }
  }
  if (c->rope_scaling == RopeScaling::kYarn || c->rope_scaling == RopeScaling::kLongRope) {
    LLM_RETURN_IF_ERROR(GetDouble(*it, "attention_factor", &c->rope_attention_factor, where));
    if (it->contains("attention_factor") && !(*it)["attention_factor"].is_null() && !(c->rope_attention_factor >= 0)) {
      return InvalidArgument(where + ": attention_factor must be >= 0");
    }
  }
  if (c->rope_scaling == RopeScaling::kYarn) {
    // transformers: `get("beta_fast") or 32`, so 0 and null mean the default too.
    LLM_RETURN_IF_ERROR(GetDouble(*it, "beta_fast", &c->rope_beta_fast, where));
    LLM_RETURN_IF_ERROR(GetDouble(*it, "beta_slow", &c->rope_beta_slow, where));
    if (c->rope_beta_fast == 0) c->rope_beta_fast = 32;
    if (c->rope_beta_slow == 0) c->rope_beta_slow = 1;
    if (!(c->rope_beta_fast > 0) || !(c->rope_beta_slow > 0)) return InvalidArgument(where + ": beta_fast and beta_slow must be > 0");
    LLM_RETURN_IF_ERROR(GetDouble(*it, "mscale", &c->rope_mscale, where));
    LLM_RETURN_IF_ERROR(GetDouble(*it, "mscale_all_dim", &c->rope_mscale_all_dim, where));
    LLM_RETURN_IF_ERROR(GetBool(*it, "truncate", &c->rope_truncate, where));
  }
  if (c->rope_scaling == RopeScaling::kDynamic && c->head_dim <= 2) {
    return InvalidArgument(where + ": dynamic rope scaling needs head_dim > 2");
  }
  if (c->rope_scaling == RopeScaling::kLongRope) {
    for (auto [key, out] : {std::pair<const char*, std::vector<double>*>{"short_factor", &c->rope_short_factor},
                            {"long_factor", &c->rope_long_factor}}) {
      auto f = it->find(key);
      if (f == it->end() || !f->is_array() || static_cast<int>(f->size()) != c->head_dim / 2) {
        return InvalidArgument(where + ": longrope needs '" + std::string(key) + "', a list of head_dim / 2 = " +
                               std::to_string(c->head_dim / 2) + " numbers");
      }
      out->clear();
      for (size_t i = 0; i < f->size(); ++i) {
        double v = 0;
        LLM_RETURN_IF_ERROR(CheckedDouble((*f)[i], where + ": '" + key + "' element", &v));
        if (!(v > 0)) return InvalidArgument(where + ": " + key + " values must be > 0");
        out->push_back(v);
      }
    }
  }
  return OkStatus();
}

}  // namespace

Status ParseTokenIds(const nlohmann::json& v, const std::string& what, std::vector<int>* out) {
  std::vector<int> ids;
  if (v.is_array()) {
    if (v.empty()) return InvalidArgument(what + " must not be an empty list");
    for (const auto& e : v) {
      int id = 0;
      LLM_RETURN_IF_ERROR(CheckedInt(e, what + " list element", &id));
      ids.push_back(id);
    }
  } else if (v.is_number_integer()) {
    int id = 0;
    LLM_RETURN_IF_ERROR(CheckedInt(v, what, &id));
    ids.push_back(id);
  } else {
    return InvalidArgument(what + " must be an integer or a list of integers, got " + v.dump());
  }
  for (int id : ids) {
    if (id < 0) return InvalidArgument(what + " holds the negative id " + std::to_string(id));
  }
  *out = std::move(ids);
  return OkStatus();
}

const char* RopeScalingName(RopeScaling s) {
  switch (s) {
    case RopeScaling::kNone: return "default";
    case RopeScaling::kLinear: return "linear";
    case RopeScaling::kLlama3: return "llama3";
    case RopeScaling::kDynamic: return "dynamic";
    case RopeScaling::kYarn: return "yarn";
    case RopeScaling::kLongRope: return "longrope";
  }
  return "?";
}

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
  // A field of the wrong type is refused, never read as "absent".
  auto mt = j.find("model_type");
  if (mt != j.end() && mt->is_null()) mt = j.end();
  if (mt != j.end()) {
    if (!mt->is_string()) return InvalidArgument(src + ": 'model_type' must be a string, got " + mt->dump());
    if (mt->get<std::string>() != "llama") {
      return Unimplemented(src + ": model_type '" + mt->get<std::string>() +
                           "' is not supported (only 'llama': Llama 1/2/3, TinyLlama, CodeLlama)");
    }
  }
  auto arch = j.find("architectures");
  if (arch != j.end() && arch->is_null()) arch = j.end();
  if (arch != j.end()) {
    if (!arch->is_array() || arch->empty()) {
      return InvalidArgument(src + ": 'architectures' must be a non-empty list of class names, got " + arch->dump());
    }
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
  if (eos != j.end() && !eos->is_null()) LLM_RETURN_IF_ERROR(ParseTokenIds(*eos, src + ": 'eos_token_id'", &c.eos_token_ids));
  auto td = j.find("torch_dtype");
  if (td == j.end()) td = j.find("dtype");
  if (td != j.end() && !td->is_null() && !td->is_string()) {
    return InvalidArgument(src + ": '" + td.key() + "' must be a string, got " + td->dump());
  }
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
