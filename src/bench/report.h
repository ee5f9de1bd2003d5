// Everything the benchmark reports: the SUMMARY block of the original script,
// the latency/memory table, other stdout formats, and benchmark_results.json.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bench/runner.h"
#include "core/status.h"
#include "io/llama_config.h"

namespace llm {

// What the run was: model, settings, machine. Filled by the CLI.
struct RunInfo {
  std::string model_source;   // directory or "dummy:NAME"
  std::string model_name;     // --model-name when resolved through it
  std::string tokenizer;
  // Where the weights came from: "safetensors", "gguf" or "dummy"; for GGUF
  // the tensor count per stored ggml type, and how quantized tensors were
  // turned into --dtype (empty when none).
  std::string model_format;
  std::map<std::string, int> model_tensor_types;
  std::string model_load_note;
  LlamaConfig config;
  std::string dtype;
  std::string device;
  std::string kernels;        // backend name
  int threads = 1;
  int max_seq_len = 0;
  int max_gen_len = 0;
  int warmup = 0;
  int repetitions = 0;
  uint64_t seed = 0;
  double temperature = 0;
  int top_k = 0;
  double top_p = 1;
  double load_time_s = 0;
  // Memory, bytes.
  size_t weight_bytes = 0;        // read per decode step
  size_t weight_bytes_total = 0;  // held
  size_t kv_cache_bytes = 0;      // allocated
  size_t kv_cache_used_bytes = 0; // at the end of the longest run
  size_t scratch_bytes = 0;
  size_t repacked_weight_bytes = 0;
  bool mmap = true;  // --mmap resolved: weights read from the file mapping where stored as used
  double repack_time_s = 0;  // making them, at model creation (after load_time_s)  // the backend's copies of weights in its kernels' layout (--repack)
  size_t peak_rss_bytes = 0;
  // --device cuda: the GPU, its memory by category, its measured copy
  // bandwidth (GB/s, 0 = not measured) and whether decode replays a CUDA graph.
  std::string gpu_name;
  size_t gpu_weight_bytes = 0, gpu_kv_cache_bytes = 0, gpu_workspace_bytes = 0, gpu_peak_bytes = 0;
  size_t gpu_free_bytes = 0, gpu_total_bytes = 0;
  double gpu_copy_gbps = 0;
  bool cuda_graphs = false;
  // --verify outcome; compared == 0 when not asked.
  int verify_compared = 0;
  int verify_agreeing_prefix = 0;
  std::vector<int32_t> verify_reference_ids, verify_tested_ids;
  // --profile / --profile-overhead outcomes; empty / negative when not asked.
  std::string profile_trace;
  size_t profile_trace_bytes = 0;
  size_t profile_events = 0;
  bool profile_overhead_measured = false;  // --profile-overhead (any value, even a noisy one below -100%)
  double profile_overhead_pct = 0;
  double profile_decode_tps_off = 0, profile_decode_tps_on = 0;
};

std::string FormatSummaryTable(const std::vector<BenchResult>& results);
// With any batch above 1: the batch table (llama-batched-bench's columns, per-sequence speed).
std::string FormatBatchTable(const std::vector<BenchResult>& results);
std::string FormatDetailTable(const std::vector<BenchResult>& results, const RunInfo& info);
// Spread warnings (> 5% relative stddev), one line each; empty when none.
std::string SpreadWarnings(const std::vector<BenchResult>& results);
// md | csv | json | jsonl renderings of the per-run figures.
std::string FormatResults(const std::vector<BenchResult>& results, const RunInfo& info, const std::string& format);
std::string ResultsJson(const std::vector<BenchResult>& results, const RunInfo& info);

// Writes via a temporary file in the same directory (fsync'ed) and rename(),
// so a reader never sees a half-written file and a failure leaves nothing behind.
Status WriteFileAtomic(const std::string& path, const std::string& content);

// The output files of one run, made visible together: each is written as
// <name>.tmp.<pid> and fsync'ed by Add(); Commit() checks that every target can
// be replaced, then renames them all. Whatever is not committed is removed
// when the object dies, so a failure (disk full, a target that is a
// directory, an error later in the run) leaves no new file beside old ones.
class OutputFiles {
 public:
  explicit OutputFiles(std::string dir) : dir_(std::move(dir)) {}
  ~OutputFiles();
  OutputFiles(const OutputFiles&) = delete;
  OutputFiles& operator=(const OutputFiles&) = delete;
  Status Add(const std::string& name, const std::string& content);
  Status Commit();
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::pair<std::string, std::string>> staged_;  // (temporary, final path)
};

// Removes <name>.tmp.<pid> files in `dir` (for each of `names`) whose process
// is gone: what a run killed while writing its outputs left behind.
void RemoveStaleTemporaries(const std::string& dir, const std::vector<std::string>& names);

// Machine and build facts for the results file.
std::map<std::string, std::string> SystemInfo();
size_t PeakRssBytes();

constexpr int kResultsSchemaVersion = 1;

}  // namespace llm
