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

#include <algorithm>
#include <cstdio>
#include <memory>

#include "core/thread_pool.h"
#include "kernels/cpu/amx/amx_gemm.h"
#include "kernels/ops.h"
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

  // Every prompt decoded one token at a time against transformers' logits of
  // every position, within Tolerance(); `what` labels the printed errors.
  void ExpectDecodeLogitsMatchTransformers(const char* what) {
    const int num_prompts = static_cast<int>(ref_.meta["prompts"].size());
    for (int p = 0; p < num_prompts; ++p) {
      const auto ids = ref_.Ids("prompt" + std::to_string(p) + ".ids");
      const auto expected = ref_.Floats("prompt" + std::to_string(p) + ".logits");
      ASSERT_EQ(expected.size(), ids.size() * config_.vocab_size);
      std::vector<float> decoded(expected.size());
      model_->Reset();
      for (size_t i = 0; i < ids.size(); ++i) {
        ASSERT_TRUE(model_->Forward(&ids[i], 1).ok());
        std::copy_n(model_->last_logits(), config_.vocab_size, decoded.begin() + i * config_.vocab_size);
      }
      const double err = testing::RelErr(decoded.data(), expected.data(), expected.size());
      std::printf("  %s prompt%d (%zu tokens): %s rel err %.3e (tolerance %.3e)\n", CaseName({GetParam(), 0}).c_str(),
                  p, ids.size(), what, err, Tolerance());
      EXPECT_LT(err, Tolerance()) << what << ", prompt " << p;
    }
  }

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

// Decode, one token at a time over the same prompts, against transformers'
// logits of every position, with the prefill test's tolerance: decode runs
// other kernels than prefill (the GEMV with float32 x, pinned here on every
// CPU; float16 x, auto's choice on AMD AVX-512, has the next test; --decode-x
// bf16 is opt-in and not held to this bound).
TEST_P(HfFixtureTest, DecodeLogitsMatchTransformers) {
  if (RopeDependsOnSequenceLength(config_)) {
    GTEST_SKIP() << RopeScalingName(config_.rope_scaling) << " rope: transformers' prefill logits are not a decode's";
  }
  const testing::ScopedDecodeX decode_x(DecodeX::kFloat32);
  ExpectDecodeLogitsMatchTransformers("decode logits");
}

// The same decode with x rounded to float16 for every one-row float16 /
// bfloat16 matmul (--decode-x float16; auto does so on AMD AVX-512 CPUs, where
// it reads faster): held to the same bound, so the rounding may be a default.
TEST_P(HfFixtureTest, DecodeWithFloat16XMatchesTransformers) {
  if (GetParam().dtype == DType::kF32 || GetParam().reference_kernels) {
    GTEST_SKIP() << "float16 x is for float16 / bfloat16 weights on the SIMD backend";
  }
  if (RopeDependsOnSequenceLength(config_)) {
    GTEST_SKIP() << RopeScalingName(config_.rope_scaling) << " rope: transformers' prefill logits are not a decode's";
  }
  const testing::ScopedDecodeX decode_x(DecodeX::kFloat16);
  ExpectDecodeLogitsMatchTransformers("decode logits with float16 x");
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
  // Decode with float32 x (the kernels' own agreement; float16 x is held to
  // transformers' bound by DecodeWithFloat16XMatchesTransformers).
  const testing::ScopedDecodeX decode_x(DecodeX::kFloat32);
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
  // Prefill on a bf16 unit (AMX tiles, or AVX512-BF16 dot products where
  // they beat FMA) rounds the activations entering each bf16 matmul (and
  // attention's Q, K, P, V) to bfloat16, decode (GEMV) does not. Each is within
  // transformers' own bf16 error of the float64 reference (logits tests), so
  // by the triangle inequality they agree within twice that.
  // float16 prefill on AMX carries x as bf16 hi + lo (2^-16 of each product
  // instead of float32's 2^-24; W exact): measured 1.9e-5, bounded at 1e-4,
  // still far inside transformers' own float16 error.
  const bool on_tiles = !GetParam().reference_kernels && amx::AmxEnabled();
  const bool on_bf16_unit = !GetParam().reference_kernels && (amx::AmxEnabled() || amx::Bf16DotsEnabled());
  const bool rounds_activations = GetParam().dtype == DType::kBF16 && on_bf16_unit;
  const bool splits_activations = GetParam().dtype == DType::kF16 && on_tiles;
  const double bound = rounds_activations ? 2 * Tolerance() : splits_activations ? 1e-4 : 1e-5;
  std::printf("  prefill vs decode: worst rel err %.3e over %d positions (bound %.1e)\n", worst, n, bound);
  EXPECT_LT(worst, bound);
}

// A model of this case's fixture for a batch of `sequences`, logits of the last
// rows only (as the benchmark runs it).
std::unique_ptr<LlamaModel> BatchModel(const Case& c, KernelBackend* backend, ThreadPool* pool, int sequences,
                                       int max_batch_tokens = 0) {
  ModelSource src;
  src.model_dir = FixtureModel(c.model);
  src.dtype = c.dtype;
  auto loaded = LoadModel(src, pool);
  EXPECT_TRUE(loaded.ok()) << loaded.status().message();
  if (!loaded.ok()) return nullptr;
  ModelOptions mo;
  mo.max_seq_len = 256;
  mo.max_sequences = sequences;
  mo.max_batch_tokens = max_batch_tokens;
  auto model = LlamaModel::Create(loaded->config, std::move(loaded->weights), backend, mo);
  EXPECT_TRUE(model.ok()) << model.status().message();
  return model.ok() ? std::move(model.value()) : nullptr;
}

// The batch tests compare ids, so they run in float32 (where row order cannot
// flip an argmax), on the reference and the SIMD kernels.
class BatchFixtureTest : public HfFixtureTest {};

// Every sequence of a batch generates exactly the ids it generates alone:
// prompts of different lengths, all prefilled in one pass, then decoded
// together (their rows share each matmul; RoPE, KV and attention are each
// sequence's own).
TEST_P(BatchFixtureTest, BatchedSequencesEqualRunsAlone) {
  const auto p0 = ref_.Ids("prompt0.ids"), p1 = ref_.Ids("prompt1.ids");
  const std::vector<std::vector<int32_t>> prompts = {p0, p1, {p1.begin(), p1.begin() + 3}, {p0.begin(), p0.begin() + 1},
                                                     {p1.rbegin(), p1.rend()}};
  GenerationOptions go;
  go.max_new_tokens = 12;
  go.ignore_eos = true;
  const int B = static_cast<int>(prompts.size());
  // Chunks of 5 rows split the prompts across prefill passes; dynamic and
  // longrope frequencies follow each pass's length, so they run unsplit.
  const int chunk = RopeDependsOnSequenceLength(config_) ? 0 : 5;
  auto alone_model = BatchModel(GetParam(), backend_.get(), &pool_, 1, chunk);
  auto batch_model = BatchModel(GetParam(), backend_.get(), &pool_, B, chunk);
  ASSERT_TRUE(alone_model && batch_model);
  auto batch = GenerateBatch(*batch_model, prompts, go);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  ASSERT_EQ(batch->sequences.size(), prompts.size());
  EXPECT_EQ(batch->step_latencies_s.size(), 11u);
  for (int i = 0; i < B; ++i) {
    auto alone = Generate(*alone_model, prompts[i], go);
    ASSERT_TRUE(alone.ok()) << alone.status().message();
    EXPECT_EQ(batch->sequences[i].tokens, alone->tokens) << "sequence " << i << " of " << B;
    EXPECT_EQ(batch_model->position(i), static_cast<int>(prompts[i].size()) + go.max_new_tokens - 1);
  }
  // A sequence that stops (here: at an id it generates) leaves the batch; the others go on unchanged.
  GenerationOptions stop = go;
  stop.ignore_eos = false;
  stop.eos_ids = {batch->sequences[1].tokens[4]};
  auto stopped = GenerateBatch(*batch_model, prompts, stop);
  ASSERT_TRUE(stopped.ok()) << stopped.status().message();
  for (int i = 0; i < B; ++i) {
    const auto& full = batch->sequences[i].tokens;
    const auto& got = stopped->sequences[i].tokens;
    const auto eos = std::find(full.begin(), full.end(), stop.eos_ids[0]);
    EXPECT_EQ(got, std::vector<int32_t>(full.begin(), eos == full.end() ? full.end() : eos + 1)) << "sequence " << i;
    EXPECT_EQ(stopped->sequences[i].stop_reason, eos == full.end() ? "max_gen_len" : "eos");
  }
  EXPECT_LT(stopped->step_sequences.back(), B);
}

// One prompt prefilled once and copied to B sequences continues exactly as
// B separate prefills of it.
TEST_P(BatchFixtureTest, SharedPromptEqualsSeparatePrefills) {
  const auto p1 = ref_.Ids("prompt1.ids");
  const std::vector<std::vector<int32_t>> prompts(3, p1);
  GenerationOptions go;
  go.max_new_tokens = 8;
  go.ignore_eos = true;
  auto model = BatchModel(GetParam(), backend_.get(), &pool_, 3);
  ASSERT_TRUE(model);
  auto shared = GenerateBatch(*model, prompts, go, /*shared_prompt=*/true);
  ASSERT_TRUE(shared.ok()) << shared.status().message();
  EXPECT_EQ(shared->prefill_tokens, static_cast<int>(p1.size()));
  auto separate = GenerateBatch(*model, prompts, go);
  ASSERT_TRUE(separate.ok()) << separate.status().message();
  EXPECT_EQ(separate->prefill_tokens, 3 * static_cast<int>(p1.size()));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(shared->sequences[i].tokens, separate->sequences[i].tokens) << i;
  // A shared prompt must be one prompt.
  EXPECT_FALSE(GenerateBatch(*model, {p1, {p1.begin(), p1.end() - 1}}, go, true).ok());
  // More prompts than sequences is an error, not an overrun.
  EXPECT_FALSE(GenerateBatch(*model, std::vector<std::vector<int32_t>>(4, p1), go).ok());
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

std::vector<Case> Float32Cases() {
  std::vector<Case> cases;
  for (const Case& c : AllCases()) {
    if (c.dtype == DType::kF32) cases.push_back(c);
  }
  return cases;
}
INSTANTIATE_TEST_SUITE_P(Fixtures, BatchFixtureTest, ::testing::ValuesIn(Float32Cases()), CaseName);

}  // namespace
}  // namespace llm
