// Runs the real speed_benchmark binary on fixture models: outputs, the flag
// contract, model resolution order, and clean failures on bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/cpu/amx/amx_gemm.h"
#include "kernels/ops.h"
#include "test_util.h"

namespace llm {
namespace {

using nlohmann::json;
using testing::FixtureModel;
using testing::TempDir;

using RunResult = testing::CliRun;

RunResult RunCli(const std::string& args, const std::string& env = "") {
  return testing::RunShell(env + " " + LLM_SPEED_BENCHMARK + " " + args);
}

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

bool Exists(const std::string& path) { return std::ifstream(path).good(); }

class Cli : public ::testing::Test {
 protected:
  std::string Fast() const { return " --warmup 0 --repetitions 1 --output-dir " + out_.path(); }
  std::string Results() const { return out_.path() + "/benchmark_results.json"; }
  TempDir out_;
};

TEST_F(Cli, MinimalRunMatchesTransformersTokenForToken) {
  const auto ref = testing::LoadReference("mha_tied_f32");
  const std::string prompt = ref.meta["cli"]["text"];
  const RunResult r = RunCli("--model-path " + FixtureModel("mha_tied_f32") + " --device cpu --dtype float32 --prompt '" +
                             prompt + "' --max-gen-len 20 --ignore-eos" + Fast());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const json j = ReadJson(Results());
  ASSERT_EQ(j["runs"].size(), 1u);
  const json& run = j["runs"][0];
  EXPECT_EQ(run["prompt_token_ids"], ref.meta["cli"]["prompt_ids"]);
  EXPECT_EQ(run["generated_token_ids"], ref.meta["cli"]["greedy_ids"]);
  EXPECT_NE(r.out.find("SUMMARY"), std::string::npos);
}

TEST_F(Cli, BuiltinTestsSummaryAndResultsContract) {
  const RunResult r = RunCli("--model-path " + FixtureModel("mha_tied_f32") +
                             " --device cpu --dtype float32 --max-gen-len 5 --warmup 1 --repetitions 2 --output-dir " +
                             out_.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* line : {"SUMMARY", "Test Name                      Prompt Len   Gen Tokens   Time (s)     Tokens/sec",
                           "Short prompt", "Medium prompt", "Long prompt", "TTFT (ms)", "peak RSS"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  }
  const json j = ReadJson(Results());
  EXPECT_EQ(j["schema_version"], 1);
  ASSERT_EQ(j["runs"].size(), 3u);
  for (const json& run : j["runs"]) {
    for (const char* key : {"name", "prompt_tokens", "generated_tokens", "time_s", "tokens_per_sec", "ttft_s",
                            "prefill_tokens_per_sec", "decode_tokens_per_sec", "prompt_token_ids",
                            "generated_token_ids"}) {
      EXPECT_TRUE(run.contains(key)) << key;
    }
    EXPECT_EQ(run["repetitions"].size(), 2u);
    EXPECT_EQ(run["prompt_tokens"], run["prompt_token_ids"].size());
    EXPECT_GT(run["tokens_per_sec"].get<double>(), 0);
  }
  for (const char* key : {"weight_bytes", "kv_cache_bytes"}) EXPECT_GT(j["model"][key].get<double>(), 0) << key;
  EXPECT_EQ(j["settings"]["device"], "cpu");
}

TEST_F(Cli, SweepsAndFormats) {
  const RunResult r = RunCli("--load-format dummy --model-config " + FixtureModel("mha_tied_f32") +
                             "/config.json --dtype bfloat16 --prompt-lengths 16,32 --gen-lengths 4 --depths 0,8 "
                             "--format csv" + Fast());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* row : {"pp16,16,1,", "pp32,32,1,", "tg4,1,4,", "tg4 @ d8,8,4,"}) {
    EXPECT_NE(r.out.find(row), std::string::npos) << row << "\n" << r.out;
  }
  const RunResult md = RunCli("--load-format dummy --model-config " + FixtureModel("mha_tied_f32") +
                              "/config.json --gen-lengths 2 --format md" + Fast());
  EXPECT_NE(md.out.find("| tg2 | 1 | 2 |"), std::string::npos) << md.out;
  const RunResult js = RunCli("--load-format dummy --model-config " + FixtureModel("mha_tied_f32") +
                              "/config.json --gen-lengths 2 --format json --quiet" + Fast());
  EXPECT_EQ(json::parse(js.out)["runs"][0]["name"], "tg2") << js.out;
  const RunResult jl = RunCli("--load-format dummy --model-config " + FixtureModel("mha_tied_f32") +
                              "/config.json --gen-lengths 2 --format jsonl --quiet" + Fast());
  EXPECT_EQ(json::parse(jl.out)["name"], "tg2") << jl.out;
}

// The results name the matmul path per dtype, and --amx off moves bf16 off
// the tiles (on a CPU without AMX both runs say FMA; the flag check holds
// everywhere).
TEST_F(Cli, MatmulPathIsRecordedAndAmxOffIsFma) {
  const std::string run = "--load-format dummy --model-config " + FixtureModel("mha_tied_f32") +
                          "/config.json --dtype bfloat16 --prompt-lengths 32 --gen-lengths 2 --format json --quiet";
  const RunResult on = RunCli(run + Fast());
  ASSERT_EQ(on.exit_code, 0) << on.out;
  const json sys = json::parse(on.out)["system"];
  for (const char* key : {"matmul_float32", "matmul_float16", "matmul_bfloat16"}) {
    ASSERT_TRUE(sys.contains(key)) << key;
    EXPECT_NE(sys[key].get<std::string>().find("FMA"), std::string::npos) << sys[key];
  }
  const RunResult off = RunCli(run + " --amx off" + Fast());
  ASSERT_EQ(off.exit_code, 0) << off.out;
  EXPECT_EQ(json::parse(off.out)["system"]["matmul_bfloat16"].get<std::string>().find("AMX"), std::string::npos);
  const RunResult bad = RunCli(run + " --amx maybe" + Fast());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.out.rfind("error: --amx must be auto or off", 0), 0) << bad.out;
  // --decode-x bf16 names the rounded decode where the CPU has AVX512-BF16.
  const RunResult bf16_x = RunCli(run + " --decode-x bf16" + Fast());
  ASSERT_EQ(bf16_x.exit_code, 0) << bf16_x.out;
  EXPECT_EQ(json::parse(bf16_x.out)["system"]["matmul_bfloat16"].get<std::string>().find("x rounded to bf16 (--decode-x") !=
                std::string::npos,
            amx::Bf16DotsUsable());
  EXPECT_EQ(sys["matmul_bfloat16"].get<std::string>().find("--decode-x"), std::string::npos) << "no bf16 x by default";
  const RunResult bad_x = RunCli(run + " --decode-x half" + Fast());
  EXPECT_EQ(bad_x.exit_code, 2);
  EXPECT_EQ(bad_x.out.rfind("error: --decode-x must be auto, float32, float16 or bf16", 0), 0) << bad_x.out;
  // float16 x: named where auto rounds (AMD AVX-512), always with --decode-x float16, never with float32.
  EXPECT_EQ(sys["matmul_float16"].get<std::string>().find("x rounded to float16") != std::string::npos,
            CpuDecodeHalfX())
      << sys["matmul_float16"];
  const RunResult f16_x = RunCli(run + " --decode-x float16" + Fast());
  ASSERT_EQ(f16_x.exit_code, 0) << f16_x.out;
  EXPECT_NE(json::parse(f16_x.out)["system"]["matmul_float16"].get<std::string>().find("(--decode-x float16)"),
            std::string::npos);
  const RunResult f32_x = RunCli(run + " --decode-x float32" + Fast());
  ASSERT_EQ(f32_x.exit_code, 0) << f32_x.out;
  EXPECT_EQ(json::parse(f32_x.out)["system"]["matmul_bfloat16"].get<std::string>().find("float16"), std::string::npos);
}

// Quantized decode names its unit: int8 VNNI dot products where the CPU has
// AVX-512 VNNI, AVX2's int8 dot products on other x86 CPUs, float32
// activations with --int8-dot off (and on CPUs without AVX2).
TEST_F(Cli, Int8DotIsRecordedAndOffMeansFloatActivations) {
  const std::string run = "--load-format dummy --model-config " + FixtureModel("mha_tied_f32") +
                          "/config.json --dtype q4_0 --prompt-lengths 32 --gen-lengths 2 --format json --quiet";
  const RunResult on = RunCli(run + Fast());
  ASSERT_EQ(on.exit_code, 0) << on.out;
  const json sys = json::parse(on.out)["system"];
  for (const char* key : {"matmul_q8_0", "matmul_q4_0", "matmul_q4_k", "matmul_q6_k"}) {
    ASSERT_TRUE(sys.contains(key)) << key;
    const bool vnni = sys[key].get<std::string>().find("VNNI int8") != std::string::npos;
    EXPECT_EQ(vnni, static_cast<bool>(__builtin_cpu_supports("avx512vnni"))) << sys[key];
    if (__builtin_cpu_supports("avx2")) {
      EXPECT_NE(sys[key].get<std::string>().find("int8 dot"), std::string::npos) << sys[key];
    }
  }
  const RunResult off = RunCli(run + " --int8-dot off" + Fast());
  ASSERT_EQ(off.exit_code, 0) << off.out;
  EXPECT_EQ(json::parse(off.out)["system"]["matmul_q4_0"].get<std::string>().find("int8"), std::string::npos);
  const RunResult bad = RunCli(run + " --int8-dot sometimes" + Fast());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.out.rfind("error: --int8-dot must be auto or off", 0), 0) << bad.out;
}

// Repacking for the VNNI decode kernel is recorded per type where it happens
// (AVX-512 VNNI), and --repack off keeps the row-major kernels; the weight
// bytes in the memory ledger grow by the copy.
TEST_F(Cli, RepackIsRecordedAndOffKeepsRowMajorWeights) {
  const std::string run = "--load-format dummy --model-config " + FixtureModel("mha_tied_f32") +
                          "/config.json --dtype q8_0 --prompt-lengths 32 --gen-lengths 2 --format json --quiet";
  const RunResult on = RunCli(run + Fast());
  ASSERT_EQ(on.exit_code, 0) << on.out;
  const json j_on = json::parse(on.out);
  const bool vnni = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi");
  for (const char* key : {"matmul_q8_0", "matmul_q4_0", "matmul_q4_k", "matmul_q6_k"}) {
    EXPECT_EQ(j_on["system"][key].get<std::string>().find("repacked") != std::string::npos, vnni) << j_on["system"][key];
  }
  // mha_tied_f32 at q8_0: every projection has 64 or 96 rows (whole 16-row groups), lm_head 256.
  EXPECT_EQ(j_on["memory"]["repacked_weight_bytes"].get<int64_t>() > 0, vnni);
  EXPECT_EQ(j_on["model"]["repack_time_s"].get<double>() > 0, vnni);
  const RunResult off = RunCli(run + " --repack off" + Fast());
  ASSERT_EQ(off.exit_code, 0) << off.out;
  const json j_off = json::parse(off.out);
  EXPECT_EQ(j_off["system"]["matmul_q8_0"].get<std::string>().find("repacked"), std::string::npos);
  EXPECT_EQ(j_off["memory"]["repacked_weight_bytes"], 0);
  const RunResult bad = RunCli(run + " --repack always" + Fast());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.out.rfind("error: --repack must be auto or off", 0), 0) << bad.out;
}

// --mmap off (auto's choice on the CPU) copies the weights out of the file, --mmap on reads
// them from the mapping: the same tokens, recorded in settings.mmap (and as
// llama-bench's load_mode); a bad value is refused.
TEST_F(Cli, MmapOffGivesTheSameTokensAndIsRecorded) {
  const std::string base = "--model-path " + FixtureModel("mha_tied_f32") +
                           " --dtype float32 --prompt-lengths 8 --gen-lengths 4 --quiet";
  const std::string run = base + " --format json";
  const RunResult on = RunCli(run + " --mmap on" + Fast());
  const RunResult off = RunCli(run + Fast());
  const RunResult explicit_off = RunCli(run + " --mmap off" + Fast());
  ASSERT_EQ(explicit_off.exit_code, 0) << explicit_off.out;
  EXPECT_EQ(json::parse(explicit_off.out)["settings"]["mmap"], false);
  ASSERT_EQ(on.exit_code, 0) << on.out;
  ASSERT_EQ(off.exit_code, 0) << off.out;
  const json j_on = json::parse(on.out), j_off = json::parse(off.out);
  EXPECT_EQ(j_on["settings"]["mmap"], true);
  EXPECT_EQ(j_off["settings"]["mmap"], false);
  ASSERT_EQ(j_on["runs"].size(), j_off["runs"].size());
  for (size_t i = 0; i < j_on["runs"].size(); ++i) {
    EXPECT_EQ(j_on["runs"][i]["generated_token_ids"], j_off["runs"][i]["generated_token_ids"]) << i;
    EXPECT_FALSE(j_off["runs"][i]["generated_token_ids"].empty());
  }
  const RunResult lb = RunCli(base + " --format llama-bench-jsonl" + Fast());
  ASSERT_EQ(lb.exit_code, 0) << lb.out;
  EXPECT_EQ(json::parse(lb.out.substr(0, lb.out.find('\n')))["load_mode"], "none") << lb.out;
  const RunResult lb_on = RunCli(base + " --mmap on --format llama-bench-jsonl" + Fast());
  ASSERT_EQ(lb_on.exit_code, 0) << lb_on.out;
  EXPECT_EQ(json::parse(lb_on.out.substr(0, lb_on.out.find('\n')))["load_mode"], "mmap") << lb_on.out;
  const RunResult bad = RunCli(run + " --mmap maybe" + Fast());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.out.rfind("error: --mmap must be auto, on or off", 0), 0) << bad.out;
}

TEST_F(Cli, ModelPathPriority) {
  const std::string env = "LLAMA_MODEL_PATH=" + FixtureModel("mha_tied_f32");
  RunResult r = RunCli("--dtype float32 --max-gen-len 2 --prompt hi" + Fast(), env);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(ReadJson(Results())["model"]["source"], FixtureModel("mha_tied_f32"));
  // --model-path wins over the environment.
  r = RunCli("--model-path " + FixtureModel("linear_mqa_f32") + " --max-gen-len 2 --prompt hi" + Fast(), env);
  EXPECT_NE(r.exit_code, 0);  // that fixture has no tokenizer: proves the flag, not the env, was used
  EXPECT_NE(r.out.find("linear_mqa_f32"), std::string::npos) << r.out;
  // Then --model-name through the Hugging Face cache.
  TempDir hf;
  const std::string repo = hf.path() + "/models--test-org--tiny-llama";
  const std::string commit = "abc1230000000000000000000000000000000000";  // refs hold a full commit id
  std::system(("mkdir -p " + repo + "/refs " + repo + "/snapshots/" + commit + " && echo " + commit + " > " + repo +
               "/refs/main && cp -r " + FixtureModel("mha_tied_f32") + "/. " + repo + "/snapshots/" + commit + "/")
                  .c_str());
  r = RunCli("--model-name test-org/tiny-llama --max-gen-len 2 --prompt hi" + Fast(), "HF_HUB_CACHE=" + hf.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(ReadJson(Results())["model"]["name"], "test-org/tiny-llama");
  // --revision picks refs/<revision>; an unknown one is not in the cache.
  std::system(("cp " + repo + "/refs/main " + repo + "/refs/v1").c_str());
  r = RunCli("--model-name test-org/tiny-llama --revision v1 --max-gen-len 2 --prompt hi" + Fast(),
             "HF_HUB_CACHE=" + hf.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  r = RunCli("--model-name test-org/tiny-llama --revision v2 --max-gen-len 2 --prompt hi" + Fast(),
             "HF_HUB_OFFLINE=1 HF_HUB_CACHE=" + hf.path() + " LLAMA_MODEL_PATH=");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("revision v2"), std::string::npos) << r.out;
  // Nothing anywhere: the message lists the ways to give a model.
  r = RunCli("--model-name test-org/absent" + Fast(), "HF_HUB_OFFLINE=1 HF_HUB_CACHE=" + hf.path() + " LLAMA_MODEL_PATH=");
  EXPECT_EQ(r.exit_code, 2);
  for (const char* way : {"--model-path", "LLAMA_MODEL_PATH", "--model-name", "--load-format dummy"}) {
    EXPECT_NE(r.out.find(way), std::string::npos) << way << ": " << r.out;
  }
}

std::vector<int> GeneratedIds(const json& j, size_t run = 0) {
  return j["runs"][run]["generated_token_ids"].get<std::vector<int>>();
}

TEST_F(Cli, PromptFileThreadsWarmupRepetitionsAndQuiet) {
  testing::WriteFile(out_.path() + "/prompts.txt", "once upon a time\n\nthe lazy dog\n");
  const RunResult r = RunCli("--model-path " + FixtureModel("mha_tied_f32") + " --prompt-file " + out_.path() +
                             "/prompts.txt --threads 1 --warmup 2 --repetitions 3 --max-gen-len 3 --quiet --output-dir " +
                             out_.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.find("loading model"), std::string::npos) << "--quiet still printed progress";
  const json j = ReadJson(Results());
  ASSERT_EQ(j["runs"].size(), 2u);  // the blank line is skipped
  EXPECT_EQ(j["runs"][1]["name"], "Prompt 2");
  EXPECT_EQ(j["runs"][0]["repetitions"].size(), 3u);
  EXPECT_EQ(j["settings"]["threads"], 1);
  EXPECT_EQ(j["settings"]["warmup"], 2);
  const RunResult loud = RunCli("--model-path " + FixtureModel("mha_tied_f32") + " --max-gen-len 1 --prompt hi" + Fast());
  EXPECT_NE(loud.out.find("device: auto -> cpu"), std::string::npos) << loud.out;
}

// --roof-probe: the read bandwidth beside each timed repetition, and decode's
// weight reads (weight_bytes x decode tokens/s) over the higher of the two.
TEST_F(Cli, RoofProbeMeasuresBesideEachRepetition) {
  const std::string args = "--model-path " + FixtureModel("mha_tied_f32") +
                           " --prompt hi --max-gen-len 4 --ignore-eos --warmup 1 --repetitions 2 --output-dir " +
                           out_.path();
  const RunResult r = RunCli(args + " --roof-probe");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("of the read bandwidth measured beside it"), std::string::npos) << r.out;
  const json j = ReadJson(Results());
  const double bytes = j["model"]["weight_bytes"].get<double>();
  const json& run = j["runs"][0];
  ASSERT_EQ(run["repetitions"].size(), 2u);  // the warm-up is not probed
  for (const json& rep : run["repetitions"]) {
    const double before = rep["read_gbps_before"].get<double>(), after = rep["read_gbps_after"].get<double>();
    EXPECT_GT(before, 0.1);
    EXPECT_GT(after, 0.1);
    const double reads = rep["decode_weight_read_gbps"].get<double>();
    EXPECT_NEAR(reads, bytes * rep["decode_tokens_per_sec"].get<double>() / 1e9, 1e-9 * reads);
    EXPECT_NEAR(rep["decode_of_read_beside"].get<double>(), reads / std::max(before, after), 1e-9);
  }
  EXPECT_EQ(run["read_roof_beside"]["decode_fraction"]["n"], 2);
  EXPECT_EQ(run["read_roof_beside"]["before_gbps"]["n"], 2);
  // Without the flag: decode's reads, no probe.
  const RunResult plain = RunCli(args);
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  const json p = ReadJson(Results());
  EXPECT_GT(p["runs"][0]["decode_weight_read_gbps"].get<double>(), 0);
  EXPECT_FALSE(p["runs"][0].contains("read_roof_beside"));
  EXPECT_FALSE(p["runs"][0]["repetitions"][0].contains("read_gbps_before"));
  EXPECT_EQ(plain.out.find("measured beside it"), std::string::npos);
}

TEST_F(Cli, SeedFixesDummyWeightsAndSampling) {
  // A small architecture keeps this fast: the fixture's config.json as --model-config.
  const std::string small = "--load-format dummy --model-config " + FixtureModel("gqa_odd_bias_f16") +
                            "/config.json --dtype float32 --gen-lengths 12 --quiet" + Fast();
  ASSERT_EQ(RunCli(small + " --seed 1").exit_code, 0);
  const auto a = GeneratedIds(ReadJson(Results()));
  ASSERT_EQ(RunCli(small + " --seed 1").exit_code, 0);
  EXPECT_EQ(GeneratedIds(ReadJson(Results())), a);
  ASSERT_EQ(RunCli(small + " --seed 2").exit_code, 0);
  EXPECT_NE(GeneratedIds(ReadJson(Results())), a);
  const std::string sampled = small + " --seed 5 --temperature 1.5 --top-k 50 --top-p 0.95";
  ASSERT_EQ(RunCli(sampled).exit_code, 0);
  const json s1 = ReadJson(Results());
  EXPECT_EQ(s1["settings"]["top_k"], 50);
  ASSERT_EQ(RunCli(sampled).exit_code, 0);
  EXPECT_EQ(GeneratedIds(ReadJson(Results())), GeneratedIds(s1));
  EXPECT_NE(GeneratedIds(s1), a) << "sampling at temperature 1.5 produced the greedy sequence";
}

TEST_F(Cli, StopsAtEosUnlessIgnoreEos) {
  // Find the first greedy token, then declare it the end-of-sequence id.
  const std::string prompt = " --prompt 'once upon a time' --max-gen-len 6";
  ASSERT_EQ(RunCli("--model-path " + FixtureModel("mha_tied_f32") + prompt + Fast()).exit_code, 0);
  const int first = GeneratedIds(ReadJson(Results()))[0];
  TempDir model;
  std::system(("cp -r " + FixtureModel("mha_tied_f32") + "/. " + model.path()).c_str());
  // generation_config.json's list is the stop set (as Llama 3 Instruct's is).
  std::string cfg = testing::ReadFile(model.path() + "/generation_config.json");
  cfg.replace(cfg.find("\"eos_token_id\": 2"), 17, "\"eos_token_id\": [2, " + std::to_string(first) + "]");
  testing::WriteFile(model.path() + "/generation_config.json", cfg);
  ASSERT_EQ(RunCli("--model-path " + model.path() + prompt + Fast()).exit_code, 0);
  json j = ReadJson(Results());
  EXPECT_EQ(j["runs"][0]["generated_tokens"], 1);
  EXPECT_EQ(j["runs"][0]["stop_reason"], "eos");
  ASSERT_EQ(RunCli("--model-path " + model.path() + prompt + " --ignore-eos" + Fast()).exit_code, 0);
  j = ReadJson(Results());
  EXPECT_EQ(j["runs"][0]["generated_tokens"], 6);
  EXPECT_EQ(j["runs"][0]["stop_reason"], "max_gen_len");
}

TEST_F(Cli, VerifyAndReferenceKernelsAgreeWithTheFastPath) {
  const std::string args = "--model-path " + FixtureModel("linear_mqa_f32") + " --load-format safetensors";
  // This fixture has no tokenizer: synthetic prompts exercise the token-id path.
  ASSERT_EQ(RunCli(args + " --dtype float32 --gen-lengths 10 --verify" + Fast()).exit_code, 0);
  const json fast = ReadJson(Results());
  EXPECT_EQ(fast["verify"]["tokens_compared"], 16);
  EXPECT_EQ(fast["verify"]["tokens_agreeing"], 16);
  const RunResult r = RunCli(args + " --dtype float32 --gen-lengths 10 --kernels reference" + Fast());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const json ref = ReadJson(Results());
  EXPECT_EQ(ref["settings"]["kernels"], "reference");
  EXPECT_EQ(GeneratedIds(ref), GeneratedIds(fast));
}

TEST_F(Cli, ProfileWritesTraceStatsAndJson) {
  TempDir cache;
  const std::string env = "XDG_CACHE_HOME=" + cache.path();
  const RunResult r = RunCli("--model-path " + FixtureModel("mha_tied_f32") +
                             " --dtype float32 --prompt 'once upon a time' --max-gen-len 6 --profile --profile-steps 0,1,3"
                             " --profile-overhead" + Fast(), env);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* f : {"/profiler_trace.json", "/profiler_stats.txt", "/profiler_stats.json"}) {
    EXPECT_TRUE(Exists(out_.path() + f)) << f;
  }
  EXPECT_NE(r.out.find("Bottlenecks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Profiler overhead"), std::string::npos) << r.out;
  const json j = ReadJson(Results());
  EXPECT_GT(j["profile"]["events"].get<int>(), 0);
  EXPECT_TRUE(j["profile_overhead"].contains("overhead_pct"));
  const json stats = ReadJson(out_.path() + "/profiler_stats.json");
  EXPECT_EQ(stats["phases"]["decode"]["steps"], 3);
  EXPECT_GT(stats["calibration"]["read_gbps"].get<double>(), 0);
  EXPECT_TRUE(Exists(cache.path() + "/llama-speedbench/calibration.json"));
}

TEST_F(Cli, CalibrateAloneAndBadProfileSteps) {
  TempDir cache;
  const RunResult c = RunCli("--calibrate --threads 1", "XDG_CACHE_HOME=" + cache.path());
  ASSERT_EQ(c.exit_code, 0) << c.out;
  EXPECT_NE(c.out.find("read bandwidth"), std::string::npos);
  EXPECT_NE(c.out.find("FMA peak"), std::string::npos);
  const RunResult bad = RunCli("--model-path " + FixtureModel("mha_tied_f32") + " --profile --profile-steps x" + Fast());
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("--profile-steps"), std::string::npos) << bad.out;
}

// Two --prompt with --batch-size 2 are one batch: both sequences' ids come
// back, each equal to its run alone; a sweep reports llama-batched-bench's
// columns per batch size, and the KV cache grows with the batch.
TEST_F(Cli, BatchOfPromptsAndBatchSweep) {
  const std::string model = " --model-path " + FixtureModel("mha_tied_f32") + " --device cpu --dtype float32";
  std::vector<json> alone;
  for (const char* p : {"'Hello there'", "'A much longer prompt about many things'"}) {
    ASSERT_EQ(RunCli(model + " --prompt " + p + " --max-gen-len 6 --ignore-eos --quiet" + Fast()).exit_code, 0);
    alone.push_back(ReadJson(Results())["runs"][0]);
  }
  const RunResult r = RunCli(model + " --prompt 'Hello there' --prompt 'A much longer prompt about many things'"
                             " --batch-size 2 --max-gen-len 6 --ignore-eos --quiet" + Fast());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("BATCHES (llama-batched-bench columns"), std::string::npos) << r.out;
  const json j = ReadJson(Results());
  ASSERT_EQ(j["runs"].size(), 1u);
  const json& run = j["runs"][0];
  EXPECT_EQ(run["batch_size"], 2);
  ASSERT_EQ(run["sequences"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(run["sequences"][i]["prompt_token_ids"], alone[i]["prompt_token_ids"]) << i;
    EXPECT_EQ(run["sequences"][i]["generated_token_ids"], alone[i]["generated_token_ids"]) << i;
  }
  EXPECT_EQ(run["batched_bench"]["B"], 2);
  EXPECT_GT(run["total_tokens_per_sec"].get<double>(), 0);

  const RunResult sweep = RunCli(model + " --prompt-lengths 8 --gen-lengths 4 --batch-sizes 1,3 --quiet" + Fast());
  ASSERT_EQ(sweep.exit_code, 0) << sweep.out;
  const json s = ReadJson(Results());
  ASSERT_EQ(s["runs"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const json& b = s["runs"][i]["batched_bench"];
    const int B = i == 0 ? 1 : 3;
    EXPECT_EQ(s["runs"][i]["batch_size"], B);
    EXPECT_EQ(b["PP"], 8);
    EXPECT_EQ(b["TG"], 4);
    EXPECT_EQ(b["B"], B);
    EXPECT_EQ(b["N_KV"], B * (8 + 4 - 1));  // the last token is never fed back
    EXPECT_NEAR(b["S_TG"].get<double>(), B * 3 / b["T_TG"].get<double>(), 1e-6 * b["S_TG"].get<double>());
    // Sequences of a synthetic batch have their own prompts.
    ASSERT_EQ(s["runs"][i]["sequences"].size(), static_cast<size_t>(B));
    if (B == 3) {
      EXPECT_NE(s["runs"][i]["sequences"][0]["prompt_token_ids"], s["runs"][i]["sequences"][1]["prompt_token_ids"]);
    }
  }
  EXPECT_EQ(s["runs"][1]["kv_cache_bytes"].get<size_t>(), 3 * s["runs"][0]["kv_cache_bytes"].get<size_t>());

  // --shared-prompt: one prefill (S_PP counts it once), every sequence continues it.
  ASSERT_EQ(RunCli(model + " --prompt-lengths 8 --gen-lengths 4 --batch-size 3 --shared-prompt --quiet" + Fast()).exit_code, 0);
  const json shared = ReadJson(Results())["runs"][0];
  EXPECT_TRUE(shared["shared_prompt"].get<bool>());
  EXPECT_EQ(shared["sequences"][0]["generated_token_ids"], shared["sequences"][2]["generated_token_ids"]);
  EXPECT_EQ(shared["batched_bench"]["N_KV"], 8 + 3 * 3);
}

TEST_F(Cli, BadInputGetsOneLineExitTwoAndNoOutputFile) {
  const std::string model = " --model-path " + FixtureModel("mha_tied_f32");
  TempDir broken;
  std::system(("cp -r " + FixtureModel("mha_tied_f32") + "/. " + broken.path()).c_str());
  std::system(("truncate -s 1000 " + broken.path() + "/model.safetensors").c_str());
  const std::string long_prompt(3000, 'x');
  struct Case { std::string args; std::string expect; };
  const std::vector<Case> cases = {
      {"--dtype float8" + model, "--dtype"},
      {"--max-gen-len -1" + model, "--max-gen-len"},
      {"--no-such-flag" + model, "no-such-flag"},
      {"--device tpu" + model, "--device"},
      {"--top-p 1.5" + model, "--top-p"},
      {"--device cuda" + model, "CUDA"},
      {"--max-seq-len 16 --prompt '" + long_prompt + "'" + model, "--max-seq-len"},
      {"--model-path /nonexistent/model", "/nonexistent/model"},
      {"--model-path " + broken.path(), "model.safetensors"},
      {"--load-format dummy --model-config no-such-arch", "no-such-arch"},
      {"--batch-size 0" + model, "--batch-size"},
      {"--batch-sizes 1,0" + model, "--batch-sizes"},
      {"--batch-size 2 --batch-sizes 1,2" + model, "not both"},
      {"--batch-size 5000" + model, "--batch-size"},
  };
  for (const Case& c : cases) {
    const RunResult r = RunCli(c.args + " --quiet" + Fast());
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find("error:"), std::string::npos) << r.out;
    EXPECT_FALSE(Exists(Results())) << "partial results left by: " << c.args;
  }
  const RunResult r = RunCli("--output-dir /proc/version/x" + model + " --quiet");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--output-dir"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace llm
