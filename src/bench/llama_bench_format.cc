#include "bench/llama_bench_format.h"

#include <fmt/format.h>

#include <cmath>

namespace llm {

namespace {
// Digits of `s` from `pos` as a number (at most 9 of them); -1 when there are none.
int Digits(const std::string& s, size_t* pos) {
  size_t end = *pos;
  while (end < s.size() && end - *pos < 9 && s[end] >= '0' && s[end] <= '9') ++end;
  if (end == *pos) return -1;
  const int v = std::stoi(s.substr(*pos, end - *pos));
  *pos = end;
  return v;
}
}  // namespace

LlamaBenchShape LlamaBenchShapeOf(const std::string& name, int prompt_tokens, int generated_tokens) {
  LlamaBenchShape s;
  size_t pos = 2;
  const int n = name.size() > 2 ? Digits(name, &pos) : -1;
  int depth = 0;
  bool tg = n >= 0 && name.compare(0, 2, "tg") == 0;
  if (tg && pos < name.size()) {  // "tgN @ dD"
    tg = name.compare(pos, 4, " @ d") == 0;
    pos += 4;
    depth = tg ? Digits(name, &pos) : -1;
    tg = depth >= 0;
  }
  if (n >= 0 && pos == name.size() && name.compare(0, 2, "pp") == 0) {
    s.n_prompt = n;
  } else if (tg && pos == name.size()) {
    s.n_gen = n;
    s.n_depth = depth;
  } else {
    s.n_prompt = prompt_tokens;
    s.n_gen = generated_tokens;
  }
  return s;
}

namespace {

// llama.cpp's ggml type names for our storage dtypes.
std::string GgmlTypeName(const std::string& dtype) {
  if (dtype == "float32") return "f32";
  if (dtype == "float16") return "f16";
  if (dtype == "bfloat16") return "bf16";
  return dtype;
}

// "llama 1B BF16", as llama.cpp names a model type (size class + file type).
std::string ModelType(uint64_t params, const std::string& dtype) {
  std::string size = params >= 1000000000ull ? fmt::format("{}B", static_cast<int>(std::lround(params / 1e9)))
                                              : fmt::format("{}M", static_cast<int>(std::lround(params / 1e6)));
  std::string t = GgmlTypeName(dtype);
  for (char& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return "llama " + size + " " + t;
}

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}
// Sample standard deviation, as llama-bench computes it (0 for one sample).
double Stdev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = Mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / (v.size() - 1));
}

}  // namespace

std::vector<nlohmann::ordered_json> LlamaBenchRows(const std::vector<BenchResult>& results, const RunInfo& info) {
  const std::map<std::string, std::string> sys = SystemInfo();
  auto get = [&](const char* k) {
    auto it = sys.find(k);
    return it == sys.end() ? std::string() : it->second;
  };
  const bool gpu = !info.gpu_name.empty();
  const std::string kv_type = "f32";  // our KV cache is float32 in every dtype
  std::vector<nlohmann::ordered_json> rows;
  for (const BenchResult& r : results) {
    const int gen = static_cast<int>(r.generated_tokens.median);
    const LlamaBenchShape shape = LlamaBenchShapeOf(r.name, static_cast<int>(r.prompt_ids.size()), gen);
    // The timed part of each repetition as llama-bench times it: a pp test is
    // the prompt pass, a tg test the generation after the depth's prompt
    // (tokens after the first / their time), a text test the whole run.
    std::vector<double> ns, ts;
    for (const RepetitionResult& rep : r.reps) {
      double t_s = 0, tps = 0;
      if (shape.n_gen == 0) {
        t_s = rep.ttft_s;
        tps = rep.prefill_tokens_per_sec;
      } else if (shape.n_prompt == 0) {
        tps = rep.decode_tokens_per_sec;
        t_s = tps > 0 ? shape.n_gen / tps : 0;
      } else {
        t_s = rep.time_s;
        tps = t_s > 0 ? (shape.n_prompt + shape.n_gen) / t_s : 0;
      }
      ns.push_back(std::round(t_s * 1e9));
      ts.push_back(tps);
    }
    nlohmann::ordered_json j;
    j["build_commit"] = get("git_commit");
    j["build_number"] = 0;
    j["cpu_info"] = get("cpu");
    j["gpu_info"] = gpu ? info.gpu_name : "";
    j["backends"] = gpu ? "CUDA" : "CPU";
    j["model_filename"] = info.model_source;
    j["model_type"] = ModelType(info.config.NumParameters(), info.dtype);
    j["model_size"] = static_cast<uint64_t>(info.weight_bytes_total);
    j["model_n_params"] = static_cast<uint64_t>(info.config.NumParameters());
    j["n_batch"] = info.max_seq_len;  // the whole prompt is one batch
    j["n_ubatch"] = info.max_seq_len;
    j["n_threads"] = info.threads;
    j["cpu_mask"] = "0x0";
    j["cpu_strict"] = false;
    j["poll"] = 50;
    j["type_k"] = kv_type;
    j["type_v"] = kv_type;
    j["n_gpu_layers"] = gpu ? info.config.num_hidden_layers : 0;
    j["n_cpu_moe"] = 0;
    j["split_mode"] = "layer";
    j["main_gpu"] = 0;
    j["no_kv_offload"] = false;
    j["flash_attn"] = 0;  // an int in llama-bench (-1 = auto)
    j["devices"] = gpu ? "CUDA0" : "auto";
    j["tensor_split"] = "0.00";
    j["tensor_buft_overrides"] = "none";
    j["load_mode"] = info.mmap ? "mmap" : "none";  // --mmap off copies the weights out of the file
    j["lazy_mode"] = "off";
    j["embeddings"] = false;
    j["no_op_offload"] = 0;
    j["no_host"] = false;
    j["repack"] = false;
    j["fit_target"] = 0;
    j["fit_min_ctx"] = 0;
    j["n_prompt"] = shape.n_prompt;
    j["n_gen"] = shape.n_gen;
    j["n_depth"] = shape.n_depth;
    j["test_time"] = get("date");
    j["avg_ns"] = static_cast<uint64_t>(Mean(ns));
    j["stddev_ns"] = static_cast<uint64_t>(Stdev(ns));
    j["avg_ts"] = Mean(ts);
    j["stddev_ts"] = Stdev(ts);
    nlohmann::json sns = nlohmann::json::array(), sts = nlohmann::json::array();
    for (double v : ns) sns.push_back(static_cast<uint64_t>(v));
    for (double v : ts) sts.push_back(v);
    j["samples_ns"] = sns;
    j["samples_ts"] = sts;
    // Ours, beside llama-bench's: which test of benchmark_results.json this is.
    j["test_name"] = r.name;
    j["dtype"] = info.dtype;
    rows.push_back(std::move(j));
  }
  return rows;
}

namespace {

std::string SqlValue(const nlohmann::ordered_json& v) {
  if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
  if (v.is_string()) {
    std::string s = v.get<std::string>(), out = "'";
    for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
  }
  if (v.is_array()) {  // samples: space-separated, as a TEXT column
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + x.dump();
    return "'" + s + "'";
  }
  return v.dump();
}

std::string SqlType(const nlohmann::ordered_json& v) {
  if (v.is_boolean() || v.is_number_integer() || v.is_number_unsigned()) return "INTEGER";
  if (v.is_number_float()) return "REAL";
  return "TEXT";
}

}  // namespace

std::string FormatLlamaBench(const std::vector<BenchResult>& results, const RunInfo& info, const std::string& format) {
  const auto rows = LlamaBenchRows(results, info);
  std::string out;
  if (format == "llama-bench-jsonl") {
    for (const auto& j : rows) out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return out;
  }
  // sql: llama-bench -o sql's table llama_bench (samples and our extra keys left out).
  if (rows.empty()) return out;
  std::vector<std::string> cols;
  for (const auto& [k, v] : rows.front().items()) {
    if (k != "samples_ns" && k != "samples_ts" && k != "test_name" && k != "dtype") cols.push_back(k);
  }
  out += "CREATE TABLE IF NOT EXISTS llama_bench (\n";
  for (size_t i = 0; i < cols.size(); ++i) {
    out += fmt::format("  {} {}{}\n", cols[i], SqlType(rows.front()[cols[i]]), i + 1 < cols.size() ? "," : "");
  }
  out += ");\n";
  for (const auto& j : rows) {
    std::string names, values;
    for (size_t i = 0; i < cols.size(); ++i) {
      names += (i ? ", " : "") + cols[i];
      values += (i ? ", " : "") + SqlValue(j[cols[i]]);
    }
    out += "INSERT INTO llama_bench (" + names + ") VALUES (" + values + ");\n";
  }
  return out;
}

}  // namespace llm
