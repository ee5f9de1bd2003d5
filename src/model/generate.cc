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

Result<GenerationResult> Generate(LlamaModel& model, const std::vector<int32_t>& prompt,
                                  const GenerationOptions& options, const std::function<void(int32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  if (prompt.empty()) return InvalidArgument("the prompt has no tokens");
  if (static_cast<int>(prompt.size()) > model.max_seq_len()) {
    return InvalidArgument("prompt of " + std::to_string(prompt.size()) + " tokens is longer than --max-seq-len " +
                           std::to_string(model.max_seq_len()) + " (raise --max-seq-len or shorten the prompt)");
  }
  GenerationResult r;
  // At most one token per free cache position (plus the last, never fed back):
  // --max-gen-len 2147483647 reserves no more than the cache allows.
  const size_t most = std::min<size_t>(std::max(0, options.max_new_tokens),
                                       static_cast<size_t>(model.max_seq_len()) - prompt.size() + 1);
  r.token_latencies_s.reserve(most);
  r.tokens.reserve(most);
  Sampler sampler(options.sampling);
  const int vocab = model.config().vocab_size;
  // Greedy picks the token where the logits are (on a GPU: only the id moves).
  const bool greedy = options.sampling.temperature <= 0.0f;
  auto pick = [&]() -> Result<int32_t> {
    if (greedy) return model.GreedyToken();
    return sampler.Sample(model.last_logits(), vocab);
  };
  auto is_eos = [&](int32_t id) {
    return std::find(options.eos_ids.begin(), options.eos_ids.end(), id) != options.eos_ids.end();
  };
  model.Reset();
  Profiler* prof = model.profiler();
  const OpCost sampling_cost = ElementwiseCost(vocab, 1, 1);  // one pass over the logits
  auto kv_used = [&] {
    if (prof) prof->AddCounter("kv_cache_used_bytes", static_cast<int64_t>(model.kv_cache_used_bytes()));
  };
  r.stop_reason = "max_gen_len";
  const Clock::time_point start = Clock::now();
  if (options.max_new_tokens > 0) {
    int32_t next;
    {
      if (prof) prof->set_step(-1);
      LLM_PROFILE(prof, Op::kPrefill, -1);
      LLM_RETURN_IF_ERROR(model.Forward(prompt.data(), static_cast<int>(prompt.size())));
      LLM_PROFILE(prof, Op::kSampling, -1, sampling_cost);
      LLM_ASSIGN_OR_RETURN(next, pick());
    }
    kv_used();
    Clock::time_point last = Clock::now();
    r.ttft_s = seconds(last - start);
    for (;;) {
      r.tokens.push_back(next);
      if (on_token) on_token(next);
      if (!options.ignore_eos && is_eos(next)) { r.stop_reason = "eos"; break; }
      if (static_cast<int>(r.tokens.size()) >= options.max_new_tokens) break;
      if (model.position() >= model.max_seq_len()) { r.stop_reason = "max_seq_len"; break; }
      {
        const int step = static_cast<int>(r.tokens.size()) - 1;
        if (prof) prof->set_step(step);
        if (prof && options.profile_step) prof->set_active(options.profile_step(step));
        LLM_PROFILE(prof, Op::kDecodeStep, -1);
        LLM_RETURN_IF_ERROR(model.Forward(&next, 1));
        LLM_PROFILE(prof, Op::kSampling, -1, sampling_cost);
        LLM_ASSIGN_OR_RETURN(next, pick());
      }
      kv_used();
      const Clock::time_point now = Clock::now();
      r.token_latencies_s.push_back(seconds(now - last));
      last = now;
    }
  }
  r.total_s = seconds(Clock::now() - start);
  // Checked after the clock stops: NaN/Inf weights (or activations overflowing)
  // make every logit NaN from the first pass on, and greedy would pick token 0
  // forever; that is a failed run, not a benchmark result.
  if (options.max_new_tokens > 0) {
    const float* logits = model.last_logits();
    for (int i = 0; i < vocab; ++i) {
      if (!std::isfinite(logits[i])) {
        const std::string which = DescribeNonFiniteWeight(model.config(), model.weights());
        return InvalidArgument("the model computed non-finite logits (" + std::string(std::isnan(logits[i]) ? "NaN" : "Inf") +
                               " at token id " + std::to_string(i) + "): " +
                               (which.empty() ? "no weight holds NaN or Inf, so an activation overflowed" : which));
      }
    }
  }
  return r;
}

}  // namespace llm
