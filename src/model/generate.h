// Autoregressive generation with timing of every phase: prefill (time to
// first token) and each decode step.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/llama_model.h"
#include "model/sampler.h"

namespace llm {

struct GenerationOptions {
  int max_new_tokens = 100;
  bool ignore_eos = false;
  std::vector<int> eos_ids;
  SamplingOptions sampling;
  // With a profiler on the model: whether to record decode step N (a schedule
  // like torch.profiler's wait/warmup/active). Unset = record every step.
  std::function<bool(int step)> profile_step;
};

struct GenerationResult {
  std::vector<int32_t> tokens;            // generated ids, prompt excluded
  double ttft_s = 0;                      // prompt in -> first token out (prefill + sampling)
  std::vector<double> token_latencies_s;  // per decode step, tokens 2..n
  double total_s = 0;                     // whole generation, prefill included
  std::string stop_reason;                // "eos", "max_gen_len", "max_seq_len"
};

// Decode speed: tokens after the first (which prefill produced) over their time.
double DecodeTokensPerSecond(const GenerationResult& g);

// A static batch: B sequences prefilled together, then decoded together, one
// token per live sequence per step (a sequence that stops leaves the batch).
struct BatchGenerationResult {
  // Per sequence: its tokens and stop reason; ttft_s is the batch's, and
  // token_latencies_s are the steps it took part in.
  std::vector<GenerationResult> sequences;
  double ttft_s = 0;                      // all prompts in -> every first token out
  std::vector<double> step_latencies_s;   // each decode step of the batch
  std::vector<int> step_sequences;        // sequences decoded by each step
  double total_s = 0;
  int prefill_tokens = 0;                 // prompt tokens run (a shared prompt once)
  int GeneratedTokens() const;            // over all sequences
  double DecodeSeconds() const;           // sum of the step latencies
};

// Runs the prompt then decodes. The model's cache is reset first.
// `on_token` (optional) sees each id as it is produced, for streaming output.
Result<GenerationResult> Generate(LlamaModel& model, const std::vector<int32_t>& prompt,
                                  const GenerationOptions& options,
                                  const std::function<void(int32_t)>& on_token = nullptr);

// Sequence i runs prompts[i] (at most model.max_sequences() of them). With
// `shared_prompt` every prompt must be the same: it is prefilled once and its
// KV rows copied to the other sequences (llama-batched-bench's -pps).
// Sampling: sequence i draws from its own generator, seeded seed + i.
Result<BatchGenerationResult> GenerateBatch(LlamaModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                            const GenerationOptions& options, bool shared_prompt = false,
                                            const std::function<void(int32_t)>& on_token = nullptr);

}  // namespace llm
