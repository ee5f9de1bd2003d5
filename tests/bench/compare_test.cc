// compare (pairing, bootstrap interval, verdicts, formats, --fail-above rule),
// the llama-bench rows (field names and types of llama.cpp's
// scripts/compare-llama-bench.py) and the HTML report (charts present, nothing
// fetched, no script) on synthetic results.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "bench/compare.h"
#include "bench/html_report.h"
#include "bench/llama_bench_format.h"
#include "bench/report.h"
#include "bench/runner.h"

namespace llm {
namespace {

nlohmann::json Results(const std::string& dtype, const std::vector<double>& prefill, const std::vector<double>& decode,
                       int hidden = 64) {
  nlohmann::json reps = nlohmann::json::array();
  for (size_t i = 0; i < prefill.size(); ++i) {
    reps.push_back({{"prefill_tokens_per_sec", prefill[i]}, {"decode_tokens_per_sec", decode[i]},
                    {"token_latencies_ms", {1.0, 1.2, 0.9, 1.1}}});
  }
  nlohmann::json runs = nlohmann::json::array();
  for (const char* name : {"Short prompt", "tg16 @ d128"}) {
    runs.push_back({{"name", name}, {"prompt_tokens", 12}, {"generated_tokens", 5}, {"repetitions", reps},
                    {"prefill_tokens_per_sec", prefill[0]}, {"decode_tokens_per_sec", decode[0]}});
  }
  return {{"model", {{"source", "dummy:x"}, {"dtype", dtype}, {"config", {{"hidden_size", hidden}}}}},
          {"settings", {{"device", "cpu"}, {"threads", 2}}},
          {"system", {{"git_commit", "abc"}}},
          {"runs", runs}};
}

TEST(Compare, BootstrapIntervalIsFixedBySeedAndBracketsTheRatio) {
  const std::vector<double> a = {100, 102, 98, 101, 99}, b = {120, 123, 118, 121, 119};
  const auto ci = BootstrapRatioCi(a, b);
  EXPECT_EQ(ci, BootstrapRatioCi(a, b));  // same seed, same interval
  EXPECT_LT(ci.first, 1.2);
  EXPECT_GT(ci.second, 1.2);
  EXPECT_GT(ci.first, 1.1);
  EXPECT_TRUE(std::isnan(BootstrapRatioCi({1.0}, b).first));  // one sample: no interval
}

TEST(Compare, VerdictsFasterSlowerAndNoChange) {
  auto c = CompareResults(Results("float32", {100, 101, 99, 100}, {10, 10.1, 9.9, 10}),
                          Results("bfloat16", {150, 151, 149, 150}, {9, 9.1, 8.9, 9}), nullptr, nullptr);
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->rows.size(), 4u);
  EXPECT_EQ(c->rows[0].metric, "prefill tok/s");
  EXPECT_EQ(c->rows[0].verdict, "faster");
  EXPECT_NEAR(c->rows[0].ratio, 1.5, 1e-9);
  EXPECT_EQ(c->rows[1].verdict, "slower");
  ASSERT_EQ(c->differences.size(), 1u);
  EXPECT_EQ(c->differences[0], "dtype: float32 -> bfloat16");
  EXPECT_EQ(SlowerThan(c.value(), 5).size(), 2u);  // decode 10% slower in both tests
  EXPECT_TRUE(SlowerThan(c.value(), 15).empty());
  auto same = CompareResults(Results("float32", {100, 103, 97}, {10, 10.3, 9.7}),
                             Results("float32", {101, 98, 102}, {10.1, 9.8, 10.2}), nullptr, nullptr);
  ASSERT_TRUE(same.ok());
  for (const auto& r : same->rows) EXPECT_EQ(r.verdict, "no significant change") << r.test;
}

TEST(Compare, DifferentModelsAreRefused) {
  auto c = CompareResults(Results("float32", {1, 2}, {1, 2}), Results("float32", {1, 2}, {1, 2}, 128), nullptr, nullptr);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("different models"), std::string::npos);
}

TEST(Compare, FormatsAndProfileOperators) {
  nlohmann::json pb = {{"phases", {{"decode", {{"steps", 2}, {"wall_ms", 20.0},
                                               {"operators", {{{"name", "lm_head"}, {"self_ms", 10.0}},
                                                              {{"name", "sampling"}, {"self_ms", 0.02}}}}}}}}};
  nlohmann::json pn = pb;
  pn["phases"]["decode"]["wall_ms"] = 16.0;
  pn["phases"]["decode"]["operators"][0]["self_ms"] = 6.0;
  auto c = CompareResults(Results("float32", {100, 101, 99}, {10, 10.1, 9.9}),
                          Results("float32", {100, 101, 99}, {10, 10.1, 9.9}), &pb, &pn);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->profiled);
  ASSERT_EQ(c->ops.size(), 2u);
  EXPECT_EQ(c->ops[0].name, "lm_head");
  EXPECT_NEAR(c->ops[0].delta_ms, -2.0, 1e-9);  // 5 -> 3 ms per step
  EXPECT_NEAR(c->ops[0].share_pct, 100.0, 1e-9);
  EXPECT_EQ(c->ops[0].verdict, "faster");
  EXPECT_EQ(c->ops[1].verdict, "~");
  const auto j = nlohmann::json::parse(FormatComparison(c.value(), "json"));
  EXPECT_EQ(j["rows"].size(), 4u);
  EXPECT_NE(j["method"].get<std::string>().find("bootstrap"), std::string::npos);
  EXPECT_EQ(j["profile"]["operators"].size(), 2u);
  EXPECT_NE(FormatComparison(c.value(), "md").find("| test | metric |"), std::string::npos);
  EXPECT_EQ(FormatComparison(c.value(), "csv").rfind("test,metric,base,new,ratio,95% CI,verdict\n", 0), 0u);
  EXPECT_NE(FormatComparison(c.value(), "table").find("bootstrap"), std::string::npos);
  const std::string html = CompareReportHtml(c.value());
  EXPECT_NE(html.find("id=\"chart-ratios\""), std::string::npos);
  EXPECT_NE(html.find("id=\"chart-op-ratios-decode\""), std::string::npos);
}

// The columns compare-llama-bench.py (llama.cpp, vendored by llama-cpp-python
// 0.3.36) reads and their SQL types, and the keys it requires.
TEST(LlamaBench, RowsCarryLlamaBenchFieldsWithTheirTypes) {
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"build_commit", "TEXT"}, {"build_number", "INTEGER"}, {"cpu_info", "TEXT"}, {"gpu_info", "TEXT"},
      {"backends", "TEXT"}, {"model_filename", "TEXT"}, {"model_type", "TEXT"}, {"model_size", "INTEGER"},
      {"model_n_params", "INTEGER"}, {"n_batch", "INTEGER"}, {"n_ubatch", "INTEGER"}, {"n_threads", "INTEGER"},
      {"cpu_mask", "TEXT"}, {"cpu_strict", "INTEGER"}, {"poll", "INTEGER"}, {"type_k", "TEXT"}, {"type_v", "TEXT"},
      {"n_gpu_layers", "INTEGER"}, {"split_mode", "TEXT"}, {"main_gpu", "INTEGER"}, {"no_kv_offload", "INTEGER"},
      {"flash_attn", "INTEGER"}, {"tensor_split", "TEXT"}, {"tensor_buft_overrides", "TEXT"}, {"load_mode", "TEXT"},
      {"embeddings", "INTEGER"}, {"no_op_offload", "INTEGER"}, {"n_prompt", "INTEGER"}, {"n_gen", "INTEGER"},
      {"n_depth", "INTEGER"}, {"test_time", "TEXT"}, {"avg_ns", "INTEGER"}, {"stddev_ns", "INTEGER"},
      {"avg_ts", "REAL"}, {"stddev_ts", "REAL"}, {"n_cpu_moe", "INTEGER"}, {"fit_target", "INTEGER"},
      {"fit_min_ctx", "INTEGER"}};
  BenchResult pp, tg;
  pp.name = "pp32";
  pp.prompt_ids.assign(32, 1);
  tg.name = "tg16 @ d64";
  tg.prompt_ids.assign(64, 1);
  for (double s : {0.10, 0.11, 0.09}) {
    RepetitionResult r;
    r.ttft_s = s;
    r.prefill_tokens_per_sec = 32 / s;
    r.decode_tokens_per_sec = 1 / s;
    r.time_s = 2 * s;
    pp.reps.push_back(r);
    tg.reps.push_back(r);
  }
  RunInfo info;
  info.dtype = "bfloat16";
  info.threads = 2;
  info.model_source = "dummy:x";
  const auto rows = LlamaBenchRows({pp, tg}, info);
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& [name, type] : fields) {
    ASSERT_TRUE(rows[0].contains(name)) << name;
    const auto& v = rows[0][name];
    const bool ok = type == "TEXT" ? v.is_string()
                    : type == "REAL" ? v.is_number_float()
                                     : v.is_number_integer() || v.is_boolean();
    EXPECT_TRUE(ok) << name << " should be " << type << ", is " << v.dump();
  }
  EXPECT_EQ(rows[0]["n_prompt"], 32);
  EXPECT_EQ(rows[0]["n_gen"], 0);
  EXPECT_EQ(rows[1]["n_prompt"], 0);
  EXPECT_EQ(rows[1]["n_gen"], 16);
  EXPECT_EQ(rows[1]["n_depth"], 64);
  EXPECT_EQ(rows[0]["type_k"], "f32");
  ASSERT_EQ(rows[0]["samples_ns"].size(), 3u);
  EXPECT_EQ(rows[0]["samples_ns"][0], 100000000u);
  EXPECT_NEAR(rows[0]["avg_ts"].get<double>(), (320 + 32 / 0.11 + 32 / 0.09) / 3, 1e-9);
  EXPECT_NE(rows[0]["model_type"].get<std::string>().find("BF16"), std::string::npos);
  const std::string sql = FormatLlamaBench({pp, tg}, info, "sql");
  EXPECT_EQ(sql.rfind("CREATE TABLE IF NOT EXISTS llama_bench (", 0), 0u);
  EXPECT_NE(sql.find("avg_ts REAL"), std::string::npos);
  EXPECT_EQ(std::count(sql.begin(), sql.end(), '\n') > 2, true);
}

TEST(LlamaBench, ShapeOfTestNames) {
  auto eq = [](const LlamaBenchShape& s, int p, int g, int d) {
    return s.n_prompt == p && s.n_gen == g && s.n_depth == d;
  };
  EXPECT_TRUE(eq(LlamaBenchShapeOf("pp512", 512, 1), 512, 0, 0));
  EXPECT_TRUE(eq(LlamaBenchShapeOf("tg128", 1, 128), 0, 128, 0));
  EXPECT_TRUE(eq(LlamaBenchShapeOf("tg16 @ d2048", 2048, 16), 0, 16, 2048));
  EXPECT_TRUE(eq(LlamaBenchShapeOf("Short prompt", 9, 20), 9, 20, 0));
  for (const char* text : {"pp", "pp12x", "tg16 @ d", "tg16 @ dx", "tg16 @d5", "pq12", "tg"}) {
    EXPECT_TRUE(eq(LlamaBenchShapeOf(text, 7, 3), 7, 3, 0)) << text;  // not a sweep name: a text prompt
  }
}

TEST(HtmlReport, RunReportHasTheChartsAndFetchesNothing) {
  nlohmann::json r = Results("bfloat16", {100, 101, 99}, {10, 10.1, 9.9});
  r["runs"].push_back({{"name", "pp32"}, {"prompt_tokens", 32}, {"prefill_tokens_per_sec", 300.0}});
  r["runs"].push_back({{"name", "pp64"}, {"prompt_tokens", 64}, {"prefill_tokens_per_sec", 350.0}});
  nlohmann::json stats = {
      {"calibration", {{"read_gbps", 20.0}, {"fma_gflops", 200.0}, {"amx_bf16_gflops", 3000.0}}},
      {"phases",
       {{"decode",
         {{"steps", 2}, {"wall_ms", 20.0},
          {"operators", {{{"name", "lm_head"}, {"category", "Other"}, {"self_ms", 10.0}, {"flops", 2e9}, {"bytes", 1e9},
                          {"gflops_per_s", 50.0}, {"bound", "memory"}, {"fraction_of_roof", 0.8}, {"roof", "BW"},
                          {"compute_unit", "AMX-BF16"}}}},
          {"categories", {{{"name", "Other"}, {"self_ms", 10.0}}}},
          {"layers", {{{"name", "layers.0"}, {"self_ms", 9.0}}}}}}}}};
  nlohmann::json trace = {{"traceEvents",
                           {{{"name", "memory (bytes)"}, {"ph", "C"}, {"ts", 0}, {"args", {{"weights", 1 << 20}}}},
                            {{"name", "memory (bytes)"}, {"ph", "C"}, {"ts", 10}, {"args", {{"weights", 1 << 21}}}},
                            {{"name", "layers.0.attention.q_proj"}, {"cat", "Attention"}, {"ph", "X"}, {"pid", 1},
                             {"tid", 0}, {"ts", 1}, {"dur", 5}, {"args", {{"step", 0}, {"layer", 0}}}}}}};
  const std::string html = RunReportHtml(r, &stats, &trace);
  for (const char* id : {"summary-table", "chart-prefill", "chart-decode", "chart-itl", "chart-itl-hist",
                         "chart-sweep-prompt", "chart-categories-decode", "chart-layers-decode", "chart-roofline",
                         "chart-memory", "bottleneck-list"}) {
    EXPECT_NE(html.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  }
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // only the SVG namespace
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_NE(html.find("AMX-BF16 roof"), std::string::npos);
  const std::string bare = RunReportHtml(r, nullptr, nullptr);  // not profiled: no profile section
  EXPECT_EQ(bare.find("chart-roofline"), std::string::npos);
}

}  // namespace
}  // namespace llm
