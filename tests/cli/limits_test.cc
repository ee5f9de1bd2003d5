// The speed_benchmark binary on hostile values (issue 14, part B): flags at the
// edge of their types, prompts shaped like lists, prompts and models too large
// for the machine, weights that hold NaN or overflow float16, and the config
// record of the results file. Each case names what used to go wrong.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace llm {
namespace {

using nlohmann::json;
using testing::FixtureModel;
using testing::TempDir;

using RunResult = testing::CliRun;

// Runs the binary with `args` (a shell command line, so quoting is the shell's).
RunResult RunCli(const std::string& args, const std::string& env = "") {
  return testing::RunShell(env + " " + std::string(LLM_SPEED_BENCHMARK) + " " + args);
}

bool Exists(const std::string& path) { return std::ifstream(path).good(); }

class Limits : public ::testing::Test {
 protected:
  std::string Fast() const { return " --quiet --warmup 0 --repetitions 1 --output-dir " + out_.path(); }
  std::string Results() const { return out_.path() + "/benchmark_results.json"; }
  json ReadResults() const {
    std::ifstream in(Results());
    return json::parse(in);
  }
  // A clean refusal: exit 2, one error line naming `expect`, no results file.
  void ExpectRefused(const std::string& args, const std::string& expect, const std::string& env = "") {
    std::remove(Results().c_str());
    const RunResult r = RunCli(args + Fast(), env);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.out;
    EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(expect), std::string::npos) << args << "\n" << r.out;
    EXPECT_FALSE(Exists(Results())) << "results written by: " << args;
  }
  TempDir out_;
  const std::string model_ = " --model-path " + FixtureModel("mha_tied_f32") + " --dtype float32";
  const std::string dummy_ = " --load-format dummy --model-config " + FixtureModel("mha_tied_f32") + "/config.json";
};

// Before: --warmup 2147483647 ran nothing and wrote a result with zero runs
// (warmup + repetitions wrapped); --gen-lengths 2147483647 skipped the
// positions check; NaN passed `temperature < 0`; --seed -1 ran as 2^64-1.
TEST_F(Limits, FlagValuesAtTheEdgeOfTheirTypesAreRefused) {
  ExpectRefused("--warmup 2147483647" + model_, "--warmup");
  ExpectRefused("--repetitions 2147483647" + model_, "--repetitions");
  ExpectRefused("--gen-lengths 2147483647" + dummy_, "--max-seq-len");
  ExpectRefused("--gen-lengths 1 --depths 500000000" + dummy_, "--max-seq-len");
  ExpectRefused("--prompt-lengths 2147483647" + dummy_, "--max-seq-len");
  for (const char* t : {"nan", "inf", "-inf", "1e-45", "-1"}) ExpectRefused(std::string("--temperature ") + t + model_, "--temperature");
  ExpectRefused("--seed -1" + model_, "--seed");
  // It used to become one second.
  for (const char* t : {"abc", "0", "1.5", "-3", "99999999999999999999"}) {
    ExpectRefused("--model-name org/name", "HF_HUB_DOWNLOAD_TIMEOUT",
                  std::string("HF_HUB_OFFLINE=1 LLAMA_MODEL_PATH= HF_HUB_CACHE=") + out_.path() + " HF_HUB_DOWNLOAD_TIMEOUT=" + t);
  }
}

// Before: --max-gen-len 2147483647 ended in "internal failure: std::bad_alloc"
// (tokens reserved up front), and with --profile the event buffer asked for
// terabytes; --profile-steps sums overflowed int. Generation is bounded by the
// KV cache, so both run.
TEST_F(Limits, HugeGenerationAndProfileFlagsReserveOnlyWhatTheCacheAllows) {
  TempDir cache;  // the calibration the profile needs goes here, not to the user's cache
  const std::string env = "XDG_CACHE_HOME=" + cache.path();
  const RunResult r = RunCli("--max-gen-len 2147483647 --max-seq-len 24 --prompt 'once upon a time' --ignore-eos --profile "
                             "--profile-steps 2147483647,2147483647,2147483647" + model_ + Fast(), env);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const json j = ReadResults();
  EXPECT_EQ(j["runs"][0]["stop_reason"], "max_seq_len");
  EXPECT_EQ(j["runs"][0]["prompt_tokens"].get<int>() + j["runs"][0]["generated_tokens"].get<int>(), 25);
  const RunResult w =
      RunCli("--max-gen-len 3 --prompt hi --profile --profile-steps 2147483647,2147483647,5" + model_ + Fast(), env);
  EXPECT_EQ(w.exit_code, 0) << w.out;
}

// Before: 1000 threads took 24 s for a 2-token run, 10000 never finished.
TEST_F(Limits, ThreadsAreCappedAtTheMachine) {
  const RunResult r = RunCli("--threads 10000 --max-gen-len 2 --prompt hi" + model_ + Fast());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("warning: --threads 10000"), std::string::npos) << r.out;
  EXPECT_EQ(ReadResults()["settings"]["threads"].get<int>(), AvailableCpuThreads());
}

// Before: CLI11 read "[...]" as a list: "[INST] ... [/INST]" lost its outer
// brackets, "[1, 2, 3]" became three prompts and "[]" swallowed the flags after it.
TEST_F(Limits, PromptsArriveByteForByte) {
  auto tok = LoadTokenizer(FixtureModel("mha_tied_f32"));
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  for (const std::string text : {"[INST] What is 2+2? [/INST]", "[1, 2, 3]", "[]", "[a,b]", " spaced ,, out "}) {
    const RunResult r = RunCli("--prompt '" + text + "' --max-gen-len 1" + model_ + Fast());
    ASSERT_EQ(r.exit_code, 0) << text << "\n" << r.out;
    const json j = ReadResults();
    ASSERT_EQ(j["runs"].size(), 1u) << text;
    EXPECT_EQ(j["runs"][0]["prompt_token_ids"].get<std::vector<int32_t>>(), tok.value()->Encode(text, true).value())
        << "'" << text << "' did not reach the tokenizer unchanged";
  }
  const RunResult two = RunCli("--prompt '[x]' --prompt '[y, z]' --max-gen-len 1" + model_ + Fast());
  ASSERT_EQ(two.exit_code, 0) << two.out;
  EXPECT_EQ(ReadResults()["runs"].size(), 2u);
}

// Before: a 52 MB one-line prompt file was tokenized for 86 s, then refused.
TEST_F(Limits, APromptThatCannotFitIsRefusedBeforeTokenizing) {
  std::string line;
  while (line.size() < (4u << 20)) line += "once upon a time the quick brown fox ";
  testing::WriteFile(out_.path() + "/big.txt", line + "\n");
  ExpectRefused("--prompt-file " + out_.path() + "/big.txt" + model_, "at least");
  // Random weights use the byte-level tokenizer (bytes = tokens); this config's vocabulary holds it.
  ExpectRefused("--prompt-file " + out_.path() + "/big.txt --load-format dummy --model-config " +
                    FixtureModel("gqa_odd_bias_f16") + "/config.json",
                "at least");
  // The bound is exact for bytes: BOS + 15 bytes fit 16 positions, 16 do not.
  const std::string bytes = " --max-seq-len 16 --max-gen-len 1 --load-format dummy --model-config " +
                            FixtureModel("gqa_odd_bias_f16") + "/config.json";
  const RunResult fits = RunCli("--prompt " + std::string(15, 'x') + bytes + Fast());
  EXPECT_EQ(fits.exit_code, 0) << fits.out;
  ExpectRefused("--prompt " + std::string(16, 'x') + bytes, "at least 17 tokens");
}

// Before: weights, KV cache (memset in full) and scratch were allocated
// without a look at the memory available: the kernel's OOM killer answered.
TEST_F(Limits, AModelLargerThanTheMachineIsRefusedWithTheFigures) {
  ExpectRefused("--gen-lengths 1 --max-seq-len 2000000000" + dummy_, "KV cache");
  ExpectRefused("--gen-lengths 1 --max-seq-len 2000000000" + dummy_, "available; lower --max-seq-len");
  TempDir cfg;
  std::string c = testing::ReadFile(FixtureModel("mha_tied_f32") + "/config.json");
  auto j = json::parse(c);
  j["hidden_size"] = 65536;
  j["intermediate_size"] = 262144;
  j["num_hidden_layers"] = 1024;
  j["num_attention_heads"] = 512;
  j["num_key_value_heads"] = 512;
  testing::WriteFile(cfg.path() + "/config.json", j.dump());
  ExpectRefused("--load-format dummy --model-config " + cfg.path() + "/config.json --gen-lengths 1", "weights");
}

// Writes `value` into element 5 of a float32 tensor of a copy of linear_mqa_f32.
void PoisonTensor(const std::string& dir, const std::string& tensor, float value) {
  std::system(("cp -r " + FixtureModel("linear_mqa_f32") + "/. " + dir).c_str());
  auto file = SafetensorsFile::Open(dir + "/model.safetensors");
  ASSERT_TRUE(file.ok());
  const size_t offset = file.value()->tensors().at(tensor).offset + 5 * sizeof(float);
  file = InvalidArgument("closed");
  std::fstream f(dir + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(reinterpret_cast<const char*>(&value), sizeof(value));
}

// Before: NaN/Inf weights, or float32 weights beyond float16's range loaded
// with --dtype float16, benchmarked happily and generated token 0 forever.
TEST_F(Limits, NonFiniteWeightsFailNamingTheTensor) {
  const std::string t = "model.layers.1.mlp.down_proj.weight";
  TempDir nan_model, big_model;
  PoisonTensor(nan_model.path(), t, NAN);
  PoisonTensor(big_model.path(), t, 1e6f);
  const std::string synth = " --load-format safetensors --gen-lengths 4";
  // float32: used in place, caught by the logits check after the run.
  ExpectRefused("--model-path " + nan_model.path() + " --dtype float32" + synth, "non-finite logits");
  ExpectRefused("--model-path " + nan_model.path() + " --dtype float32" + synth, t);
  // Converted at load: caught there.
  ExpectRefused("--model-path " + nan_model.path() + " --dtype bfloat16" + synth, t);
  ExpectRefused("--model-path " + big_model.path() + " --dtype float16" + synth, "beyond the range of float16");
  const RunResult ok = RunCli("--model-path " + big_model.path() + " --dtype bfloat16" + synth + Fast());
  EXPECT_EQ(ok.exit_code, 0) << "1e6 fits bfloat16\n" << ok.out;
}

// Before: generation_config.json's eos_token_id [2, "3"] dropped the string
// silently where config.json refused it.
TEST_F(Limits, GenerationConfigIdsAreCheckedLikeConfigJson) {
  TempDir model;
  std::system(("cp -r " + FixtureModel("mha_tied_f32") + "/. " + model.path()).c_str());
  for (const char* eos : {"[2, \"3\"]", "1000000000000", "[]", "-1"}) {
    testing::WriteFile(model.path() + "/generation_config.json", std::string("{\"eos_token_id\": ") + eos + "}");
    ExpectRefused("--model-path " + model.path() + " --prompt hi --max-gen-len 1", "eos_token_id");
  }
}

// model.config records every field that changes the math (it omitted rope
// scaling, rms_norm_eps and the bias flags), and keeps its earlier keys.
TEST_F(Limits, ResultsRecordEveryConfigFieldThatChangesTheMath) {
  const RunResult r = RunCli("--model-path " + FixtureModel("gqa_odd_bias_f16") + " --gen-lengths 2" + Fast());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const json c = ReadResults()["model"]["config"];
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "num_key_value_heads", "head_dim", "vocab_size", "rope_theta", "tie_word_embeddings",
                          "rms_norm_eps", "attention_bias", "mlp_bias", "rope_scaling", "max_position_embeddings",
                          "hidden_act", "eos_token_id", "bos_token_id"}) {
    EXPECT_TRUE(c.contains(key)) << key << " missing from " << c.dump();
  }
  EXPECT_TRUE(c["attention_bias"].get<bool>() && c["mlp_bias"].get<bool>());
  EXPECT_NEAR(c["rms_norm_eps"].get<double>(), 1e-6, 1e-12);
  EXPECT_EQ(c["rope_scaling"]["rope_type"], "default");
  const RunResult l = RunCli("--model-path " + FixtureModel("linear_mqa_f32") + " --gen-lengths 2" + Fast());
  ASSERT_EQ(l.exit_code, 0) << l.out;
  const json lc = ReadResults()["model"]["config"]["rope_scaling"];
  EXPECT_EQ(lc["rope_type"], "linear");
  EXPECT_EQ(lc["factor"], 2.0);
}

}  // namespace
}  // namespace llm
