#include "model/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace llm {

double DecodeTokensPerSecond(const GenerationResult& g) {
  double s = 0;
  for (double t : g.token_latencies_s) s += t;
  return s > 0 ? g.token_latencies_s.size() / s : 0;
}

int BatchGenerationResult::GeneratedTokens() const {
  int n = 0;
  for (const GenerationResult& g : sequences) n += static_cast<int>(g.tokens.size());
  return n;
}

double BatchGenerationResult::DecodeSeconds() const {
  double s = 0;
  for (double t : step_latencies_s) s += t;
  return s;
}

Result<GenerationResult> Generate(LlamaModel& model, const std::vector<int32_t>& prompt,
                                  const GenerationOptions& options, const std::function<void(int32_t)>& on_token) {
  LLM_ASSIGN_OR_RETURN(BatchGenerationResult b, GenerateBatch(model, {prompt}, options, false, on_token));
  GenerationResult r = std::move(b.sequences[0]);
  r.total_s = b.total_s;
  return r;
}

Result<BatchGenerationResult> GenerateBatch(LlamaModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                            const GenerationOptions& options, bool shared_prompt,
                                            const std::function<void(int32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const int B = static_cast<int>(prompts.size());
  if (B < 1 || B > model.max_sequences()) {
    return InvalidArgument("a batch of " + std::to_string(B) + " sequences does not fit the model's " +
                           std::to_string(model.max_sequences()));
  }
  for (const std::vector<int32_t>& prompt : prompts) {
    if (prompt.empty()) return InvalidArgument("the prompt has no tokens");
    if (static_cast<int>(prompt.size()) > model.max_seq_len()) {
      return InvalidArgument("prompt of " + std::to_string(prompt.size()) + " tokens is longer than --max-seq-len " +
                             std::to_string(model.max_seq_len()) + " (raise --max-seq-len or shorten the prompt)");
    }
    if (shared_prompt && prompt != prompts[0]) return InvalidArgument("a shared prompt must be the same for every sequence");
  }
  BatchGenerationResult batch;
  batch.sequences.resize(B);
  std::vector<Sampler> samplers;
  for (int i = 0; i < B; ++i) {
    // At most one token per free cache position (plus the last, never fed back):
    // --max-gen-len 2147483647 reserves no more than the cache allows.
    const size_t most = std::min<size_t>(std::max(0, options.max_new_tokens),
                                         static_cast<size_t>(model.max_seq_len()) - prompts[i].size() + 1);
    batch.sequences[i].tokens.reserve(most);
    batch.sequences[i].token_latencies_s.reserve(most);
    batch.sequences[i].stop_reason = "max_gen_len";
    SamplingOptions so = options.sampling;
    so.seed += static_cast<uint64_t>(i);
    samplers.emplace_back(so);
  }
  batch.step_latencies_s.reserve(options.max_new_tokens > 0 ? options.max_new_tokens : 0);
  const int vocab = model.config().vocab_size;
  // Greedy picks the token where the logits are (on a GPU: only the id moves).
  const bool greedy = options.sampling.temperature <= 0.0f;
  // The token of sequence seq from the logits of batch entry entry.
  auto pick = [&](int seq, int entry) -> Result<int32_t> {
    if (greedy) return model.GreedyToken(entry);
    return samplers[seq].Sample(model.batch_logits(entry), vocab);
  };
  auto is_eos = [&](int32_t id) {
    return std::find(options.eos_ids.begin(), options.eos_ids.end(), id) != options.eos_ids.end();
  };
  model.Reset();
  Profiler* prof = model.profiler();
  const OpCost sampling_cost = ElementwiseCost(static_cast<int64_t>(vocab) * B, 1, 1);  // one pass over each row
  auto kv_used = [&] {
    if (prof) prof->AddCounter("kv_cache_used_bytes", static_cast<int64_t>(model.kv_cache_used_bytes()));
  };
  std::vector<int32_t> next(B);
  std::vector<int> live;  // sequences still generating, in order
  const Clock::time_point start = Clock::now();
  if (options.max_new_tokens > 0) {
    {
      if (prof) prof->set_step(-1);
      LLM_PROFILE(prof, Op::kPrefill, -1);
      std::vector<SequenceTokens> entries;
      for (int i = 0; i < (shared_prompt ? 1 : B); ++i) {
        entries.push_back(SequenceTokens{i, prompts[i].data(), static_cast<int>(prompts[i].size())});
        batch.prefill_tokens += static_cast<int>(prompts[i].size());
      }
      LLM_RETURN_IF_ERROR(model.ForwardBatch(entries));
      for (int i = 1; shared_prompt && i < B; ++i) LLM_RETURN_IF_ERROR(model.CopySequence(0, i));
      LLM_PROFILE(prof, Op::kSampling, -1, sampling_cost);
      for (int i = 0; i < B; ++i) {
        LLM_ASSIGN_OR_RETURN(next[i], pick(i, shared_prompt ? 0 : i));
      }
    }
    kv_used();
    Clock::time_point last = Clock::now();
    batch.ttft_s = seconds(last - start);
    for (int i = 0; i < B; ++i) live.push_back(i);
    std::vector<SequenceTokens> entries;
    for (;;) {
      // Each live sequence takes its token, then leaves the batch if it is done.
      std::vector<int> still;
      for (int i : live) {
        GenerationResult& g = batch.sequences[i];
        g.tokens.push_back(next[i]);
        if (on_token) on_token(next[i]);
        if (!options.ignore_eos && is_eos(next[i])) { g.stop_reason = "eos"; continue; }
        if (static_cast<int>(g.tokens.size()) >= options.max_new_tokens) continue;
        if (model.position(i) >= model.max_seq_len()) { g.stop_reason = "max_seq_len"; continue; }
        still.push_back(i);
      }
      live = std::move(still);
      if (live.empty()) break;
      {
        const int step = static_cast<int>(batch.step_latencies_s.size());
        if (prof) prof->set_step(step);
        if (prof && options.profile_step) prof->set_active(options.profile_step(step));
        LLM_PROFILE(prof, Op::kDecodeStep, -1);
        entries.clear();
        for (int i : live) entries.push_back(SequenceTokens{i, &next[i], 1});
        LLM_RETURN_IF_ERROR(model.ForwardBatch(entries));
        LLM_PROFILE(prof, Op::kSampling, -1, ElementwiseCost(static_cast<int64_t>(vocab) * live.size(), 1, 1));
        for (size_t e = 0; e < live.size(); ++e) {
          LLM_ASSIGN_OR_RETURN(next[live[e]], pick(live[e], static_cast<int>(e)));
        }
      }
      kv_used();
      const Clock::time_point now = Clock::now();
      const double latency = seconds(now - last);
      batch.step_latencies_s.push_back(latency);
      batch.step_sequences.push_back(static_cast<int>(live.size()));
      for (int i : live) batch.sequences[i].token_latencies_s.push_back(latency);
      last = now;
    }
  }
  batch.total_s = seconds(Clock::now() - start);
  for (GenerationResult& g : batch.sequences) {
    g.ttft_s = batch.ttft_s;
    g.total_s = batch.total_s;
  }
  // Checked after the clock stops: NaN/Inf weights (or activations overflowing)
  // make every logit NaN from the first pass on, and greedy would pick token 0
  // forever; that is a failed run, not a benchmark result.
  if (options.max_new_tokens > 0) {
    const float* logits = model.batch_logits(0);
    for (int i = 0; i < vocab; ++i) {
      if (!std::isfinite(logits[i])) {
        const std::string which = DescribeNonFiniteWeight(model.config(), model.weights());
        return InvalidArgument("the model computed non-finite logits (" + std::string(std::isnan(logits[i]) ? "NaN" : "Inf") +
                               " at token id " + std::to_string(i) + "): " +
                               (which.empty() ? "no weight holds NaN or Inf, so an activation overflowed" : which));
      }
    }
  }
  return batch;
}

}  // namespace llm
