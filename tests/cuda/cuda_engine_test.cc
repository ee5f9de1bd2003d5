// The CUDA engine against transformers' references and against the CPU engine
// on the same fixtures. Built whenever CUDA is; without a visible GPU every
// test is skipped with the reason, which ctest reports as "not run".
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

#include "core/thread_pool.h"
#include "cuda/cuda_engine.h"
#include "model/generate.h"
#include "model/llama_model.h"
#include "model/model_loader.h"
#include "test_util.h"

namespace llm {
namespace {

using testing::FixtureModel;
using testing::LoadReference;
using testing::RelErr;

struct Case {
  std::string model;
  DType dtype;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " " << DTypeName(c.dtype); }

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return info.param.model + "_" + DTypeName(info.param.dtype);
}

class CudaEngineTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (auto n = CudaDeviceCount(); !n.ok()) GTEST_SKIP() << "not run: " << n.status().message();
    ref_ = LoadReference(GetParam().model);
  }

  std::unique_ptr<LlamaModel> Make(bool on_gpu, bool all_logits, bool graphs = true) {
    ModelSource src;
    src.model_dir = FixtureModel(GetParam().model);
    src.dtype = GetParam().dtype;
    auto loaded = LoadModel(src, &pool_);
    EXPECT_TRUE(loaded.ok()) << loaded.status().message();
    if (!loaded.ok()) return nullptr;
    config_ = loaded->config;
    ModelOptions mo;
    mo.max_seq_len = 256;
    mo.all_logits = all_logits;
    Result<std::unique_ptr<LlamaModel>> m = InvalidArgument("unset");
    if (on_gpu) {
      CudaOptions co;
      co.max_seq_len = mo.max_seq_len;
      co.graphs = graphs;
      auto engine = MakeCudaEngine(config_, loaded->weights, co);
      EXPECT_TRUE(engine.ok()) << engine.status().message();
      if (!engine.ok()) return nullptr;
      m = LlamaModel::CreateOnDevice(config_, std::move(loaded->weights), std::move(engine.value()), mo);
    } else {
      cpu_backend_ = MakeCpuBackend(&pool_);
      m = LlamaModel::Create(config_, std::move(loaded->weights), cpu_backend_.get(), mo);
    }
    EXPECT_TRUE(m.ok()) << m.status().message();
    return m.ok() ? std::move(m.value()) : nullptr;
  }

  // The same bounds as the CPU engine's.
  double Tolerance() const { return testing::LogitTolerance(ref_, GetParam().dtype); }

  std::vector<int32_t> Greedy(LlamaModel& m, int n) {
    GenerationOptions go;
    go.max_new_tokens = n;
    go.ignore_eos = true;
    auto r = Generate(m, ref_.Ids("prompt0.ids"), go);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r->tokens : std::vector<int32_t>{};
  }

  ThreadPool pool_{2};
  testing::Reference ref_;
  LlamaConfig config_;
  std::unique_ptr<KernelBackend> cpu_backend_;
};

TEST_P(CudaEngineTest, PrefillLogitsMatchTransformers) {
  auto gpu = Make(true, true);
  ASSERT_NE(gpu, nullptr);
  for (int p = 0; p < static_cast<int>(ref_.meta["prompts"].size()); ++p) {
    const auto ids = ref_.Ids("prompt" + std::to_string(p) + ".ids");
    const auto expected = ref_.Floats("prompt" + std::to_string(p) + ".logits");
    gpu->Reset();
    ASSERT_TRUE(gpu->Forward(ids.data(), static_cast<int>(ids.size())).ok());
    const double err = RelErr(gpu->all_logits(), expected.data(), expected.size());
    std::printf("  cuda prompt%d: logits rel err %.3e (tolerance %.3e)\n", p, err, Tolerance());
    EXPECT_LT(err, Tolerance());
  }
}

TEST_P(CudaEngineTest, GreedyTokensMatchTheCpuEngine) {
  auto cpu = Make(false, false);
  auto gpu = Make(true, false);
  ASSERT_NE(cpu, nullptr);
  ASSERT_NE(gpu, nullptr);
  const auto expected = Greedy(*cpu, 32);
  const auto got = Greedy(*gpu, 32);
  int agree = 0;
  while (agree < 32 && got[agree] == expected[agree]) ++agree;
  std::printf("  cuda vs cpu greedy agreement: %d of 32\n", agree);
  if (GetParam().dtype == DType::kF32) {
    EXPECT_EQ(got, expected);
  } else {
    EXPECT_GE(agree, 4);  // as the CPU engine against transformers in 16-bit weights
  }
}

TEST_P(CudaEngineTest, DecodeLogitsMatchTheCpuEngineStepByStep) {
  auto cpu = Make(false, false);
  auto gpu = Make(true, false);
  ASSERT_NE(cpu, nullptr);
  ASSERT_NE(gpu, nullptr);
  const auto ids = ref_.Ids("prompt1.ids");
  double worst = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(cpu->Forward(&ids[i], 1).ok());
    ASSERT_TRUE(gpu->Forward(&ids[i], 1).ok());
    worst = std::max(worst, RelErr(gpu->last_logits(), cpu->last_logits(), config_.vocab_size));
  }
  std::printf("  cuda vs cpu decode logits: worst rel err %.3e over %zu steps\n", worst, ids.size());
  EXPECT_LT(worst, GetParam().dtype == DType::kF32 ? 1e-5 : Tolerance());
}

TEST_P(CudaEngineTest, GraphReplayEqualsEagerLaunches) {
  auto graph = Make(true, false, true);
  auto eager = Make(true, false, false);
  ASSERT_NE(graph, nullptr);
  ASSERT_NE(eager, nullptr);
  EXPECT_EQ(Greedy(*graph, 24), Greedy(*eager, 24));
  // Same kernels, same order: the logits are bit-identical.
  const std::vector<float> a(graph->last_logits(), graph->last_logits() + config_.vocab_size);
  EXPECT_EQ(RelErr(eager->last_logits(), a.data(), a.size()), 0.0);
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  // yarn: attention scaling folded into the RoPE tables the engine copies. dynamic and
  // longrope change the tables with the sequence length and are refused on the GPU.
  for (const char* m : {"mha_tied_f32", "gqa_odd_bias_f16", "llama3_sharded_bf16", "linear_mqa_f32", "yarn_f16"}) {
    for (DType d : {DType::kF32, DType::kF16, DType::kBF16}) cases.push_back({m, d});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaEngineTest, ::testing::ValuesIn(AllCases()), CaseName);

TEST(CudaDevice, CopyBandwidthProbeIsSane) {
  if (auto n = CudaDeviceCount(); !n.ok()) GTEST_SKIP() << "not run: " << n.status().message();
  auto a = MeasureCudaCopyBandwidth(3);
  auto b = MeasureCudaCopyBandwidth(3);
  ASSERT_TRUE(a.ok() && b.ok());
  std::printf("  device-to-device copy: %.0f and %.0f GB/s\n", a.value(), b.value());
  EXPECT_GT(a.value(), 100.0);  // any GPU this engine targets moves > 100 GB/s
  EXPECT_LT(std::abs(a.value() - b.value()) / b.value(), 0.2);
}

}  // namespace
}  // namespace llm
