// The benchmark harness: runs each test (a prompt) with warm-up runs that are
// not counted and timed repetitions, and reduces them to medians and spreads.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "bench/stats.h"
#include "core/status.h"
#include "model/generate.h"
#include "model/llama_model.h"
#include "tokenizer/tokenizer.h"

namespace llm {

struct BenchTest {
  BenchTest() = default;
  BenchTest(std::string test_name, std::vector<int32_t> prompt_ids, int new_tokens, bool ignore)
      : name(std::move(test_name)), prompt(std::move(prompt_ids)), max_new_tokens(new_tokens), ignore_eos(ignore) {}
  std::string name;               // "Short prompt", "pp512", ...
  std::vector<int32_t> prompt;    // token ids, BOS included (of sequence 0 in a batch)
  int max_new_tokens = 100;
  bool ignore_eos = false;
  // A static batch of batch_size sequences: prompts[i] is sequence i's (empty:
  // every sequence runs `prompt`). shared_prompt: one prompt, prefilled once,
  // batch_size continuations (llama-batched-bench -pps).
  int batch_size = 1;
  std::vector<std::vector<int32_t>> prompts;
  bool shared_prompt = false;
  std::vector<std::vector<int32_t>> BatchPrompts() const;
};

struct BenchOptions {
  int warmup = 1;
  int repetitions = 3;
  bool quiet = false;
  std::vector<int> eos_ids;
  SamplingOptions sampling;
  // Weight bytes one decode step reads (0: unknown): each repetition's decode
  // tokens/s times it is the weights' read bandwidth.
  size_t decode_bytes_per_step = 0;
  // When set (--roof-probe), the machine's read bandwidth in GB/s, measured
  // right before and right after each timed repetition: a shared machine's
  // bandwidth moves from one minute to the next, so a roof cached or measured
  // minutes away says little about the run.
  std::function<double()> read_probe;
};

struct RepetitionResult {
  double time_s = 0, ttft_s = 0;
  int generated_tokens = 0;  // of sequence 0
  // Per sequence (sequence 0 in a batch): generated tokens / time, prompt
  // tokens of the whole batch / TTFT, decode tokens / decode time.
  double tokens_per_sec = 0, prefill_tokens_per_sec = 0, decode_tokens_per_sec = 0;
  std::vector<double> token_latencies_s;  // inter-token latency of each decode step, in order
  // The whole batch: generated tokens of every sequence over the run's time,
  // and llama-batched-bench's columns (T_PP = TTFT; T_TG = the decode steps;
  // S_TG = tokens those steps produced / T_TG; N_KV = KV positions filled).
  int total_generated_tokens = 0;
  double total_tokens_per_sec = 0;
  int n_kv = 0;
  double t_pp_s = 0, s_pp = 0, t_tg_s = 0, s_tg = 0, t_s = 0, s = 0;
  // Decode's weight reads (GB/s; 0 without decode_bytes_per_step), the probe
  // before and after the repetition (0 without read_probe) and decode's reads
  // over the higher of the two.
  double decode_read_gbps = 0, read_gbps_before = 0, read_gbps_after = 0, decode_of_read_beside = 0;
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
  // Batches (batch_size 1 fills these too): every sequence's ids (last
  // repetition) and the whole batch's figures over the repetitions.
  int batch_size = 1;
  bool shared_prompt = false;
  std::vector<std::vector<int32_t>> sequence_prompt_ids, sequence_generated_ids;
  int pp = 0, tg = 0, n_kv = 0;  // prompt tokens per sequence, tokens generated per sequence
  Stats total_tokens_per_sec, t_pp_s, s_pp, t_tg_s, s_tg, t_s, s;
  Stats decode_read_gbps, read_gbps_before, read_gbps_after, decode_of_read_beside;  // over the repetitions
  bool read_probed = false;  // BenchOptions::read_probe was set: the read_gbps_* figures are readings
  size_t kv_cache_bytes = 0;       // the KV cache of batch_size sequences at --max-seq-len
  size_t kv_cache_used_bytes = 0;  // of the positions they filled (last repetition)
};

// How a test is generated: its lengths, plus the run's stop ids and sampling.
GenerationOptions GenerationOptionsFor(const BenchTest& test, const BenchOptions& options);

// Runs every test; progress on stderr when it is a terminal and not quiet.
// `tokenizer` may be null (synthetic prompts); then no text is decoded.
Result<std::vector<BenchResult>> RunBenchmark(LlamaModel& model, const Tokenizer* tokenizer,
                                              const std::vector<BenchTest>& tests, const BenchOptions& options);

}  // namespace llm
