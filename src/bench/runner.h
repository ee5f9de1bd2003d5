// The benchmark harness: runs each test (a prompt) with warm-up runs that are
// not counted and timed repetitions, and reduces them to medians and spreads.
#pragma once

#include <string>
#include <vector>

#include "bench/stats.h"
#include "core/status.h"
#include "model/generate.h"
#include "model/llama_model.h"
#include "tokenizer/tokenizer.h"

namespace llm {

struct BenchTest {
  std::string name;               // "Short prompt", "pp512", ...
  std::vector<int32_t> prompt;    // token ids, BOS included
  int max_new_tokens = 100;
  bool ignore_eos = false;
};

struct BenchOptions {
  int warmup = 1;
  int repetitions = 3;
  bool quiet = false;
  std::vector<int> eos_ids;
  SamplingOptions sampling;
};

struct RepetitionResult {
  double time_s = 0, ttft_s = 0;
  int generated_tokens = 0;
  double tokens_per_sec = 0, prefill_tokens_per_sec = 0, decode_tokens_per_sec = 0;
  std::vector<double> token_latencies_s;  // inter-token latency of each decode step, in order
};

struct BenchResult {
  std::string name;
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> generated_ids;  // of the last repetition (identical when greedy)
  std::string text;
  std::string stop_reason;
  std::vector<RepetitionResult> reps;
  Stats time_s, ttft_s, tokens_per_sec, prefill_tps, decode_tps, generated_tokens;
  Stats itl_s;  // inter-token latency over all decode steps of all repetitions
};

// How a test is generated: its lengths, plus the run's stop ids and sampling.
GenerationOptions GenerationOptionsFor(const BenchTest& test, const BenchOptions& options);

// Runs every test; progress on stderr when it is a terminal and not quiet.
// `tokenizer` may be null (synthetic prompts); then no text is decoded.
Result<std::vector<BenchResult>> RunBenchmark(LlamaModel& model, const Tokenizer* tokenizer,
                                              const std::vector<BenchTest>& tests, const BenchOptions& options);

}  // namespace llm
