#include "bench/report.h"

#include <fmt/format.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/llama_bench_format.h"  // issue17
#include "core/thread_pool.h"
#include "kernels/ops.h"
#include "model/llama_model.h"

#ifndef LLM_GIT_COMMIT
#define LLM_GIT_COMMIT "unknown"
#endif
#ifndef LLM_BUILD_TYPE
#define LLM_BUILD_TYPE "unknown"
#endif

namespace llm {

namespace {
const std::string kRule80(80, '=');
const std::string kDash80(80, '-');
double Ms(double s) { return s * 1e3; }
}  // namespace

std::string FormatSummaryTable(const std::vector<BenchResult>& results) {
  // Same columns and layout as the original script's SUMMARY block.
  std::string out = "\n" + kRule80 + "\nSUMMARY\n" + kRule80 + "\n";
  out += fmt::format("{:<30} {:<12} {:<12} {:<12} {:<12}\n", "Test Name", "Prompt Len", "Gen Tokens", "Time (s)",
                     "Tokens/sec");
  out += kDash80 + "\n";
  for (const BenchResult& r : results) {
    out += fmt::format("{:<30} {:<12} {:<12} {:<12.3f} {:<12.2f}\n", r.name, r.prompt_ids.size(),
                       static_cast<int>(r.generated_tokens.median), r.time_s.median, r.tokens_per_sec.median);
  }
  return out;
}

std::string FormatDetailTable(const std::vector<BenchResult>& results, const RunInfo& info) {
  std::string out = "\n" + kRule80 + "\nPREFILL / DECODE (median of " + std::to_string(info.repetitions) +
                    " repetitions, +- stddev)\n" + kRule80 + "\n";
  out += fmt::format("{:<22} {:>14} {:>16} {:>16} {:>30}\n", "Test Name", "TTFT (ms)", "Prefill tok/s",
                     "Decode tok/s", "ITL ms mean/p50/p90/p99/max");
  out += kDash80 + "\n";
  for (const BenchResult& r : results) {
    out += fmt::format("{:<22} {:>14} {:>16} {:>16} {:>30}\n", r.name,
                       fmt::format("{:.1f}+-{:.1f}", Ms(r.ttft_s.median), Ms(r.ttft_s.stddev)),
                       fmt::format("{:.2f}+-{:.2f}", r.prefill_tps.median, r.prefill_tps.stddev),
                       fmt::format("{:.2f}+-{:.2f}", r.decode_tps.median, r.decode_tps.stddev),
                       fmt::format("{:.1f}/{:.1f}/{:.1f}/{:.1f}/{:.1f}", Ms(r.itl_s.mean), Ms(r.itl_s.p50),
                                   Ms(r.itl_s.p90), Ms(r.itl_s.p99), Ms(r.itl_s.max)));
  }
  for (const BenchResult& r : results) {
    if (!r.read_probed) continue;
    out += fmt::format("{:<22} decode reads {:.1f} GB/s of weights: {:.0f}% ({:.0f}-{:.0f}) of the read bandwidth "
                       "measured beside it ({:.1f} GB/s before, {:.1f} after)\n",
                       r.name, r.decode_read_gbps.median, 100 * r.decode_of_read_beside.median,
                       100 * r.decode_of_read_beside.min, 100 * r.decode_of_read_beside.max, r.read_gbps_before.median,
                       r.read_gbps_after.median);
  }
  auto mib = [](size_t b) { return b / 1048576.0; };
  out += kDash80 + "\n";
  out += fmt::format("Model load: {:.3f} s   weights read/token: {:.1f} MiB   weights held: {:.1f} MiB{}\n",
                     info.load_time_s, mib(info.weight_bytes), mib(info.weight_bytes_total),
                     info.repacked_weight_bytes > 0
                         ? fmt::format(" (+{:.1f} MiB repacked for decode in {:.3f} s)", mib(info.repacked_weight_bytes),
                                       info.repack_time_s)
                         : "");
  out += fmt::format("KV cache: {:.1f} MiB allocated, {:.1f} MiB used   scratch: {:.1f} MiB   peak RSS: {:.1f} MiB\n",
                     mib(info.kv_cache_bytes), mib(info.kv_cache_used_bytes), mib(info.scratch_bytes),
                     mib(info.peak_rss_bytes));
  if (!info.gpu_name.empty()) {
    out += fmt::format("GPU {}: weights {:.1f} MiB, KV cache {:.1f} MiB, workspace {:.1f} MiB, {:.1f} of {:.1f} MiB "
                       "in use; decode {}\n",
                       info.gpu_name, mib(info.gpu_weight_bytes), mib(info.gpu_kv_cache_bytes),
                       mib(info.gpu_workspace_bytes), mib(info.gpu_total_bytes - info.gpu_free_bytes),
                       mib(info.gpu_total_bytes), info.cuda_graphs ? "as a CUDA graph" : "with eager launches");
  }
  return out;
}

std::string FormatBatchTable(const std::vector<BenchResult>& results) {
  bool any = false;
  for (const BenchResult& r : results) any = any || r.batch_size > 1;
  if (!any) return "";
  // llama-batched-bench's columns, then what a serving benchmark reports per
  // sequence: decode tok/s of one stream and its inter-token latency.
  std::string out = "\n" + kRule80 + "\nBATCHES (llama-batched-bench columns; medians)\n" + kRule80 + "\n";
  out += fmt::format("{:<24} {:>5} {:>5} {:>4} {:>6} {:>8} {:>9} {:>8} {:>9} {:>8} {:>9} {:>9} {:>8} {:>13} {:>9}\n",
                     "Test Name", "PP", "TG", "B", "N_KV", "T_PP s", "S_PP t/s", "T_TG s", "S_TG t/s", "T s", "S t/s",
                     "total t/s", "seq t/s", "ITL p50/p99", "KV MiB");
  for (const BenchResult& r : results) {
    out += fmt::format("{:<24} {:>5} {:>5} {:>4} {:>6} {:>8.3f} {:>9.2f} {:>8.3f} {:>9.2f} {:>8.3f} {:>9.2f} {:>9.2f} "
                       "{:>8.2f} {:>13} {:>9.1f}\n",
                       r.name, r.pp, r.tg, r.batch_size, r.n_kv, r.t_pp_s.median, r.s_pp.median, r.t_tg_s.median,
                       r.s_tg.median, r.t_s.median, r.s.median, r.total_tokens_per_sec.median, r.decode_tps.median,
                       fmt::format("{:.1f}/{:.1f}", Ms(r.itl_s.p50), Ms(r.itl_s.p99)), r.kv_cache_bytes / 1048576.0);
  }
  return out;
}

std::string SpreadWarnings(const std::vector<BenchResult>& results) {
  std::string out;
  for (const BenchResult& r : results) {
    for (const auto& [label, s] : {std::pair<const char*, const Stats*>{"time", &r.time_s},
                                   {"decode tokens/sec", &r.decode_tps}}) {
      if (s->count > 1 && s->rel_spread() > 0.05) {
        out += fmt::format("warning: {}: {} varies by {:.1f}% (stddev/mean) across repetitions; the machine is "
                           "noisy, raise --repetitions or quiet the machine\n",
                           r.name, label, 100 * s->rel_spread());
      }
    }
  }
  return out;
}

namespace {

nlohmann::json StatsJson(const Stats& s) {
  return {{"median", s.median}, {"mean", s.mean}, {"stddev", s.stddev}, {"min", s.min}, {"max", s.max}, {"n", s.count}};
}

nlohmann::json RunJson(const BenchResult& r) {
  nlohmann::json j;
  j["name"] = r.name;
  j["prompt_tokens"] = r.prompt_ids.size();
  j["generated_tokens"] = static_cast<int>(r.generated_tokens.median);
  j["time_s"] = r.time_s.median;
  j["tokens_per_sec"] = r.tokens_per_sec.median;
  j["ttft_s"] = r.ttft_s.median;
  j["prefill_tokens_per_sec"] = r.prefill_tps.median;
  j["decode_tokens_per_sec"] = r.decode_tps.median;
  j["itl_ms"] = {{"mean", Ms(r.itl_s.mean)}, {"p50", Ms(r.itl_s.p50)}, {"p90", Ms(r.itl_s.p90)},
                 {"p99", Ms(r.itl_s.p99)}, {"max", Ms(r.itl_s.max)}, {"n", r.itl_s.count}};
  j["stats"] = {{"time_s", StatsJson(r.time_s)}, {"tokens_per_sec", StatsJson(r.tokens_per_sec)},
                {"ttft_s", StatsJson(r.ttft_s)}, {"prefill_tokens_per_sec", StatsJson(r.prefill_tps)},
                {"decode_tokens_per_sec", StatsJson(r.decode_tps)}};
  nlohmann::json reps = nlohmann::json::array();
  for (const auto& rep : r.reps) {
    reps.push_back({{"time_s", rep.time_s}, {"ttft_s", rep.ttft_s}, {"generated_tokens", rep.generated_tokens},
                    {"tokens_per_sec", rep.tokens_per_sec}, {"prefill_tokens_per_sec", rep.prefill_tokens_per_sec},
                    {"decode_tokens_per_sec", rep.decode_tokens_per_sec}});
    if (rep.decode_read_gbps > 0) reps.back()["decode_weight_read_gbps"] = rep.decode_read_gbps;
    if (r.read_probed) {
      reps.back()["read_gbps_before"] = rep.read_gbps_before;
      reps.back()["read_gbps_after"] = rep.read_gbps_after;
      reps.back()["decode_of_read_beside"] = rep.decode_of_read_beside;
    }
    // issue17: every decode step's inter-token latency (for the report's ITL chart).
    nlohmann::json itl = nlohmann::json::array();
    for (double s : rep.token_latencies_s) itl.push_back(Ms(s));
    reps.back()["token_latencies_ms"] = itl;
  }
  j["repetitions"] = reps;
  // Decode's weight reads, and with --roof-probe the machine's read bandwidth
  // measured beside each repetition (before, after) and decode's reads over
  // the higher of the two, per repetition.
  if (r.decode_read_gbps.median > 0) {
    j["decode_weight_read_gbps"] = r.decode_read_gbps.median;
    j["stats"]["decode_weight_read_gbps"] = StatsJson(r.decode_read_gbps);
  }
  if (r.read_probed) {
    j["read_roof_beside"] = {{"before_gbps", StatsJson(r.read_gbps_before)},
                             {"after_gbps", StatsJson(r.read_gbps_after)},
                             {"decode_fraction", StatsJson(r.decode_of_read_beside)}};
  }
  j["prompt_token_ids"] = r.prompt_ids;
  j["generated_token_ids"] = r.generated_ids;
  j["generated_text"] = r.text;
  j["stop_reason"] = r.stop_reason;
  // Batches (batch_size 1 included): the whole batch's throughput, each
  // sequence's ids, and llama-batched-bench's columns under its names.
  j["batch_size"] = r.batch_size;
  j["shared_prompt"] = r.shared_prompt;
  j["total_tokens_per_sec"] = r.total_tokens_per_sec.median;
  j["per_sequence_decode_tokens_per_sec"] = r.decode_tps.median;
  j["batched_bench"] = {{"PP", r.pp},          {"TG", r.tg},           {"B", r.batch_size},
                        {"N_KV", r.n_kv},      {"T_PP", r.t_pp_s.median}, {"S_PP", r.s_pp.median},
                        {"T_TG", r.t_tg_s.median}, {"S_TG", r.s_tg.median}, {"T", r.t_s.median},
                        {"S", r.s.median}};
  j["stats"]["total_tokens_per_sec"] = StatsJson(r.total_tokens_per_sec);
  j["stats"]["S_TG"] = StatsJson(r.s_tg);
  j["stats"]["S_PP"] = StatsJson(r.s_pp);
  j["kv_cache_bytes"] = r.kv_cache_bytes;
  j["kv_cache_used_bytes"] = r.kv_cache_used_bytes;
  nlohmann::json sequences = nlohmann::json::array();
  for (size_t i = 0; i < r.sequence_prompt_ids.size(); ++i) {
    sequences.push_back({{"prompt_token_ids", r.sequence_prompt_ids[i]},
                         {"generated_token_ids", i < r.sequence_generated_ids.size() ? r.sequence_generated_ids[i]
                                                                                     : std::vector<int32_t>{}}});
  }
  j["sequences"] = sequences;
  return j;
}

// Every config field that changes the math, so a result shows what was run.
// Keys are a contract: added, never renamed or removed.
nlohmann::json ConfigJson(const LlamaConfig& c) {
  nlohmann::json rope = {{"rope_type", RopeScalingName(c.rope_scaling)}};
  switch (c.rope_scaling) {
    case RopeScaling::kNone:
      break;
    case RopeScaling::kLinear:
    case RopeScaling::kDynamic:
      rope["factor"] = c.rope_factor;
      break;
    case RopeScaling::kLlama3:
      rope.update({{"factor", c.rope_factor}, {"low_freq_factor", c.rope_low_freq_factor},
                   {"high_freq_factor", c.rope_high_freq_factor},
                   {"original_max_position_embeddings", c.rope_original_max_position}});
      break;
    case RopeScaling::kYarn:
      rope.update({{"factor", c.rope_factor}, {"original_max_position_embeddings", c.rope_original_max_position},
                   {"beta_fast", c.rope_beta_fast}, {"beta_slow", c.rope_beta_slow}, {"mscale", c.rope_mscale},
                   {"mscale_all_dim", c.rope_mscale_all_dim}, {"truncate", c.rope_truncate}});
      break;
    case RopeScaling::kLongRope:
      rope.update({{"factor", c.rope_factor}, {"original_max_position_embeddings", c.rope_original_max_position},
                   {"short_factor", c.rope_short_factor}, {"long_factor", c.rope_long_factor}});
      break;
  }
  if (c.rope_scaling == RopeScaling::kYarn || c.rope_scaling == RopeScaling::kLongRope) {
    rope["attention_factor"] = RopeAttentionScaling(c);  // the value applied (derived when the config has none)
  }
  return {{"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
          {"num_hidden_layers", c.num_hidden_layers}, {"num_attention_heads", c.num_attention_heads},
          {"num_key_value_heads", c.num_key_value_heads}, {"head_dim", c.head_dim},
          {"vocab_size", c.vocab_size}, {"rope_theta", c.rope_theta},
          {"tie_word_embeddings", c.tie_word_embeddings}, {"max_position_embeddings", c.max_position_embeddings},
          {"rms_norm_eps", c.rms_norm_eps}, {"attention_bias", c.attention_bias}, {"mlp_bias", c.mlp_bias},
          {"hidden_act", "silu"}, {"rope_scaling", rope}, {"bos_token_id", c.bos_token_id},
          {"eos_token_id", c.eos_token_ids}, {"torch_dtype", DTypeName(c.torch_dtype)}};
}

}  // namespace

std::string ResultsJson(const std::vector<BenchResult>& results, const RunInfo& info) {
  nlohmann::json j;
  j["schema_version"] = kResultsSchemaVersion;
  j["tool"] = "llama-speedbench";
  const LlamaConfig& c = info.config;
  j["model"] = {{"source", info.model_source},
                {"name", info.model_name},
                {"tokenizer", info.tokenizer},
                {"dtype", info.dtype},
                {"num_parameters", c.NumParameters()},
                {"weight_bytes", info.weight_bytes},
                {"weight_bytes_total", info.weight_bytes_total},
                {"kv_cache_bytes", info.kv_cache_bytes},
                {"kv_cache_used_bytes", info.kv_cache_used_bytes},
                {"load_time_s", info.load_time_s},
                {"repack_time_s", info.repack_time_s},
                {"config", ConfigJson(c)}};
  // GGUF loading (issue #16): new keys only.
  j["model"]["format"] = info.model_format;
  if (!info.model_tensor_types.empty()) j["model"]["tensor_types"] = info.model_tensor_types;
  if (!info.model_load_note.empty()) j["model"]["load_note"] = info.model_load_note;
  j["memory"] = {{"weight_bytes", info.weight_bytes}, {"weight_bytes_total", info.weight_bytes_total},
                 {"kv_cache_bytes", info.kv_cache_bytes}, {"kv_cache_used_bytes", info.kv_cache_used_bytes},
                 {"scratch_bytes", info.scratch_bytes}, {"peak_rss_bytes", info.peak_rss_bytes},
                 {"repacked_weight_bytes", info.repacked_weight_bytes}};
  j["settings"] = {{"device", info.device}, {"kernels", info.kernels}, {"threads", info.threads},
                   {"max_seq_len", info.max_seq_len}, {"max_gen_len", info.max_gen_len}, {"warmup", info.warmup},
                   {"repetitions", info.repetitions}, {"seed", info.seed}, {"temperature", info.temperature},
                   {"top_k", info.top_k}, {"top_p", info.top_p}, {"mmap", info.mmap}};
  j["system"] = SystemInfo();
  if (!info.gpu_name.empty()) {
    j["gpu"] = {{"name", info.gpu_name}, {"weight_bytes", info.gpu_weight_bytes},
                {"kv_cache_bytes", info.gpu_kv_cache_bytes}, {"workspace_bytes", info.gpu_workspace_bytes},
                {"engine_peak_bytes", info.gpu_peak_bytes}, {"free_bytes", info.gpu_free_bytes},
                {"total_bytes", info.gpu_total_bytes}, {"cuda_graphs", info.cuda_graphs}};
    if (info.gpu_copy_gbps > 0) j["gpu"]["copy_bandwidth_gbps"] = info.gpu_copy_gbps;
  }
  if (info.verify_compared > 0) {
    j["verify"] = {{"reference", "float32 on cpu"}, {"tokens_compared", info.verify_compared},
                   {"tokens_agreeing", info.verify_agreeing_prefix},
                   {"reference_token_ids", info.verify_reference_ids}, {"tested_token_ids", info.verify_tested_ids}};
  }
  if (!info.profile_trace.empty()) {
    j["profile"] = {{"trace", info.profile_trace}, {"trace_bytes", info.profile_trace_bytes},
                    {"events", info.profile_events}};
  }
  if (info.profile_overhead_measured) {
    j["profile_overhead"] = {{"decode_tokens_per_sec_off", info.profile_decode_tps_off},
                             {"decode_tokens_per_sec_on", info.profile_decode_tps_on},
                             {"overhead_pct", info.profile_overhead_pct}};
  }
  nlohmann::json runs = nlohmann::json::array();
  for (const BenchResult& r : results) runs.push_back(RunJson(r));
  j["runs"] = runs;
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";  // generated text may be invalid UTF-8
}

std::string FormatResults(const std::vector<BenchResult>& results, const RunInfo& info, const std::string& format) {
  std::string out;
  if (format == "json") return ResultsJson(results, info);
  if (format == "llama-bench-jsonl" || format == "sql") return FormatLlamaBench(results, info, format);  // issue17
  if (format == "jsonl") {
    for (const BenchResult& r : results) out += RunJson(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return out;
  }
  const bool md = format == "md";
  const char* sep = md ? " | " : ",";
  auto row = [&](const std::vector<std::string>& cells) {
    std::string line = md ? "| " : "";
    for (size_t i = 0; i < cells.size(); ++i) line += (i ? sep : "") + cells[i];
    return line + (md ? " |\n" : "\n");
  };
  // Columns are added at the end, never renamed or reordered.
  out += row({"test", "prompt_tokens", "generated_tokens", "time_s", "tokens_per_sec", "ttft_ms",
              "prefill_tokens_per_sec", "decode_tokens_per_sec", "itl_p50_ms", "itl_p99_ms", "batch_size",
              "total_tokens_per_sec", "S_TG"});
  if (md) out += "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const BenchResult& r : results) {
    out += row({r.name, std::to_string(r.prompt_ids.size()), fmt::format("{}", static_cast<int>(r.generated_tokens.median)),
                fmt::format("{:.3f}", r.time_s.median), fmt::format("{:.2f}", r.tokens_per_sec.median),
                fmt::format("{:.1f}", Ms(r.ttft_s.median)), fmt::format("{:.2f}", r.prefill_tps.median),
                fmt::format("{:.2f}", r.decode_tps.median), fmt::format("{:.1f}", Ms(r.itl_s.p50)),
                fmt::format("{:.1f}", Ms(r.itl_s.p99)), std::to_string(r.batch_size),
                fmt::format("{:.2f}", r.total_tokens_per_sec.median), fmt::format("{:.2f}", r.s_tg.median)});
  }
  return out;
}

namespace {

// Writes `content` to `tmp` (created or truncated) and fsyncs it; removes it on failure.
Status WriteAndSync(const std::string& tmp, const std::string& path, const std::string& content) {
  // O_NONBLOCK: a FIFO planted under the temporary name fails instead of blocking.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (fd < 0) {
    return IoError(path + ": cannot write (" + std::strerror(errno) + "; is the output directory writable?)");
  }
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      std::remove(tmp.c_str());
      return IoError(path + ": write failed (" + std::strerror(err) + ")");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return IoError(path + ": write failed (" + std::strerror(err) + ")");
  }
  return OkStatus();
}

void SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// A target rename() can replace: absent, or anything but a directory.
Status CheckReplaceable(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return IoError(path + ": is a directory; cannot write the output file there");
  }
  return OkStatus();
}

std::string TemporaryName(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }

}  // namespace

Status WriteFileAtomic(const std::string& path, const std::string& content) {
  LLM_RETURN_IF_ERROR(CheckReplaceable(path));
  const std::string tmp = TemporaryName(path);
  LLM_RETURN_IF_ERROR(WriteAndSync(tmp, path, content));
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return IoError(path + ": cannot move the finished file into place (" + std::strerror(err) + ")");
  }
  SyncDirectory(DirOf(path));
  return OkStatus();
}

OutputFiles::~OutputFiles() {
  for (const auto& [tmp, path] : staged_) std::remove(tmp.c_str());
}

Status OutputFiles::Add(const std::string& name, const std::string& content) {
  const std::string path = dir_ + "/" + name;
  const std::string tmp = TemporaryName(path);
  // Staged before the write, so a failed write of a later file still removes
  // this one's temporary (and the earlier ones) in the destructor.
  staged_.emplace_back(tmp, path);
  return WriteAndSync(tmp, path, content);
}

Status OutputFiles::Commit() {
  for (const auto& [tmp, path] : staged_) LLM_RETURN_IF_ERROR(CheckReplaceable(path));
  for (size_t i = 0; i < staged_.size(); ++i) {
    const auto& [tmp, path] = staged_[i];
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      staged_.erase(staged_.begin(), staged_.begin() + static_cast<std::ptrdiff_t>(i));
      return IoError(path + ": cannot move the finished file into place (" + std::strerror(err) + ")");
    }
  }
  staged_.clear();
  SyncDirectory(dir_);
  return OkStatus();
}

void RemoveStaleTemporaries(const std::string& dir, const std::vector<std::string>& names) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string file = e->d_name;
    for (const std::string& name : names) {
      const std::string prefix = name + ".tmp.";
      if (file.size() <= prefix.size() || file.compare(0, prefix.size(), prefix) != 0) continue;
      const std::string pid_text = file.substr(prefix.size());
      if (pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
      const long pid = std::stol(pid_text);
      if (pid <= 0 || pid == ::getpid()) continue;
      if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) std::remove((dir + "/" + file).c_str());
    }
  }
  ::closedir(d);
}

size_t PeakRssBytes() {
  struct rusage ru;
  if (::getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<size_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

std::map<std::string, std::string> SystemInfo() {
  std::map<std::string, std::string> info;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      info["cpu"] = line.substr(line.find(':') + 2);
      break;
    }
  }
  info["cpu_threads_available"] = std::to_string(AvailableCpuThreads());
  info["simd"] = CpuSimdTargetName();
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K}) {
    info[std::string("matmul_") + DTypeName(d)] = CpuMatMulPath(d);
  }
#if defined(__clang__)
  info["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  info["compiler"] = std::string("gcc ") + __VERSION__;
#endif
  info["build_type"] = LLM_BUILD_TYPE;
  info["git_commit"] = LLM_GIT_COMMIT;
  info["json_library"] = fmt::format("nlohmann-json {}.{}.{}", NLOHMANN_JSON_VERSION_MAJOR, NLOHMANN_JSON_VERSION_MINOR,
                                     NLOHMANN_JSON_VERSION_PATCH);
  info["fmt_version"] = std::to_string(FMT_VERSION);
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  info["date"] = date;
  return info;
}

}  // namespace llm
