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

// Runs the prompt then decodes. The model's cache is reset first.
// `on_token` (optional) sees each id as it is produced, for streaming output.
Result<GenerationResult> Generate(LlamaModel& model, const std::vector<int32_t>& prompt,
                                  const GenerationOptions& options,
                                  const std::function<void(int32_t)>& on_token = nullptr);

}  // namespace llm
