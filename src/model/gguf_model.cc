#include "model/gguf_model.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <set>

#include "core/printable.h"
#include "core/thread_pool.h"
#include "model/llama_model.h"

namespace llm {

namespace {

// Metadata readers that put the file name in front of the reader's message
// and keep values inside the int range LlamaConfig stores.
Result<int> RequiredInt(const GgufHeader& h, const std::string& key, const std::string& path) {
  auto v = h.GetUint(key);
  if (!v.ok()) {
    if (v.status().code() == StatusCode::kNotFound) {
      return DataLoss(path + ": GGUF metadata has no " + key + " (every llama model file has it)");
    }
    return DataLoss(path + ": " + v.status().message());
  }
  if (v.value() > static_cast<uint64_t>(INT32_MAX)) {
    return DataLoss(path + ": GGUF " + key + " = " + std::to_string(v.value()) + " is out of range");
  }
  return static_cast<int>(v.value());
}

Result<int> OptionalInt(const GgufHeader& h, const std::string& key, int fallback, const std::string& path) {
  if (h.Find(key) == nullptr) return fallback;
  return RequiredInt(h, key, path);
}

Result<double> OptionalFloat(const GgufHeader& h, const std::string& key, double fallback, const std::string& path) {
  if (h.Find(key) == nullptr) return fallback;
  auto v = h.GetFloat(key);
  if (!v.ok()) return DataLoss(path + ": " + v.status().message());
  if (!std::isfinite(v.value())) return DataLoss(path + ": GGUF " + key + " is not finite");
  return v.value();
}

Result<bool> OptionalBool(const GgufHeader& h, const std::string& key, bool fallback, const std::string& path) {
  const GgufValue* v = h.Find(key);
  if (v == nullptr) return fallback;
  if (v->type != GgufValueType::kBool) {
    return DataLoss(path + ": GGUF " + key + " is not a bool (it is a " +
                    GgufValueTypeName(static_cast<uint32_t>(v->type)) + ")");
  }
  return v->u != 0;
}

Result<std::string> OptionalString(const GgufHeader& h, const std::string& key, const std::string& path) {
  if (h.Find(key) == nullptr) return std::string();
  auto v = h.GetString(key);
  if (!v.ok()) return DataLoss(path + ": " + v.status().message());
  return v.value();
}

std::string DimsText(const std::vector<uint64_t>& dims) {
  std::string s;
  for (uint64_t d : dims) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return "[" + s + "]";
}

bool IsFloatType(GgmlType t) { return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16; }

DType FloatDType(GgmlType t) {
  return t == GgmlType::kF16 ? DType::kF16 : t == GgmlType::kBF16 ? DType::kBF16 : DType::kF32;
}

// llama.cpp's converter (LlamaModel.permute) stores HF row h*hd + a*hd/2 + b
// of a q or k projection at row h*hd + 2*b + a: its RoPE rotates adjacent
// pairs, HF's rotates the two halves of each head.
size_t StoredRow(size_t hf_row, size_t rows, size_t n_head) {
  const size_t hd = rows / n_head, half = hd / 2;
  const size_t h = hf_row / hd, within = hf_row % hd;
  return h * hd + 2 * (within % half) + within / half;
}

bool FiniteIn(float v, DType want) {
  if (!std::isfinite(v)) return false;
  // float16 rounds magnitudes from 65520 up to inf.
  return want != DType::kF16 || std::fabs(v) < 65520.0f;
}

std::string ValueText(float v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%g", v);
  return b;
}

// A new tensor in `want` holding the file's tensor in HF layout: rows put
// back in HF order when `permute_heads` > 0, each row dequantized (or
// converted) on its own so quantized blocks are read whole.
Result<Tensor> ConvertGgufTensor(const GgufFile& file, const GgufTensorInfo& info, const TensorSpec& spec, DType want,
                                 int permute_heads, ThreadPool* pool) {
  const int64_t rows = spec.rows, cols = spec.cols;
  LLM_ASSIGN_OR_RETURN(Tensor t, AllocateTensor(want, rows, cols, info.name));
  auto* dst = static_cast<uint8_t*>(const_cast<void*>(t.data));
  const uint8_t* src = file.TensorData(info);
  // A 1-D tensor (norm, bias) is one row; a permuted bias is permuted by element.
  const bool vector = rows == 1;
  const size_t row_len = static_cast<size_t>(cols);
  const size_t row_bytes = GgmlRowBytes(info.type, row_len);
  if (row_bytes == 0) return DataLoss(file.path() + ": tensor '" + info.name + "' rows do not fill whole blocks");
  size_t first_bad = SIZE_MAX;
  float bad_value = 0;
  if (vector) {
    std::vector<float> v(row_len);
    DequantizeRow(info.type, src, v.data(), row_len);
    if (permute_heads > 0) {
      std::vector<float> hf(row_len);
      for (size_t i = 0; i < row_len; ++i) hf[i] = v[StoredRow(i, row_len, permute_heads)];
      v.swap(hf);
    }
    for (size_t i = 0; i < row_len && first_bad == SIZE_MAX; ++i) {
      if (!FiniteIn(v[i], want)) first_bad = i, bad_value = v[i];
    }
    ConvertFloats(v.data(), DType::kF32, dst, want, row_len);
  } else {
    std::vector<size_t> bad(pool->num_threads(), SIZE_MAX);
    std::vector<float> bad_values(pool->num_threads(), 0);
    const size_t grain = std::max<size_t>(1, (size_t{1} << 18) / row_len);
    pool->ParallelRange(static_cast<size_t>(rows), grain, [&](size_t b, size_t e, int worker) {
      std::vector<float> row(row_len);
      for (size_t r = b; r < e; ++r) {
        const size_t stored = permute_heads > 0 ? StoredRow(r, rows, permute_heads) : r;
        DequantizeRow(info.type, src + stored * row_bytes, row.data(), row_len);
        for (size_t c = 0; c < row_len && bad[worker] == SIZE_MAX; ++c) {
          if (!FiniteIn(row[c], want)) bad[worker] = r * row_len + c, bad_values[worker] = row[c];
        }
        ConvertFloats(row.data(), DType::kF32, dst + r * row_len * DTypeSize(want), want, row_len);
      }
    });
    for (size_t k = 0; k < bad.size(); ++k) {
      if (bad[k] < first_bad) first_bad = bad[k], bad_value = bad_values[k];
    }
  }
  if (first_bad != SIZE_MAX) {
    if (std::isfinite(bad_value)) {
      return InvalidArgument(file.path() + ": tensor '" + info.name + "' holds " + ValueText(bad_value) +
                             " at element " + std::to_string(first_bad) + ", beyond the range of " + DTypeName(want) +
                             " (it would become inf); use --dtype bfloat16 or float32");
    }
    return DataLoss(file.path() + ": tensor '" + info.name + "' holds " + ValueText(bad_value) + " at element " +
                    std::to_string(first_bad) + " (the file is corrupt)");
  }
  return t;
}

// A quantized matrix used as stored (decode reads its blocks): rows put back
// in HF order when `permute_heads` > 0 (whole rows move, blocks stay intact),
// else the mapping itself. Every block's f16 scale fields are checked finite
// here (the rest of a block is integers): a NaN scale would make every logit
// NaN later.
Result<Tensor> QuantizedGgufTensor(const std::shared_ptr<const GgufFile>& file, const GgufTensorInfo& info,
                                   const TensorSpec& spec, DType stored, int permute_heads, ThreadPool* pool) {
  const int64_t rows = spec.rows, cols = spec.cols;
  const size_t row_bytes = GgmlRowBytes(info.type, static_cast<size_t>(cols));
  if (row_bytes == 0) return DataLoss(file->path() + ": tensor '" + info.name + "' rows do not fill whole blocks");
  const uint8_t* src = file->TensorData(info);
  const GgmlTypeInfo* type_info = GgmlTypeInfoOf(static_cast<uint32_t>(info.type));
  int half_offsets[2];
  const int num_halves = GgmlHalfFieldOffsets(info.type, half_offsets);
  const size_t blocks = static_cast<size_t>(rows) * (row_bytes / type_info->type_size);
  std::vector<size_t> bad(pool->num_threads(), SIZE_MAX);  // first bad block per worker
  pool->ParallelRange(blocks, 4096, [&](size_t b, size_t e, int worker) {
    for (size_t blk = b; blk < e; ++blk) {
      bool finite = true;
      for (int f = 0; f < num_halves; ++f) {
        uint16_t h;
        std::memcpy(&h, src + blk * type_info->type_size + half_offsets[f], 2);
        finite &= (h & 0x7c00) != 0x7c00;  // exponent all ones: Inf or NaN
      }
      if (!finite) { bad[worker] = blk; break; }
    }
  });
  const size_t first_bad = *std::min_element(bad.begin(), bad.end());
  if (first_bad != SIZE_MAX) {
    return DataLoss(file->path() + ": tensor '" + info.name + "' dequantizes to a non-finite value at element " +
                    std::to_string(first_bad * type_info->block_size) +
                    " (a NaN or Inf block scale: the file is corrupt)");
  }
  if (permute_heads == 0) {
    Tensor t;
    t.dtype = stored;
    t.rows = rows;
    t.cols = cols;
    t.data = src;
    t.owner = std::shared_ptr<const void>(file, t.data);
    t.mapped = true;
    return t;
  }
  LLM_ASSIGN_OR_RETURN(Tensor t, AllocateTensor(stored, rows, cols, info.name));
  auto* dst = static_cast<uint8_t*>(const_cast<void*>(t.data));
  pool->ParallelRange(static_cast<size_t>(rows), 64, [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      std::memcpy(dst + r * row_bytes, src + StoredRow(r, rows, permute_heads) * row_bytes, row_bytes);
    }
  });
  return t;
}

// rope_freqs.weight: one divisor per rotary frequency (llama.cpp's
// converter writes the factors of HF's llama3 rope_type there).
Result<std::vector<double>> RopeFreqDivisors(const GgufFile& file, int head_dim) {
  const GgufTensorInfo* t = file.header().FindTensor("rope_freqs.weight");
  if (t == nullptr) return std::vector<double>();
  const uint64_t half = static_cast<uint64_t>(head_dim / 2);
  if (t->dims != std::vector<uint64_t>{half}) {
    return InvalidArgument(file.path() + ": tensor 'rope_freqs.weight' has ggml dims " + DimsText(t->dims) +
                           " but the llama.* keys imply [" + std::to_string(half) + "] (head_dim / 2)");
  }
  std::vector<float> f(half);
  DequantizeRow(t->type, file.TensorData(*t), f.data(), half);
  std::vector<double> out(f.begin(), f.end());
  for (size_t i = 0; i < half; ++i) {
    if (!(std::isfinite(f[i]) && f[i] > 0)) {
      return DataLoss(file.path() + ": rope_freqs.weight[" + std::to_string(i) + "] is " + ValueText(f[i]) +
                      " (divisors must be finite and > 0; the file is corrupt)");
    }
  }
  return out;
}

// llama.cpp's converter writes HF's llama3 rope_type only as these divisors
// (LlamaModel.generate_extra_tensors). Finding llama3 parameters that give
// exactly them lets the model run HF's own llama3 path (on the GPU too):
// factor = the largest divisor, low/high frequency factors 1 and 4 (every
// Llama 3.x release), the original context a power of two. False when none fits.
bool MatchLlama3Parameters(const std::vector<double>& divisors, LlamaConfig* c) {
  LlamaConfig plain = *c;
  plain.rope_scaling = RopeScaling::kNone;
  const std::vector<float> freqs = RopeInverseFrequencies(plain);
  const double factor = *std::max_element(divisors.begin(), divisors.end());
  const double low = 1.0, high = 4.0;
  for (int old_len = 16; old_len <= (1 << 20); old_len *= 2) {
    bool all = true;
    for (size_t i = 0; i < freqs.size() && all; ++i) {
      const double wavelen = 2 * M_PI / freqs[i];
      double want = 1.0;
      if (wavelen > old_len / low) {
        want = factor;
      } else if (wavelen >= old_len / high) {
        const double smooth = (old_len / wavelen - low) / (high - low);
        want = 1 / ((1 - smooth) / factor + smooth);
      }
      all = std::fabs(want - divisors[i]) <= 1e-6 * want;  // stored as float32
    }
    if (all) {
      c->rope_scaling = RopeScaling::kLlama3;
      c->rope_factor = factor;
      c->rope_low_freq_factor = low;
      c->rope_high_freq_factor = high;
      c->rope_original_max_position = old_len;
      return true;
    }
  }
  return false;
}

}  // namespace

std::string GgufTensorName(const std::string& hf) {
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},       {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.weight", "attn_k.weight"},       {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.weight", "attn_v.weight"},       {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},  {"self_attn.o_proj.bias", "attn_output.bias"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},        {"mlp.gate_proj.bias", "ffn_gate.bias"},
      {"mlp.up_proj.weight", "ffn_up.weight"},            {"mlp.up_proj.bias", "ffn_up.bias"},
      {"mlp.down_proj.weight", "ffn_down.weight"},        {"mlp.down_proj.bias", "ffn_down.bias"},
  };
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  const std::string prefix = "model.layers.";
  if (hf.rfind(prefix, 0) != 0) return "";
  const size_t dot = hf.find('.', prefix.size());
  if (dot == std::string::npos) return "";
  const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
  const std::string rest = hf.substr(dot + 1);
  for (const auto& [from, to] : kLayer) {
    if (rest == from) return "blk." + layer + "." + to;
  }
  return "";
}

std::map<std::string, int> GgufTensorTypeCounts(const GgufHeader& header) {
  std::map<std::string, int> counts;
  for (const GgufTensorInfo& t : header.tensors) ++counts[GgmlTypeName(static_cast<uint32_t>(t.type))];
  return counts;
}

Result<LlamaConfig> GgufLlamaConfig(const GgufFile& file) {
  const GgufHeader& h = file.header();
  const std::string& path = file.path();
  LlamaConfig c;
  c.name = path;
  LLM_ASSIGN_OR_RETURN(c.hidden_size, RequiredInt(h, "llama.embedding_length", path));
  LLM_ASSIGN_OR_RETURN(c.intermediate_size, RequiredInt(h, "llama.feed_forward_length", path));
  LLM_ASSIGN_OR_RETURN(c.num_hidden_layers, RequiredInt(h, "llama.block_count", path));
  LLM_ASSIGN_OR_RETURN(c.num_attention_heads, RequiredInt(h, "llama.attention.head_count", path));
  LLM_ASSIGN_OR_RETURN(c.num_key_value_heads, OptionalInt(h, "llama.attention.head_count_kv", c.num_attention_heads, path));
  LLM_ASSIGN_OR_RETURN(c.max_position_embeddings, RequiredInt(h, "llama.context_length", path));
  if (c.num_attention_heads <= 0) return DataLoss(path + ": GGUF llama.attention.head_count is 0");
  LLM_ASSIGN_OR_RETURN(c.head_dim, OptionalInt(h, "llama.attention.key_length", c.hidden_size / c.num_attention_heads, path));
  LLM_ASSIGN_OR_RETURN(const int value_length, OptionalInt(h, "llama.attention.value_length", c.head_dim, path));
  if (value_length != c.head_dim) {
    return Unimplemented(path + ": GGUF llama.attention.value_length " + std::to_string(value_length) +
                         " differs from key_length " + std::to_string(c.head_dim) + " (Llama has one head size)");
  }
  LLM_ASSIGN_OR_RETURN(const int rope_dims, OptionalInt(h, "llama.rope.dimension_count", c.head_dim, path));
  if (rope_dims != c.head_dim) {
    return Unimplemented(path + ": GGUF llama.rope.dimension_count " + std::to_string(rope_dims) +
                         " is not the head size " + std::to_string(c.head_dim) + " (partial rotary embeddings are not supported)");
  }
  {
    auto eps = h.GetFloat("llama.attention.layer_norm_rms_epsilon");
    if (!eps.ok()) {
      return DataLoss(path + ": " + eps.status().message() +
                      (eps.status().code() == StatusCode::kNotFound ? " (every llama model file has it)" : ""));
    }
    c.rms_norm_eps = static_cast<float>(eps.value());
  }
  LLM_ASSIGN_OR_RETURN(c.rope_theta, OptionalFloat(h, "llama.rope.freq_base", 10000.0, path));
  // Rope scaling: llama.cpp writes rope.scaling.type + factor (older files:
  // rope.scale_linear); Llama 3.1's llama3 type arrives as rope_freqs.weight.
  LLM_ASSIGN_OR_RETURN(std::string scaling, OptionalString(h, "llama.rope.scaling.type", path));
  LLM_ASSIGN_OR_RETURN(double factor, OptionalFloat(h, "llama.rope.scaling.factor", 0.0, path));
  LLM_ASSIGN_OR_RETURN(const double scale_linear, OptionalFloat(h, "llama.rope.scale_linear", 0.0, path));
  if (scaling.empty() && scale_linear != 0) scaling = "linear", factor = scale_linear;
  if (scaling == "linear" && factor != 0 && factor != 1) {
    if (!(factor > 0)) return DataLoss(path + ": GGUF llama.rope.scaling.factor must be > 0");
    c.rope_scaling = RopeScaling::kLinear;
    c.rope_factor = factor;
  } else if (!scaling.empty() && scaling != "none" && scaling != "linear") {
    return Unimplemented(path + ": GGUF rope scaling '" + PrintableName(scaling) + "' is not supported (supported: none, linear, "
                         "and llama3 factors in rope_freqs.weight)");
  }
  LLM_ASSIGN_OR_RETURN(std::vector<double> divisors, RopeFreqDivisors(file, c.head_dim));
  if (!divisors.empty()) {
    if (c.rope_scaling != RopeScaling::kNone) {
      return Unimplemented(path + ": rope_freqs.weight together with linear rope scaling is not supported");
    }
    if (!MatchLlama3Parameters(divisors, &c)) {
      // Other divisors: the longrope path computes exactly inv_freq / factor[i]
      // with attention factor 1 and one factor set for every length (CPU only).
      c.rope_scaling = RopeScaling::kLongRope;
      c.rope_short_factor = divisors;
      c.rope_long_factor = divisors;
      c.rope_attention_factor = 1.0;
      c.rope_original_max_position = c.max_position_embeddings;
    }
  }
  // Sizes come from token_embd: the model's vocabulary (a tokenizer may be smaller).
  const GgufTensorInfo* embd = h.FindTensor("token_embd.weight");
  if (embd == nullptr) return NotFound(path + ": tensor 'token_embd.weight' is missing from the GGUF file");
  if (embd->dims.size() != 2 || embd->dims[0] != static_cast<uint64_t>(c.hidden_size) || embd->dims[1] > (1u << 22)) {
    return InvalidArgument(path + ": tensor 'token_embd.weight' has ggml dims " + DimsText(embd->dims) +
                           " but llama.embedding_length is " + std::to_string(c.hidden_size) + " (expected [" +
                           std::to_string(c.hidden_size) + ", vocab])");
  }
  c.vocab_size = static_cast<int>(embd->dims[1]);
  if (h.Find("llama.vocab_size") != nullptr) {
    LLM_ASSIGN_OR_RETURN(const int declared, RequiredInt(h, "llama.vocab_size", path));
    if (declared != c.vocab_size) {
      return InvalidArgument(path + ": GGUF llama.vocab_size " + std::to_string(declared) + " but token_embd.weight has " +
                             std::to_string(c.vocab_size) + " rows");
    }
  }
  c.tie_word_embeddings = h.FindTensor("output.weight") == nullptr;
  c.attention_bias = h.FindTensor("blk.0.attn_q.bias") != nullptr;
  c.mlp_bias = h.FindTensor("blk.0.ffn_gate.bias") != nullptr;
  LLM_ASSIGN_OR_RETURN(c.bos_token_id, OptionalInt(h, "tokenizer.ggml.bos_token_id", 1, path));
  LLM_ASSIGN_OR_RETURN(const int eos, OptionalInt(h, "tokenizer.ggml.eos_token_id", 2, path));
  c.eos_token_ids = {eos};
  // Instruct files name end-of-turn (and Llama 3.1's end-of-message) tokens
  // apart; generation stops on each, as on generation_config.json's list.
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    LLM_ASSIGN_OR_RETURN(const int id, OptionalInt(h, key, -1, path));
    if (id >= 0 && std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end()) {
      c.eos_token_ids.push_back(id);
    }
  }
  LLM_ASSIGN_OR_RETURN(const int file_type, OptionalInt(h, "general.file_type", 0, path));
  c.torch_dtype = file_type == 1 ? DType::kF16 : file_type == 32 ? DType::kBF16 : DType::kF32;
  LLM_RETURN_IF_ERROR(ValidateLlamaConfig(c, path));
  return c;
}

Result<ModelWeights> LoadGgufWeights(const std::shared_ptr<const GgufFile>& file, const LlamaConfig& config,
                                     DType dtype, ThreadPool* pool) {
  const GgufHeader& h = file->header();
  const std::string& path = file->path();
  ModelWeights w;
  w.dtype = dtype;
  std::set<std::string> used = {"rope_freqs.weight"};  // read by GgufLlamaConfig
  for (const TensorSpec& spec : ListTensors(config, &w)) {
    const std::string name = GgufTensorName(spec.name);
    const GgufTensorInfo* t = h.FindTensor(name);
    if (t == nullptr) {
      return NotFound(path + ": tensor '" + name + "' is missing from the GGUF file (the llama.* keys say " +
                      std::to_string(config.num_hidden_layers) + " layers" +
                      (config.attention_bias ? ", attention biases" : "") + (config.mlp_bias ? ", MLP biases" : "") +
                      ")");
    }
    // ggml dims are the reverse of the row-major shape: [cols, rows].
    const std::vector<uint64_t> want_dims =
        spec.rows == 1 ? std::vector<uint64_t>{static_cast<uint64_t>(spec.cols)}
                       : std::vector<uint64_t>{static_cast<uint64_t>(spec.cols), static_cast<uint64_t>(spec.rows)};
    if (t->dims != want_dims) {
      return InvalidArgument(path + ": tensor '" + name + "' has ggml dims " + DimsText(t->dims) +
                             " but the llama.* keys imply " + DimsText(want_dims) + " (the file is inconsistent)");
    }
    const DType want = spec.is_bias ? DType::kF32 : dtype;
    const bool is_q = name.find(".attn_q.") != std::string::npos, is_k = name.find(".attn_k.") != std::string::npos;
    const int permute_heads = is_q ? config.num_attention_heads : is_k ? config.num_key_value_heads : 0;
    const bool aligned = reinterpret_cast<uintptr_t>(file->TensorData(*t)) % DTypeSize(want) == 0;
    DType stored;
    if (!spec.is_bias && spec.rows > 1 && !IsFloatType(t->type) && DTypeFromGgmlType(static_cast<uint32_t>(t->type), &stored)) {
      // Quantized matrices are used as stored, whatever --dtype says.
      LLM_ASSIGN_OR_RETURN(*spec.slot, QuantizedGgufTensor(file, *t, spec, stored, permute_heads, pool));
    } else if (IsFloatType(t->type) && FloatDType(t->type) == want && permute_heads == 0 && aligned) {
      // Zero-copy: the tensor points into the mapping, which it keeps alive.
      Tensor z;
      z.dtype = want;
      z.rows = spec.rows;
      z.cols = spec.cols;
      z.data = file->TensorData(*t);
      z.owner = std::shared_ptr<const void>(file, z.data);
      z.mapped = true;
      *spec.slot = std::move(z);
    } else {
      LLM_ASSIGN_OR_RETURN(*spec.slot, ConvertGgufTensor(*file, *t, spec, want, permute_heads, pool));
    }
    used.insert(name);
  }
  // A tensor the model does not use means the keys and tensors disagree
  // (fewer block_count than blk.N tensors would run a truncated model).
  for (const GgufTensorInfo& t : h.tensors) {
    if (!used.count(t.name)) {
      return InvalidArgument(path + ": tensor '" + PrintableName(t.name) + "' is not used by a llama model with these llama.* keys (" +
                             std::to_string(config.num_hidden_layers) + " layers): the file is inconsistent");
    }
  }
  if (config.tie_word_embeddings) w.lm_head = w.embed_tokens;
  return w;
}

Result<GgufVocab> GgufVocabOf(const GgufHeader& h, const std::string& path) {
  GgufVocab v;
  auto model = h.GetString("tokenizer.ggml.model");
  if (!model.ok()) {
    if (model.status().code() == StatusCode::kNotFound) return NotFound(path + ": the GGUF file carries no tokenizer");
    return DataLoss(path + ": " + model.status().message());
  }
  v.model = model.value();
  const GgufValue* tokens = h.Find("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->type != GgufValueType::kArray || tokens->elem_type != GgufValueType::kString) {
    return DataLoss(path + ": GGUF tokenizer.ggml.tokens is missing or not an array of strings");
  }
  v.tokens.assign(tokens->strings.begin(), tokens->strings.end());
  auto numeric_array = [&](const char* key, bool integer) -> Result<const GgufValue*> {
    const GgufValue* a = h.Find(key);
    if (a == nullptr) return static_cast<const GgufValue*>(nullptr);
    GgufValue probe;
    probe.type = a->elem_type;
    const bool ok = a->type == GgufValueType::kArray && (integer ? probe.is_integer() : (probe.is_float() || probe.is_integer()));
    if (!ok) return DataLoss(path + ": GGUF " + key + " is not an array of " + (integer ? "integers" : "numbers"));
    return a;
  };
  LLM_ASSIGN_OR_RETURN(const GgufValue* scores, numeric_array("tokenizer.ggml.scores", false));
  if (scores != nullptr) {
    for (uint64_t k = 0; k < scores->count; ++k) v.scores.push_back(static_cast<float>(scores->ArrayFloat(k)));
  }
  LLM_ASSIGN_OR_RETURN(const GgufValue* types, numeric_array("tokenizer.ggml.token_type", true));
  if (types != nullptr) {
    for (uint64_t k = 0; k < types->count; ++k) {
      const int64_t t = types->ArrayInt(k);
      v.token_types.push_back(t >= INT_MIN && t <= INT_MAX ? static_cast<int>(t) : 0);
    }
  }
  if (const GgufValue* merges = h.Find("tokenizer.ggml.merges"); merges != nullptr) {
    if (merges->type != GgufValueType::kArray || merges->elem_type != GgufValueType::kString) {
      return DataLoss(path + ": GGUF tokenizer.ggml.merges is not an array of strings");
    }
    v.merges.assign(merges->strings.begin(), merges->strings.end());
  }
  LLM_ASSIGN_OR_RETURN(v.pre, OptionalString(h, "tokenizer.ggml.pre", path));
  LLM_ASSIGN_OR_RETURN(v.bos_id, OptionalInt(h, "tokenizer.ggml.bos_token_id", -1, path));
  LLM_ASSIGN_OR_RETURN(v.eos_id, OptionalInt(h, "tokenizer.ggml.eos_token_id", -1, path));
  LLM_ASSIGN_OR_RETURN(v.unk_id, OptionalInt(h, "tokenizer.ggml.unknown_token_id", -1, path));
  // llama.cpp's defaults when the key is absent: BOS for SentencePiece
  // vocabularies and Llama 3's, not for other byte-level ones.
  const bool default_bos = v.model == "llama" || v.pre == "llama-bpe" || v.pre == "llama3" || v.pre == "llama-v3";
  LLM_ASSIGN_OR_RETURN(v.add_bos, OptionalBool(h, "tokenizer.ggml.add_bos_token", default_bos, path));
  LLM_ASSIGN_OR_RETURN(v.add_space_prefix, OptionalBool(h, "tokenizer.ggml.add_space_prefix", true, path));
  LLM_ASSIGN_OR_RETURN(v.remove_extra_whitespaces,
                       OptionalBool(h, "tokenizer.ggml.remove_extra_whitespaces", false, path));
  LLM_ASSIGN_OR_RETURN(const GgufValue* charsmap, numeric_array("tokenizer.ggml.precompiled_charsmap", true));
  if (charsmap != nullptr) {
    v.precompiled_charsmap.reserve(charsmap->count);
    for (uint64_t k = 0; k < charsmap->count; ++k) {
      const int64_t b = charsmap->ArrayInt(k);
      if (b < -128 || b > 255) return DataLoss(path + ": GGUF tokenizer.ggml.precompiled_charsmap holds a non-byte");
      v.precompiled_charsmap += static_cast<char>(static_cast<uint8_t>(b));
    }
  }
  return v;
}

}  // namespace llm
