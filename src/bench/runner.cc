#include "bench/runner.h"

#include <unistd.h>

#include <chrono>
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
  r.decode_tokens_per_sec = DecodeTokensPerSecond(g);
  r.token_latencies_s = g.token_latencies_s;
  return r;
}

}  // namespace

GenerationOptions GenerationOptionsFor(const BenchTest& test, const BenchOptions& options) {
  GenerationOptions go;
  go.max_new_tokens = test.max_new_tokens;
  go.ignore_eos = test.ignore_eos;
  go.eos_ids = options.eos_ids;
  go.sampling = options.sampling;
  return go;
}

Result<std::vector<BenchResult>> RunBenchmark(LlamaModel& model, const Tokenizer* tokenizer,
                                              const std::vector<BenchTest>& tests, const BenchOptions& options) {
  const bool progress = !options.quiet && ::isatty(STDERR_FILENO);
  // Progress: tokens done against tokens planned (every run to max_new_tokens),
  // which makes the ETA an upper bound when runs stop early at EOS.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_print = start;
  double planned = 0, done = 0;
  const int64_t total_runs = static_cast<int64_t>(options.warmup) + options.repetitions;  // no int overflow
  for (const BenchTest& t : tests) planned += static_cast<double>(total_runs) * t.max_new_tokens;
  std::string label;
  auto on_token = [&](int32_t) {
    done += 1;
    const Clock::time_point now = Clock::now();
    if (now - last_print < std::chrono::milliseconds(100)) return;
    last_print = now;
    const double elapsed = std::chrono::duration<double>(now - start).count();
    const double eta = done > 0 ? elapsed / done * std::max(0.0, planned - done) : 0;
    std::fprintf(stderr, "\r%s  %.0f/%.0f tokens  ETA %.0fs   ", label.c_str(), done, planned, eta);
  };
  std::vector<BenchResult> results;
  for (size_t ti = 0; ti < tests.size(); ++ti) {
    const BenchTest& test = tests[ti];
    const GenerationOptions gen = GenerationOptionsFor(test, options);
    BenchResult br;
    br.name = test.name;
    br.prompt_ids = test.prompt;
    std::vector<double> itl;
    for (int64_t run = 0; run < total_runs; ++run) {
      const bool warmup = run < options.warmup;
      if (progress) {
        char buf[256];
        std::snprintf(buf, sizeof(buf), "[%zu/%zu] %s: %s %lld/%d", ti + 1, tests.size(), test.name.c_str(),
                      warmup ? "warm-up" : "repetition", static_cast<long long>(warmup ? run + 1 : run - options.warmup + 1),
                      warmup ? options.warmup : options.repetitions);
        label = buf;
      }
      const int planned_here = test.max_new_tokens;
      const double done_before = done;
      LLM_ASSIGN_OR_RETURN(GenerationResult g,
                           Generate(model, test.prompt, gen, progress ? std::function<void(int32_t)>(on_token) : nullptr));
      if (progress) done = done_before + planned_here;  // a run that stopped early counts as finished
      if (warmup) continue;
      br.reps.push_back(Summarize(g, test.prompt.size()));
      itl.insert(itl.end(), g.token_latencies_s.begin(), g.token_latencies_s.end());
      br.generated_ids = g.tokens;
      br.stop_reason = g.stop_reason;
    }
    if (progress) std::fprintf(stderr, "\r%*s\r", 100, "");
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
