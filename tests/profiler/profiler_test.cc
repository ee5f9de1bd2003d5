// The profiler: work formulas against hand-computed values, a recorded run on
// a fixture model checked against the Trace Event Format, self-time
// accounting, the step schedule, and calibration sanity.
#include "profiler/profiler.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "bench/calibration.h"
#include "bench/profile_report.h"
#include "bench/profile_run.h"
#include "core/thread_pool.h"
#include "kernels/ops.h"
#include "model/model_loader.h"
#include "model/weights.h"
#include "test_util.h"

namespace llm {
namespace {

TEST(ProfilerCosts, MatchHandComputedValues) {
  // TinyLlama gate_proj in decode: y[1, 5632] = x[1, 2048] W[5632, 2048]^T, bf16 weights.
  const OpCost mm = MatMulCost(1, 5632, 2048, 2);
  EXPECT_EQ(mm.flops, 2LL * 5632 * 2048);
  EXPECT_EQ(mm.bytes, 5632LL * 2048 * 2 + 4 * (2048 + 5632));
  const OpCost norm = RmsNormCost(3, 64, 4);
  EXPECT_EQ(norm.flops, 4 * 3 * 64);
  EXPECT_EQ(norm.bytes, 8 * 3 * 64 + 64 * 4);
  // Two query rows at positions 3 and 4 attend to 4 + 5 = 9 cache positions.
  AttentionArgs a;
  a.num_tokens = 2;
  a.start_pos = 3;
  a.num_heads = 4;
  a.cache.head_dim = 8;
  a.cache.num_kv_heads = 2;
  const SdpaWork w = SdpaCost(a);
  EXPECT_EQ(w.scores.flops, 2 * 4 * 8 * 9);
  EXPECT_EQ(w.scores.bytes, 4 * (2 * 5 * 8 + 2 * 4 * 8 + 4 * 9));
  EXPECT_EQ(w.softmax.flops, 5 * 4 * 9);
  EXPECT_EQ(w.weighted_sum.flops, 2 * 4 * 8 * 9);
  EXPECT_EQ(w.total.flops, w.scores.flops + w.softmax.flops + w.weighted_sum.flops);
  // Fused: the same FLOPs; memory sees K and V (2 KV heads x 5 positions x 8) and Q and O, no scores.
  EXPECT_EQ(w.fused.flops, w.total.flops);
  EXPECT_EQ(w.fused.bytes, 4 * (2 * 2 * 5 * 8 + 2 * 2 * 4 * 8));
  EXPECT_EQ(ElementwiseCost(10, 5, 3).bytes, 120);
}

// profiler_stats.txt of a prefill with one operator of `cost` on `unit`,
// against a fixed calibration (read 38 GB/s, FMA 480, AMX-BF16 7000 GFLOP/s).
std::string StatsOfOneOperator(const std::string& name, const OpCost& cost, ComputeUnit unit, double ms,
                               const std::string& phase = "prefill") {
  OpStats op;
  op.name = name;
  op.category = "test";
  op.calls = 1;
  op.self_ms = op.total_ms = ms;
  op.flops = static_cast<double>(cost.flops);
  op.bytes = static_cast<double>(cost.bytes);
  op.unit_flops[static_cast<int>(unit)] = op.flops;
  PhaseStats prefill;
  prefill.phase = phase;
  prefill.wall_ms = prefill.self_sum_ms = ms;
  prefill.steps = 1;
  prefill.ops = {op};
  ProfileSummary summary;
  summary.phases = {prefill};
  Calibration cal;
  cal.read_gbps = 38;
  cal.fma_gflops = 480;
  cal.amx_bf16_gflops = 7000;
  cal.threads = 2;
  cal.source = "fixed by the test";
  return FormatProfileStats(summary, cal, "test\n");
}

// TinyLlama pp512's attention of one layer (32 heads over 4 KV heads of 64).
OpCost TinyLlamaPrefillAttention() {
  AttentionArgs a;
  a.num_tokens = 512;
  a.num_heads = 32;
  a.cache.head_dim = 64;
  a.cache.num_kv_heads = 4;
  return SdpaCost(a).fused;
}

// Fused prefill attention on the tiles, as a TinyLlama pp512 layer gives it
// (1.1 GFLOP, 9.4 MB without the scores, 4 ms): judged on those bytes (114
// FLOP/byte, below the AMX ridge of 184: memory-bound, at 6% of the
// bandwidth, where the unfused count's 77 MB made it 50%), and its next
// step is not "fuse" (it is fused already).
TEST(ProfileReport, FusedAttentionIsJudgedWithoutTheScoreRoundTrip) {
  const std::string text =
      StatsOfOneOperator("attention.sdpa.fused", TinyLlamaPrefillAttention(), ComputeUnit::kAmxBf16, 4.0);
  EXPECT_NE(text.find("attention.sdpa.fused (4.000 ms self): memory-bound at 6% of measured bandwidth (2.4 of"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("far below its roof: the tile products are short"), std::string::npos) << text;
  EXPECT_EQ(text.find("avoids the score round trip"), std::string::npos) << text;
}

// The same attention fused on FMA (float32 / float16 models, 10 ms): past
// the FMA ridge (114 FLOP/byte against 480 / 38 = 12.6), compute-bound; its
// advice names the FMA path's own waste, not tiles.
TEST(ProfileReport, FusedAttentionOnFmaGetsItsOwnAdvice) {
  const std::string text =
      StatsOfOneOperator("attention.sdpa.fused", TinyLlamaPrefillAttention(), ComputeUnit::kFma, 10.0);
  EXPECT_NE(text.find("attention.sdpa.fused (10.000 ms self): compute-bound at 23% of measured FMA peak"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Vᵀ is rebuilt from the cache per call"), std::string::npos) << text;
  EXPECT_EQ(text.find("tile products"), std::string::npos) << text;
}

// The fused MLP GEMM (gate and up paired, silu * up in its epilogue) is a
// projection: compute-bound in prefill, its next step is the GEMM's, not
// "fuse" (the silu is fused already).
TEST(ProfileReport, FusedGateUpSiluIsJudgedAsAProjection) {
  const std::string text = StatsOfOneOperator("feed_forward.gate_up_silu", MatMulCost(512, 2 * 5632, 2048, 2),
                                              ComputeUnit::kAmxBf16, 12.0);
  EXPECT_NE(text.find("feed_forward.gate_up_silu (12.000 ms self): compute-bound at 28% of measured AMX-BF16 peak (1968.5 of"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("better GEMM"), std::string::npos) << text;
  EXPECT_EQ(text.find("fuse into the neighbouring projection"), std::string::npos) << text;
}

// Decode's q, k and v in one region (the CPU's GEMV) below the bandwidth
// roof: a better GEMV, not "fuse q/k/v" (the name holds "v_proj"); k_proj
// alone still gets that advice.
TEST(ProfileReport, FusedQkvInDecodeIsNotToldToFuse) {
  const OpCost qkv = MatMulCost(1, 2048 + 2 * 256, 2048, 2);  // 10.5 MB: 0.39 ms is 70% of 38 GB/s
  const std::string fused = StatsOfOneOperator("attention.qkv_proj", qkv, ComputeUnit::kFma, 0.394, "decode");
  EXPECT_NE(fused.find("attention.qkv_proj (0.394 ms self): memory-bound"), std::string::npos) << fused;
  EXPECT_NE(fused.find("better GEMV"), std::string::npos) << fused;
  EXPECT_EQ(fused.find("fuse q/k/v"), std::string::npos) << fused;
  const std::string alone = StatsOfOneOperator("attention.k_proj", MatMulCost(1, 256, 2048, 2), ComputeUnit::kFma,
                                               0.05, "decode");
  EXPECT_NE(alone.find("fuse q/k/v"), std::string::npos) << alone;
}

TEST(ProfilerNames, ModulePaths) {
  EXPECT_EQ(OpName(Op::kQProj, 3, -1), "layers.3.attention.q_proj");
  EXPECT_EQ(OpName(Op::kDownProj, 0, 2), "layers.0.feed_forward.down_proj");
  EXPECT_EQ(OpName(Op::kSdpaSoftmax, 1, 2), "layers.1.attention.sdpa.softmax");
  EXPECT_EQ(OpName(Op::kDecodeStep, -1, 7), "decode_step[7]");
  EXPECT_EQ(OpName(Op::kLmHead, -1, 7), "lm_head");
  EXPECT_EQ(OpName(Op::kLayer, 5, 0), "layers.5");
}

TEST(Profiler, RecordsNothingWhenInactive) {
  Profiler p(2, 100);
  { LLM_PROFILE(&p, Op::kQProj, 0); }
  EXPECT_TRUE(p.events(0).empty());
  p.set_active(true);
  { LLM_PROFILE(&p, Op::kQProj, 0); }
  EXPECT_EQ(p.events(0).size(), 1u);
}

// Records what a listener sees (CUDA uses one for NVTX and CUPTI correlation).
class RecordingListener : public ScopeListener {
 public:
  void OnBegin(Op op, int layer, int step) override { seen.push_back(OpName(op, layer, step)); }
  void OnEnd() override { seen.push_back("end"); }
  std::vector<std::string> seen;
};

TEST(Profiler, ListenerSeesRecordedScopesOnly) {
  Profiler p(1, 100);
  RecordingListener l;
  p.set_listener(&l);
  { LLM_PROFILE(&p, Op::kQProj, 0); }  // inactive: not seen
  p.set_active(true);
  p.set_step(4);
  {
    LLM_PROFILE(&p, Op::kLayer, 2);
    LLM_PROFILE(&p, Op::kQkvProj, 2);
  }
  EXPECT_EQ(l.seen, (std::vector<std::string>{"layers.2", "layers.2.attention.qkv_proj", "end", "end"}));
}

// GPU activity (as the CUDA engine hands it over from CUPTI) reaches the stats
// per operator and per copy kind, and the trace as a GPU process track.
TEST(Profiler, GpuActivityInStatsAndTrace) {
  Profiler p(1, 100);
  p.set_active(true);
  p.set_step(0);
  const int64_t t0 = NowNs();
  {
    LLM_PROFILE(&p, Op::kDecodeStep, -1);
  }
  std::vector<GpuActivity> gpu;
  auto kernel = [&](Op op, int layer, int64_t begin_us, int64_t dur_us, const char* name) {
    GpuActivity a;
    a.name = name;
    a.op = op;
    a.layer = static_cast<int16_t>(layer);
    a.step = 0;
    a.begin_ns = t0 + begin_us * 1000;
    a.end_ns = a.begin_ns + dur_us * 1000;
    a.stream = 7;
    a.in_graph = true;
    gpu.push_back(a);
  };
  kernel(Op::kGateUpSilu, 0, 0, 30, "GemvGateUpSiluKernel<__half>");
  kernel(Op::kGateUpSilu, 1, 40, 30, "GemvGateUpSiluKernel<__half>");
  kernel(Op::kQkvProj, 0, 80, 10, "GemvKernel<__half>");
  GpuActivity copy;
  copy.kind = GpuActivity::kMemcpy;
  copy.name = "memcpy DtoH";
  copy.bytes = 4;
  copy.stream = 7;
  copy.step = 0;
  copy.begin_ns = t0 + 100000;
  copy.end_ns = copy.begin_ns + 2000;
  gpu.push_back(copy);
  p.AddGpuActivities(gpu);
  p.AddNote("device: test GPU");

  const ProfileSummary s = SummarizeProfile(p);
  ASSERT_EQ(s.gpu_phases.size(), 1u);
  const GpuPhaseStats& g = s.gpu_phases[0];
  EXPECT_EQ(g.phase, "decode");
  EXPECT_EQ(g.graph_kernels, 3);
  ASSERT_EQ(g.ops.size(), 2u);
  EXPECT_EQ(g.ops[0].name, "feed_forward.gate_up_silu");  // by GPU time, summed over layers
  EXPECT_EQ(g.ops[0].calls, 2);
  EXPECT_NEAR(g.ops[0].gpu_ms, 0.060, 1e-9);
  EXPECT_EQ(g.ops[0].kernels, "GemvGateUpSiluKernel<__half>");
  ASSERT_EQ(g.copies.size(), 1u);
  EXPECT_EQ(g.copies[0].bytes, 4);
  const std::string text = FormatProfileStats(s, Calibration{}, "");
  EXPECT_NE(text.find("CUDA decode (CUPTI)"), std::string::npos) << text;
  EXPECT_NE(text.find("device: test GPU"), std::string::npos);

  const auto trace = nlohmann::json::parse(ChromeTraceJson(p, "test"));
  int gpu_events = 0;
  for (const auto& e : trace["traceEvents"]) {
    if (e["pid"] == 2 && e["ph"] == "X") {
      ++gpu_events;
      EXPECT_EQ(e["tid"], 7);
      EXPECT_TRUE(e["args"].contains("op"));
    }
  }
  EXPECT_EQ(gpu_events, 4);
}

class ProfiledRun : public ::testing::Test {
 protected:
  void Run(const ProfileSchedule& schedule, DType dtype = DType::kF32,
           std::vector<int32_t> prompt = {1, 5, 9, 13, 17, 21, 25}) {
    ModelSource src;
    src.model_dir = testing::FixtureModel("gqa_odd_bias_f16");
    src.dtype = dtype;
    auto loaded = LoadModel(src, &pool_);
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    backend_ = MakeCpuBackend(&pool_);
    ModelOptions mo;
    mo.max_seq_len = 64;
    auto m = LlamaModel::Create(loaded->config, std::move(loaded->weights), backend_.get(), mo);
    ASSERT_TRUE(m.ok());
    model_ = std::move(m.value());
    BenchTest test{"t", std::move(prompt), 10, true};
    auto r = RunProfiled(*model_, pool_, test, BenchOptions{}, schedule, dir_.path(), "test\n");
    ASSERT_TRUE(r.ok()) << r.status().message();
    result_ = r.value();
    trace_ = nlohmann::json::parse(testing::ReadFile(dir_.path() + "/profiler_trace.json"));
  }
  ThreadPool pool_{2};
  std::unique_ptr<KernelBackend> backend_;
  std::unique_ptr<LlamaModel> model_;
  testing::TempDir dir_;
  ProfileRunResult result_;
  nlohmann::json trace_;
};

TEST_F(ProfiledRun, TraceFollowsTheTraceEventFormat) {
  Run(ProfileSchedule{});
  ASSERT_TRUE(trace_.contains("traceEvents"));
  std::map<int, std::vector<std::pair<double, double>>> tracks;
  std::map<int, std::string> thread_names;
  std::set<std::string> names;
  int counters = 0;
  for (const auto& e : trace_["traceEvents"]) {
    ASSERT_TRUE(e.contains("ph") && e.contains("pid") && e.contains("name")) << e.dump();
    const std::string ph = e["ph"];
    if (ph == "M" && e["name"] == "thread_name") thread_names[e["tid"]] = e["args"]["name"];
    if (ph == "C") {
      ++counters;
      ASSERT_TRUE(e.contains("ts") && e["args"].is_object());
    }
    if (ph != "X") continue;
    ASSERT_TRUE(e.contains("ts") && e.contains("dur") && e.contains("tid")) << e.dump();
    ASSERT_GE(e["dur"].get<double>(), 0);
    tracks[e["tid"]].push_back({e["ts"].get<double>(), e["ts"].get<double>() + e["dur"].get<double>()});
    names.insert(e["name"]);
  }
  // q, k and v (and gate and up) in one region each where the CPU decodes on its GEMV.
  for (const char* n : {"prefill", "decode_step[0]", "decode_step[8]", "layers.2.attention.qkv_proj",
                        "layers.0.attention.sdpa.softmax", "layers.1.feed_forward.down_proj", "lm_head", "sampling",
                        "embedding", "norm", "layers.2.ffn_norm"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  EXPECT_GT(counters, 2);
  ASSERT_GE(tracks.size(), 2u) << "worker threads need their own track";
  for (auto& [tid, spans] : tracks) {
    EXPECT_TRUE(thread_names.count(tid)) << "no thread_name for tid " << tid;
    // On one track, events nest or follow each other; they never partly overlap.
    std::sort(spans.begin(), spans.end(),
              [](const auto& a, const auto& b) { return a.first != b.first ? a.first < b.first : a.second > b.second; });
    std::vector<std::pair<double, double>> stack;
    const double eps = 1e-3;  // the microsecond formatting rounds to 1 ns
    for (const auto& s : spans) {
      while (!stack.empty() && stack.back().second <= s.first + eps) stack.pop_back();
      if (!stack.empty()) {
        ASSERT_LE(s.second, stack.back().second + eps) << "partial overlap on tid " << tid << " at ts " << s.first;
      }
      stack.push_back(s);
    }
  }
}

TEST_F(ProfiledRun, OperatorSelfTimesAccountForEachDecodeStep) {
  Run(ProfileSchedule{});
  bool saw_decode = false;
  for (const PhaseStats& ph : result_.summary.phases) {
    const double ratio = ph.self_sum_ms / ph.wall_ms;
    EXPECT_GE(ratio, 0.90) << ph.phase;
    EXPECT_LE(ratio, 1.0 + 1e-9) << ph.phase;
    if (ph.phase == "decode") {
      saw_decode = true;
      EXPECT_EQ(ph.steps, 9);  // 10 tokens: the first comes from prefill
    }
  }
  EXPECT_TRUE(saw_decode);
  for (const char* f : {"/profiler_stats.txt", "/profiler_stats.json"}) {
    EXPECT_FALSE(testing::ReadFile(dir_.path() + f).empty()) << f;
  }
  const std::string stats = testing::ReadFile(dir_.path() + "/profiler_stats.txt");
  for (const char* s : {"PREFILL", "DECODE", "By category", "Per layer", "Bottlenecks", "attention.qkv_proj", "Next:"}) {
    EXPECT_NE(stats.find(s), std::string::npos) << s;
  }
}

// A bfloat16 prefill of 40 tokens: where the backend fuses (a matrix unit),
// one qkv_proj scope per layer with the three projections' work, and one
// gate_up_silu with both projections' FLOPs and the silu's; no q/k/v_proj,
// gate_proj, up_proj or silu_mul. Elsewhere those.
TEST_F(ProfiledRun, Bf16PrefillRecordsTheFusedProjectionsWhereTheBackendFusesThem) {
  std::vector<int32_t> prompt(40);
  for (int i = 0; i < 40; ++i) prompt[i] = 1 + 7 * i % 300;
  Run(ProfileSchedule{}, DType::kBF16, prompt);
  const LlamaConfig& c = model_->config();
  MatView gate{nullptr, DType::kBF16, c.intermediate_size, c.hidden_size};
  gate.bf16_compute = true;
  const bool fused = backend_->FusesGateUpSilu(40, gate);
  std::printf("  backend fuses gate/up/silu at 40 rows: %d (%s)\n", fused, CpuMatMulPath(DType::kBF16).c_str());
  std::map<std::string, OpStats> ops;
  for (const PhaseStats& ph : result_.summary.phases) {
    if (ph.phase != "prefill") continue;
    for (const OpStats& op : ph.ops) ops[op.name] = op;
  }
  for (const char* name : {"feed_forward.gate_proj", "feed_forward.up_proj", "feed_forward.silu_mul",
                           "attention.q_proj", "attention.k_proj", "attention.v_proj"}) {
    EXPECT_EQ(ops.count(name), fused ? 0u : 1u) << name;
  }
  ASSERT_EQ(ops.count("attention.qkv_proj"), fused ? 1u : 0u);
  if (fused) {
    const OpStats& op = ops["attention.qkv_proj"];
    const int64_t T = 40, N = c.q_dim() + 2 * c.kv_dim(), H = c.hidden_size;
    EXPECT_EQ(op.calls, c.num_hidden_layers);
    EXPECT_EQ(op.flops, static_cast<double>(c.num_hidden_layers * 2 * T * N * H));
    EXPECT_EQ(op.bytes, static_cast<double>(c.num_hidden_layers * (N * H * 2 + 4 * (T * H + T * N))));
  }
  ASSERT_EQ(ops.count("feed_forward.gate_up_silu"), fused ? 1u : 0u);
  if (fused) {
    const OpStats& op = ops["feed_forward.gate_up_silu"];
    const int64_t T = 40, F = c.intermediate_size, H = c.hidden_size;
    EXPECT_EQ(op.calls, c.num_hidden_layers);
    EXPECT_EQ(op.flops, static_cast<double>(c.num_hidden_layers * (2 * T * 2 * F * H + 5 * T * F)));
    EXPECT_EQ(op.bytes, static_cast<double>(c.num_hidden_layers * (2 * F * H * 2 + 4 * (T * H + T * F))));
  }
}

TEST_F(ProfiledRun, ScheduleRecordsOnlyTheActiveSteps) {
  auto s = ParseProfileSchedule("2,1,3");
  ASSERT_TRUE(s.ok());
  Run(s.value());
  std::set<std::string> steps;
  for (const auto& e : trace_["traceEvents"]) {
    const std::string name = e["name"];
    if (name.rfind("decode_step", 0) == 0) steps.insert(name);
  }
  EXPECT_EQ(steps, (std::set<std::string>{"decode_step[3]", "decode_step[4]", "decode_step[5]"}));
  EXPECT_FALSE(ParseProfileSchedule("1,2").ok());
  EXPECT_FALSE(ParseProfileSchedule("a").ok());
}

}  // namespace
}  // namespace llm

namespace llm {
namespace {

// As sequences are added to a decode batch, every weight byte read serves
// more rows: with a fixed calibration (balance 100 / 25 = 4 FLOP per byte),
// a float32 projection (2 FLOPs per 4-byte weight per row) is memory-bound at
// B = 1 (0.5 FLOP/byte) and compute-bound at B = 16 (8 FLOP/byte).
const char* const kBatchProfileConfig = R"({"model_type":"llama","hidden_size":1024,"intermediate_size":2816,
    "num_hidden_layers":2,"num_attention_heads":8,"num_key_value_heads":8,"vocab_size":512})";

TEST(ProfiledBatch, ProjectionVerdictMovesFromMemoryToComputeBoundAsTheBatchGrows) {
  ThreadPool pool(2);
  auto backend = MakeCpuBackend(&pool);
  Calibration fixed;
  fixed.read_gbps = 25;
  fixed.fma_gflops = 100;
  fixed.threads = 2;
  fixed.source = "fixed by the test";
  std::map<int, nlohmann::json> decode_ops;
  for (int batch : {1, 16}) {
    ModelOptions mo;
    mo.max_seq_len = 32;
    mo.max_sequences = batch;
    auto model = testing::RandomModel(kBatchProfileConfig, &pool, backend.get(), mo);
    ASSERT_TRUE(model.ok()) << model.status().message();
    BenchTest test{"b", {1, 7, 9, 11}, 6, true};
    test.batch_size = batch;
    testing::TempDir dir;
    auto r = RunProfiled(*model.value(), pool, test, BenchOptions{}, ProfileSchedule{}, dir.path(), "test\n");
    ASSERT_TRUE(r.ok()) << r.status().message();
    const auto stats = nlohmann::json::parse(ProfileStatsJson(r->summary, fixed));
    for (const auto& op : stats["phases"]["decode"]["operators"]) {
      if (op["name"] == "attention.o_proj" || op["name"] == "feed_forward.down_proj") decode_ops[batch][op["name"]] = op;
    }
  }
  for (const char* name : {"attention.o_proj", "feed_forward.down_proj"}) {
    ASSERT_TRUE(decode_ops[1].contains(name) && decode_ops[16].contains(name)) << name;
    const auto& one = decode_ops[1][name];
    const auto& sixteen = decode_ops[16][name];
    EXPECT_EQ(one["bound"], "memory") << one.dump();
    EXPECT_EQ(sixteen["bound"], "compute") << sixteen.dump();
    // Same weights read per step, 16 times the arithmetic.
    EXPECT_NEAR(sixteen["flops"].get<double>() / sixteen["calls"].get<double>(),
                16 * one["flops"].get<double>() / one["calls"].get<double>(), 1e-6 * one["flops"].get<double>());
  }
}

// --roof-probe with --profile: the bandwidth read right before and after the
// profiled run, and memory-bound verdicts against it as well as against the
// cached best (on a shared machine that best may not have been there to take).
TEST(ProfiledBatch, RoofProbeBesideTheProfiledRunJudgesMemoryBoundOperatorsAgainstIt) {
  ThreadPool pool(2);
  auto backend = MakeCpuBackend(&pool);
  ModelOptions mo;
  mo.max_seq_len = 32;
  auto model = testing::RandomModel(kBatchProfileConfig, &pool, backend.get(), mo);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const std::vector<double> script = {0.003, 0.002};  // before, after: far below any op's reads
  size_t calls = 0;
  BenchOptions options;
  options.read_probe = [&] { return script.at(calls++); };
  testing::TempDir dir;
  auto r = RunProfiled(*model.value(), pool, BenchTest{"p", {1, 7, 9, 11}, 6, true}, options, ProfileSchedule{},
                       dir.path(), "test\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(calls, 2u);
  EXPECT_EQ(r->calibration.read_before_run_gbps, 0.003);
  EXPECT_EQ(r->calibration.read_after_run_gbps, 0.002);
  // A cached best no run reaches (250 GB/s, balance 4 FLOP per byte): one-row
  // projections are memory-bound far below it, and at the roof beside the run.
  Calibration cal;
  cal.read_gbps = 250;
  cal.fma_gflops = 1000;
  cal.threads = 2;
  cal.source = "fixed by the test";
  const std::string plain = FormatProfileStats(r->summary, cal, "test\n");
  cal.read_before_run_gbps = r->calibration.read_before_run_gbps;
  cal.read_after_run_gbps = r->calibration.read_after_run_gbps;
  const std::string beside = FormatProfileStats(r->summary, cal, "test\n");
  EXPECT_EQ(plain.find("read beside this run"), std::string::npos);
  EXPECT_EQ(plain.find("at the bandwidth roof"), std::string::npos) << plain;
  EXPECT_NE(beside.find("Read bandwidth beside this run (--roof-probe): 0.0 GB/s before"), std::string::npos) << beside;
  EXPECT_NE(beside.find("GB/s read beside this run"), std::string::npos) << beside;
  EXPECT_NE(beside.find("at the bandwidth roof"), std::string::npos) << beside;
  const auto stats = nlohmann::json::parse(ProfileStatsJson(r->summary, cal));
  EXPECT_EQ(stats["calibration"]["read_after_run_gbps"], 0.002);
  bool found = false;
  for (const auto& op : stats["phases"]["decode"]["operators"]) {
    if (op["name"] != "attention.o_proj") continue;
    found = true;
    ASSERT_EQ(op["bound"], "memory") << op.dump();
    EXPECT_NEAR(op["fraction_of_read_beside"].get<double>(), op["gbytes_per_s"].get<double>() / 0.003,
                1e-9 * op["fraction_of_read_beside"].get<double>());
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace llm
