// speed_benchmark: the command-line front end. Parses flags, resolves the
// model, runs the benchmark and writes the results. Every failure becomes one
// line on stderr and exit status 2; nothing is left half-written.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <set>
#include <sstream>

#include "bench/calibration.h"
#include "bench/html_report.h"  // issue17
#include "bench/profile_run.h"
#include "bench/report.h"
#include "bench/runner.h"
#include "kernels/cpu/amx/amx_gemm.h"
#include "bench/verify.h"
#include "cli/compare_cli.h"  // issue17
#include "cli/prompts.h"
#include "cuda/cuda_engine.h"
#include "hub/hub.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/ops.h"
#include "model/llama_model.h"
#include "model/model_loader.h"

namespace llm {
namespace {

constexpr int kExitBadInput = 2;

struct Flags {
  std::string model_path;
  std::string model_name = "meta-llama/Llama-2-7b-hf";
  std::string revision = "main";
  bool offline = false;
  std::string device = "auto";
  std::string dtype = "float16";
  int max_seq_len = 512;
  int max_gen_len = 100;
  std::string output_dir = "./benchmark_results";
  bool profile = false;
  std::vector<std::string> prompts;
  std::string prompt_file;
  std::vector<int> prompt_lengths;
  std::vector<int> gen_lengths;
  std::vector<int> depths;
  bool ignore_eos = false;
  int batch_size = 1;
  std::vector<int> batch_sizes;
  bool shared_prompt = false;
  std::string load_format = "auto";
  std::string model_config;
  uint64_t seed = 0;
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  int threads = 0;
  int warmup = 1;
  int repetitions = 3;
  bool quiet = false;
  std::string format = "table";
  std::string report;  // issue17: --report html
  std::string kernels = "cpu";
  std::string amx = "auto";
  std::string bf16_dots = "auto";
  std::string int8_dot = "auto";
  std::string decode_x = "auto";
  std::string repack = "auto";
  std::string mmap = "auto";
  bool verify = false;
  std::string profile_steps;
  bool profile_overhead = false;
  bool calibrate = false;
  bool roof_probe = false;
  bool no_cuda_graph = false;
  bool measure_gpu_bandwidth = false;
};

int Fail(const Status& s) {
  // One line whatever the message quotes (a path or flag value with a newline).
  std::string line;
  for (unsigned char c : s.message()) {
    if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof(b), "\\x%02x", c);
      line += b;
    } else {
      line += static_cast<char>(c);
    }
  }
  std::fprintf(stderr, "error: %s\n", line.c_str());
  return kExitBadInput;
}

Status ValidateFlags(const Flags& f) {
  auto bad = [](const std::string& m) { return InvalidArgument(m + " (see --help)"); };
  DType dt;
  if (!ParseWeightDType(f.dtype, &dt) || (IsQuantized(dt) && dt != DType::kQ8_0 && dt != DType::kQ4_0)) {
    return bad("--dtype '" + f.dtype + "' is not one of float32, float16, bfloat16, q8_0, q4_0");
  }
  if (f.device != "auto" && f.device != "cpu" && f.device != "cuda") return bad("--device must be auto, cpu or cuda");
  if (f.max_seq_len < 1) return bad("--max-seq-len must be at least 1, got " + std::to_string(f.max_seq_len));
  if (f.max_gen_len < 1) return bad("--max-gen-len must be at least 1, got " + std::to_string(f.max_gen_len));
  // Upper bounds keep every count and product of counts inside 64-bit (and
  // runs and token counts inside int) arithmetic; real runs are far below them.
  constexpr int kMaxRuns = 1000000;
  if (f.warmup < 0 || f.warmup > kMaxRuns) return bad("--warmup must be 0 to " + std::to_string(kMaxRuns));
  if (f.repetitions < 1 || f.repetitions > kMaxRuns) {
    return bad("--repetitions must be 1 to " + std::to_string(kMaxRuns));
  }
  if (f.threads < 0) return bad("--threads must be positive (0 = all available)");
  // NaN fails every comparison, so the test is written to let only good values through.
  // Below 1e-3 the logits / temperature overflow float32 on real models.
  if (!(f.temperature == 0 || (f.temperature >= 1e-3f && std::isfinite(f.temperature)))) {
    return bad("--temperature must be 0 (greedy) or a finite value >= 0.001");
  }
  if (f.top_k < 0) return bad("--top-k must be >= 0 (0 = off)");
  if (!(f.top_p > 0 && f.top_p <= 1)) return bad("--top-p must be in (0, 1]");
  if (f.load_format != "auto" && f.load_format != "safetensors" && f.load_format != "dummy") {
    return bad("--load-format must be auto, safetensors or dummy");
  }
  if (f.kernels != "cpu" && f.kernels != "reference") return bad("--kernels must be cpu or reference");
  if (f.amx != "auto" && f.amx != "off") return bad("--amx must be auto or off");
  if (f.bf16_dots != "auto" && f.bf16_dots != "on" && f.bf16_dots != "off") return bad("--bf16-dots must be auto, on or off");
  if (f.int8_dot != "auto" && f.int8_dot != "off") return bad("--int8-dot must be auto or off");
  if (f.decode_x != "auto" && f.decode_x != "float32" && f.decode_x != "float16" && f.decode_x != "bf16") {
    return bad("--decode-x must be auto, float32, float16 or bf16");
  }
  if (f.repack != "auto" && f.repack != "off") return bad("--repack must be auto or off");
  if (f.mmap != "auto" && f.mmap != "on" && f.mmap != "off") return bad("--mmap must be auto, on or off");
  const std::set<std::string> formats = {"table", "md", "csv", "json", "jsonl", "llama-bench-jsonl", "sql"};  // issue17
  if (!formats.count(f.format)) return bad("--format must be table, md, csv, json, jsonl, llama-bench-jsonl or sql");
  if (!f.report.empty() && f.report != "html") return bad("--report must be html");  // issue17
  for (int v : f.prompt_lengths) if (v < 1) return bad("--prompt-lengths values must be >= 1");
  for (int v : f.gen_lengths) if (v < 1) return bad("--gen-lengths values must be >= 1");
  for (int v : f.depths) if (v < 0) return bad("--depths values must be >= 0");
  // Each sequence of a batch has its own KV cache: the bound keeps B x cache in 64 bits and the batch sane.
  constexpr int kMaxBatch = 4096;
  if (f.batch_size < 1 || f.batch_size > kMaxBatch) return bad("--batch-size must be 1 to " + std::to_string(kMaxBatch));
  for (int v : f.batch_sizes) {
    if (v < 1 || v > kMaxBatch) return bad("--batch-sizes values must be 1 to " + std::to_string(kMaxBatch));
  }
  if (!f.batch_sizes.empty() && f.batch_size != 1) return bad("give --batch-size or --batch-sizes, not both");
  // Checked before any synthetic prompt is built (a --depths value makes a
  // prompt of that many tokens), in 64 bits so that no sum wraps.
  for (int n : f.prompt_lengths) {
    if (n > f.max_seq_len) {
      return bad("--prompt-lengths " + std::to_string(n) + " is longer than --max-seq-len " + std::to_string(f.max_seq_len));
    }
  }
  for (int g : f.gen_lengths) {
    for (int d : f.depths.empty() ? std::vector<int>{0} : f.depths) {
      const int64_t need = static_cast<int64_t>(std::max(1, d)) + g;
      if (need > f.max_seq_len) {
        return bad("tg" + std::to_string(g) + (d > 0 ? " @ d" + std::to_string(d) : "") + " needs " +
                   std::to_string(need) + " positions but --max-seq-len is " + std::to_string(f.max_seq_len));
      }
    }
  }
  return OkStatus();
}

// Creates the output directory and proves it writable before any work is done.
Status PrepareOutputDir(const std::string& dir) {
  if (!MakeDirectories(dir).ok()) return IoError("--output-dir " + dir + ": cannot create the directory");
  if (::access(dir.c_str(), W_OK) != 0) return IoError("--output-dir " + dir + ": directory is not writable");
  // Temporaries of runs killed while writing their outputs.
  RemoveStaleTemporaries(dir, {"benchmark_results.json", "profiler_trace.json", "profiler_stats.txt",
                               "profiler_stats.json"});
  return OkStatus();
}

// --model-path, then $LLAMA_MODEL_PATH, then --model-name in the HF cache.
Result<ModelSource> ResolveModel(const Flags& f, DType dtype, std::string* how) {
  ModelSource src;
  src.dtype = dtype;
  src.seed = f.seed;
  if (f.load_format == "dummy") {
    src.format = LoadFormat::kDummy;
    src.model_config = f.model_config;
    *how = "random weights (--load-format dummy)";
    return src;
  }
  src.format = f.load_format == "safetensors" ? LoadFormat::kSafetensors : LoadFormat::kAuto;
  if (!f.model_path.empty()) {
    src.model_dir = f.model_path;
    *how = "--model-path";
    return src;
  }
  if (const char* env = std::getenv("LLAMA_MODEL_PATH"); env != nullptr && *env != '\0') {
    src.model_dir = env;
    *how = "$LLAMA_MODEL_PATH";
    return src;
  }
  // huggingface_hub reads it as an int; a value that is not one is an error, not one second.
  if (const char* t = std::getenv("HF_HUB_DOWNLOAD_TIMEOUT"); t != nullptr && *t != '\0') {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(t, &end, 10);
    if (errno != 0 || end == t || *end != '\0' || v < 1 || v > 86400) {
      return InvalidArgument("HF_HUB_DOWNLOAD_TIMEOUT='" + std::string(t) + "' must be a whole number of seconds, 1 to 86400");
    }
  }
  HubOptions hub = HubOptionsFromEnvironment();
  hub.offline = hub.offline || f.offline;
  hub.progress = hub.progress && !f.quiet;
  auto snapshot = ResolveHubModel(f.model_name, f.revision, hub);
  if (snapshot.ok()) {
    src.model_dir = snapshot.value();
    *how = "--model-name " + f.model_name + " (Hugging Face cache " + hub.cache_dir + ")";
    return src;
  }
  return Status(snapshot.status().code(),
                "no model: " + snapshot.status().message() +
                    ". Give one of: --model-path DIR; LLAMA_MODEL_PATH=DIR; --model-name ORG/NAME (from the Hugging Face "
                    "cache or hub); or --load-format dummy --model-config tinyllama-1.1b for random weights");
}

Result<std::vector<std::string>> ReadPromptFile(const std::string& path) {
  auto text = ReadTextFile(path);  // a FIFO or directory is an error, not a hang
  if (!text.ok()) return Status(text.status().code(), "--prompt-file " + text.status().message());
  std::istringstream in(text.value());
  std::vector<std::string> prompts;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) prompts.push_back(line);
  }
  if (prompts.empty()) return InvalidArgument("--prompt-file " + path + ": no prompts (one per line)");
  return prompts;
}

// Synthetic prompt of exactly n tokens: BOS then ids drawn from the vocabulary
// (seeded), as llama-bench does for pp tests.
std::vector<int32_t> SyntheticPrompt(int n, int bos, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed + n);
  std::uniform_int_distribution<int> id(3, vocab - 1);
  std::vector<int32_t> p(n);
  p[0] = bos;
  for (int i = 1; i < n; ++i) p[i] = id(rng);
  return p;
}

// Batch sizes to run: --batch-sizes, else --batch-size.
std::vector<int> BatchSizes(const Flags& f) { return f.batch_sizes.empty() ? std::vector<int>{f.batch_size} : f.batch_sizes; }
bool Batched(const Flags& f) { return !f.batch_sizes.empty() || f.batch_size > 1 || f.shared_prompt; }

Result<std::vector<BenchTest>> BuildSingleTests(const Flags& f, const LoadedModel& lm);

// With batch flags: every test once per batch size. Text prompts are repeated
// in each sequence, except that --prompt given B times with --batch-size B
// makes one batch of those B prompts; synthetic tests become
// llama-batched-bench's grid (each ppN x tgM x B, every sequence with its own
// random prompt unless --shared-prompt).
Result<std::vector<BenchTest>> BuildTests(const Flags& f, const LoadedModel& lm) {
  if (!Batched(f)) return BuildSingleTests(f, lm);
  Flags single = f;
  const bool synthetic = !f.prompt_lengths.empty() || !f.gen_lengths.empty() || !f.depths.empty();
  if (synthetic) {
    // The grid: prompts of each ppN (or depth; 1 when neither), then tgM tokens (1 when none).
    single.prompt_lengths.clear();
    single.gen_lengths.clear();
    single.depths.clear();
  }
  LLM_ASSIGN_OR_RETURN(std::vector<BenchTest> texts, synthetic && f.prompts.empty() && f.prompt_file.empty()
                                                         ? Result<std::vector<BenchTest>>(std::vector<BenchTest>{})
                                                         : BuildSingleTests(single, lm));
  const std::vector<int> sizes = BatchSizes(f);
  std::vector<BenchTest> tests;
  if (!f.prompts.empty() && f.prompt_file.empty() && f.batch_sizes.empty() && !f.shared_prompt &&
      static_cast<int>(texts.size()) == f.batch_size) {
    BenchTest t = texts[0];
    t.name = "Batch of " + std::to_string(f.batch_size) + " prompts";
    t.batch_size = f.batch_size;
    for (const BenchTest& one : texts) t.prompts.push_back(one.prompt);
    tests.push_back(std::move(t));
  } else {
    for (const BenchTest& base : texts) {
      for (int b : sizes) {
        BenchTest t = base;
        t.name = base.name + " B=" + std::to_string(b);
        t.batch_size = b;
        t.shared_prompt = f.shared_prompt;
        tests.push_back(std::move(t));
      }
    }
  }
  if (synthetic) {
    const LlamaConfig& cfg = lm.config;
    const int bos = lm.tokenizer && lm.tokenizer->bos_id() >= 0 ? lm.tokenizer->bos_id() : cfg.bos_token_id;
    std::vector<int> pps = f.prompt_lengths;
    if (pps.empty()) for (int d : f.depths) pps.push_back(std::max(1, d));
    if (pps.empty()) pps.push_back(1);
    const std::vector<int> tgs = f.gen_lengths.empty() ? std::vector<int>{1} : f.gen_lengths;
    for (int pp : pps) {
      for (int tg : tgs) {
        if (static_cast<int64_t>(pp) + tg > f.max_seq_len) {
          return InvalidArgument("pp" + std::to_string(pp) + " tg" + std::to_string(tg) + " needs " +
                                 std::to_string(static_cast<int64_t>(pp) + tg) + " positions but --max-seq-len is " +
                                 std::to_string(f.max_seq_len));
        }
        for (int b : sizes) {
          BenchTest t{"pp" + std::to_string(pp) + " tg" + std::to_string(tg) + " B=" + std::to_string(b),
                      SyntheticPrompt(pp, bos, cfg.vocab_size, f.seed), tg, true};
          t.batch_size = b;
          t.shared_prompt = f.shared_prompt;
          // Sequence i's own prompt: a different seed per sequence.
          for (int i = 1; !f.shared_prompt && i < b; ++i) {
            if (t.prompts.empty()) t.prompts.push_back(t.prompt);
            t.prompts.push_back(SyntheticPrompt(pp, bos, cfg.vocab_size, f.seed + 7919 * static_cast<uint64_t>(i)));
          }
          tests.push_back(std::move(t));
        }
      }
    }
  }
  if (tests.empty()) return InvalidArgument("nothing to run");
  return tests;
}

Result<std::vector<BenchTest>> BuildSingleTests(const Flags& f, const LoadedModel& lm) {
  const LlamaConfig& cfg = lm.config;
  std::vector<BenchTest> tests;
  const int bos = lm.tokenizer && lm.tokenizer->bos_id() >= 0 ? lm.tokenizer->bos_id() : cfg.bos_token_id;
  auto check_len = [&](const BenchTest& t) -> Status {
    if (static_cast<int>(t.prompt.size()) > f.max_seq_len) {
      return InvalidArgument(t.name + ": prompt of " + std::to_string(t.prompt.size()) +
                             " tokens is longer than --max-seq-len " + std::to_string(f.max_seq_len) +
                             " (raise --max-seq-len or shorten the prompt)");
    }
    return OkStatus();
  };
  const bool sweep = !f.prompt_lengths.empty() || !f.gen_lengths.empty() || !f.depths.empty();
  std::vector<std::string> texts = f.prompts;
  if (!f.prompt_file.empty()) {
    LLM_ASSIGN_OR_RETURN(auto more, ReadPromptFile(f.prompt_file));
    texts.insert(texts.end(), more.begin(), more.end());
  }
  if (texts.empty() && !sweep) {
    for (const BuiltinPrompt& p : BuiltinPrompts()) texts.push_back(p.text);
  }
  const bool builtin = f.prompts.empty() && f.prompt_file.empty();
  if (!texts.empty() && lm.tokenizer == nullptr) {
    return InvalidArgument(lm.tokenizer_status.message() +
                           "; text prompts need a tokenizer (synthetic --prompt-lengths/--gen-lengths do not)");
  }
  // Ids the tokenizer adds to any text (BOS): part of the lower bound below.
  size_t specials = 0;
  if (!texts.empty()) {
    LLM_ASSIGN_OR_RETURN(std::vector<int32_t> empty, lm.tokenizer->Encode("", /*add_bos=*/true));
    specials = empty.size();
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    BenchTest t;
    t.name = builtin ? BuiltinPrompts()[i].name : "Prompt " + std::to_string(i + 1);
    // Refused before tokenizing when its size alone proves it cannot fit.
    if (const size_t least = lm.tokenizer->MinTokens(texts[i]) + specials; least > static_cast<size_t>(f.max_seq_len)) {
      return InvalidArgument(t.name + ": prompt of " + std::to_string(texts[i].size()) + " bytes is at least " +
                             std::to_string(least) + " tokens, longer than --max-seq-len " +
                             std::to_string(f.max_seq_len) + " (raise --max-seq-len or shorten the prompt)");
    }
    LLM_ASSIGN_OR_RETURN(t.prompt, lm.tokenizer->Encode(texts[i], /*add_bos=*/true));
    t.max_new_tokens = f.max_gen_len;
    t.ignore_eos = f.ignore_eos;
    LLM_RETURN_IF_ERROR(check_len(t));
    tests.push_back(std::move(t));
  }
  // llama-bench style rows: ppN (prompt processing), tgN (generation), tgN @ dD.
  for (int n : f.prompt_lengths) {
    BenchTest t{"pp" + std::to_string(n), SyntheticPrompt(n, bos, cfg.vocab_size, f.seed), 1, true};
    LLM_RETURN_IF_ERROR(check_len(t));
    tests.push_back(std::move(t));
  }
  std::vector<int> depths = f.depths;
  if (depths.empty()) depths.push_back(0);
  for (int g : f.gen_lengths) {
    for (int d : depths) {
      BenchTest t{"tg" + std::to_string(g) + (d > 0 ? " @ d" + std::to_string(d) : ""),
                  SyntheticPrompt(std::max(1, d), bos, cfg.vocab_size, f.seed), g, true};
      if (static_cast<int64_t>(t.prompt.size()) + g > f.max_seq_len) {
        return InvalidArgument(t.name + " needs " + std::to_string(t.prompt.size() + g) +
                               " positions but --max-seq-len is " + std::to_string(f.max_seq_len));
      }
      tests.push_back(std::move(t));
    }
  }
  if (tests.empty()) return InvalidArgument("nothing to run: --depths needs --gen-lengths");
  return tests;
}

// --threads, capped at the CPU threads this process may use: more only
// oversubscribes the cores (1000 threads made a 2-token run take 24 s).
int EffectiveThreads(const Flags& f) {
  const int available = AvailableCpuThreads();
  if (f.threads == 0) return available;
  if (f.threads > available) {
    std::fprintf(stderr, "warning: --threads %d is more than the %d CPU threads available; using %d\n", f.threads,
                 available, available);
    return available;
  }
  return f.threads;
}

int Calibrate(const Flags& f) {
  ThreadPool pool(EffectiveThreads(f));
  const Calibration c = MeasureCalibration(&pool);
  std::printf("read bandwidth: %.2f GB/s (best of 15 passes over 1 GiB: %s)\nfloat32 FMA peak: %.2f GFLOP/s (best of 5)\n"
              "threads: %d\n", c.read_gbps, c.read_ways.c_str(), c.fma_gflops, c.threads);
  if (c.int8_vnni_gops > 0) std::printf("VNNI-INT8 peak: %.2f GOP/s (best of 5)\n", c.int8_vnni_gops);
  if (c.bf16_dot_gflops > 0) {
    std::printf("AVX512-BF16 peak: %.2f GFLOP/s (best of 5; dot products, one thread %.1fx the FMA rate: %s)\n",
                c.bf16_dot_gflops, amx::Bf16DotsOverFma(),
                amx::Bf16DotsOverFma() >= amx::kDotsMinSpeedup ? "bfloat16 prefill uses them where there are no AMX tiles"
                                                               : "not used, FMA is faster");
  } else {
    std::printf("AVX512-BF16: not used (%s)\n", amx::Bf16DotsUnavailableReason());
  }
  if (c.amx_bf16_gflops > 0) {
    std::printf("AMX-BF16 peak: %.2f GFLOP/s (best of 5)\n", c.amx_bf16_gflops);
  } else {
    std::printf("AMX-BF16: not used (%s)\n", amx::AmxUnavailableReason());
  }
  const Calibration kept = StoreCalibration(c);
  std::printf("cached in %s\n", CalibrationCachePath().c_str());
  if (kept.read_gbps > c.read_gbps * 1.1 || kept.fma_gflops > c.fma_gflops * 1.1) {
    std::printf("the cache keeps the best seen on this machine: %.2f GB/s and %.2f GFLOP/s (this run reached %.0f%% and "
                "%.0f%% of them: the machine was busy)\n",
                kept.read_gbps, kept.fma_gflops, 100 * c.read_gbps / kept.read_gbps, 100 * c.fma_gflops / kept.fma_gflops);
  }
  return 0;
}

int Run(const Flags& f) {
  if (Status s = ValidateFlags(f); !s.ok()) return Fail(s);
  if (f.amx == "off") amx::SetAmxEnabled(false);
  if (f.bf16_dots != "auto") amx::SetBf16DotsMode(f.bf16_dots == "on" ? amx::DotsMode::kOn : amx::DotsMode::kOff);
  if (f.int8_dot == "off") SetCpuInt8DotEnabled(false);
  SetCpuDecodeX(f.decode_x == "float32"   ? DecodeX::kFloat32
                : f.decode_x == "float16" ? DecodeX::kFloat16
                : f.decode_x == "bf16"    ? DecodeX::kBf16
                                          : DecodeX::kAuto);
  if (f.repack == "off") SetCpuRepackEnabled(false);
  if (f.calibrate) return Calibrate(f);
  DType dtype;
  ParseWeightDType(f.dtype, &dtype);
  std::string device = f.device;
  if (device == "cuda") {
    if (auto n = CudaDeviceCount(); !n.ok()) {
      return Fail(InvalidArgument("--device cuda: " + n.status().message() + "; use --device cpu"));
    }
    if (f.kernels != "cpu") return Fail(InvalidArgument("--kernels selects CPU kernels; it cannot go with --device cuda"));
  }
  if (device == "auto") {
    auto n = CudaDeviceCount();
    device = n.ok() && f.kernels == "cpu" ? "cuda" : "cpu";
    if (!f.quiet) {
      std::fprintf(stderr, "device: auto -> %s%s\n", device.c_str(),
                   n.ok() ? "" : (" (" + n.status().message() + ")").c_str());
    }
  }
  if (f.roof_probe && device == "cuda") {
    return Fail(InvalidArgument("--roof-probe measures the CPU's memory; decode on --device cuda reads the GPU's"));
  }
  ProfileSchedule schedule;
  if (!f.profile_steps.empty()) {
    auto sch = ParseProfileSchedule(f.profile_steps);
    if (!sch.ok()) return Fail(sch.status());
    schedule = sch.value();
  }
  if (Status s = PrepareOutputDir(f.output_dir); !s.ok()) return Fail(s);

  std::string how;
  auto source = ResolveModel(f, dtype, &how);
  if (!source.ok()) return Fail(source.status());
  // Weights, KV cache and activations are checked against the memory available
  // before any of them is allocated.
  source.value().max_seq_len = f.max_seq_len;
  source.value().kv_on_host = device != "cuda";
  // --mmap auto: a copy of the model's own on the CPU (decode reads it
  // faster), the file mapping for CUDA (no host copy before the upload).
  source.value().mmap = f.mmap == "on" || (f.mmap == "auto" && device == "cuda");
  const std::vector<int> batch_sizes = BatchSizes(f);
  const int max_batch = *std::max_element(batch_sizes.begin(), batch_sizes.end());
  source.value().max_sequences = max_batch;
  if (device == "cuda" && max_batch > 1) {
    return Fail(Unimplemented("--batch-size above 1 runs on the CPU for now; use --device cpu"));
  }
  const int threads = EffectiveThreads(f);
  ThreadPool pool(threads);
  if (!f.quiet) std::fprintf(stderr, "loading model from %s ...\n", how.c_str());
  auto loaded = LoadModel(source.value(), &pool);
  if (!loaded.ok()) return Fail(loaded.status());
  LoadedModel& lm = loaded.value();
  if (!f.quiet && !lm.load_note.empty()) std::fprintf(stderr, "note: %s\n", lm.load_note.c_str());

  auto tests = BuildTests(f, lm);
  if (!tests.ok()) return Fail(tests.status());
  if (f.profile || f.profile_overhead) {
    // The profiler reserves its event buffers up front: checked now, not after the timed runs.
    size_t bytes = 0;
    for (const bool overhead : {false, true}) {
      if (overhead ? f.profile_overhead : f.profile) {
        bytes = std::max(bytes, ProfileBufferBytes(lm.config, threads, f.max_seq_len, tests.value().front(), schedule,
                                                   overhead));
      }
    }
    if (Status s = CheckMemoryBudget(bytes, AvailableMemoryBytes(), "profiler event buffers",
                                     "lower --max-gen-len or record fewer steps with --profile-steps");
        !s.ok()) {
      return Fail(s);
    }
  }

  // --verify: float32 reference tokens first, so the two models never coexist.
  constexpr int kVerifyTokens = 16;
  std::vector<int32_t> verify_reference;
  if (f.verify) {
    const BenchTest& first = tests.value().front();
    const int n = std::min(kVerifyTokens, std::max(1, f.max_seq_len - static_cast<int>(first.prompt.size())));
    auto ref = Float32ReferenceTokens(source.value(), first.prompt, n, f.max_seq_len, &pool);
    if (!ref.ok()) return Fail(InvalidArgument("--verify: float32 reference run failed: " + ref.status().message()));
    verify_reference = std::move(ref.value());
  }

  std::unique_ptr<KernelBackend> backend;
  ModelOptions mo;
  mo.max_seq_len = f.max_seq_len;
  mo.max_sequences = max_batch;
  Result<std::unique_ptr<LlamaModel>> model = InvalidArgument("no model");
  if (device == "cuda") {
    CudaOptions co;
    co.max_seq_len = f.max_seq_len;
    co.graphs = !f.no_cuda_graph;
    if (RopeDependsOnSequenceLength(lm.config)) {
      return Fail(Unimplemented(std::string(RopeScalingName(lm.config.rope_scaling)) +
                                " rope scaling is not implemented on the GPU; use --device cpu"));
    }
    if (!f.quiet) std::fprintf(stderr, "copying the weights to the GPU ...\n");
    auto engine = MakeCudaEngine(lm.config, lm.weights, co);
    if (!engine.ok()) return Fail(InvalidArgument("--device cuda: " + engine.status().message()));
    model = LlamaModel::CreateOnDevice(lm.config, std::move(lm.weights), std::move(engine.value()), mo);
  } else {
    backend = f.kernels == "reference" ? MakeReferenceBackend() : MakeCpuBackend(&pool);
    model = LlamaModel::Create(lm.config, std::move(lm.weights), backend.get(), mo);
  }
  if (!model.ok()) return Fail(model.status());
  LlamaModel& m = *model.value();

  VerifyResult verified;
  if (f.verify) {
    auto v = VerifyModel(m, tests.value().front().prompt, verify_reference);
    if (!v.ok()) return Fail(v.status());
    verified = std::move(v.value());
    std::fprintf(stderr, "verify: %d of %d greedy tokens of '%s' agree with a float32 CPU run%s\n",
                 verified.agreeing_prefix, verified.compared, tests.value().front().name.c_str(),
                 verified.agreeing_prefix == verified.compared ? "" : " (WARNING: this configuration diverges)");
  }

  BenchOptions bo;
  bo.warmup = f.warmup;
  bo.repetitions = f.repetitions;
  bo.quiet = f.quiet;
  bo.eos_ids = lm.config.eos_token_ids;
  bo.sampling = SamplingOptions{f.temperature, f.top_k, f.top_p, f.seed};
  bo.decode_bytes_per_step = m.weights().DecodeBytesPerToken(lm.config);
  // 256 MiB: well beyond the last-level cache of the CPUs we run on, 9 passes
  // (~0.1 s at 30 GB/s) per reading.
  ReadProbeBuffer read_probe;
  if (f.roof_probe) {
    if (!read_probe.Allocate(&pool, size_t{256} << 20)) {
      return Fail(Internal("--roof-probe: cannot allocate its 256 MiB buffer"));
    }
    bo.read_probe = [&read_probe] { return read_probe.Measure(9); };
  }
  auto results = RunBenchmark(m, lm.tokenizer.get(), tests.value(), bo);
  if (!results.ok()) return Fail(results.status());

  RunInfo info;
  info.model_source = lm.description;
  info.model_name = how.rfind("--model-name", 0) == 0 ? f.model_name : "";
  info.tokenizer = lm.tokenizer ? lm.tokenizer->description() : "none";
  info.model_format = lm.format;
  info.model_tensor_types = lm.tensor_types;
  info.model_load_note = lm.load_note;
  info.config = lm.config;
  info.dtype = DTypeName(dtype);
  info.device = device;
  info.kernels = backend ? backend->name() : "cuda";
  if (DeviceEngine* d = m.device()) {
    const DeviceMemory dm = d->memory();
    info.gpu_name = d->name();
    info.gpu_weight_bytes = dm.weights;
    info.gpu_kv_cache_bytes = dm.kv_cache;
    info.gpu_workspace_bytes = dm.workspace;
    info.gpu_peak_bytes = dm.peak;
    info.gpu_free_bytes = dm.free;
    info.gpu_total_bytes = dm.total;
    info.cuda_graphs = !f.no_cuda_graph;
    if (f.measure_gpu_bandwidth) {
      auto bw = MeasureCudaCopyBandwidth();
      if (bw.ok()) info.gpu_copy_gbps = bw.value();
    }
  }
  info.threads = threads;
  info.max_seq_len = f.max_seq_len;
  info.max_gen_len = f.max_gen_len;
  info.warmup = f.warmup;
  info.repetitions = f.repetitions;
  info.seed = f.seed;
  info.temperature = f.temperature;
  info.top_k = f.top_k;
  info.top_p = f.top_p;
  info.load_time_s = lm.load_time_s;
  info.weight_bytes = bo.decode_bytes_per_step;
  info.weight_bytes_total = m.weights().TotalBytes();
  info.kv_cache_bytes = m.kv_cache_bytes();
  size_t longest = 0;
  for (const auto& r : results.value()) longest = std::max(longest, r.prompt_ids.size() + r.generated_ids.size());
  info.kv_cache_used_bytes = m.KvCacheBytesFor(static_cast<int>(longest));
  info.scratch_bytes = m.scratch_bytes();
  info.repacked_weight_bytes = m.backend() ? m.backend()->prepared_weight_bytes() : 0;
  info.repack_time_s = m.prepare_weights_s();
  info.mmap = source.value().mmap;
  info.peak_rss_bytes = PeakRssBytes();
  info.verify_compared = verified.compared;
  info.verify_agreeing_prefix = verified.agreeing_prefix;
  info.verify_reference_ids = verified.reference_ids;
  info.verify_tested_ids = verified.tested_ids;

  if (f.format == "table") {
    for (const BenchResult& r : results.value()) {
      std::printf("\n--- %s (%zu prompt tokens) ---\n%s\n", r.name.c_str(), r.prompt_ids.size(), r.text.c_str());
    }
    std::printf("%s", FormatSummaryTable(results.value()).c_str());
    std::printf("%s", FormatBatchTable(results.value()).c_str());
    std::printf("%s", FormatDetailTable(results.value(), info).c_str());
  } else {
    std::printf("%s", FormatResults(results.value(), info, f.format).c_str());
  }
  std::fprintf(stderr, "%s", SpreadWarnings(results.value()).c_str());
  OutputFiles outputs(f.output_dir);  // removed unless committed at the end
  // Profiling happens after the timed runs, on the first test, so it never
  // touches the reported timings.
  if (f.profile_overhead) {
    auto o = MeasureProfileOverhead(m, pool, tests.value().front(), bo, std::max(3, f.repetitions));
    if (!o.ok()) return Fail(o.status());
    info.profile_overhead_measured = true;
    info.profile_overhead_pct = o->overhead_pct;
    info.profile_decode_tps_off = o->decode_tps_off;
    info.profile_decode_tps_on = o->decode_tps_on;
    std::printf("\nProfiler overhead on '%s' (median of %d alternating runs each): decode %.2f +- %.2f tok/s without, "
                "%.2f +- %.2f with = %.2f%%\n",
                tests.value().front().name.c_str(), o->runs, o->decode_tps_off, o->stddev_off, o->decode_tps_on,
                o->stddev_on, o->overhead_pct);
  }
  if (f.profile) {
    const std::string header = "llama-speedbench profile: " + lm.description + ", " + info.dtype + ", test '" +
                               tests.value().front().name + "' (" +
                               std::to_string(tests.value().front().prompt.size()) + " prompt tokens)\n" +
                               (device == "cpu" && f.kernels == "cpu" ? "Matmul path: " + CpuMatMulPath(dtype) + "\n" : "");
    std::string quant_paths;  // a GGUF's quantized matrices run on their own path
    for (const auto& [type, count] : lm.tensor_types) {
      DType q;
      if (ParseWeightDType(type, &q) && IsQuantized(q) && device == "cpu" && f.kernels == "cpu") {
        quant_paths += "Matmul path (" + type + "): " + CpuMatMulPath(q) + "\n";
      }
    }
    if (!f.quiet) std::fprintf(stderr, "profiling '%s' ...\n", tests.value().front().name.c_str());
    auto p = RunProfiled(m, pool, tests.value().front(), bo, schedule, &outputs, header + quant_paths);
    if (!p.ok()) return Fail(p.status());
    info.profile_trace = f.output_dir + "/profiler_trace.json";
    info.profile_trace_bytes = p->summary.trace_bytes;
    info.profile_events = p->summary.events;
    if (f.format == "table") {
      const std::string& text = p->stats_text;
      const size_t b = text.find("Bottlenecks");
      std::printf("\n%s", b == std::string::npos ? "" : text.substr(b).c_str());
      std::printf("Profile: %s/profiler_trace.json (%.1f MB), profiler_stats.txt, profiler_stats.json\n",
                  f.output_dir.c_str(), p->summary.trace_bytes / 1e6);
    }
  }
  // Every output is staged (written and fsync'ed under a temporary name) and
  // renamed into place together, so a failure leaves no new file beside old ones.
  const std::string json_path = f.output_dir + "/benchmark_results.json";
  if (Status s = outputs.Add("benchmark_results.json", ResultsJson(results.value(), info)); !s.ok()) return Fail(s);
  if (Status s = outputs.Commit(); !s.ok()) return Fail(s);
  if (!f.quiet) std::fprintf(stderr, "results written to %s\n", json_path.c_str());
  if (f.report == "html") {  // issue17: from the files just written, so `speed_benchmark report DIR` gives the same page
    auto html = WriteRunReport(f.output_dir);
    if (!html.ok()) return Fail(html.status());
    if (!f.quiet) std::fprintf(stderr, "report written to %s\n", html.value().c_str());
  }
  return 0;
}

}  // namespace
}  // namespace llm

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "compare") return llm::RunCompareCommand(argc - 1, argv + 1);  // issue17
  if (argc >= 2 && std::string(argv[1]) == "report") return llm::RunReportCommand(argc - 1, argv + 1);    // issue17
  llm::Flags f;
  CLI::App app{"llama-speedbench: how fast a Llama model generates text, and where the time goes.\n"
               "Example: speed_benchmark --load-format dummy --model-config tinyllama-1.1b --device cpu "
               "--dtype bfloat16 --max-gen-len 32"};
  app.footer("Subcommands: speed_benchmark compare BASE.json NEW.json [--format table|md|csv|json] [--fail-above PCT] "
             "[--report html]; speed_benchmark report DIR (writes DIR/report.html). See 'compare --help'.");  // issue17
  app.option_defaults()->always_capture_default();
  app.add_option("--model-path", f.model_path, "Hugging Face checkpoint directory (config.json + safetensors)");
  app.add_option("--model-name", f.model_name, "Hub model id, looked up in the Hugging Face cache");
  app.add_option("--revision", f.revision, "Revision of --model-name");
  app.add_flag("--offline", f.offline, "Use the Hugging Face cache only (as HF_HUB_OFFLINE=1)");
  app.add_option("--device", f.device, "auto | cpu | cuda");
  app.add_option("--dtype", f.dtype,
                 "float32 | float16 | bfloat16 | q8_0 | q4_0 (weights, quantized at load with llama.cpp's rounding; "
                 "arithmetic is float32)");
  app.add_option("--max-seq-len", f.max_seq_len, "KV cache capacity in tokens");
  app.add_option("--max-gen-len", f.max_gen_len, "Most tokens generated per test");
  app.add_option("--output-dir", f.output_dir, "Where benchmark_results.json goes");
  app.add_flag("--profile", f.profile, "Record a profile (profiler_trace.json, profiler_stats.txt)");
  // One value per --prompt, byte for byte: without allow_extra_args(false),
  // CLI11 reads "[a, b]" as a list literal (dropping the brackets of Llama 2's
  // "[INST] ... [/INST]", splitting "[1, 2, 3]", and "[]" swallowing later flags).
  app.add_option("--prompt", f.prompts, "Prompt text; repeatable; replaces the built-in prompts")
      ->allow_extra_args(false);
  app.add_option("--prompt-file", f.prompt_file, "File with one prompt per line");
  app.add_option("--prompt-lengths", f.prompt_lengths, "Synthetic prompt-processing tests, e.g. 128,512")->delimiter(',');
  app.add_option("--gen-lengths", f.gen_lengths, "Synthetic generation tests, e.g. 128")->delimiter(',');
  app.add_option("--depths", f.depths, "KV-cache depths for the generation tests, e.g. 0,1024")->delimiter(',');
  app.add_flag("--ignore-eos", f.ignore_eos, "Keep generating past end-of-sequence");
  app.add_option("--batch-size", f.batch_size,
                 "Sequences generated together (static batch: each its own prompt, position and KV cache)");
  app.add_option("--batch-sizes", f.batch_sizes, "Sweep of batch sizes, e.g. 1,2,4,8,16,32")->delimiter(',');
  app.add_flag("--shared-prompt", f.shared_prompt,
               "One prompt prefilled once, continued by every sequence of the batch (llama-batched-bench -pps)");
  app.add_option("--load-format", f.load_format, "auto | safetensors | dummy (random weights)");
  app.add_option("--model-config", f.model_config, "Architecture for dummy weights: built-in name or config.json path");
  app.add_option("--seed", f.seed, "Seed for random weights, synthetic prompts and sampling")
      ->check([](const std::string& v) {  // an unsigned parse would take -1 as 2^64-1
        return v.find('-') == std::string::npos ? std::string() : "--seed must be a non-negative integer";
      });
  app.add_option("--temperature", f.temperature, "0 = greedy");
  app.add_option("--top-k", f.top_k, "0 = off");
  app.add_option("--top-p", f.top_p, "1 = off");
  app.add_option("--threads", f.threads, "CPU threads (0 = all available)");
  app.add_option("--warmup", f.warmup, "Uncounted warm-up runs per test");
  app.add_option("--repetitions", f.repetitions, "Timed runs per test");
  app.add_flag("--quiet", f.quiet, "No progress or informational lines on stderr");
  app.add_option("--format", f.format, "stdout format: table | md | csv | json | jsonl | llama-bench-jsonl | sql");
  app.add_option("--report", f.report, "html: also write report.html (inline SVG charts) beside the results");  // issue17
  app.add_option("--kernels", f.kernels, "cpu (SIMD, threads) | reference (scalar oracle, slow)");
  app.add_option("--amx", f.amx,
                 "auto: bfloat16 prefill on AMX tiles where the CPU and Linux allow | off: FMA only (A/B of the unit)");
  app.add_option("--bf16-dots", f.bf16_dots,
                 "auto: bfloat16 prefill (64+ rows) on AVX512-BF16 dot products where the CPU has no AMX tiles and a "
                 "startup probe measures them 1.3x or more the FMA rate (Zen 4: ~2x; Xeons: ~0.5x) | on: wherever the CPU "
                 "has them | off: FMA (A/B of the unit)");
  app.add_option("--int8-dot", f.int8_dot,
                 "auto: quantized decode quantizes activations to int8 per 32 for integer dot products (AVX-512 VNNI, "
                 "AVX2) where the CPU has them, as llama.cpp does, and so does prefill of matrices repacked for VNNI | off: "
                 "float32 activations (exact to the dequantized weights)");
  app.add_option("--decode-x", f.decode_x,
                 "x of one-row float16/bfloat16 matmuls (decode of one sequence, a prompt's last-row lm_head). "
                 "auto: float16 where that reads faster (AMD CPUs with AVX-512: x in half the L1 beside the weight "
                 "stream) and every |x| <= 65504, else float32 | float32: always | float16: float16 on every CPU where "
                 "|x| fits | bf16: bfloat16 W on AVX512-BF16 dot products with x rounded to bf16 wherever the CPU has "
                 "them, whatever --bf16-dots says, as llama.cpp does (one fixture then exceeds transformers' error by 7%)");
  app.add_option("--repack", f.repack,
                 "auto: Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K matrices get a copy in 16-row groups for the VNNI decode kernel at load "
                 "(like llama.cpp's repack; the weight bytes twice) | off: row-major only");
  app.add_option("--mmap", f.mmap,
                 "auto: off on the CPU, on with --device cuda | off: weights copied at load into one buffer of the "
                 "model's own, on huge pages where THP allows (like llama-bench -mmp 0 / -lm none; decode reads faster: "
                 "Zen 4 TinyLlama F16 1.21x, BF16 1.11x) | on: weights stored as the run uses them are read from the "
                 "file mapping (llama-bench's default -mmp 1; loads faster, no host copy before a CUDA upload)");
  app.add_option("--profile-steps", f.profile_steps,
                 "Decode steps the profiler records: WAIT,WARMUP,ACTIVE (like torch.profiler.schedule) or ACTIVE");
  app.add_flag("--profile-overhead", f.profile_overhead, "Measure decode speed with and without recording");
  app.add_flag("--calibrate", f.calibrate, "Measure this machine's read bandwidth and FMA peak, cache them, and exit");
  app.add_flag("--roof-probe", f.roof_probe,
               "Measure the read bandwidth right before and after each timed repetition (256 MiB buffer, held for the "
               "run and counted in peak RSS); results give decode's weight reads over it (runs[].read_roof_beside)");
  app.add_flag("--no-cuda-graph", f.no_cuda_graph, "--device cuda: launch decode kernels one by one (no graph)");
  app.add_flag("--gpu-bandwidth", f.measure_gpu_bandwidth,
               "--device cuda: measure device-to-device copy bandwidth after the run (gpu.copy_bandwidth_gbps)");
  app.add_flag("--verify", f.verify, "Before timing, compare the first 16 greedy tokens with a float32 CPU run");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s (see --help)\n", e.what());
    return llm::kExitBadInput;
  }
  try {
    return llm::Run(f);
  } catch (const std::exception& e) {  // library code returns Status; this is a last line of defence
    std::fprintf(stderr, "error: internal failure: %s (please report it)\n", e.what());
    return llm::kExitBadInput;
  }
}
