// The harness around the model: what RunBenchmark measures beside the
// generation (--roof-probe) and how the results carry it.
#include "bench/runner.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bench/report.h"
#include "core/thread_pool.h"
#include "kernels/ops.h"
#include "test_util.h"

namespace llm {
namespace {

// A scripted probe: each repetition gets its own (before, after) pair, and
// the fraction must use the higher of the two, whichever side it is on.
TEST(RoofProbe, ReadBesideEachTimedRepetitionAndDecodeOverTheHigherReading) {
  const std::string config_json = R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,
      "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":96})";
  ThreadPool pool(2);
  auto backend = MakeCpuBackend(&pool);
  ModelOptions mo;
  mo.max_seq_len = 32;
  auto model = testing::RandomModel(config_json, &pool, backend.get(), mo);
  ASSERT_TRUE(model.ok()) << model.status().message();

  const std::vector<double> script = {10, 40, 30, 20};  // rep 0: after is higher; rep 1: before
  size_t calls = 0;
  BenchOptions options;
  options.warmup = 1;
  options.repetitions = 2;
  options.quiet = true;
  options.decode_bytes_per_step = 2'000'000'000;  // reads = 2 x decode tokens/s
  options.read_probe = [&] { return calls < script.size() ? script[calls++] : -1.0; };
  const std::vector<BenchTest> tests = {BenchTest("probed", {1, 5, 7}, 6, true)};
  auto results = RunBenchmark(*model.value(), nullptr, tests, options);
  ASSERT_TRUE(results.ok()) << results.status().message();
  EXPECT_EQ(calls, 4u) << "the warm-up is not probed; each timed repetition twice";
  const BenchResult& r = results.value()[0];
  ASSERT_EQ(r.reps.size(), 2u);
  EXPECT_TRUE(r.read_probed);
  for (int i = 0; i < 2; ++i) {
    const RepetitionResult& rep = r.reps[i];
    EXPECT_EQ(rep.read_gbps_before, script[2 * i]);
    EXPECT_EQ(rep.read_gbps_after, script[2 * i + 1]);
    EXPECT_GT(rep.decode_tokens_per_sec, 0);
    EXPECT_DOUBLE_EQ(rep.decode_read_gbps, 2 * rep.decode_tokens_per_sec);
  }
  EXPECT_DOUBLE_EQ(r.reps[0].decode_of_read_beside, r.reps[0].decode_read_gbps / 40);
  EXPECT_DOUBLE_EQ(r.reps[1].decode_of_read_beside, r.reps[1].decode_read_gbps / 30);

  RunInfo info;
  info.config = model.value()->config();
  const nlohmann::json j = nlohmann::json::parse(ResultsJson(results.value(), info));
  const nlohmann::json& run = j["runs"][0];
  EXPECT_DOUBLE_EQ(run["repetitions"][1]["read_gbps_before"].get<double>(), 30);
  EXPECT_DOUBLE_EQ(run["read_roof_beside"]["after_gbps"]["max"].get<double>(), 40);
  EXPECT_EQ(run["read_roof_beside"]["decode_fraction"]["n"], 2);
  EXPECT_NE(FormatDetailTable(results.value(), info).find("of the read bandwidth measured beside it"),
            std::string::npos);

  // No probe: no calls, no probe fields, decode's reads still there.
  options.read_probe = nullptr;
  auto plain = RunBenchmark(*model.value(), nullptr, tests, options);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain.value()[0].read_probed);
  const nlohmann::json p = nlohmann::json::parse(ResultsJson(plain.value(), info));
  EXPECT_FALSE(p["runs"][0].contains("read_roof_beside"));
  EXPECT_GT(p["runs"][0]["decode_weight_read_gbps"].get<double>(), 0);
}

}  // namespace
}  // namespace llm
