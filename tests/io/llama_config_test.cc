#include "io/llama_config.h"

#include <gtest/gtest.h>

namespace llm {
namespace {

using nlohmann::json;

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
      {std::string(kBase) + R"(,"rope_scaling":{"rope_type":"su","factor":4}})", "rope_scaling"},
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

// A field of the wrong JSON type is refused, never read as absent (the gate
// was bypassed by "architectures": "MistralForCausalLM", "model_type": 7, []).
TEST(LlamaConfig, ArchitectureGateRefusesWrongTypes) {
  const std::string body = R"("hidden_size":64,"intermediate_size":96,"num_hidden_layers":2,"num_attention_heads":4,
    "vocab_size":100)";
  for (const std::string& gate : {std::string(R"("architectures":"MistralForCausalLM")"), std::string(R"("model_type":7)"),
                                  std::string(R"("architectures":[])"), std::string(R"("model_type":"llama","architectures":{})"),
                                  std::string(R"("model_type":["llama"])"),
                                  std::string(R"("model_type":"llama","rope_scaling":{"rope_type":5,"factor":2})"),
                                  std::string(R"("model_type":"llama","rope_parameters":"yarn")"),
                                  std::string(R"("model_type":"llama","torch_dtype":16)"),
                                  std::string(R"("model_type":"llama","rope_scaling":"linear")")}) {
    auto r = ParseLlamaConfig("{" + gate + "," + body + "}", "cfg");
    ASSERT_FALSE(r.ok()) << gate << " was accepted";
    EXPECT_EQ(r.status().message().find("not valid JSON"), std::string::npos) << gate << ": the case itself is broken";
  }
  EXPECT_TRUE(ParseLlamaConfig(R"({"architectures":null,"model_type":"llama",)" + body + "}", "cfg").ok());
}

// Every number goes through one checked reader: the value must fit the type it
// is stored in (int32, float32), and the message shows it as written.
TEST(LlamaConfig, NumbersMustFitWhereTheyAreStored) {
  struct Case { std::string json; std::string expect; };
  const std::vector<Case> cases = {
      {R"(,"rms_norm_eps":1e300)", "rms_norm_eps"},
      {R"(,"rope_theta":1e300)", "rope_theta"},
      {R"(,"rope_theta":-1e39)", "rope_theta"},
      {R"(,"rope_theta":1e-50)", "rope_theta"},
      {R"(,"rms_norm_eps":1e-300)", "rms_norm_eps"},
      {R"(,"rope_scaling":{"rope_type":"linear","factor":1e300})", "factor"},
      {R"(,"eos_token_id":1000000000000)", "1000000000000"},
      {R"(,"eos_token_id":[2,1000000000000])", "1000000000000"},
      {R"(,"eos_token_id":[2,"3"])", "eos_token_id"},
      {R"(,"eos_token_id":-5)", "eos_token_id"},
      {R"(,"eos_token_id":[])", "eos_token_id"},
      {R"(,"bos_token_id":4294967297)", "4294967297"},
      {R"(,"hidden_size":18446744073709551615)", "18446744073709551615"},
      {R"(,"max_position_embeddings":-9223372036854775808)", "-9223372036854775808"},
  };
  for (const Case& c : cases) {
    auto r = Parse(c.json);
    ASSERT_FALSE(r.ok()) << c.json << " was accepted";
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << c.json << ": " << r.status().message();
  }
  json v = json::parse(R"([2, "3"])");
  std::vector<int> ids;
  EXPECT_FALSE(ParseTokenIds(v, "generation_config.json: 'eos_token_id'", &ids).ok());
  EXPECT_TRUE(ParseTokenIds(json::parse("[2, 3]"), "x", &ids).ok());
  EXPECT_EQ(ids, (std::vector<int>{2, 3}));
}

TEST(LlamaConfig, DynamicYarnAndLongropeParameters) {
  auto d = Parse(R"(,"max_position_embeddings":64,"rope_scaling":{"rope_type":"dynamic","factor":2.0})");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->rope_scaling, RopeScaling::kDynamic);
  EXPECT_DOUBLE_EQ(d->rope_factor, 2.0);
  EXPECT_FALSE(Parse(R"(,"rope_scaling":{"rope_type":"dynamic"})").ok()) << "dynamic needs a factor";
  auto y = Parse(R"(,"max_position_embeddings":256,"rope_scaling":{"type":"yarn","factor":4.0,
    "original_max_position_embeddings":64,"beta_fast":16,"mscale":0.707,"mscale_all_dim":1.0,"truncate":false})");
  ASSERT_TRUE(y.ok()) << y.status().message();
  EXPECT_EQ(y->rope_scaling, RopeScaling::kYarn);
  EXPECT_EQ(y->rope_original_max_position, 64);
  EXPECT_DOUBLE_EQ(y->rope_beta_fast, 16);
  EXPECT_DOUBLE_EQ(y->rope_beta_slow, 1);  // transformers' default
  EXPECT_DOUBLE_EQ(y->rope_mscale, 0.707);
  EXPECT_FALSE(y->rope_truncate);
  EXPECT_LT(y->rope_attention_factor, 0) << "absent attention_factor is derived, not 0";
  // No factor: the ratio of the context lengths, as transformers derives it.
  auto y2 = Parse(R"(,"max_position_embeddings":256,"rope_scaling":{"rope_type":"yarn","factor":null,
    "original_max_position_embeddings":64})");
  ASSERT_TRUE(y2.ok()) << y2.status().message();
  EXPECT_DOUBLE_EQ(y2->rope_factor, 4.0);
  std::string eight = "[1,1,1,1,1,1,1,1]";  // head_dim 16 / 2
  auto l = Parse(R"(,"max_position_embeddings":256,"rope_scaling":{"rope_type":"longrope","short_factor":)" + eight +
                 R"(,"long_factor":[1,2,3,4,5,6,7,8],"original_max_position_embeddings":64})");
  ASSERT_TRUE(l.ok()) << l.status().message();
  EXPECT_EQ(l->rope_long_factor.size(), 8u);
  EXPECT_DOUBLE_EQ(l->rope_long_factor[7], 8);
  EXPECT_DOUBLE_EQ(l->rope_factor, 4.0);
  EXPECT_FALSE(Parse(R"(,"rope_scaling":{"rope_type":"longrope","short_factor":[1],"long_factor":[1],
    "original_max_position_embeddings":64})").ok()) << "factor lists must have head_dim / 2 entries";
  EXPECT_FALSE(Parse(R"(,"rope_scaling":{"rope_type":"dynamic","factor":2,"partial_rotary_factor":0.5})").ok());
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
