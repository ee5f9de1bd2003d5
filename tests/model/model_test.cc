// Engine behaviour that needs no reference outputs: random weights, rope
// frequencies, memory accounting, limits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/memory_ledger.h"
#include "core/thread_pool.h"
#include "model/generate.h"
#include "model/llama_model.h"
#include "model/model_loader.h"
#include "model/weights.h"

namespace llm {
namespace {

LlamaConfig Small() {
  auto c = ParseLlamaConfig(R"({"model_type":"llama","hidden_size":64,"intermediate_size":96,"num_hidden_layers":2,
      "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":300})", "small");
  return c.value();
}

TEST(DummyWeights, DeterministicWhateverTheThreadCountAndShapedLikeTraining) {
  ThreadPool one(1), two(2);
  auto a = MakeDummyWeights(Small(), DType::kF32, 7, &one);
  auto b = MakeDummyWeights(Small(), DType::kF32, 7, &two);
  auto c = MakeDummyWeights(Small(), DType::kF32, 8, &two);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  const Tensor& ta = a->layers[1].gate_proj;
  const size_t n = ta.rows * ta.cols;
  EXPECT_EQ(0, std::memcmp(ta.data, b->layers[1].gate_proj.data, n * 4));
  EXPECT_NE(0, std::memcmp(ta.data, c->layers[1].gate_proj.data, n * 4));
  double sum = 0, sq = 0;
  for (size_t i = 0; i < n; ++i) {
    const float v = ta.f32()[i];
    ASSERT_TRUE(std::isfinite(v));
    ASSERT_TRUE(v == 0 || std::fabs(v) > 1e-30f) << "denormal";
    sum += v;
    sq += v * v;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.002);
  EXPECT_NEAR(std::sqrt(sq / n), 0.02, 0.001);
  EXPECT_EQ(a->norm.f32()[5], 1.0f);
}

TEST(DummyWeights, MadeDirectlyInTheTargetDtype) {
  ThreadPool pool(2);
  auto w = MakeDummyWeights(Small(), DType::kBF16, 1, &pool);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->layers[0].q_proj.dtype, DType::kBF16);
  EXPECT_EQ(w->layers[0].q_proj.nbytes(), 64u * 64 * 2);
}

// Tensors under 2 MiB share 8 MiB chunks (on huge pages where Linux gives
// them), 64-byte aligned one after another; a chunk goes with its last
// tensor; from 2 MiB a tensor has its own buffer.
TEST(Weights, SmallTensorsShareChunksThatGoWithTheirLastTensor) {
  const int64_t before = MemoryLedger::Get().current(MemCategory::kWeights);
  {
    auto a = AllocateTensor(DType::kBF16, 256, 2048, "k");  // 1 MiB
    auto b = AllocateTensor(DType::kF32, 3, 5, "odd");      // 60 bytes
    auto c = AllocateTensor(DType::kBF16, 256, 2048, "v");
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    const auto* pa = static_cast<const uint8_t*>(a->data);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(pa) % 64, 0u);
    EXPECT_EQ(static_cast<const uint8_t*>(b->data), pa + (1 << 20));
    EXPECT_EQ(static_cast<const uint8_t*>(c->data), pa + (1 << 20) + 64);
    EXPECT_EQ(MemoryLedger::Get().current(MemCategory::kWeights) - before, 8 << 20);
    auto big = AllocateTensor(DType::kF32, 512, 1024, "q");  // 2 MiB: its own buffer
    ASSERT_TRUE(big.ok());
    EXPECT_EQ(MemoryLedger::Get().current(MemCategory::kWeights) - before, (8 << 20) + (2 << 20));
    // The chunk outlives the tensors released first.
    *a = Tensor{};
    *b = Tensor{};
    EXPECT_EQ(MemoryLedger::Get().current(MemCategory::kWeights) - before, (8 << 20) + (2 << 20));
    std::memset(const_cast<void*>(c->data), 1, c->nbytes());
  }
  EXPECT_EQ(MemoryLedger::Get().current(MemCategory::kWeights), before);
  // A new chunk after the last one went.
  auto d = AllocateTensor(DType::kF16, 8, 8, "d");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(MemoryLedger::Get().current(MemCategory::kWeights) - before, 8 << 20);
}

TEST(Weights, DecodeBytesCountEveryMatrixOnce) {
  ThreadPool pool(1);
  const LlamaConfig c = Small();
  auto w = MakeDummyWeights(c, DType::kF16, 1, &pool);
  // Per layer: q 64x64, k,v 32x64, o 64x64, gate/up/down 96x64, two norms 64.
  const size_t layer = (64 * 64 * 2 + 32 * 64 * 2 + 96 * 64 * 3 + 64 * 2) * 2;
  const size_t expected = 2 * layer + 64 * 2 /*norm*/ + 300 * 64 * 2 /*lm_head*/ + 64 * 2 /*one embedding row*/;
  EXPECT_EQ(w->DecodeBytesPerToken(c), expected);
}

TEST(Rope, Llama3ScalingFollowsTheThreeBands) {
  LlamaConfig c = Small();
  c.head_dim = 128;
  c.rope_theta = 500000;
  c.rope_scaling = RopeScaling::kLlama3;
  c.rope_factor = 8;
  c.rope_low_freq_factor = 1;
  c.rope_high_freq_factor = 4;
  c.rope_original_max_position = 8192;
  const auto scaled = RopeInverseFrequencies(c);
  c.rope_scaling = RopeScaling::kNone;
  const auto base = RopeInverseFrequencies(c);
  EXPECT_FLOAT_EQ(scaled[0], base[0]);            // short wavelength: unchanged
  EXPECT_FLOAT_EQ(scaled[63], base[63] / 8.0f);  // long wavelength: divided by factor
  // Base frequency of dimension pair i is theta^(-2i/d).
  EXPECT_NEAR(base[10], std::pow(500000.0, -20.0 / 128), 1e-7);
}

// Values printed by transformers 5.24 (ROPE_INIT_FUNCTIONS["yarn"] / ["dynamic"])
// for the options the fixtures leave at their defaults: mscale and
// mscale_all_dim, beta_fast/beta_slow, truncate false; dynamic at seq_len 100.
TEST(Rope, YarnOptionsAndDynamicBaseMatchTransformers) {
  LlamaConfig c;
  c.hidden_size = 64;
  c.num_attention_heads = 4;
  c.head_dim = 16;
  c.max_position_embeddings = 256;
  c.rope_theta = 10000;
  c.rope_scaling = RopeScaling::kYarn;
  c.rope_factor = 8;
  c.rope_original_max_position = 32;
  c.rope_beta_fast = 16;
  c.rope_beta_slow = 2;
  c.rope_mscale = 1.0;
  c.rope_mscale_all_dim = 0.5;
  c.rope_truncate = false;
  const std::vector<float> yarn = {1.0f, 0.03952847048640251f, 0.012500000186264515f, 0.0039528473280370235f,
                                   0.0012499999720603228f, 0.00039528473280370235f, 0.0001250000059371814f,
                                   3.9528473280370235e-05f};
  const auto got = RopeInverseFrequencies(c);
  for (size_t i = 0; i < yarn.size(); ++i) EXPECT_FLOAT_EQ(got[i], yarn[i]) << i;
  EXPECT_FLOAT_EQ(RopeAttentionScaling(c), 1.094179988101349f);
  c.rope_attention_factor = 0.5;  // given: used as is
  EXPECT_FLOAT_EQ(RopeAttentionScaling(c), 0.5f);

  c.rope_scaling = RopeScaling::kDynamic;
  c.rope_factor = 3;
  c.max_position_embeddings = 32;
  const std::vector<float> dynamic = {1.0f, 0.2377026379108429f, 0.05650254338979721f, 0.013430803082883358f,
                                      0.0031925374642014503f, 0.0007588745793327689f, 0.0001803864724934101f,
                                      4.287833871785551e-05f};
  const auto d = RopeInverseFrequencies(c, 100);
  for (size_t i = 0; i < dynamic.size(); ++i) EXPECT_FLOAT_EQ(d[i], dynamic[i]) << i;
  c.rope_scaling = RopeScaling::kNone;
  EXPECT_EQ(RopeInverseFrequencies(c), [&] {
    LlamaConfig k = c;
    k.rope_scaling = RopeScaling::kDynamic;
    return RopeInverseFrequencies(k, 32);  // within the original context: the default frequencies
  }());
}

TEST(Model, RefusesSequencesBeyondTheCache) {
  ThreadPool pool(1);
  auto w = MakeDummyWeights(Small(), DType::kF32, 1, &pool);
  auto backend = MakeCpuBackend(&pool);
  ModelOptions mo;
  mo.max_seq_len = 8;
  auto m = LlamaModel::Create(Small(), std::move(w.value()), backend.get(), mo);
  ASSERT_TRUE(m.ok());
  std::vector<int32_t> ids(9, 5);
  const Status s = m.value()->Forward(ids.data(), 9);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--max-seq-len"), std::string::npos);
  ids[0] = 300;
  EXPECT_FALSE(m.value()->Forward(ids.data(), 1).ok());  // id outside the vocabulary
  // Generation stops when the cache is full.
  GenerationOptions go;
  go.max_new_tokens = 100;
  go.ignore_eos = true;
  auto r = Generate(*m.value(), {1, 5, 6}, go);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stop_reason, "max_seq_len");
  EXPECT_EQ(r->tokens.size(), 6u);  // positions 3..7 filled by 5 decodes, plus the token they produce
}

TEST(Model, ChunkedPrefillEqualsOnePass) {
  ThreadPool pool(2);
  auto backend = MakeCpuBackend(&pool);
  std::vector<int32_t> ids;
  for (int i = 0; i < 37; ++i) ids.push_back(3 + (i * 7) % 290);
  std::vector<float> logits[2];
  for (int chunk : {0, 5}) {
    auto w = MakeDummyWeights(Small(), DType::kF32, 3, &pool);
    ModelOptions mo;
    mo.max_seq_len = 64;
    mo.max_batch_tokens = chunk;
    auto m = LlamaModel::Create(Small(), std::move(w.value()), backend.get(), mo);
    ASSERT_TRUE(m->get()->Forward(ids.data(), 37).ok());
    logits[chunk ? 1 : 0].assign(m->get()->last_logits(), m->get()->last_logits() + 300);
  }
  for (int i = 0; i < 300; ++i) EXPECT_NEAR(logits[0][i], logits[1][i], 1e-5);
}

}  // namespace
}  // namespace llm
