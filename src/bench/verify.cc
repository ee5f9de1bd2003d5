#include "bench/verify.h"

#include "model/generate.h"

namespace llm {

namespace {
GenerationOptions GreedyFor(int n) {
  GenerationOptions go;
  go.max_new_tokens = n;
  go.ignore_eos = true;
  return go;
}
}  // namespace

Result<std::vector<int32_t>> Float32ReferenceTokens(ModelSource source, const std::vector<int32_t>& prompt,
                                                    int num_tokens, int max_seq_len, ThreadPool* pool) {
  source.dtype = DType::kF32;
  // Read from the file mapping whatever --mmap says: the tested model is
  // loaded beside it, and page-cache pages can be reclaimed where a copy cannot.
  source.mmap = true;
  LLM_ASSIGN_OR_RETURN(LoadedModel lm, LoadModel(source, pool));
  auto backend = MakeCpuBackend(pool);
  ModelOptions mo;
  mo.max_seq_len = max_seq_len;
  LLM_ASSIGN_OR_RETURN(auto model, LlamaModel::Create(lm.config, std::move(lm.weights), backend.get(), mo));
  LLM_ASSIGN_OR_RETURN(GenerationResult g, Generate(*model, prompt, GreedyFor(num_tokens)));
  return g.tokens;
}

Result<VerifyResult> VerifyModel(LlamaModel& model, const std::vector<int32_t>& prompt,
                                 const std::vector<int32_t>& reference_ids) {
  LLM_ASSIGN_OR_RETURN(GenerationResult g, Generate(model, prompt, GreedyFor(static_cast<int>(reference_ids.size()))));
  VerifyResult v;
  v.reference_ids = reference_ids;
  v.tested_ids = g.tokens;
  v.compared = static_cast<int>(reference_ids.size());
  while (v.agreeing_prefix < v.compared && v.agreeing_prefix < static_cast<int>(g.tokens.size()) &&
         g.tokens[v.agreeing_prefix] == reference_ids[v.agreeing_prefix]) {
    ++v.agreeing_prefix;
  }
  return v;
}

}  // namespace llm
