#include "bench/runner.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace llm {

namespace {

RepetitionResult Summarize(const BatchGenerationResult& b) {
  const GenerationResult& g = b.sequences[0];
  RepetitionResult r;
  r.time_s = b.total_s;
  r.ttft_s = b.ttft_s;
  r.generated_tokens = static_cast<int>(g.tokens.size());
  r.tokens_per_sec = b.total_s > 0 ? g.tokens.size() / b.total_s : 0;
  r.prefill_tokens_per_sec = b.ttft_s > 0 ? b.prefill_tokens / b.ttft_s : 0;
  r.decode_tokens_per_sec = DecodeTokensPerSecond(g);
  r.token_latencies_s = g.token_latencies_s;
  r.total_generated_tokens = b.GeneratedTokens();
  r.total_tokens_per_sec = b.total_s > 0 ? r.total_generated_tokens / b.total_s : 0;
  // As llama-batched-bench counts them: N_KV = cache positions filled; S = N_KV / T.
  r.n_kv = b.prefill_tokens + r.total_generated_tokens - static_cast<int>(b.sequences.size());
  r.t_pp_s = b.ttft_s;
  r.s_pp = r.prefill_tokens_per_sec;
  r.t_tg_s = b.DecodeSeconds();
  int decoded = 0;
  for (int n : b.step_sequences) decoded += n;
  r.s_tg = r.t_tg_s > 0 ? decoded / r.t_tg_s : 0;
  r.t_s = r.t_pp_s + r.t_tg_s;
  r.s = r.t_s > 0 ? (b.prefill_tokens + decoded) / r.t_s : 0;
  return r;
}

}  // namespace

std::vector<std::vector<int32_t>> BenchTest::BatchPrompts() const {
  if (!prompts.empty()) return prompts;
  return std::vector<std::vector<int32_t>>(std::max(1, batch_size), prompt);
}

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
  for (const BenchTest& t : tests) planned += static_cast<double>(total_runs) * t.max_new_tokens * t.batch_size;
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
    br.batch_size = test.batch_size;
    br.shared_prompt = test.shared_prompt;
    br.sequence_prompt_ids = test.BatchPrompts();
    br.pp = static_cast<int>(test.prompt.size());
    br.tg = test.max_new_tokens;
    br.read_probed = static_cast<bool>(options.read_probe);
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
      const double planned_here = static_cast<double>(test.max_new_tokens) * test.batch_size;
      const double done_before = done;
      const bool probe = !warmup && options.read_probe;
      const double read_before = probe ? options.read_probe() : 0;
      LLM_ASSIGN_OR_RETURN(BatchGenerationResult b,
                           GenerateBatch(model, br.sequence_prompt_ids, gen, test.shared_prompt,
                                         progress ? std::function<void(int32_t)>(on_token) : nullptr));
      const double read_after = probe ? options.read_probe() : 0;
      if (progress) done = done_before + planned_here;  // a run that stopped early counts as finished
      if (warmup) continue;
      br.reps.push_back(Summarize(b));
      RepetitionResult& rep = br.reps.back();
      // One decode step reads the weights once, whatever the batch.
      rep.decode_read_gbps = static_cast<double>(options.decode_bytes_per_step) * rep.decode_tokens_per_sec / 1e9;
      rep.read_gbps_before = read_before;
      rep.read_gbps_after = read_after;
      // Over the higher of the two: the fraction errs low, not high.
      const double roof = std::max(read_before, read_after);
      rep.decode_of_read_beside = roof > 0 ? rep.decode_read_gbps / roof : 0;
      const GenerationResult& g = b.sequences[0];
      itl.insert(itl.end(), g.token_latencies_s.begin(), g.token_latencies_s.end());
      br.generated_ids = g.tokens;
      br.stop_reason = g.stop_reason;
      br.sequence_generated_ids.clear();
      for (const GenerationResult& s : b.sequences) br.sequence_generated_ids.push_back(s.tokens);
      br.n_kv = br.reps.back().n_kv;
      br.kv_cache_bytes = static_cast<size_t>(test.batch_size) * model.KvCacheBytesFor(model.max_seq_len());
      br.kv_cache_used_bytes = model.KvCacheBytesFor(br.n_kv);
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
    br.total_tokens_per_sec = collect(&RepetitionResult::total_tokens_per_sec);
    br.t_pp_s = collect(&RepetitionResult::t_pp_s);
    br.s_pp = collect(&RepetitionResult::s_pp);
    br.t_tg_s = collect(&RepetitionResult::t_tg_s);
    br.s_tg = collect(&RepetitionResult::s_tg);
    br.t_s = collect(&RepetitionResult::t_s);
    br.s = collect(&RepetitionResult::s);
    br.decode_read_gbps = collect(&RepetitionResult::decode_read_gbps);
    br.read_gbps_before = collect(&RepetitionResult::read_gbps_before);
    br.read_gbps_after = collect(&RepetitionResult::read_gbps_after);
    br.decode_of_read_beside = collect(&RepetitionResult::decode_of_read_beside);
    results.push_back(std::move(br));
  }
  return results;
}

}  // namespace llm
