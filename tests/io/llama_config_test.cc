#include "io/llama_config.h"

#include <gtest/gtest.h>

namespace llm {
namespace {

const char* kBase = R"({"model_type":"llama","hidden_size":64,"intermediate_size":96,"num_hidden_layers":2,
  "num_attention_heads":4,"vocab_size":100)";

Result<LlamaConfig> Parse(const std::string& extra) { return ParseLlamaConfig(std::string(kBase) + extra + "}", "cfg"); }

TEST(LlamaConfig, DefaultsFollowTransformers) {
  auto c = Parse("");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_EQ(c->rope_scaling, RopeScaling::kNone);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->eos_token_ids, std::vector<int>{2});
}

TEST(LlamaConfig, ReadsEveryFieldThatChangesTheMath) {
  auto c = Parse(R"(,"num_key_value_heads":2,"head_dim":20,"rms_norm_eps":1e-6,"rope_theta":500000,
    "tie_word_embeddings":true,"attention_bias":true,"mlp_bias":true,"eos_token_id":[7,9],"bos_token_id":5,
    "rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,
    "original_max_position_embeddings":8192},"torch_dtype":"bfloat16")");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->head_dim, 20);
  EXPECT_FLOAT_EQ(c->rms_norm_eps, 1e-6f);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000);
  EXPECT_EQ(c->rope_scaling, RopeScaling::kLlama3);
  EXPECT_DOUBLE_EQ(c->rope_factor, 8);
  EXPECT_EQ(c->rope_original_max_position, 8192);
  EXPECT_TRUE(c->tie_word_embeddings && c->attention_bias && c->mlp_bias);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int>{7, 9}));
  EXPECT_EQ(c->bos_token_id, 5);
  EXPECT_EQ(c->torch_dtype, DType::kBF16);
}

TEST(LlamaConfig, TransformersFiveRopeParameters) {
  auto c = Parse(R"(,"rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":1000.0})");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->rope_scaling, RopeScaling::kLinear);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1000.0);
  auto d = Parse(R"(,"rope_parameters":{"rope_type":"default","rope_theta":3.0})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->rope_scaling, RopeScaling::kNone);
}

TEST(LlamaConfig, RefusesWhatItCannotHonourNamingTheField) {
  struct Case { std::string json; std::string field; };
  const std::vector<Case> cases = {
      {R"({"model_type":"mistral","hidden_size":64})", "model_type"},
      {std::string(kBase) + R"(,"architectures":["LlamaForSequenceClassification"]})", "architectures"},
      {std::string(kBase) + R"(,"hidden_act":"gelu"})", "hidden_act"},
      {std::string(kBase) + R"(,"rope_scaling":{"rope_type":"yarn","factor":4}})", "rope_scaling"},
      {std::string(kBase) + R"(,"num_key_value_heads":3})", "num_key_value_heads"},
      {std::string(kBase) + R"(,"head_dim":7})", "head_dim"},
      {R"({"model_type":"llama","hidden_size":64})", "intermediate_size"},
      {std::string(kBase) + R"(,"hidden_size":"big"})", "hidden_size"},
      {std::string(kBase) + R"(,"rope_scaling":{"rope_type":"llama3","factor":8}})", "low_freq_factor"},
      {R"({"hidden_size":64})", "model_type"},
      {"{\"model_type\": \"lla", "JSON"},
  };
  for (const Case& c : cases) {
    auto r = ParseLlamaConfig(c.json, "cfg");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.status().message().find(c.field), std::string::npos) << r.status().message();
  }
}

TEST(LlamaConfig, BuiltinArchitectures) {
  for (const std::string& name : BuiltinLlamaConfigNames()) {
    auto c = BuiltinLlamaConfig(name);
    ASSERT_TRUE(c.ok()) << name << ": " << c.status().message();
  }
  auto tiny = BuiltinLlamaConfig("tinyllama-1.1b");
  EXPECT_EQ(tiny->NumParameters(), 1100048384);  // published TinyLlama-1.1B parameter count
  auto l7 = BuiltinLlamaConfig("llama2-7b");
  EXPECT_EQ(l7->NumParameters(), 6738415616);     // published Llama-2-7b parameter count
  EXPECT_FALSE(BuiltinLlamaConfig("gpt-5").ok());
}

}  // namespace
}  // namespace llm
