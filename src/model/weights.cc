#include "model/weights.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <nlohmann/json.hpp>

#include "core/aligned_buffer.h"
#include "core/mapped_file.h"
#include "core/quant.h"
#include "core/thread_pool.h"
#include "io/safetensors.h"
#include "model/model_loader.h"

namespace llm {

namespace {
// Tensors under 2 MiB share 8 MiB chunks, which AlignedBuffer puts on huge
// pages; alone they would sit on 4 KiB pages. TinyLlama's bfloat16 k_proj and
// v_proj (1 MiB each) read 9.7-10.6 GB/s in decode on 4 KiB pages, 23-25 on
// huge pages (2 threads, Xeon with AMX; q_proj 29 either way). The current
// chunk is held weakly: it goes when the last tensor in it goes.
constexpr size_t kSharedBelow = size_t{2} << 20;
constexpr size_t kChunkBytes = size_t{8} << 20;

// Room for `bytes` (under kSharedBelow) in the current chunk or a new one;
// null when memory is short.
std::shared_ptr<const void> TakeFromChunk(size_t bytes) {
  static std::mutex mutex;
  static std::weak_ptr<BufferArena> current;
  std::lock_guard<std::mutex> lock(mutex);
  std::shared_ptr<BufferArena> chunk = current.lock();
  void* p = chunk ? chunk->Take(AlignedSize(bytes)) : nullptr;
  if (p == nullptr) {
    chunk = std::make_shared<BufferArena>(MemCategory::kWeights);
    if (!chunk->buffer.Allocate(kChunkBytes)) return nullptr;
    current = chunk;
    p = chunk->Take(AlignedSize(bytes));
  }
  return std::shared_ptr<const void>(chunk, p);
}
}  // namespace

// Allocates a tensor's storage; fails cleanly when memory is short.
Result<Tensor> AllocateTensor(DType dtype, int64_t rows, int64_t cols, const std::string& name) {
  const size_t bytes = static_cast<size_t>(rows) * DTypeRowBytes(dtype, cols);
  std::shared_ptr<const void> owner;
  if (bytes > 0 && bytes < kSharedBelow) {
    owner = TakeFromChunk(bytes);
  } else {
    auto buf = std::make_shared<AlignedBuffer>(MemCategory::kWeights);
    if (buf->Allocate(bytes)) owner = std::shared_ptr<const void>(buf, buf->data());
  }
  if (bytes > 0 && owner == nullptr) {
    return IoError("out of memory allocating " + std::to_string(bytes >> 20) + " MiB for " + name +
                   " (try --dtype bfloat16 or a smaller model)");
  }
  Tensor t;
  t.dtype = dtype;
  t.rows = rows;
  t.cols = cols;
  t.data = owner.get();
  t.owner = std::move(owner);
  return t;
}

namespace {

// llama.cpp's reference quantizers (bit-identical to the gguf package's):
// Q8_0 and Q4_0 only; the other types come quantized in GGUF files.
void QuantizeRows(const float* src, DType type, uint8_t* dst, size_t n) {
  if (type == DType::kQ8_0) QuantizeRowQ8_0(src, dst, n);
  else QuantizeRowQ4_0(src, dst, n);
}

Status CheckQuantizable(const TensorSpec& spec, DType type) {
  if (type != DType::kQ8_0 && type != DType::kQ4_0) {
    return InvalidArgument(std::string("--dtype ") + DTypeName(type) +
                           ": only q8_0 and q4_0 are quantized at load (other types come in GGUF files)");
  }
  if (spec.cols % 32 != 0) {
    return InvalidArgument("--dtype " + std::string(DTypeName(type)) + ": tensor '" + spec.name + "' has rows of " +
                           std::to_string(spec.cols) + " elements, not a multiple of the 32-element block");
  }
  return OkStatus();
}

constexpr size_t kConvertChunk = 1 << 20;  // elements per parallel task

// Element i of a float tensor as float32 (read through memcpy: any alignment).
float ElementAt(const uint8_t* data, DType t, size_t i) {
  if (t == DType::kF32) {
    float f;
    std::memcpy(&f, data + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, data + 2 * i, 2);
  return t == DType::kF16 ? F16ToF32(h) : BF16ToF32(h);
}

// Index of the first NaN or Inf among n elements, or n: an all-ones exponent,
// tested on the bits (a plain loop the compiler vectorizes; conversions stay fast).
template <class Bits>
size_t FirstAllOnes(const uint8_t* data, size_t n, Bits exponent) {
  constexpr size_t kBlock = 4096;
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t e = std::min(n, b + kBlock);
    bool any = false;
    for (size_t i = b; i < e; ++i) {
      Bits v;
      std::memcpy(&v, data + i * sizeof(Bits), sizeof(Bits));
      any |= (v & exponent) == exponent;
    }
    if (!any) continue;
    for (size_t i = b; i < e; ++i) {
      Bits v;
      std::memcpy(&v, data + i * sizeof(Bits), sizeof(Bits));
      if ((v & exponent) == exponent) return i;
    }
  }
  return n;
}

size_t FirstNonFinite(const uint8_t* data, DType t, size_t n) {
  switch (t) {
    case DType::kF32: return FirstAllOnes<uint32_t>(data, n, 0x7f800000u);
    case DType::kF16: return FirstAllOnes<uint16_t>(data, n, 0x7c00u);
    case DType::kBF16: return FirstAllOnes<uint16_t>(data, n, 0x7f80u);
    default: return n;
  }
}

std::string ValueText(float v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%g", v);
  return b;
}

}  // namespace

std::string DescribeNonFiniteWeight(const LlamaConfig& c, const ModelWeights& w) {
  ModelWeights view = w;  // shares the storage; ListTensors names its slots
  for (const TensorSpec& spec : ListTensors(c, &view)) {
    const Tensor& t = *spec.slot;
    if (t.empty()) continue;
    const size_t n = static_cast<size_t>(t.rows * t.cols);
    const size_t i = FirstNonFinite(static_cast<const uint8_t*>(t.data), t.dtype, n);
    if (i < n) {
      return "tensor '" + spec.name + "' holds " + ValueText(ElementAt(static_cast<const uint8_t*>(t.data), t.dtype, i)) +
             " at element " + std::to_string(i);
    }
  }
  return "";
}

std::vector<TensorSpec> ListTensors(const LlamaConfig& c, ModelWeights* w) {
  const int64_t h = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), f = c.intermediate_size;
  std::vector<TensorSpec> specs;
  specs.push_back({"model.embed_tokens.weight", c.vocab_size, h, &w->embed_tokens, false, TensorSpec::kNormal});
  w->layers.resize(c.num_hidden_layers);
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    LayerWeights& l = w->layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    specs.push_back({p + "input_layernorm.weight", 1, h, &l.input_layernorm, false, TensorSpec::kOnes});
    specs.push_back({p + "self_attn.q_proj.weight", q, h, &l.q_proj, false, TensorSpec::kNormal});
    specs.push_back({p + "self_attn.k_proj.weight", kv, h, &l.k_proj, false, TensorSpec::kNormal});
    specs.push_back({p + "self_attn.v_proj.weight", kv, h, &l.v_proj, false, TensorSpec::kNormal});
    specs.push_back({p + "self_attn.o_proj.weight", h, q, &l.o_proj, false, TensorSpec::kNormal});
    if (c.attention_bias) {
      specs.push_back({p + "self_attn.q_proj.bias", 1, q, &l.q_bias, true, TensorSpec::kZeros});
      specs.push_back({p + "self_attn.k_proj.bias", 1, kv, &l.k_bias, true, TensorSpec::kZeros});
      specs.push_back({p + "self_attn.v_proj.bias", 1, kv, &l.v_bias, true, TensorSpec::kZeros});
      specs.push_back({p + "self_attn.o_proj.bias", 1, h, &l.o_bias, true, TensorSpec::kZeros});
    }
    specs.push_back({p + "post_attention_layernorm.weight", 1, h, &l.post_attention_layernorm, false, TensorSpec::kOnes});
    specs.push_back({p + "mlp.gate_proj.weight", f, h, &l.gate_proj, false, TensorSpec::kNormal});
    specs.push_back({p + "mlp.up_proj.weight", f, h, &l.up_proj, false, TensorSpec::kNormal});
    specs.push_back({p + "mlp.down_proj.weight", h, f, &l.down_proj, false, TensorSpec::kNormal});
    if (c.mlp_bias) {
      specs.push_back({p + "mlp.gate_proj.bias", 1, f, &l.gate_bias, true, TensorSpec::kZeros});
      specs.push_back({p + "mlp.up_proj.bias", 1, f, &l.up_bias, true, TensorSpec::kZeros});
      specs.push_back({p + "mlp.down_proj.bias", 1, h, &l.down_bias, true, TensorSpec::kZeros});
    }
  }
  specs.push_back({"model.norm.weight", 1, h, &w->norm, false, TensorSpec::kOnes});
  if (!c.tie_word_embeddings) specs.push_back({"lm_head.weight", c.vocab_size, h, &w->lm_head, false, TensorSpec::kNormal});
  return specs;
}

namespace {
// Bytes of every tensor of a layer (biases included when present).
size_t LayerBytes(const LayerWeights& l) {
  size_t bytes = 0;
  for (const Tensor* t : {&l.input_layernorm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.q_bias, &l.k_bias,
                          &l.v_bias, &l.o_bias, &l.post_attention_layernorm, &l.gate_proj, &l.up_proj, &l.down_proj,
                          &l.gate_bias, &l.up_bias, &l.down_bias}) {
    if (!t->empty()) bytes += t->nbytes();
  }
  return bytes;
}
}  // namespace

size_t ModelWeights::DecodeBytesPerToken(const LlamaConfig& c) const {
  size_t bytes = norm.nbytes() + lm_head.nbytes();
  for (const LayerWeights& l : layers) bytes += LayerBytes(l);
  if (!c.tie_word_embeddings) bytes += DTypeRowBytes(embed_tokens.dtype, embed_tokens.cols);
  return bytes;
}

Status CopyMappedWeights(const LlamaConfig& config, ModelWeights* w, ThreadPool* pool) {
  std::vector<Tensor*> tensors;
  for (const TensorSpec& spec : ListTensors(config, w)) tensors.push_back(spec.slot);
  if (config.tie_word_embeddings) tensors.push_back(&w->lm_head);  // the same bytes as embed_tokens
  // Distinct mapped tensors (by their data), each at a 64-byte step of one buffer.
  struct Slice {
    const void* from;
    size_t offset;
    bool copied = false;
  };
  std::vector<Slice> slices;
  const auto slice_of = [&](const void* from) {
    return std::find_if(slices.begin(), slices.end(), [&](const Slice& s) { return s.from == from; });
  };
  size_t total = 0;
  for (Tensor* t : tensors) {
    if (!t->mapped || slice_of(t->data) != slices.end()) continue;
    slices.push_back({t->data, total});
    total += AlignedSize(t->nbytes());
  }
  if (total == 0) return OkStatus();
  LLM_RETURN_IF_ERROR(CheckMemoryBudget(total, AvailableMemoryBytes(), "the weights copied out of the file (--mmap off)",
                                        "use --mmap on or a smaller model"));
  auto buf = std::make_shared<AlignedBuffer>(MemCategory::kWeights);
  if (!buf->Allocate(total)) {
    return IoError("out of memory allocating " + std::to_string(total >> 20) +
                   " MiB for the weights copied out of the file (--mmap off); use --mmap on");
  }
  auto* base = static_cast<uint8_t*>(buf->data());
  for (Tensor* t : tensors) {
    if (!t->mapped) continue;
    Slice& s = *slice_of(t->data);
    uint8_t* dst = base + s.offset;
    if (!s.copied) {  // in parallel, 1 MiB at a time
      const auto* src = static_cast<const uint8_t*>(t->data);
      const size_t bytes = t->nbytes();
      pool->ParallelRange((bytes + (1 << 20) - 1) >> 20, 1, [&](size_t b, size_t e, int) {
        std::memcpy(dst + (b << 20), src + (b << 20), std::min(bytes, e << 20) - (b << 20));
      });
      s.copied = true;
    }
    t->data = dst;
    t->owner = std::shared_ptr<const void>(buf, dst);
    t->mapped = false;
  }
  return OkStatus();
}

size_t ModelWeights::TotalBytes() const {
  size_t bytes = embed_tokens.nbytes() + norm.nbytes();
  if (lm_head.data != embed_tokens.data) bytes += lm_head.nbytes();
  for (const LayerWeights& l : layers) bytes += LayerBytes(l);
  return bytes;
}

namespace {

// Which shard files make up the checkpoint in `dir`.
Result<std::vector<std::string>> FindShards(const std::string& dir) {
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (PathExists(index_path)) {  // not a regular file (a FIFO...): the reader says so
    LLM_ASSIGN_OR_RETURN(std::vector<std::string> files, ReadSafetensorsIndex(index_path));
    std::vector<std::string> paths;
    for (const auto& f : files) paths.push_back(dir + "/" + f);
    return paths;
  }
  if (PathExists(dir + "/model.safetensors")) return std::vector<std::string>{dir + "/model.safetensors"};
  if (IsRegularFile(dir + "/pytorch_model.bin") || IsRegularFile(dir + "/pytorch_model.bin.index.json")) {
    return Unimplemented(dir + ": only pytorch_model.bin (pickle) weights found; they are not loaded for safety. "
                         "Convert them: python -c \"from transformers import AutoModelForCausalLM as M; "
                         "M.from_pretrained('" + dir + "').save_pretrained('" + dir + "', safe_serialization=True)\"");
  }
  return NotFound(dir + ": no model.safetensors or model.safetensors.index.json found");
}

// Copies (with conversion) a checkpoint tensor into a new allocation, in parallel.
Result<Tensor> ConvertTensor(const SafetensorsFile& file, const SafetensorsEntry& e, const TensorSpec& spec,
                             DType dtype, ThreadPool* pool) {
  LLM_ASSIGN_OR_RETURN(Tensor t, AllocateTensor(dtype, spec.rows, spec.cols, spec.name));
  const size_t n = static_cast<size_t>(spec.rows * spec.cols);
  const uint8_t* src = file.TensorData(e);
  auto* dst = static_cast<uint8_t*>(const_cast<void*>(t.data));
  // Each task checks what it wrote: a NaN/Inf (copied, or a float32 value
  // beyond float16's range that became inf) would make every logit NaN later.
  std::vector<size_t> bad(pool->num_threads(), n);
  pool->ParallelRange(n, kConvertChunk, [&](size_t b, size_t end, int worker) {
    ConvertFloats(src + b * DTypeSize(e.dtype), e.dtype, dst + b * DTypeSize(dtype), dtype, end - b);
    const size_t i = FirstNonFinite(dst + b * DTypeSize(dtype), dtype, end - b);
    if (i < end - b) bad[worker] = std::min(bad[worker], b + i);
  });
  const size_t first = *std::min_element(bad.begin(), bad.end());
  if (first < n) {
    const float was = ElementAt(src, e.dtype, first);
    if (std::isfinite(was)) {
      return InvalidArgument(file.path() + ": tensor '" + spec.name + "' holds " + ValueText(was) + " at element " +
                             std::to_string(first) + ", beyond the range of " + DTypeName(dtype) +
                             " (it would become inf); use --dtype bfloat16 or float32");
    }
    return DataLoss(file.path() + ": tensor '" + spec.name + "' holds " + ValueText(was) + " at element " +
                    std::to_string(first) + " (the checkpoint is corrupt)");
  }
  return t;
}

}  // namespace

Result<ModelWeights> LoadSafetensorsWeights(const std::string& dir, const LlamaConfig& config, DType dtype,
                                            ThreadPool* pool) {
  LLM_ASSIGN_OR_RETURN(std::vector<std::string> shard_paths, FindShards(dir));
  std::vector<std::shared_ptr<SafetensorsFile>> shards;
  std::map<std::string, std::pair<const SafetensorsFile*, const SafetensorsEntry*>> by_name;
  for (const auto& path : shard_paths) {
    LLM_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
    shards.push_back(file);
    for (const auto& [name, entry] : file->tensors()) {
      // Which copy would be the model is undefined: refuse, never pick one.
      auto [it, fresh] = by_name.emplace(name, std::make_pair(file.get(), &entry));
      if (!fresh) {
        return DataLoss(dir + ": tensor '" + name + "' is in both " + it->second.first->path() + " and " + path +
                        " (the checkpoint is inconsistent: download it again)");
      }
    }
  }
  ModelWeights w;
  w.dtype = dtype;
  std::set<std::string> used;
  for (const TensorSpec& spec : ListTensors(config, &w)) {
    auto it = by_name.find(spec.name);
    if (it == by_name.end()) {
      return NotFound(dir + ": tensor '" + spec.name + "' is missing from the checkpoint (config.json says " +
                      std::to_string(config.num_hidden_layers) + " layers" +
                      (config.tie_word_embeddings ? ", tied embeddings" : ", untied embeddings") + ")");
    }
    const SafetensorsFile& file = *it->second.first;
    const SafetensorsEntry& e = *it->second.second;
    const bool is_vector = spec.rows == 1;
    const bool shape_ok = is_vector ? (e.shape.size() == 1 && e.shape[0] == spec.cols)
                                    : (e.shape.size() == 2 && e.shape[0] == spec.rows && e.shape[1] == spec.cols);
    if (!shape_ok) {
      std::string got;
      for (auto d : e.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
      const std::string want = is_vector ? std::to_string(spec.cols)
                                         : std::to_string(spec.rows) + ", " + std::to_string(spec.cols);
      return InvalidArgument(file.path() + ": tensor '" + spec.name + "' has shape [" + got + "] but config.json implies [" +
                             want + "] (config.json and weights do not belong together)");
    }
    if (e.dtype != DType::kF32 && e.dtype != DType::kF16 && e.dtype != DType::kBF16) {
      return Unimplemented(file.path() + ": tensor '" + spec.name + "' is stored as " + DTypeName(e.dtype) +
                           "; weights must be F32, F16 or BF16");
    }
    const DType want = spec.is_bias ? DType::kF32 : dtype;
    used.insert(spec.name);
    // The format does not align tensors: one whose bytes do not start on a
    // multiple of its element size is copied (typed loads from it are
    // undefined behaviour), the others are used in place.
    const bool aligned = reinterpret_cast<uintptr_t>(file.TensorData(e)) % DTypeSize(e.dtype) == 0;
    if (e.dtype == want && aligned) {
      // Zero-copy: the tensor points into the mapping, which it keeps alive.
      Tensor t;
      t.dtype = want;
      t.rows = spec.rows;
      t.cols = spec.cols;
      t.data = file.TensorData(e);
      t.owner = file.mapped();
      t.mapped = true;
      *spec.slot = std::move(t);
    } else {
      LLM_ASSIGN_OR_RETURN(*spec.slot, ConvertTensor(file, e, spec, want, pool));
    }
  }
  // A model tensor that config.json does not use means the two disagree (a
  // config with fewer layers than the checkpoint would run a truncated model).
  for (const auto& [name, where] : by_name) {
    const bool model_tensor = name.rfind("model.", 0) == 0 || name.rfind("lm_head.", 0) == 0;
    const bool harmless = name.size() >= 19 && name.compare(name.size() - 19, 19, "rotary_emb.inv_freq") == 0;
    const bool tied_head = config.tie_word_embeddings && name == "lm_head.weight";  // transformers ties it away
    if (model_tensor && !harmless && !tied_head && !used.count(name)) {
      return InvalidArgument(where.first->path() + ": tensor '" + name + "' is not used by config.json (" +
                             std::to_string(config.num_hidden_layers) + " layers, attention_bias " +
                             (config.attention_bias ? "true" : "false") + ", mlp_bias " +
                             (config.mlp_bias ? "true" : "false") +
                             "): config.json and weights do not belong together");
    }
  }
  if (config.tie_word_embeddings) w.lm_head = w.embed_tokens;
  return w;
}

namespace {

// Counter-based generator: value i of tensor t depends only on (seed, t, i),
// so any split across threads gives the same weights.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Inverse normal CDF sampled at 4096 midpoints and interpolated: one hash and
// one lerp per value instead of Box-Muller's log/sqrt/cos, which would take
// about a minute for a 7B model on two cores. Tails are cut at ~3.7 sigma.
class NormalTable {
 public:
  NormalTable() {
    for (int i = 0; i <= kSize; ++i) {
      const double p = (i + 0.5) / (kSize + 1);
      table_[i] = static_cast<float>(InverseNormalCdf(p));
    }
  }
  float Sample(uint64_t bits) const {
    const uint32_t idx = static_cast<uint32_t>(bits >> 52);             // 12 bits
    const float frac = static_cast<float>((bits >> 28) & 0xffffff) * (1.0f / 16777216.0f);
    return table_[idx] + (table_[idx + 1] - table_[idx]) * frac;
  }

 private:
  static constexpr int kSize = 4096;
  // Bisection on erfc: slow but exact, and run once for 4097 points.
  static double InverseNormalCdf(double p) {
    double lo = -10, hi = 10;
    for (int it = 0; it < 100; ++it) {
      const double mid = 0.5 * (lo + hi);
      if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p) lo = mid; else hi = mid;
    }
    return 0.5 * (lo + hi);
  }
  float table_[kSize + 1];
};

}  // namespace

Result<ModelWeights> MakeDummyWeights(const LlamaConfig& config, DType dtype, uint64_t seed, ThreadPool* pool) {
  static const NormalTable normal;
  constexpr float kStd = 0.02f;  // HF initializer_range of every Llama release
  ModelWeights w;
  w.dtype = dtype;
  uint64_t tensor_index = 0;
  for (const TensorSpec& spec : ListTensors(config, &w)) {
    // Quantized models keep norms (vectors) in float32, as GGUF files do.
    const DType want = spec.is_bias || (IsQuantized(dtype) && spec.rows == 1) ? DType::kF32 : dtype;
    if (IsQuantized(want)) LLM_RETURN_IF_ERROR(CheckQuantizable(spec, want));
    LLM_ASSIGN_OR_RETURN(Tensor t, AllocateTensor(want, spec.rows, spec.cols, spec.name));
    const size_t n = static_cast<size_t>(spec.rows * spec.cols);
    auto* dst = static_cast<uint8_t*>(const_cast<void*>(t.data));
    const uint64_t stream = SplitMix64(seed ^ SplitMix64(++tensor_index));
    const TensorSpec::Init init = spec.init;
    pool->ParallelRange(n, kConvertChunk, [&](size_t b, size_t e, int) {
      float chunk[1024];
      for (size_t i = b; i < e; i += 1024) {
        const size_t len = std::min<size_t>(1024, e - i);
        for (size_t j = 0; j < len; ++j) {
          chunk[j] = init == TensorSpec::kOnes    ? 1.0f
                     : init == TensorSpec::kZeros ? 0.0f
                                                  : kStd * normal.Sample(SplitMix64(stream + i + j));
        }
        if (IsQuantized(want)) {
          // Chunks start at multiples of 1024 and rows hold whole blocks, so
          // element i begins block i / 32 of the flattened matrix.
          QuantizeRows(chunk, want, dst + i / 32 * DTypeRowBytes(want, 32), len);
        } else {
          ConvertFloats(chunk, DType::kF32, dst + i * DTypeSize(want), want, len);
        }
      }
    });
    *spec.slot = std::move(t);
  }
  if (config.tie_word_embeddings) w.lm_head = w.embed_tokens;
  return w;
}

Status QuantizeWeights(const LlamaConfig& config, DType type, ModelWeights* w, ThreadPool* pool) {
  for (const TensorSpec& spec : ListTensors(config, w)) {
    if (spec.is_bias || spec.rows == 1) continue;  // biases and norms stay float
    LLM_RETURN_IF_ERROR(CheckQuantizable(spec, type));
    Tensor& t = *spec.slot;
    LLM_ASSIGN_OR_RETURN(Tensor q, AllocateTensor(type, t.rows, t.cols, spec.name));
    const size_t src_row = DTypeRowBytes(t.dtype, t.cols), dst_row = DTypeRowBytes(type, t.cols);
    pool->ParallelRange(static_cast<size_t>(t.rows), 16, [&](size_t b, size_t e, int) {
      std::vector<float> row(static_cast<size_t>(t.cols));
      for (size_t r = b; r < e; ++r) {
        ConvertFloats(static_cast<const uint8_t*>(t.data) + r * src_row, t.dtype, row.data(), DType::kF32, row.size());
        QuantizeRows(row.data(), type, static_cast<uint8_t*>(const_cast<void*>(q.data)) + r * dst_row, row.size());
      }
    });
    t = std::move(q);
  }
  if (config.tie_word_embeddings) w->lm_head = w->embed_tokens;
  w->dtype = type;
  return OkStatus();
}

}  // namespace llm
