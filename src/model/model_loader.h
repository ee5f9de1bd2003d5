// From "where is the model" to a runnable model: resolves a checkpoint
// directory or a random-weight architecture, loads config, weights and
// tokenizer, and records what was loaded for the results file.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/status.h"
#include "io/llama_config.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

namespace llm {

class ThreadPool;

enum class LoadFormat { kAuto, kSafetensors, kDummy };

struct ModelSource {
  // Checkpoint directory (safetensors), a .gguf file, or a directory holding
  // exactly one .gguf and no safetensors.
  std::string model_dir;
  LoadFormat format = LoadFormat::kAuto;
  std::string model_config;  // dummy: built-in name or path to a config.json
  DType dtype = DType::kF16;
  uint64_t seed = 0;
  // When > 0: before any weight is allocated, the weights plus the KV cache and
  // activations of a model with this --max-seq-len (kv_on_host: on the CPU) are
  // compared with the memory available, and a shortfall is refused.
  int max_seq_len = 0;
  bool kv_on_host = true;
  int max_sequences = 1;  // a batch: one KV cache per sequence
  // false (--mmap off): weights that would point into the file mapping are
  // copied into memory of the model's own (huge pages), as llama-bench -mmp 0.
  // (The CLI's default, --mmap auto, is off on the CPU and on for CUDA.)
  bool mmap = true;
};

// Memory this process can still take: MemAvailable of /proc/meminfo, lowered to
// the cgroup's memory.max minus its usage when a limit is set; 0 when unknown.
uint64_t AvailableMemoryBytes();
// The same with every path under `root` (tests give a fake /proc and /sys).
uint64_t AvailableMemoryBytesUnder(const std::string& root);
// Refuses `need` bytes (`what` lists the parts) beyond `available` with the
// figures and `hint` (what to change); available 0 = unknown, nothing is refused.
Status CheckMemoryBudget(uint64_t need, uint64_t available, const std::string& what,
                         const std::string& hint = "lower --max-seq-len, use --dtype bfloat16 or float16, or a smaller model");

struct LoadedModel {
  LlamaConfig config;
  ModelWeights weights;
  // Null when the directory has none; then only token-id workloads (synthetic
  // prompts) can run, and tokenizer_status says why text cannot.
  std::unique_ptr<Tokenizer> tokenizer;
  Status tokenizer_status;
  std::string description;  // "dummy:tinyllama-1.1b", the directory or the .gguf file
  double load_time_s = 0;
  std::string format;       // "safetensors", "gguf" or "dummy"
  // GGUF: tensor count per ggml type as stored in the file ("Q8_0": 14, "F32": 5).
  std::map<std::string, int> tensor_types;
  // GGUF with quantized tensors: how they were turned into --dtype ("" otherwise).
  std::string load_note;
};

Result<LoadedModel> LoadModel(const ModelSource& source, ThreadPool* pool);

}  // namespace llm
