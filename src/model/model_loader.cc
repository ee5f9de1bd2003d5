#include "model/model_loader.h"

#include <dirent.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "model/gguf_model.h"
#include "model/llama_model.h"

namespace llm {

namespace {

Result<LlamaConfig> LoadDummyConfig(const std::string& name) {
  if (name.empty()) return InvalidArgument("--load-format dummy needs --model-config NAME or path/to/config.json");
  if (name.find('/') != std::string::npos || name.find(".json") != std::string::npos) {
    LLM_ASSIGN_OR_RETURN(std::string text, ReadTextFile(name));
    return ParseLlamaConfig(text, name);
  }
  return BuiltinLlamaConfig(name);
}

// generation_config.json's eos_token_id (an int or a list: Llama 3 Instruct
// stops on both <|end_of_text|> and <|eot_id|>) is the stop set when present.
Status ApplyGenerationConfig(const std::string& dir, LlamaConfig* config) {
  auto text = ReadTextFile(dir + "/generation_config.json");
  if (!text.ok()) {  // optional file; but one that is there and unreadable (a FIFO, a directory) is an error
    return text.status().code() == StatusCode::kNotFound ? OkStatus() : text.status();
  }
  auto j = nlohmann::json::parse(text.value(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument(dir + "/generation_config.json: not valid JSON (truncated or corrupt)");
  }
  auto eos = j.find("eos_token_id");
  if (eos == j.end() || eos->is_null()) return OkStatus();
  std::vector<int> ids;
  LLM_RETURN_IF_ERROR(ParseTokenIds(*eos, dir + "/generation_config.json: 'eos_token_id'", &ids));
  config->eos_token_ids = ids;
  return OkStatus();
}

std::string GiB(uint64_t bytes) {
  char b[32];
  if (bytes < (uint64_t{1} << 30)) std::snprintf(b, sizeof(b), "%.1f MiB", bytes / 1048576.0);
  else std::snprintf(b, sizeof(b), "%.2f GiB", bytes / 1073741824.0);
  return b;
}

// Reads one unsigned number from a file ("max" and unreadable files: 0).
uint64_t ReadNumberFile(const std::string& path) {
  std::ifstream in(path);
  uint64_t v = 0;
  return in >> v ? v : 0;
}

// Weights in `dtype` (biases float32) plus, with a --max-seq-len, the KV cache
// and activations LlamaModel::Create will allocate.
// stored_weight_bytes > 0: the weights' size is known (a GGUF file's
// quantized tensors stay as stored).
Status CheckModelFits(const LlamaConfig& c, const ModelSource& src, uint64_t stored_weight_bytes = 0) {
  if (src.max_seq_len <= 0) return OkStatus();
  const uint64_t params = static_cast<uint64_t>(c.NumParameters());
  // Quantized: bytes of the blocks (per 256 elements) plus the float norms, roughly.
  const uint64_t weights = stored_weight_bytes > 0   ? stored_weight_bytes
                           : IsQuantized(src.dtype) ? params / 256 * DTypeRowBytes(src.dtype, 256)
                                                    : params * DTypeSize(src.dtype);
  ModelOptions mo;
  mo.max_seq_len = src.max_seq_len;
  mo.max_sequences = src.max_sequences;
  const std::vector<size_t> parts = LlamaModel::PlannedBufferBytes(c, mo);
  const uint64_t kv = src.kv_on_host ? parts[0] : 0;
  uint64_t scratch = 0;
  for (size_t i = 1; i < parts.size(); ++i) scratch += parts[i];
  return CheckMemoryBudget(weights + kv + scratch, AvailableMemoryBytes(),
                           "weights " + GiB(weights) + " (" + DTypeName(src.dtype) + ") + KV cache " + GiB(kv) +
                               " (--max-seq-len " + std::to_string(src.max_seq_len) +
                               (src.max_sequences > 1 ? " x " + std::to_string(src.max_sequences) + " sequences" : "") +
                               ") + activations " + GiB(scratch));
}

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The GGUF file `path` names: the path itself when it is a file, the one
// .gguf of a directory without safetensors; "" for a safetensors checkpoint
// (or nothing at all: the safetensors path says what is missing).
Result<std::string> FindGgufFile(const std::string& path) {
  if (IsRegularFile(path)) {
    // A file: GGUF by name or by magic; anything else (config.json,
    // model.safetensors) means the directory was meant.
    char magic[4] = {};
    std::ifstream(path, std::ios::binary).read(magic, 4);
    if (EndsWith(path, ".gguf") || std::string(magic, 4) == "GGUF") return path;
    return InvalidArgument(path + ": is a file but not a GGUF file; --model-path takes a checkpoint directory, "
                           "a .gguf file or a directory holding one");
  }
  if (!IsDirectory(path)) {
    if (EndsWith(path, ".gguf") && !PathExists(path)) return NotFound(path + ": GGUF file not found");
    return std::string();
  }
  std::vector<std::string> ggufs;
  bool safetensors = false;
  if (DIR* d = ::opendir(path.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (EndsWith(name, ".safetensors") || name == "model.safetensors.index.json") safetensors = true;
      if (EndsWith(name, ".gguf")) ggufs.push_back(name);
    }
    ::closedir(d);
  }
  if (safetensors || ggufs.empty()) return std::string();
  if (ggufs.size() > 1) {
    std::sort(ggufs.begin(), ggufs.end());
    std::string names;
    for (const auto& g : ggufs) names += (names.empty() ? "" : ", ") + g;
    return InvalidArgument(path + ": holds " + std::to_string(ggufs.size()) + " .gguf files (" + names +
                           "); give one with --model-path DIR/FILE.gguf");
  }
  return path + "/" + ggufs[0];
}

Status LoadGgufModel(const std::string& gguf_path, const ModelSource& src, ThreadPool* pool, LoadedModel* m) {
  if (IsQuantized(src.dtype)) {
    return InvalidArgument(gguf_path + ": --dtype " + DTypeName(src.dtype) +
                           " quantizes safetensors checkpoints; a GGUF file's quantized tensors are used as stored, "
                           "and --dtype (float32, float16 or bfloat16) applies to its float tensors");
  }
  LLM_ASSIGN_OR_RETURN(std::shared_ptr<GgufFile> file, GgufFile::Open(gguf_path));  // refuses non-llama by name
  LLM_ASSIGN_OR_RETURN(m->config, GgufLlamaConfig(*file));
  // Quantized tensors are kept as stored; float ones take --dtype's size.
  uint64_t weight_bytes = 0;
  for (const GgufTensorInfo& t : file->header().tensors) {
    const bool is_float = t.type == GgmlType::kF32 || t.type == GgmlType::kF16 || t.type == GgmlType::kBF16;
    weight_bytes += is_float ? t.num_elements * DTypeSize(src.dtype) : t.nbytes;
  }
  LLM_RETURN_IF_ERROR(CheckModelFits(m->config, src, weight_bytes));
  LLM_ASSIGN_OR_RETURN(m->weights, LoadGgufWeights(file, m->config, src.dtype, pool));
  auto vocab = GgufVocabOf(file->header(), gguf_path);
  if (vocab.ok()) {
    LLM_ASSIGN_OR_RETURN(m->tokenizer, MakeGgufTokenizer(vocab.value(), gguf_path));
  } else if (vocab.status().code() == StatusCode::kNotFound) {
    m->tokenizer_status = vocab.status();
  } else {
    return vocab.status();
  }
  m->description = gguf_path;
  m->format = "gguf";
  m->tensor_types = GgufTensorTypeCounts(file->header());
  std::string quantized;
  for (const auto& [type, count] : m->tensor_types) {
    if (type != "F32" && type != "F16" && type != "BF16") quantized += (quantized.empty() ? "" : ", ") + type;
  }
  if (!quantized.empty()) {
    // Said in the results so that nobody takes these runs for quantized kernels.
    m->load_note = "quantized matrices (" + quantized + ") are used as stored (decode reads their blocks); float "
                   "tensors follow --dtype " + std::string(DTypeName(src.dtype));
  }
  if (file->header().FindTensor("rope_freqs.weight") != nullptr) {
    // Say how the divisors became the config's rope_scaling.
    m->load_note += std::string(m->load_note.empty() ? "" : "; ") +
                    (m->config.rope_scaling == RopeScaling::kLlama3
                         ? "rope_freqs.weight matched llama3 rope parameters (factor, low/high 1/4, original context)"
                         : "rope_freqs.weight applied as per-frequency divisors through the longrope path with "
                           "attention factor 1 (CPU only)");
  }
  return OkStatus();
}

}  // namespace

uint64_t AvailableMemoryBytes() { return AvailableMemoryBytesUnder(""); }

uint64_t AvailableMemoryBytesUnder(const std::string& root) {
  uint64_t available = 0;
  {
    std::ifstream in(root + "/proc/meminfo");
    std::string key;
    uint64_t kib = 0;
    std::string unit;
    while (in >> key >> kib) {
      std::getline(in, unit);
      if (key == "MemAvailable:") { available = kib * 1024; break; }
    }
  }
  // cgroup v2 (the process's own group, then the root a container sees), then
  // v1: limit minus usage, where usage leaves out the inactive page cache the
  // kernel reclaims first (the "working set" docker and kubelet report).
  struct Limit { std::string max, used, stat, inactive_key; };
  std::vector<Limit> limits;
  {
    std::ifstream in(root + "/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("0::", 0) == 0) {
        const std::string dir = root + "/sys/fs/cgroup" + line.substr(3);
        limits.push_back({dir + "/memory.max", dir + "/memory.current", dir + "/memory.stat", "inactive_file"});
      } else if (const size_t at = line.find(":memory:"); at != std::string::npos) {
        const std::string dir = root + "/sys/fs/cgroup/memory" + line.substr(at + 8);
        limits.push_back({dir + "/memory.limit_in_bytes", dir + "/memory.usage_in_bytes", dir + "/memory.stat",
                          "total_inactive_file"});
      }
    }
  }
  const std::string v2 = root + "/sys/fs/cgroup/", v1 = root + "/sys/fs/cgroup/memory/";
  limits.push_back({v2 + "memory.max", v2 + "memory.current", v2 + "memory.stat", "inactive_file"});
  limits.push_back({v1 + "memory.limit_in_bytes", v1 + "memory.usage_in_bytes", v1 + "memory.stat", "total_inactive_file"});
  for (const Limit& l : limits) {
    const uint64_t max = ReadNumberFile(l.max);
    if (max == 0 || max >= (uint64_t{1} << 60)) continue;  // "max" or v1's "no limit"
    uint64_t used = ReadNumberFile(l.used);
    std::ifstream stat(l.stat);
    std::string key;
    uint64_t value = 0;
    while (stat >> key >> value) {
      if (key == l.inactive_key) { used = used > value ? used - value : 0; break; }
    }
    const uint64_t left = max > used ? max - used : 0;
    available = available == 0 ? left : std::min(available, left);
    break;
  }
  return available;
}

Status CheckMemoryBudget(uint64_t need, uint64_t available, const std::string& what, const std::string& hint) {
  if (available == 0 || need <= available) return OkStatus();
  return InvalidArgument("the run needs " + GiB(need) + " (" + what + ") but only " + GiB(available) +
                         " of memory is available; " + hint);
}

Result<LoadedModel> LoadModel(const ModelSource& src, ThreadPool* pool) {
  const auto start = std::chrono::steady_clock::now();
  LoadedModel m;
  std::string gguf_path;
  if (src.format != LoadFormat::kDummy) {
    LLM_ASSIGN_OR_RETURN(gguf_path, FindGgufFile(src.model_dir));
  }
  if (src.format == LoadFormat::kDummy) {
    LLM_ASSIGN_OR_RETURN(m.config, LoadDummyConfig(src.model_config));
    LLM_RETURN_IF_ERROR(CheckModelFits(m.config, src));
    LLM_ASSIGN_OR_RETURN(m.weights, MakeDummyWeights(m.config, src.dtype, src.seed, pool));
    m.description = "dummy:" + src.model_config;
    m.format = "dummy";
    if (m.config.vocab_size >= MakeByteTokenizer()->vocab_size()) {
      m.tokenizer = MakeByteTokenizer();
    } else {
      m.tokenizer_status = NotFound(m.description + ": vocab_size " + std::to_string(m.config.vocab_size) +
                                    " is too small for the built-in byte-level tokenizer (needs 259)");
    }
  } else if (!gguf_path.empty()) {
    if (src.format == LoadFormat::kSafetensors) {
      return InvalidArgument(gguf_path + ": is a GGUF file but --load-format safetensors was given (use auto)");
    }
    LLM_RETURN_IF_ERROR(LoadGgufModel(gguf_path, src, pool, &m));
  } else {
    const std::string& dir = src.model_dir;
    if (!IsDirectory(dir)) return NotFound(dir + ": model directory not found");
    m.format = "safetensors";
    LLM_ASSIGN_OR_RETURN(std::string text, ReadTextFile(dir + "/config.json"));
    LLM_ASSIGN_OR_RETURN(m.config, ParseLlamaConfig(text, dir + "/config.json"));
    LLM_RETURN_IF_ERROR(ApplyGenerationConfig(dir, &m.config));
    LLM_RETURN_IF_ERROR(CheckModelFits(m.config, src));
    // --dtype q8_0 / q4_0: the checkpoint as stored (mapped, no copy), then quantized.
    const bool quantize = IsQuantized(src.dtype);
    LLM_ASSIGN_OR_RETURN(m.weights, LoadSafetensorsWeights(dir, m.config, quantize ? m.config.torch_dtype : src.dtype, pool));
    if (quantize) LLM_RETURN_IF_ERROR(QuantizeWeights(m.config, src.dtype, &m.weights, pool));
    auto tok = LoadTokenizer(dir);
    if (tok.ok()) {
      m.tokenizer = std::move(tok.value());
    } else if (tok.status().code() == StatusCode::kNotFound) {
      m.tokenizer_status = tok.status();
    } else {
      return tok.status();  // present but corrupt or unsupported: say so now
    }
    m.description = dir;
  }
  if (!src.mmap) LLM_RETURN_IF_ERROR(CopyMappedWeights(m.config, &m.weights, pool));
  if (m.tokenizer && m.tokenizer->vocab_size() > m.config.vocab_size) {
    return InvalidArgument(m.description + ": tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                           " tokens but the model's vocab_size is " + std::to_string(m.config.vocab_size));
  }
  m.load_time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return m;
}

}  // namespace llm
