#include "model/model_loader.h"

#include <chrono>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
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
Status CheckModelFits(const LlamaConfig& c, const ModelSource& src) {
  if (src.max_seq_len <= 0) return OkStatus();
  const uint64_t params = static_cast<uint64_t>(c.NumParameters());
  // Quantized: bytes of the blocks (per 256 elements) plus the float norms, roughly.
  const uint64_t weights = IsQuantized(src.dtype) ? params / 256 * DTypeRowBytes(src.dtype, 256)
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
  if (src.format == LoadFormat::kDummy) {
    LLM_ASSIGN_OR_RETURN(m.config, LoadDummyConfig(src.model_config));
    LLM_RETURN_IF_ERROR(CheckModelFits(m.config, src));
    LLM_ASSIGN_OR_RETURN(m.weights, MakeDummyWeights(m.config, src.dtype, src.seed, pool));
    m.description = "dummy:" + src.model_config;
    if (m.config.vocab_size >= MakeByteTokenizer()->vocab_size()) {
      m.tokenizer = MakeByteTokenizer();
    } else {
      m.tokenizer_status = NotFound(m.description + ": vocab_size " + std::to_string(m.config.vocab_size) +
                                    " is too small for the built-in byte-level tokenizer (needs 259)");
    }
  } else {
    const std::string& dir = src.model_dir;
    if (!IsDirectory(dir)) return NotFound(dir + ": model directory not found");
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
  if (m.tokenizer && m.tokenizer->vocab_size() > m.config.vocab_size) {
    return InvalidArgument(m.description + ": tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                           " tokens but the model's vocab_size is " + std::to_string(m.config.vocab_size));
  }
  m.load_time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return m;
}

}  // namespace llm
