#include "bench/runner.h"

#include <unistd.h>

#include <cstdio>

namespace llm {

namespace {

RepetitionResult Summarize(const GenerationResult& g, size_t prompt_len) {
  RepetitionResult r;
  r.time_s = g.total_s;
  r.ttft_s = g.ttft_s;
  r.generated_tokens = static_cast<int>(g.tokens.size());
  r.tokens_per_sec = g.total_s > 0 ? g.tokens.size() / g.total_s : 0;
  r.prefill_tokens_per_sec = g.ttft_s > 0 ? prompt_len / g.ttft_s : 0;
  double decode_s = 0;
  for (double t : g.token_latencies_s) decode_s += t;
  // Decode speed excludes the first token, which prefill produced.
  r.decode_tokens_per_sec = decode_s > 0 ? g.token_latencies_s.size() / decode_s : 0;
  return r;
}

}  // namespace

Result<std::vector<BenchResult>> RunBenchmark(LlamaModel& model, const Tokenizer* tokenizer,
                                              const std::vector<BenchTest>& tests, const BenchOptions& options) {
  const bool progress = !options.quiet && ::isatty(STDERR_FILENO);
  std::vector<BenchResult> results;
  for (size_t ti = 0; ti < tests.size(); ++ti) {
    const BenchTest& test = tests[ti];
    GenerationOptions gen;
    gen.max_new_tokens = test.max_new_tokens;
    gen.ignore_eos = test.ignore_eos;
    gen.eos_ids = options.eos_ids;
    gen.sampling = options.sampling;
    BenchResult br;
    br.name = test.name;
    br.prompt_ids = test.prompt;
    std::vector<double> itl;
    const int total_runs = options.warmup + options.repetitions;
    for (int run = 0; run < total_runs; ++run) {
      const bool warmup = run < options.warmup;
      if (progress) {
        std::fprintf(stderr, "\r[%zu/%zu] %s: %s %d/%d   ", ti + 1, tests.size(), test.name.c_str(),
                     warmup ? "warm-up" : "repetition", warmup ? run + 1 : run - options.warmup + 1,
                     warmup ? options.warmup : options.repetitions);
      }
      LLM_ASSIGN_OR_RETURN(GenerationResult g, Generate(model, test.prompt, gen));
      if (warmup) continue;
      br.reps.push_back(Summarize(g, test.prompt.size()));
      itl.insert(itl.end(), g.token_latencies_s.begin(), g.token_latencies_s.end());
      br.generated_ids = g.tokens;
      br.stop_reason = g.stop_reason;
    }
    if (progress) std::fprintf(stderr, "\r%*s\r", 60, "");
    if (tokenizer != nullptr) br.text = tokenizer->Decode(br.generated_ids);
    auto collect = [&](auto field) {
      std::vector<double> v;
      for (const auto& r : br.reps) v.push_back(static_cast<double>(r.*field));
      return ComputeStats(v);
    };
    br.time_s = collect(&RepetitionResult::time_s);
    br.ttft_s = collect(&RepetitionResult::ttft_s);
    br.tokens_per_sec = collect(&RepetitionResult::tokens_per_sec);
    br.prefill_tps = collect(&RepetitionResult::prefill_tokens_per_sec);
    br.decode_tps = collect(&RepetitionResult::decode_tokens_per_sec);
    br.generated_tokens = collect(&RepetitionResult::generated_tokens);
    br.itl_s = ComputeStats(itl);
    results.push_back(std::move(br));
  }
  return results;
}

}  // namespace llm
