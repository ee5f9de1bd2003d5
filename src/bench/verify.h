// --verify: before timing, the first greedy tokens of the configuration under
// test are compared with a float32 run of the same model on the CPU, so a
// fast but wrong configuration (dtype, kernels, device) cannot pass silently.
#pragma once

#include <vector>

#include "core/status.h"
#include "model/llama_model.h"
#include "model/model_loader.h"

namespace llm {

class ThreadPool;

struct VerifyResult {
  int compared = 0;
  int agreeing_prefix = 0;  // tokens identical before the first mismatch
  std::vector<int32_t> reference_ids, tested_ids;
};

// Greedy tokens of a float32 CPU run of `source` (loaded, run and freed
// before the tested model is built, so both never sit in memory together).
Result<std::vector<int32_t>> Float32ReferenceTokens(ModelSource source, const std::vector<int32_t>& prompt,
                                                    int num_tokens, int max_seq_len, ThreadPool* pool);
Result<VerifyResult> VerifyModel(LlamaModel& model, const std::vector<int32_t>& prompt,
                                 const std::vector<int32_t>& reference_ids);

}  // namespace llm
