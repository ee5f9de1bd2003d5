// The engine against Hugging Face transformers on tiny random-weight models
// (fixtures made by tools/make_fixtures.py): logits of every position, hidden
// states after every layer, and 32 greedy tokens.
//
// Tolerances. float32: relative error of logits < 1e-4 (issue #2). float16 and
// bfloat16 store weights rounded to 11 / 8 significant bits while activations
// stay float32, so our error must not exceed transformers' own error when it
// runs the same model in that dtype (recorded in the fixture as
// hf_{bf16,f16}_rel_err, 1e-3 to 1.3e-2); measured values are printed.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

#include "core/thread_pool.h"
#include "kernels/cpu/amx/amx_gemm.h"
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
  bool reference_kernels;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return info.param.model + "_" + DTypeName(info.param.dtype) + (info.param.reference_kernels ? "_ref" : "");
}

class HfFixtureTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    ref_ = LoadReference(GetParam().model);
    ModelSource src;
    src.model_dir = FixtureModel(GetParam().model);
    src.dtype = GetParam().dtype;
    auto loaded = LoadModel(src, &pool_);
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    config_ = loaded->config;
    backend_ = GetParam().reference_kernels ? MakeReferenceBackend() : MakeCpuBackend(&pool_);
    ModelOptions mo;
    mo.max_seq_len = 256;
    mo.all_logits = true;
    auto model = LlamaModel::Create(config_, std::move(loaded->weights), backend_.get(), mo);
    ASSERT_TRUE(model.ok()) << model.status().message();
    model_ = std::move(model.value());
  }

  // Our tolerance for logits in this case's dtype.
  double Tolerance() const { return testing::LogitTolerance(ref_, GetParam().dtype); }

  ThreadPool pool_{2};
  testing::Reference ref_;
  LlamaConfig config_;
  std::unique_ptr<KernelBackend> backend_;
  std::unique_ptr<LlamaModel> model_;
};

TEST_P(HfFixtureTest, LogitsOfEveryPositionMatchTransformers) {
  const int num_prompts = static_cast<int>(ref_.meta["prompts"].size());
  for (int p = 0; p < num_prompts; ++p) {
    const auto ids = ref_.Ids("prompt" + std::to_string(p) + ".ids");
    const auto expected = ref_.Floats("prompt" + std::to_string(p) + ".logits");
    model_->Reset();
    ASSERT_TRUE(model_->Forward(ids.data(), static_cast<int>(ids.size())).ok());
    const double err = RelErr(model_->all_logits(), expected.data(), expected.size());
    std::printf("  %s prompt%d (%zu tokens): logits rel err %.3e (tolerance %.3e)\n", CaseName({GetParam(), 0}).c_str(),
                p, ids.size(), err, Tolerance());
    EXPECT_LT(err, Tolerance()) << "prompt " << p;
  }
}

TEST_P(HfFixtureTest, HiddenStatesMatchLayerByLayer) {
  const auto ids = ref_.Ids("prompt0.ids");
  const int stages = ref_.meta["hidden_stages"].get<int>();
  std::vector<double> errs(stages, -1);
  model_->set_layer_observer([&](int stage, const float* h, int64_t rows) {
    const auto expected = ref_.Floats("prompt0.hidden." + std::to_string(stage));
    const size_t n = expected.size();
    ASSERT_EQ(static_cast<size_t>(rows * config_.hidden_size), n) << "stage " << stage;
    errs[stage] = RelErr(h, expected.data(), n);
  });
  model_->Reset();
  ASSERT_TRUE(model_->Forward(ids.data(), static_cast<int>(ids.size())).ok());
  // Report the first stage that diverges: that is where the bug is.
  for (int s = 0; s < stages; ++s) {
    ASSERT_GE(errs[s], 0) << "stage " << s << " was never observed";
    ASSERT_LT(errs[s], Tolerance()) << "first divergence at stage " << s
                                    << (s == 0 ? " (embedding)" : s == stages - 1 ? " (final norm)" : " (layer output)");
  }
}

TEST_P(HfFixtureTest, GreedyTokensMatchTransformers) {
  const auto prompt = ref_.Ids("prompt0.ids");
  const auto expected = ref_.Ids("greedy.ids");
  GenerationOptions go;
  go.max_new_tokens = static_cast<int>(expected.size());
  go.ignore_eos = true;
  auto r = Generate(*model_, prompt, go);
  ASSERT_TRUE(r.ok()) << r.status().message();
  int agree = 0;
  while (agree < static_cast<int>(expected.size()) && r->tokens[agree] == expected[agree]) ++agree;
  std::printf("  greedy agreement: %d of %zu tokens\n", agree, expected.size());
  if (GetParam().dtype == DType::kF32) {
    EXPECT_EQ(r->tokens, expected);
  } else {
    // Half-precision weights perturb logits by ~1e-2 relative; on random
    // weights with margins as small as 1e-2 only the first tokens are robust.
    EXPECT_GE(agree, 4);
  }
}

TEST_P(HfFixtureTest, PrefillEqualsTokenByTokenDecode) {
  if (RopeDependsOnSequenceLength(config_)) {
    // transformers' dynamic and longrope frequencies follow each forward pass's
    // length, and cached keys keep theirs: prefill and one-token-at-a-time
    // decoding are different computations there (as in transformers), each
    // checked against it (logits tests: prefill; greedy test: cached decode).
    GTEST_SKIP() << RopeScalingName(config_.rope_scaling) << " rope: prefill and decode differ by design";
  }
  const auto ids = ref_.Ids("prompt1.ids");
  const int n = static_cast<int>(ids.size());
  model_->Reset();
  ASSERT_TRUE(model_->Forward(ids.data(), n).ok());
  std::vector<float> prefill(model_->all_logits(), model_->all_logits() + static_cast<size_t>(n) * config_.vocab_size);
  model_->Reset();
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(model_->Forward(&ids[i], 1).ok());
    worst = std::max(worst, RelErr(model_->last_logits(), prefill.data() + static_cast<size_t>(i) * config_.vocab_size,
                                   config_.vocab_size));
  }
  // Prefill on AMX rounds the activations entering each bf16 matmul (and
  // attention's Q, K, P, V) to bfloat16, decode (GEMV) does not. Each is within
  // transformers' own bf16 error of the float64 reference (logits tests), so
  // by the triangle inequality they agree within twice that.
  const bool rounds_activations =
      GetParam().dtype == DType::kBF16 && !GetParam().reference_kernels && amx::AmxEnabled();
  const double bound = rounds_activations ? 2 * Tolerance() : 1e-5;
  std::printf("  prefill vs decode: worst rel err %.3e over %d positions (bound %.1e)\n", worst, n, bound);
  EXPECT_LT(worst, bound);
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (const char* m : {"mha_tied_f32", "gqa_odd_bias_f16", "llama3_sharded_bf16", "linear_mqa_f32", "dynamic_gqa_f32",
                        "yarn_f16", "longrope_f32"}) {
    for (DType d : {DType::kF32, DType::kF16, DType::kBF16}) cases.push_back({m, d, false});
    cases.push_back({m, DType::kF32, true});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfFixtureTest, ::testing::ValuesIn(AllCases()), CaseName);

}  // namespace
}  // namespace llm
